// Opening one authenticated ssh2 connection, directly or through a chain of
// jump hosts (ProxyJump a,b,c). Every hop checks its host key against its
// known_hosts files, and one deadline covers the whole chain (TCP, handshake,
// auth), so a server that accepts TCP but never speaks SSH still fails on
// time. Jump hop connections come from a pool shared by every node behind
// them (ssh2-transport.ts keeps it, refcounted).
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import ssh2, { Client, type ConnectConfig } from 'ssh2';
import type { HostKeyPolicy, JumpHost, NodeSpec } from '../core/types.js';
import { SshError, errorMessage } from '../errors.js';
import type { Logger } from '../output/logger.js';
// ssh2 is CommonJS: Node's ESM loader sees only some of its named exports, `utils` not among them.
import { knownKeyTypesInFiles, verifyHostKeyInFiles } from './host-key-file.js';
import { effectiveAgent } from './identity-keys.js';

export interface ConnectOptions {
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  agentSocket?: string;
  keyPassphrase?: string;
  /** Per identity file (as the node names it): beats keyPassphrase (the CLI asked for these on the terminal). */
  passphrases?: ReadonlyMap<string, string>;
  /** A connect timeout the user chose (flag, config file): beats ssh_config's ConnectTimeout, unlike connectTimeoutMs. */
  explicitConnectTimeout?: { ms: number; source: string };
  /** Missed keepalive answers before the connection counts as dead (default 3). */
  keepaliveCountMax?: number;
  log: Logger;
  signal?: AbortSignal;
  /** Where jump hop connections are shared; without one each node opens its own chain. */
  hops?: HopPool;
  /** Identity files read (and decrypted: bcrypt is slow) once per transport, not once per node. */
  keys?: KeyCache;
}

/** Path -> the parsed key, or why it cannot be used (without a node name: one answer for every node). */
export type KeyCache = Map<string, Promise<ParsedKey | string>>;

/** A shared jump hop connection; release() once per acquire, the last one closes it. */
export interface HopLease {
  client: Client;
  release(): void;
}

export interface HopPool {
  /** The connection under `key`, opened with `open` when there is none (or only a dead one). */
  acquire(key: string, open: () => Promise<Client>): Promise<HopLease>;
}

export interface Connection {
  client: Client;
  /** The first jump hop's connection (kept for callers of the single-jump API). */
  jump?: Client;
  /** Every jump hop's connection, nearest first (shared with other nodes). */
  jumps: Client[];
  /** Give the jump hops back to the pool (closing those no other node uses). Idempotent. */
  release(): void;
}

interface Hop {
  label: string;
  host: string;
  port: number;
  user: string;
  knownHosts: string[];
  policy: HostKeyPolicy;
  auth: Auth;
}

interface Auth {
  /** Usable private keys, in the order to try them. */
  keys: { path: string; key: ParsedKey }[];
  agent?: string;
}

// ssh2's supported host key algorithms, in its default order of preference.
const HOST_KEY_ALGOS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** Ask for the key types known_hosts already has for this host first, as ssh(1) does. */
function orderHostKeyAlgos(known: string[]): string[] {
  const first = known.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])).filter((t) => HOST_KEY_ALGOS.includes(t));
  return [...new Set([...first, ...HOST_KEY_ALGOS])];
}

type ParsedKey = Exclude<ReturnType<typeof ssh2.utils.parseKey>, Error>;

async function loadPrivateKey(path: string, passphrase: string | undefined): Promise<ParsedKey | string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `cannot read identity file ${path}: ${code === 'ENOENT' ? 'no such file' : errorMessage(err)}`;
  }
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    // ssh2's messages never contain the passphrase; ours do not either.
    if (/no passphrase/i.test(parsed.message)) {
      return `identity file ${path} is encrypted and no passphrase was given (set RUNC_ROLLOUT_KEY_PASSPHRASE, or load the key into the SSH agent)`;
    }
    const hint = passphrase === undefined ? '' : ' (wrong passphrase?)';
    return `identity file ${path} cannot be used${hint}: ${parsed.message.replace(/passphrase.*$/i, 'passphrase')}`;
  }
  // Decrypted once here (bcrypt is slow): ssh2 gets the parsed key and never sees the passphrase again.
  return parsed;
}

/**
 * The keys and agent one hop authenticates with. Identity files are tried in
 * order; one that is missing or cannot be decrypted is skipped (with a debug
 * line) as long as another way remains, else its problem is the error.
 */
async function hopAuth(
  node: string,
  label: string,
  files: string[],
  agent: string | null | undefined,
  identitiesOnly: boolean,
  opts: ConnectOptions,
  loaded: KeyCache,
): Promise<Auth> {
  const keys: Auth['keys'] = [];
  const problems: SshError[] = [];
  for (const path of files) {
    try {
      let key = loaded.get(path);
      if (!key) {
        key = loadPrivateKey(path, opts.passphrases?.get(path) ?? opts.keyPassphrase);
        loaded.set(path, key);
      }
      const parsed = await key;
      if (typeof parsed === 'string') throw new SshError(node, parsed);
      keys.push({ path, key: parsed });
    } catch (err) {
      if (!(err instanceof SshError)) throw err;
      problems.push(err);
    }
  }
  const agentSocket = effectiveAgent(files, agent, identitiesOnly, opts.agentSocket);
  if (keys.length === 0 && !agentSocket) {
    if (problems[0]) throw problems[0];
    throw new SshError(node, files.length === 0 && agent === null
      ? `${label}: no way to authenticate: no identity file, and IdentityAgent none`
      : 'no way to authenticate: the inventory names no identityFile and no SSH agent is available (SSH_AUTH_SOCK)');
  }
  for (const p of problems) opts.log.debug(`${p.message} (skipped; trying the other keys${agentSocket ? ' and the agent' : ''})`);
  return { keys, ...(agentSocket ? { agent: agentSocket } : {}) };
}

function identityFilesOf(t: { identityFile?: string; identityFiles?: string[] }): string[] {
  return t.identityFiles?.length ? t.identityFiles : t.identityFile ? [t.identityFile] : [];
}

/** The key of a hop connection in the pool: the chain up to it, and how its host key is checked. */
function chainKey(chain: JumpHost[], node: NodeSpec): string {
  return JSON.stringify(chain.map((j) => [j.user, j.host.toLowerCase(), j.port, j.knownHostsFiles ?? node.ssh.knownHostsFiles ?? [node.ssh.knownHosts], j.hostKeyPolicy ?? node.ssh.hostKeyPolicy]));
}

/**
 * The connect deadline of one node and what set it: a timeout the user chose
 * (--connect-timeout, the config file) beats the host's ssh_config
 * ConnectTimeout, which beats the built-in default.
 */
export function resolveConnectTimeout(t: { connectTimeoutMs?: number }, explicit: { ms: number; source: string } | undefined, fallbackMs: number): { ms: number; source: string } {
  if (explicit) return { ms: explicit.ms, source: t.connectTimeoutMs !== undefined ? `${explicit.source}; beats ssh_config ConnectTimeout ${t.connectTimeoutMs / 1000}s` : explicit.source };
  if (t.connectTimeoutMs !== undefined) return { ms: t.connectTimeoutMs, source: 'ssh_config ConnectTimeout' };
  return { ms: fallbackMs, source: 'default' };
}

/** A one-use pool: each node opens and closes its own chain. */
const privatePool: HopPool = {
  async acquire(_key, open) {
    const client = await open();
    return { client, release: () => client.end() };
  },
};

export async function openConnection(node: NodeSpec, opts: ConnectOptions): Promise<Connection> {
  const t = node.ssh;
  const timeout = resolveConnectTimeout(t, opts.explicitConnectTimeout, opts.connectTimeoutMs);
  opts.log.debug(`${node.name}: connect timeout ${timeout.ms / 1000}s (${timeout.source})`);
  const connectTimeoutMs = timeout.ms;
  const hopOpts: ConnectOptions = {
    ...opts,
    connectTimeoutMs,
    keepaliveIntervalMs: t.keepaliveIntervalMs ?? opts.keepaliveIntervalMs,
    ...(t.keepaliveCountMax !== undefined ? { keepaliveCountMax: t.keepaliveCountMax } : {}),
  };
  const loaded: KeyCache = opts.keys ?? new Map();
  const nodeFiles = identityFilesOf(t);
  const knownHosts = t.knownHostsFiles?.length ? t.knownHostsFiles : [t.knownHosts];
  const target: Hop = {
    label: `${t.user}@${t.host}:${t.port}`,
    host: t.host,
    port: t.port,
    user: t.user,
    knownHosts,
    policy: t.hostKeyPolicy,
    auth: await hopAuth(node.name, `${t.user}@${t.host}:${t.port}`, nodeFiles, t.agentSocket, t.identitiesOnly ?? false, opts, loaded),
  };
  // The deadline starts after the keys are decrypted (local work, not the network's).
  const deadline = Date.now() + connectTimeoutMs;
  const chain = t.jumpHosts?.length ? t.jumpHosts : t.jumpHost ? [t.jumpHost] : [];
  const pool = opts.hops ?? privatePool;
  const leases: HopLease[] = [];
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    for (const l of [...leases].reverse()) l.release();
  };
  try {
    for (const [i, j] of chain.entries()) {
      const label = `jump host ${chain.length > 1 ? `${i + 1} of ${chain.length} ` : ''}${j.user}@${j.host}:${j.port}`;
      const hop: Hop = {
        label,
        host: j.host,
        port: j.port,
        user: j.user,
        knownHosts: j.knownHostsFiles?.length ? j.knownHostsFiles : knownHosts,
        policy: j.hostKeyPolicy ?? t.hostKeyPolicy,
        auth: j.identityFiles?.length || j.agentSocket !== undefined
          ? await hopAuth(node.name, label, j.identityFiles?.length ? j.identityFiles : nodeFiles, j.agentSocket === undefined ? t.agentSocket : j.agentSocket, j.identitiesOnly ?? false, opts, loaded)
          : target.auth,
      };
      const prev = leases[i - 1]?.client;
      const lease = await pool
        .acquire(chainKey(chain.slice(0, i + 1), node), async () => {
          const sock = prev ? await forward(node.name, prev, hop, deadline, opts.signal) : undefined;
          return connectHop(node, hop, deadline, hopOpts, sock);
        })
        .catch((err: unknown) => {
          // The hop may have been opened (and failed) for another node: name this one.
          if (err instanceof SshError && err.node !== node.name) throw new SshError(node.name, err.message.slice(err.node.length + 2), err);
          throw err;
        });
      leases.push(lease);
    }
    const last = leases.at(-1)?.client;
    const stream = last ? await forward(node.name, last, target, deadline, opts.signal) : undefined;
    const client = await connectHop(node, target, deadline, hopOpts, stream);
    const jumps = leases.map((l) => l.client);
    return { client, jumps, ...(jumps[0] ? { jump: jumps[0] } : {}), release };
  } catch (err) {
    release();
    throw err;
  }
}

function forward(node: string, jump: Client, target: { host: string; port: number }, deadline: number, signal?: AbortSignal): Promise<Duplex> {
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

function connectHop(node: NodeSpec, hop: Hop, deadline: number, opts: ConnectOptions, sock?: Duplex): Promise<Client> {
  const name = node.name;
  const { knownHosts: files, policy: hostKeyPolicy, auth } = hop;
  const knownHosts = files.join(', ');
  return knownKeyTypesInFiles(files, hop.host, hop.port).then(
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
        client.on('connect', () => {
          stage = 'handshake';
          // Every command is a few small packets each way: Nagle plus delayed ACKs would add ~40 ms to each.
          client.setNoDelay(true);
        });
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
          keepaliveCountMax: opts.keepaliveCountMax ?? 3,
          algorithms: { serverHostKey: orderHostKeyAlgos(knownTypes) as never },
          hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
            verifyHostKeyInFiles({ files, host: hop.host, port: hop.port, key, policy: hostKeyPolicy }).then(
              (r) => {
                if (r.added) opts.log.warn(`${name}: added ${hop.host}:${hop.port} ${r.keyType} ${r.fingerprint} to ${r.file} (hostKeyPolicy accept-new)`);
                if (r.status !== 'ok') hostKeyProblem = hostKeyMessage(r.status, r, hop, r.status === 'unknown' ? knownHosts : (r.file ?? knownHosts));
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
        // Each identity file in order, then the agent (ssh2 takes one privateKey; the handler list takes many).
        config.authHandler = [
          ...auth.keys.map((k) => ({ type: 'publickey' as const, username: hop.user, key: k.key })),
          ...(auth.agent ? [{ type: 'agent' as const, username: hop.user, agent: auth.agent }] : []),
        ] as never;
        try {
          client.connect(config);
        } catch (err) {
          finish(new SshError(name, `${hop.label}: ${errorMessage(err)}`, err));
        }
      }),
  );
}

function hostKeyMessage(status: 'unknown' | 'changed' | 'revoked', r: { keyType: string; fingerprint: string; line?: number; certAuthorityLine?: number; certAuthorityFile?: string }, hop: Hop, file: string): string {
  const key = `${r.keyType} ${r.fingerprint}`;
  const scan = `ssh-keyscan -p ${hop.port} ${hop.host}`;
  switch (status) {
    case 'unknown':
      if (r.certAuthorityLine !== undefined) return `host key ${key} is not in ${file}; ${r.certAuthorityFile}:${r.certAuthorityLine} trusts a host certificate authority (@cert-authority) for this host, but the ssh2 client cannot check host certificates (it does not negotiate *-cert-v01@openssh.com host keys): use --ssh-client openssh, or list the plain host key (${scan})`;
      return `host key ${key} is not in ${file} and hostKeyPolicy is strict; verify the fingerprint out of band, then add it (${scan} >> ${file}) or set hostKeyPolicy: accept-new`;
    case 'changed':
      return `HOST KEY CHANGED: the server presents ${key}, which does not match ${file}:${r.line}; this may be an attack, or the host was reinstalled: verify, then remove the old entry (ssh-keygen -R ${hop.port === 22 ? hop.host : `'[${hop.host}]:${hop.port}'`} -f ${file})`;
    case 'revoked':
      return `host key ${key} is marked @revoked in ${file}:${r.line}; refusing to connect`;
  }
}

function describeConnectError(err: Error & { level?: string; code?: string }, hop: Hop, auth: Auth): string {
  if (err.level === 'client-authentication') {
    const files = auth.keys.length === 1 ? 'identity file' : auth.keys.length > 1 ? `${auth.keys.length} identity files` : '';
    const tried = [files, auth.agent ? 'SSH agent' : ''].filter(Boolean).join(' and ');
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
