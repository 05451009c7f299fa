// Opening one authenticated ssh2 connection, directly or through a jump host.
// Every hop checks its host key against known_hosts, and one deadline covers
// the whole chain (TCP, handshake, auth), so a server that accepts TCP but
// never speaks SSH still fails on time.
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import ssh2, { Client, type ConnectConfig } from 'ssh2';
import type { NodeSpec } from '../core/types.js';
import { SshError, errorMessage } from '../errors.js';
import type { Logger } from '../output/logger.js';
// ssh2 is CommonJS: Node's ESM loader sees only some of its named exports, `utils` not among them.
import { knownKeyTypesFor, verifyHostKey } from './host-key-file.js';

export interface ConnectOptions {
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  agentSocket?: string;
  keyPassphrase?: string;
  log: Logger;
  signal?: AbortSignal;
}

export interface Connection {
  client: Client;
  /** The jump host's connection, closed together with the node's. */
  jump?: Client;
}

interface Hop {
  label: string;
  host: string;
  port: number;
  user: string;
}

// ssh2's supported host key algorithms, in its default order of preference.
const HOST_KEY_ALGOS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** Ask for the key types known_hosts already has for this host first, as ssh(1) does. */
function orderHostKeyAlgos(known: string[]): string[] {
  const first = known.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])).filter((t) => HOST_KEY_ALGOS.includes(t));
  return [...new Set([...first, ...HOST_KEY_ALGOS])];
}

async function loadPrivateKey(node: string, path: string, passphrase: string | undefined): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SshError(node, `cannot read identity file ${path}: ${code === 'ENOENT' ? 'no such file' : errorMessage(err)}`);
  }
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    // ssh2's messages never contain the passphrase; ours do not either.
    if (/no passphrase/i.test(parsed.message)) {
      throw new SshError(node, `identity file ${path} is encrypted and no passphrase was given (set RUNC_ROLLOUT_KEY_PASSPHRASE)`);
    }
    const hint = passphrase === undefined ? '' : ' (wrong passphrase?)';
    throw new SshError(node, `identity file ${path} cannot be used${hint}: ${parsed.message.replace(/passphrase.*$/i, 'passphrase')}`);
  }
  return data;
}

export async function openConnection(node: NodeSpec, opts: ConnectOptions): Promise<Connection> {
  const t = node.ssh;
  const deadline = Date.now() + opts.connectTimeoutMs;
  const privateKey = t.identityFile ? await loadPrivateKey(node.name, t.identityFile, opts.keyPassphrase) : undefined;
  if (!privateKey && !opts.agentSocket) {
    throw new SshError(node.name, 'no way to authenticate: the inventory names no identityFile and no SSH agent is available (SSH_AUTH_SOCK)');
  }
  const auth = { privateKey, passphrase: opts.keyPassphrase, agent: opts.agentSocket };
  const target: Hop = { label: `${t.user}@${t.host}:${t.port}`, host: t.host, port: t.port, user: t.user };
  if (!t.jumpHost) return { client: await connectHop(node, target, auth, deadline, opts) };

  const j = t.jumpHost;
  const jumpHop: Hop = { label: `jump host ${j.user}@${j.host}:${j.port}`, host: j.host, port: j.port, user: j.user };
  const jump = await connectHop(node, jumpHop, auth, deadline, opts);
  try {
    const stream = await forward(node.name, jump, target, deadline, opts.signal);
    const client = await connectHop(node, target, auth, deadline, opts, stream);
    return { client, jump };
  } catch (err) {
    jump.destroy();
    throw err;
  }
}

function forward(node: string, jump: Client, target: Hop, deadline: number, signal?: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new SshError(node, `jump host did not open a channel to ${target.host}:${target.port} in time`)), Math.max(0, deadline - Date.now()));
    const onAbort = () => reject(new SshError(node, 'connect aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    jump.forwardOut('127.0.0.1', 0, target.host, target.port, (err, stream) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(new SshError(node, `jump host cannot reach ${target.host}:${target.port}: ${err.message}`, err));
      else resolve(stream);
    });
  });
}

type Stage = 'connecting' | 'handshake' | 'authenticating';
const STAGE_TEXT: Record<Stage, string> = {
  connecting: 'no TCP connection',
  handshake: 'TCP connected, but the server did not complete the SSH handshake',
  authenticating: 'SSH handshake done, but authentication did not finish',
};

function connectHop(
  node: NodeSpec,
  hop: Hop,
  auth: { privateKey?: Buffer; passphrase?: string; agent?: string },
  deadline: number,
  opts: ConnectOptions,
  sock?: Duplex,
): Promise<Client> {
  const name = node.name;
  const { knownHosts, hostKeyPolicy } = node.ssh;
  return knownKeyTypesFor(knownHosts, hop.host, hop.port).then(
    (knownTypes) =>
      new Promise<Client>((resolve, reject) => {
        const client = new Client();
        let stage: Stage = sock ? 'handshake' : 'connecting';
        let hostKeyProblem: string | undefined;
        let settled = false;
        const remaining = Math.max(1, deadline - Date.now());
        const finish = (err?: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          if (!err) return resolve(client);
          client.destroy();
          reject(err);
        };
        const timer = setTimeout(() => {
          finish(new SshError(name, `${hop.label}: connect timed out after ${Math.round(opts.connectTimeoutMs / 100) / 10}s (${STAGE_TEXT[stage]})`));
        }, remaining);
        const onAbort = () => finish(new SshError(name, `${hop.label}: connect aborted`));
        if (opts.signal?.aborted) return onAbort();
        opts.signal?.addEventListener('abort', onAbort, { once: true });

        // Errors after `ready` belong to the session (ssh2-transport.ts); this one keeps late ones from being unhandled.
        client.on('error', (err: Error & { level?: string; code?: string }) => {
          finish(new SshError(name, `${hop.label}: ${hostKeyProblem ?? describeConnectError(err, hop, auth)}`, err));
        });
        client.on('connect', () => (stage = 'handshake'));
        client.on('handshake', () => (stage = 'authenticating'));
        client.on('ready', () => finish());
        client.on('close', () => finish(new SshError(name, `${hop.label}: ${hostKeyProblem ?? `connection closed (${STAGE_TEXT[stage]})`}`)));

        const config: ConnectConfig = {
          host: hop.host,
          port: hop.port,
          username: hop.user,
          // ssh2's own timer is a fallback; ours fires first with a better message.
          readyTimeout: remaining + 5_000,
          keepaliveInterval: opts.keepaliveIntervalMs,
          keepaliveCountMax: 3,
          algorithms: { serverHostKey: orderHostKeyAlgos(knownTypes) as never },
          hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
            verifyHostKey({ knownHostsPath: knownHosts, host: hop.host, port: hop.port, key, policy: hostKeyPolicy }).then(
              (r) => {
                if (r.added) opts.log.warn(`${name}: added ${hop.host}:${hop.port} ${r.keyType} ${r.fingerprint} to ${knownHosts} (hostKeyPolicy accept-new)`);
                if (r.status !== 'ok') hostKeyProblem = hostKeyMessage(r.status, r, hop, knownHosts);
                verify(r.status === 'ok');
              },
              (err: unknown) => {
                hostKeyProblem = `cannot check the host key against ${knownHosts}: ${errorMessage(err)}`;
                verify(false);
              },
            );
          },
        };
        if (sock) config.sock = sock;
        if (auth.privateKey) config.privateKey = auth.privateKey;
        if (auth.passphrase !== undefined) config.passphrase = auth.passphrase;
        if (auth.agent) config.agent = auth.agent;
        try {
          client.connect(config);
        } catch (err) {
          finish(new SshError(name, `${hop.label}: ${errorMessage(err)}`, err));
        }
      }),
  );
}

function hostKeyMessage(status: 'unknown' | 'changed' | 'revoked', r: { keyType: string; fingerprint: string; line?: number }, hop: Hop, file: string): string {
  const key = `${r.keyType} ${r.fingerprint}`;
  const scan = `ssh-keyscan -p ${hop.port} ${hop.host}`;
  switch (status) {
    case 'unknown':
      return `host key ${key} is not in ${file} and hostKeyPolicy is strict; verify the fingerprint out of band, then add it (${scan} >> ${file}) or set hostKeyPolicy: accept-new`;
    case 'changed':
      return `HOST KEY CHANGED: the server presents ${key}, which does not match ${file}:${r.line}; this may be an attack, or the host was reinstalled: verify, then remove the old entry (ssh-keygen -R ${hop.port === 22 ? hop.host : `'[${hop.host}]:${hop.port}'`} -f ${file})`;
    case 'revoked':
      return `host key ${key} is marked @revoked in ${file}:${r.line}; refusing to connect`;
  }
}

function describeConnectError(err: Error & { level?: string; code?: string }, hop: Hop, auth: { privateKey?: Buffer; agent?: string }): string {
  if (err.level === 'client-authentication') {
    const tried = [auth.privateKey ? 'identity file' : '', auth.agent ? 'SSH agent' : ''].filter(Boolean).join(' and ');
    return `authentication failed for user ${hop.user} (tried ${tried || 'nothing'})`;
  }
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is sshd running on that port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host name ${hop.host} does not resolve`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable (${err.code})`;
    default:
      return err.message;
  }
}
