// The Transport over real SSH (ssh2): one connection per node, reused for all
// of its commands; commands run as root via `sh -c`, or `sudo -n` for
// non-root users. Environment values (agent socket, key passphrase) come in as
// options: only src/cli reads the environment.
import { cmd } from '../core/shell.js';
import type { NodeSpec } from '../core/types.js';
import { RemoteCommandInterruptedError, SshError } from '../errors.js';
import { silentLogger, type Logger } from '../output/logger.js';
import type { Client } from 'ssh2';
import { openConnection, type Connection, type HopLease, type HopPool, type KeyCache } from './connect.js';
import { judgeResult } from './command-checks.js';
import { execCommand, type RunningCommand } from './run-command.js';
import { ShellDriver, ShellLostError } from './shell-driver.js';
import { DRIVER_SCRIPT } from './shell-loop.js';
import { resultAfterShellLoss } from './shell-look.js';
import { ChannelSlots } from './channel-slots.js';
import type { NodeSession, RunOptions, RunResult, Transport } from './transport.js';

export interface SshTransportOptions {
  /** TCP + handshake + auth, jump host included. Default 15 s; a host's ssh_config ConnectTimeout beats it. */
  connectTimeoutMs?: number;
  /** A timeout the user chose (`source` says where, for --verbose): beats ssh_config's ConnectTimeout. */
  explicitConnectTimeout?: { ms: number; source: string };
  /** Default 15 s; three missed answers drop the connection. */
  keepaliveIntervalMs?: number;
  /** SSH agent socket (the CLI passes SSH_AUTH_SOCK). */
  agentSocket?: string;
  /** Passphrase of the identity files (the CLI passes RUNC_ROLLOUT_KEY_PASSPHRASE). Never logged. */
  keyPassphrase?: string;
  /** Passphrases per identity file (the CLI asks for them on a terminal); beat keyPassphrase. Never logged. */
  passphrases?: ReadonlyMap<string, string>;
  log?: Logger;
}

/**
 * Jump hop connections shared by every node behind them, keyed by the chain
 * up to the hop: opened once (concurrent connects wait for the same one),
 * closed when the last node using it lets go, forgotten when it drops so the
 * next node opens a fresh one.
 */
export class SharedHops implements HopPool {
  private readonly entries = new Map<string, { opening: Promise<Client>; refs: number; dead: boolean }>();

  /** How many hop connections are open or opening (tests look). */
  get size(): number {
    return this.entries.size;
  }

  async acquire(key: string, open: () => Promise<Client>): Promise<HopLease> {
    let entry = this.entries.get(key);
    if (!entry || entry.dead) {
      const e = { opening: open(), refs: 0, dead: false };
      entry = e;
      this.entries.set(key, e);
      const forget = () => {
        e.dead = true;
        if (this.entries.get(key) === e) this.entries.delete(key);
      };
      e.opening.then((c) => c.once('close', forget), forget);
    }
    const e = entry;
    e.refs++;
    let client: Client;
    try {
      client = await e.opening;
    } catch (err) {
      e.refs--;
      throw err;
    }
    let released = false;
    return {
      client,
      release: () => {
        if (released) return;
        released = true;
        if (--e.refs > 0) return;
        if (this.entries.get(key) === e) this.entries.delete(key);
        const alreadyClosed = e.dead;
        e.dead = true;
        if (!alreadyClosed) void endClient(client);
      },
    };
  }
}

/** A polite end first; a peer that never answers must not hold us up. */
function endClient(c: Client): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      c.destroy();
      resolve();
    }, 2_000);
    c.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    c.end();
  });
}

export function createSshTransport(opts: SshTransportOptions = {}): Transport {
  const log = opts.log ?? silentLogger;
  const hops = new SharedHops();
  const keys: KeyCache = new Map();
  return {
    async connect(node: NodeSpec, connectOpts: { signal?: AbortSignal } = {}): Promise<NodeSession> {
      const conn = await openConnection(node, {
        connectTimeoutMs: opts.connectTimeoutMs ?? 15_000,
        keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 15_000,
        agentSocket: opts.agentSocket,
        keyPassphrase: opts.keyPassphrase,
        ...(opts.passphrases ? { passphrases: opts.passphrases } : {}),
        ...(opts.explicitConnectTimeout ? { explicitConnectTimeout: opts.explicitConnectTimeout } : {}),
        log,
        signal: connectOpts.signal,
        hops,
        keys,
      });
      const chain = node.ssh.jumpHosts?.length ? node.ssh.jumpHosts : node.ssh.jumpHost ? [node.ssh.jumpHost] : [];
      log.debug(`${node.name}: connected to ${node.ssh.user}@${node.ssh.host}:${node.ssh.port}${chain.length ? ` via ${chain.map((j) => `${j.user}@${j.host}:${j.port}`).join(' -> ')}` : ''}`);
      return new Ssh2Session(node, conn, log);
    },
  };
}

/**
 * The command line sshd runs: the script under POSIX sh, as root. LC_ALL=C
 * keeps messages parseable. With a timeout the node enforces it with
 * timeout(1), which kills the script's whole process group: closing an SSH
 * channel does not stop a remote command, and sshd refuses signal requests in
 * root sessions.
 */
export function remoteCommandLine(script: string, sudo: boolean, timeoutMs?: number): string {
  const limit = timeoutMs === undefined ? [] : ['timeout', '-k', '5', String(Math.max(Math.ceil(timeoutMs), 1) / 1000)];
  return cmd('env', 'LC_ALL=C', ...(sudo ? ['sudo', '-n', '--'] : []), ...limit, 'sh', '-c', script);
}

class Ssh2Session implements NodeSession {
  readonly node: string;
  private readonly running = new Set<RunningCommand>();
  private closedBecause: string | undefined;
  private readonly slots = new ChannelSlots();

  constructor(
    private readonly spec: NodeSpec,
    private readonly conn: Connection,
    private readonly log: Logger,
  ) {
    this.node = spec.name;
    // Listeners stay for the connection's life: a drop must never be an unhandled 'error'.
    const clients: [Client, string][] = [[conn.client, 'connection']];
    conn.jumps.forEach((j, i) => clients.push([j, conn.jumps.length > 1 ? `jump host ${i + 1} connection` : 'jump host connection']));
    for (const [client, what] of clients) {
      const onError = (err: Error) => {
        log.debug(`${this.node}: ${what} error: ${err.message}`);
        this.gone(`${what} error: ${err.message}`);
      };
      const onClose = () => {
        this.closedClients.add(client);
        this.gone(`${what} closed`);
      };
      client.on('error', onError);
      client.on('close', onClose);
      // Shared hops carry one pair per node behind them: not a leak, and taken off again on close().
      if (client !== conn.client) {
        client.setMaxListeners(0);
        this.detach.push(() => {
          client.off('error', onError);
          client.off('close', onClose);
        });
      }
    }
  }

  private readonly detach: (() => void)[] = [];

  private readonly closedClients = new Set<Client>();

  /** From now on no command runs; the ones running are rejected as connection-lost. */
  private gone(why: string): void {
    if (this.closedBecause !== undefined) return;
    this.closedBecause = why;
    for (const r of this.running) r.lost(why);
    this.slots.wakeAll();
  }

  isOpen(): boolean {
    return this.closedBecause === undefined;
  }

  warmUp(): void {
    this.runs = Math.max(this.runs, 1);
    if (this.closedBecause === undefined) void this.shell();
  }

  private runs = 0;
  private driver: ShellDriver | undefined;
  private starting: Promise<ShellDriver | null> | undefined;
  private noDriver: string | undefined;
  /** Shells that ended under a command: after two, this node gets exec only. */
  private shellLosses = 0;

  /**
   * The node's shell driver (shell-driver.ts) from a session's second command
   * on (a session that runs one command, plan's, gains nothing from it); null
   * while it is busy with another command or when the node cannot run it.
   */
  private async shell(): Promise<ShellDriver | null> {
    if (this.noDriver !== undefined) return null;
    if (this.driver?.idle) return this.driver;
    if (this.driver && !this.driver.gone) return null;
    this.starting ??= ShellDriver.start(this.conn.client, this.node, remoteCommandLine(DRIVER_SCRIPT, this.spec.ssh.sudo), 30_000).then((r) => {
      this.starting = undefined;
      if ('driver' in r) {
        if (this.closedBecause !== undefined) {
          r.driver.close();
          return null;
        }
        this.driver = r.driver;
        return r.driver;
      }
      this.noDriver = r.why;
      this.log.debug(`${this.node}: one exec per command (the shell driver could not start: ${r.why})`);
      return null;
    });
    const d = await this.starting;
    return d?.idle ? d : null;
  }

  async run(script: string, opts: RunOptions = {}): Promise<RunResult> {
    await this.slots.acquire(() => this.closedBecause !== undefined);
    try {
      if (this.closedBecause !== undefined) {
        throw new RemoteCommandInterruptedError(this.node, script, 'connection-lost', `not run: the connection is gone (${this.closedBecause})`);
      }
      const sudo = this.spec.ssh.sudo;
      this.log.debug(`${this.node}: run ${script.split('\n')[0]}${opts.stdin !== undefined ? ' (with stdin)' : ''}`);
      const started = Date.now();
      const size = stdinLength(opts.stdin);
      let driver = this.runs++ > 0 && size !== null ? await this.shell() : null;
      // Checked again with no await before run(): a parallel command may have taken it meanwhile.
      if (!driver?.idle || !driver.accepts(size ?? 0)) driver = null;
      let result: RunResult;
      try {
        result = await this.track(driver ? driver.run(this.node, script, opts) : this.exec(script, opts));
      } catch (err) {
        if (!(err instanceof ShellLostError)) throw err;
        if (++this.shellLosses >= 2) this.noDriver = `the shell ended twice under a command (${err.why})`;
        this.log.debug(`${this.node}: the shell ended under a command (${err.why}); looking at the node`);
        result = await resultAfterShellLoss({
          node: this.node,
          script,
          err,
          opts,
          elapsedMs: Date.now() - started,
          isOpen: () => this.closedBecause === undefined,
          exec: (look, timeoutMs) => this.track(this.exec(look, { timeoutMs, allowFailure: true })),
          rerun: () => this.track(this.exec(script, opts)),
        });
      }
      return judgeResult({ node: this.node, user: this.spec.ssh.user, sudo, script, opts, elapsedMs: Date.now() - started }, result);
    } finally {
      this.slots.release();
    }
  }

  private exec(script: string, opts: RunOptions): RunningCommand {
    return execCommand(this.conn.client, { node: this.node, script, commandLine: remoteCommandLine(script, this.spec.ssh.sudo, opts.timeoutMs), remoteTimeout: opts.timeoutMs !== undefined, opts });
  }

  /** A running command the connection's loss must reach. */
  private async track(running: RunningCommand): Promise<RunResult> {
    this.running.add(running);
    try {
      return await running.result;
    } finally {
      this.running.delete(running);
    }
  }

  async close(): Promise<void> {
    this.gone('the session was closed');
    this.driver?.close();
    // The node's own connection first; the shared jump hops close when no other node uses them.
    if (!this.closedClients.has(this.conn.client)) await endClient(this.conn.client);
    for (const d of this.detach.splice(0)) d();
    this.conn.release();
  }
}

/** The driver needs the stdin length up front (a string or Buffer, not a stream): null when it is not known. */
function stdinLength(stdin: RunOptions['stdin']): number | null {
  if (stdin === undefined) return 0;
  if (typeof stdin === 'string') return Buffer.byteLength(stdin);
  return Buffer.isBuffer(stdin) ? stdin.length : null;
}
