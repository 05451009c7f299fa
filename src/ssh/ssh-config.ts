// OpenSSH client configuration (ssh_config(5)) for one host, the way ssh(1)
// reads it: parsed by the maintained `ssh-config` package, first value wins,
// `Host` and `Match host` patterns (negation included), IdentityFile and
// UserKnownHostsFile accumulate. Pure: the caller reads the file and passes
// the home directory; nothing here touches the file system, the environment,
// or runs a command (`Match exec` never matches here, and says so).
import SSHConfig, { LineType, type Line } from 'ssh-config';
import type { HostKeyPolicy, JumpHost, SshTarget } from '../core/types.js';

export interface SshConfigFile {
  /** Where it was read from, for messages and `--verbose` sources. */
  path: string;
  config: SSHConfig;
  /** Directives seen but not honoured, said once per file. */
  warnings: string[];
}

/** Directives that change where or how we connect: ignoring them silently would surprise, so they are named. */
const NOT_SUPPORTED: Record<string, string> = {
  include: 'Include is not followed; put the settings in this file or pass it with --ssh-config',
  proxycommand: 'ProxyCommand is not supported (no local commands are run); use ProxyJump',
  hostkeyalias: 'HostKeyAlias is not supported; known_hosts is looked up by HostName and port',
  certificatefile: 'CertificateFile is not used by the default SSH client (ssh2 cannot authenticate with OpenSSH user certificates); --ssh-client openssh uses it',
  canonicalizehostname: 'CanonicalizeHostName is not supported (no DNS lookups while reading the config)',
  globalknownhostsfile: 'GlobalKnownHostsFile is not read; list the file in UserKnownHostsFile or the inventory',
  localcommand: 'LocalCommand is not supported',
  knownhostscommand: 'KnownHostsCommand is not supported',
};

export function parseSshConfig(text: string, path: string): SshConfigFile {
  const config = SSHConfig.parse(text);
  const warnings: string[] = [];
  const seen = new Set<string>();
  const visit = (lines: Line[]) => {
    for (const line of lines) {
      if (line.type !== LineType.DIRECTIVE) continue;
      const param = line.param.toLowerCase();
      const why = NOT_SUPPORTED[param];
      if (why && !seen.has(param)) {
        seen.add(param);
        warnings.push(`${path}: ${why}`);
      }
      if (param === 'match' && 'criteria' in line) {
        const keys = Object.keys(line.criteria).map((k) => k.toLowerCase());
        if (keys.includes('exec') && !seen.has('match exec')) {
          seen.add('match exec');
          warnings.push(`${path}: "Match exec" is never run by runc-rollout: such blocks do not apply`);
        }
      }
      if ('config' in line) visit(line.config);
    }
  };
  visit(config);
  // CanonicalizeHostName makes the parser run nslookup: drop it, said above.
  stripDirective(config, 'canonicalizehostname');
  return { path, config, warnings };
}

function stripDirective(lines: Line[], param: string): void {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (line.type !== LineType.DIRECTIVE) continue;
    if (line.param.toLowerCase() === param) lines.splice(i, 1);
    else if ('config' in line) stripDirective(line.config, param);
  }
}

export interface SshConfigContext {
  /** For `~` and `%d`, and relative paths. */
  home: string;
  /** For `%u` (the local user name); optional. */
  localUser?: string;
}

/** What ssh_config says about one host; every field optional (absent: the config does not set it). */
export interface HostSettings {
  hostName?: string;
  user?: string;
  port?: number;
  /** Absolute paths, in the order ssh would try them. */
  identityFiles?: string[];
  identitiesOnly?: boolean;
  /** An absolute socket path; null for `IdentityAgent none`; `SSH_AUTH_SOCK` leaves the field unset. */
  identityAgent?: string | null;
  /** Raw `ProxyJump` value (`none` included). */
  proxyJump?: string;
  /** Absolute paths; the first gets accept-new additions, as with ssh. */
  knownHostsFiles?: string[];
  hostKeyPolicy?: HostKeyPolicy;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Values that could not be used, `file: Directive value: why`. */
  warnings: string[];
}

const YES = new Set(['yes', 'true']);
const NO = new Set(['no', 'false']);

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function list(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);
}

/** `%%`, `%d`, `%h`, `%n`, `%p`, `%r`, `%u` and a leading `~`, as ssh expands them in file names. */
export function expandPath(p: string, tokens: { home: string; host: string; alias: string; port: number; user: string; localUser?: string }): string | { error: string } {
  let bad: string | undefined;
  let out = p.replace(/%(.)/g, (all, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return tokens.home;
      case 'h':
        return tokens.host;
      case 'n':
        return tokens.alias;
      case 'p':
        return String(tokens.port);
      case 'r':
        return tokens.user;
      case 'u':
        if (tokens.localUser !== undefined) return tokens.localUser;
        bad ??= all;
        return all;
      default:
        bad ??= all;
        return all;
    }
  });
  if (bad) return { error: `token ${bad} is not supported` };
  if (out.includes('${')) return { error: 'environment variables (${...}) are not expanded' };
  if (out === '~' || out.startsWith('~/')) out = tokens.home + out.slice(1);
  else if (out.startsWith('~')) return { error: '"~user" paths are not supported' };
  if (!out.startsWith('/')) out = `${tokens.home.replace(/\/$/, '')}/${out}`;
  return out.replace(/\/{2,}/g, '/');
}

function seconds(value: string | undefined, name: string, file: string, warnings: string[]): number | undefined {
  if (value === undefined || value.toLowerCase() === 'none') return undefined;
  if (!/^\d+$/.test(value)) {
    warnings.push(`${file}: ${name} ${value}: expected whole seconds; ignored`);
    return undefined;
  }
  return Number(value) * 1000;
}

/**
 * ssh_config's settings for `alias` (what you would type after `ssh`).
 * `defaults` stand in for `%r`/`%p` when the config sets no User/Port.
 */
export function hostSettings(file: SshConfigFile, alias: string, ctx: SshConfigContext, defaults: { user: string; port: number }): HostSettings {
  const c = file.config.compute(alias, { ignoreCase: true, matchExec: false });
  const warnings: string[] = [];
  const warn = (what: string) => warnings.push(`${file.path}: ${what}`);
  const out: HostSettings = { warnings };

  const hostName = first(c.hostname);
  if (hostName !== undefined) out.hostName = hostName.replace(/%h/g, alias).replace(/%%/g, '%');
  const user = first(c.user);
  if (user !== undefined) out.user = user;
  const portText = first(c.port);
  if (portText !== undefined) {
    const n = Number(portText);
    if (/^\d+$/.test(portText) && n >= 1 && n <= 65535) out.port = n;
    else warn(`Port ${portText}: not a port number; ignored`);
  }

  const tokens = { home: ctx.home, host: out.hostName ?? alias, alias, port: out.port ?? defaults.port, user: out.user ?? defaults.user, ...(ctx.localUser !== undefined ? { localUser: ctx.localUser } : {}) };
  const paths = (name: string, values: string[]): string[] =>
    values.flatMap((v) => {
      const r = expandPath(v, tokens);
      if (typeof r === 'string') return [r];
      warn(`${name} ${v}: ${r.error}; ignored`);
      return [];
    });

  const ids = list(c.identityfile);
  if (ids.length) {
    const expanded = paths('IdentityFile', ids.filter((v) => v.toLowerCase() !== 'none'));
    out.identityFiles = [...new Set(expanded)];
  }
  const only = first(c.identitiesonly)?.toLowerCase();
  if (only !== undefined) out.identitiesOnly = YES.has(only);

  const agent = first(c.identityagent);
  if (agent !== undefined) {
    if (agent.toLowerCase() === 'none') out.identityAgent = null;
    else if (agent === 'SSH_AUTH_SOCK' || agent === '$SSH_AUTH_SOCK' || agent === '${SSH_AUTH_SOCK}') {
      // the agent the CLI was given: nothing to change
    } else {
      const r = paths('IdentityAgent', [agent]);
      if (r[0]) out.identityAgent = r[0];
    }
  }

  const jump = first(c.proxyjump);
  if (jump !== undefined) out.proxyJump = jump;

  const known = list(c.userknownhostsfile);
  if (known.length) {
    const files = paths('UserKnownHostsFile', known.filter((v) => v.toLowerCase() !== 'none'));
    if (files.length) out.knownHostsFiles = [...new Set(files)];
  }

  const strict = first(c.stricthostkeychecking)?.toLowerCase();
  if (strict !== undefined) {
    if (YES.has(strict) || strict === 'ask') out.hostKeyPolicy = 'strict';
    else if (strict === 'accept-new') out.hostKeyPolicy = 'accept-new';
    else if (NO.has(strict) || strict === 'off') {
      out.hostKeyPolicy = 'strict';
      warn(`StrictHostKeyChecking ${strict} for ${alias} is not honoured: runc-rollout always checks host keys (strict); use accept-new to add unknown keys`);
    } else warn(`StrictHostKeyChecking ${strict}: unknown value; using strict`);
  }

  const ct = seconds(first(c.connecttimeout), 'ConnectTimeout', file.path, warnings);
  if (ct !== undefined && ct > 0) out.connectTimeoutMs = ct;
  const ka = seconds(first(c.serveraliveinterval), 'ServerAliveInterval', file.path, warnings);
  if (ka !== undefined && ka > 0) out.keepaliveIntervalMs = ka;
  const kc = first(c.serveralivecountmax);
  if (kc !== undefined) {
    if (/^\d+$/.test(kc) && Number(kc) > 0) out.keepaliveCountMax = Number(kc);
    else warn(`ServerAliveCountMax ${kc}: expected a positive number; ignored`);
  }
  return out;
}

export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

/** One ProxyJump hop: `[user@]host[:port]`, `[::1]:22`, or `ssh://[user@]host[:port]`. */
export function parseJumpSpec(text: string): JumpSpec | { error: string } {
  const t = text.startsWith('ssh://') ? text.slice(6).replace(/\/$/, '') : text;
  const m = /^(?:([^@\s]+)@)?(\[[^\]\s]+\]|[^:@/[\]\s]+)(?::(\d+))?$/.exec(t);
  if (!m) return { error: `${JSON.stringify(text)} is not of the form [user@]host[:port]` };
  const [, user, rawHost = '', rawPort] = m;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const out: JumpSpec = { host };
  if (user !== undefined) out.user = user;
  if (rawPort !== undefined) {
    const port = Number(rawPort);
    if (port < 1 || port > 65535) return { error: `${JSON.stringify(text)}: port must be from 1 to 65535` };
    out.port = port;
  }
  return out;
}

/** Settings every hop falls back to when neither its own config nor its spec sets them. */
export interface HopDefaults {
  user: string;
  port: number;
}

const MAX_HOPS = 8;

/**
 * A ProxyJump value as the chain of hops, nearest first. Each hop gets its own
 * config (HostName, User, Port, IdentityFile, UserKnownHostsFile,
 * StrictHostKeyChecking, IdentityAgent), and the first hop's own ProxyJump is
 * followed, as ssh does; a loop or a chain longer than 8 is an error.
 */
export function resolveJumpChain(file: SshConfigFile | undefined, proxyJump: string, ctx: SshConfigContext, defaults: HopDefaults): { hops: JumpHost[]; warnings: string[] } | { error: string } {
  const warnings: string[] = [];
  const seen: string[] = [];
  const expand = (value: string, depth: number): JumpHost[] | { error: string } => {
    if (value.toLowerCase() === 'none') return [];
    const hops: JumpHost[] = [];
    const specs = value.split(',').map((s) => s.trim());
    for (const [i, text] of specs.entries()) {
      const spec = parseJumpSpec(text);
      if ('error' in spec) return { error: `ProxyJump ${spec.error}` };
      const s = file ? hostSettings(file, spec.host, ctx, defaults) : { warnings: [] as string[] };
      warnings.push(...s.warnings);
      if (i === 0 && s.proxyJump !== undefined && s.proxyJump.toLowerCase() !== 'none') {
        if (seen.includes(spec.host) || depth >= MAX_HOPS) return { error: `ProxyJump: the chain through ${spec.host} loops or is longer than ${MAX_HOPS} hops` };
        seen.push(spec.host);
        const before = expand(s.proxyJump, depth + 1);
        if ('error' in before) return before;
        hops.push(...before);
      }
      hops.push(jumpHostFrom(spec, s, defaults));
    }
    if (hops.length > MAX_HOPS) return { error: `ProxyJump: more than ${MAX_HOPS} hops` };
    return hops;
  };
  const hops = expand(proxyJump, 0);
  if ('error' in hops) return hops;
  return { hops, warnings: [...new Set(warnings)] };
}

/** One hop: what the spec says beats the hop's config, which beats the defaults. */
export function jumpHostFrom(spec: JumpSpec, s: Omit<HostSettings, 'warnings'>, defaults: HopDefaults): JumpHost {
  const hop: JumpHost = { host: s.hostName ?? spec.host, port: spec.port ?? s.port ?? defaults.port, user: spec.user ?? s.user ?? defaults.user };
  if (s.identityFiles?.length) hop.identityFiles = s.identityFiles;
  if (s.identitiesOnly !== undefined) hop.identitiesOnly = s.identitiesOnly;
  if (s.identityAgent !== undefined) hop.agentSocket = s.identityAgent;
  if (s.knownHostsFiles?.length) hop.knownHostsFiles = s.knownHostsFiles;
  if (s.hostKeyPolicy) hop.hostKeyPolicy = s.hostKeyPolicy;
  return hop;
}

/** One `--verbose` line: each SSH setting of a node with its value and the source that gave it. */
export function describeSshSources(ssh: SshTarget, sources: Record<string, string>): string {
  const chain = ssh.jumpHosts?.length ? ssh.jumpHosts : ssh.jumpHost ? [ssh.jumpHost] : [];
  const value = (k: string): string => {
    switch (k) {
      case 'identityFile':
        return (ssh.identityFiles ?? (ssh.identityFile ? [ssh.identityFile] : [])).join(' ');
      case 'knownHosts':
        return (ssh.knownHostsFiles ?? [ssh.knownHosts]).join(' ');
      case 'jumpHost':
        return chain.map((j) => `${j.user}@${j.host}:${j.port}`).join(',');
      case 'agentSocket':
        return ssh.agentSocket === null ? 'none' : String(ssh.agentSocket);
      default:
        return String((ssh as unknown as Record<string, unknown>)[k]);
    }
  };
  return Object.entries(sources)
    .map(([k, src]) => `${k}=${value(k)} (${src})`)
    .join(', ');
}
