// The ssh(1) command lines of the OpenSSH transport (openssh-transport.ts):
// the master that owns a node's one connection, the multiplexed client that
// runs each command over it, and `-O exit`. Pure: no processes, no files.
//
// Every setting runc-rollout resolved for the node (inventory, command line,
// the ssh_config it read) is passed as `-o`, so it beats whatever ssh's own
// config says, as in ssh2 mode; ssh's config still supplies everything else
// (CertificateFile, ciphers, ...). Jump hops get their own settings through a
// nested ProxyCommand (`ssh -J` would pass them none of our `-o` options).
import { q } from '../core/shell.js';
import type { HostKeyPolicy, NodeSpec } from '../core/types.js';

export interface OpensshSettings {
  /** The ssh binary (default `ssh`). */
  ssh: string;
  /** `-F` for every ssh started: a file, or `none` (no config). Unset: ssh reads ~/.ssh/config and /etc/ssh/ssh_config. */
  configFile?: string;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** The agent when the node names none (the CLI passes SSH_AUTH_SOCK). */
  agentSocket?: string;
}

/** What one hop (a jump host or the node) connects with. */
interface Hop {
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  identitiesOnly: boolean;
  /** null: no agent; undefined: ssh's default. */
  agent: string | null | undefined;
  knownHostsFiles: string[];
  policy: HostKeyPolicy;
}

/** The remote command of the master: proves the login worked, then holds its session until our end of stdin closes (so it dies with us). */
export const MASTER_READY = 'runc-rollout-master-ready';
const MASTER_COMMAND = `echo ${MASTER_READY}; exec cat >/dev/null`;

/**
 * One value inside `-o Key=Value`: ssh splits it like a config line, so a
 * value with blanks is double-quoted; `%` is doubled where ssh expands
 * tokens (file names). Quotes, backslashes and newlines cannot be passed.
 */
export function optionValue(v: string, expandsTokens = true): string {
  if (/["\\\r\n]/.test(v)) throw new Error(`${JSON.stringify(v)} cannot be passed to ssh (quotes, backslashes and newlines are not allowed)`);
  const t = expandsTokens ? v.replace(/%/g, '%%') : v;
  return /\s/.test(t) ? `"${t}"` : t;
}

const opt = (key: string, value: string): string[] => ['-o', `${key}=${value}`];
const secs = (ms: number): string => String(Math.max(1, Math.ceil(ms / 1000)));

function configArgs(s: OpensshSettings): string[] {
  if (s.configFile === undefined) return [];
  return ['-F', s.configFile === 'none' ? '/dev/null' : s.configFile];
}

function hopOptions(h: Hop, s: OpensshSettings): string[] {
  return [
    ...opt('BatchMode', 'yes'),
    ...opt('HostName', optionValue(h.host, false)),
    ...opt('Port', String(h.port)),
    ...opt('User', optionValue(h.user, false)),
    // Never `no`: the inventory's policy, as in ssh2 mode.
    ...opt('StrictHostKeyChecking', h.policy === 'accept-new' ? 'accept-new' : 'yes'),
    ...opt('UserKnownHostsFile', h.knownHostsFiles.map((f) => optionValue(f)).join(' ')),
    ...h.identityFiles.flatMap((f) => opt('IdentityFile', optionValue(f))),
    ...(h.identitiesOnly ? opt('IdentitiesOnly', 'yes') : []),
    ...(h.agent === null ? opt('IdentityAgent', 'none') : h.agent ? opt('IdentityAgent', optionValue(h.agent)) : []),
    ...opt('ConnectTimeout', secs(s.connectTimeoutMs)),
    ...opt('ServerAliveInterval', secs(s.keepaliveIntervalMs)),
    ...opt('ServerAliveCountMax', String(s.keepaliveCountMax)),
    // Nothing but the commands: no forwarded agent, X11 or ports (a config's LocalForward would bind ports), no local commands.
    ...opt('ForwardAgent', 'no'),
    ...opt('ForwardX11', 'no'),
    ...opt('ClearAllForwardings', 'yes'),
    ...opt('PermitLocalCommand', 'no'),
  ];
}

function identityFilesOf(t: { identityFile?: string; identityFiles?: string[] }): string[] {
  return t.identityFiles?.length ? t.identityFiles : t.identityFile ? [t.identityFile] : [];
}

/** The node and its jump hops, nearest hop first, each with the settings connect.ts would use for it. */
export function hopsOf(node: NodeSpec, s: OpensshSettings): { target: Hop; chain: Hop[] } {
  const t = node.ssh;
  const files = identityFilesOf(t);
  const knownHostsFiles = t.knownHostsFiles?.length ? t.knownHostsFiles : [t.knownHosts];
  const agent = t.agentSocket === undefined ? s.agentSocket : t.agentSocket;
  const target: Hop = { host: t.host, port: t.port, user: t.user, identityFiles: files, identitiesOnly: t.identitiesOnly ?? false, agent, knownHostsFiles, policy: t.hostKeyPolicy };
  const jumps = t.jumpHosts?.length ? t.jumpHosts : t.jumpHost ? [t.jumpHost] : [];
  const chain = jumps.map((j): Hop => {
    const own = Boolean(j.identityFiles?.length) || j.agentSocket !== undefined;
    return {
      host: j.host,
      port: j.port,
      user: j.user,
      identityFiles: own ? (j.identityFiles?.length ? j.identityFiles : files) : files,
      identitiesOnly: own ? (j.identitiesOnly ?? false) : target.identitiesOnly,
      agent: own ? (j.agentSocket === undefined ? agent : j.agentSocket) : agent,
      knownHostsFiles: j.knownHostsFiles?.length ? j.knownHostsFiles : knownHostsFiles,
      policy: j.hostKeyPolicy ?? t.hostKeyPolicy,
    };
  });
  return { target, chain };
}

/**
 * The ProxyCommand that reaches `%h:%p` (as the ssh running it expands them)
 * through chain[0..k]: `ssh <hop k> -W [%h]:%p hop-k`, whose own ProxyCommand
 * reaches hop k through the hops before it. The invoking ssh expands `%`
 * tokens once and runs the result with /bin/sh, so every word is shell-quoted
 * and every `%` but the ones of `-W` is doubled.
 */
export function proxyCommand(chain: Hop[], k: number, s: OpensshSettings): string {
  const hop = chain[k]!;
  const inner = k > 0 ? opt('ProxyCommand', proxyCommand(chain, k - 1, s)) : [];
  const before = [s.ssh, ...configArgs(s), ...hopOptions(hop, s), ...inner, '-T', '-W'].map((w) => q(w).replace(/%/g, '%%'));
  return [...before, q('[%h]:%p'), '--', q(hop.host).replace(/%/g, '%%')].join(' ');
}

/** The master: owns the connection (`-M`), holds a session open until stdin closes, and serves the clients on `controlPath`. */
export function masterArgs(node: NodeSpec, s: OpensshSettings, controlPath: string): string[] {
  const { target, chain } = hopsOf(node, s);
  return [
    ...configArgs(s),
    ...opt('ControlMaster', 'yes'),
    ...opt('ControlPath', optionValue(controlPath)),
    ...opt('ControlPersist', 'no'),
    ...hopOptions(target, s),
    ...(chain.length ? opt('ProxyCommand', proxyCommand(chain, chain.length - 1, s)) : []),
    '-T',
    '--',
    target.host,
    MASTER_COMMAND,
  ];
}

/**
 * One command over the master. No config is read (a client only talks to
 * the master), and should the master be gone the ProxyCommand `false` stops
 * ssh from opening a connection of its own.
 */
export function clientArgs(controlPath: string, host: string, commandLine: string): string[] {
  return ['-F', '/dev/null', ...opt('ControlMaster', 'no'), ...opt('ControlPath', optionValue(controlPath)), ...opt('ProxyCommand', 'false'), ...opt('BatchMode', 'yes'), ...opt('LogLevel', 'ERROR'), '-T', '--', host, commandLine];
}

/** Ask the master to close the connection. */
export function exitArgs(controlPath: string, host: string): string[] {
  return ['-F', '/dev/null', ...opt('ControlPath', optionValue(controlPath)), '-O', 'exit', '--', host];
}
