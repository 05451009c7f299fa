// The Transport over the system OpenSSH client (`--ssh-client openssh`), for
// what only ssh(1) does: host certificates (`@cert-authority`), user
// certificates (`id_*-cert.pub`, CertificateFile), and any ssh_config
// directive. One connection per node: connect() starts a master (ControlMaster)
// we own, each run() is one `ssh` client multiplexed over it, close() sends
// `-O exit` and makes sure the master is gone. No ssh outlives its session,
// nor this process (openssh-process.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeSpec } from '../core/types.js';
import { RemoteCommandInterruptedError, SshError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../output/logger.js';
import { judgeResult } from './command-checks.js';
import { resolveConnectTimeout } from './connect.js';
import { masterArgs, type OpensshSettings } from './openssh-args.js';
import { runClient, type RunningClient } from './openssh-command.js';
import { Master } from './openssh-master.js';
import { removeDir, trackDir } from './openssh-process.js';
import { remoteCommandLine } from './ssh2-transport.js';
import { ChannelSlots } from './channel-slots.js';
import type { NodeSession, RunOptions, RunResult, Transport } from './transport.js';

export interface OpensshTransportOptions {
  /** The ssh binary (default `ssh` from PATH). */
  sshBinary?: string;
  /** `--ssh-config`: passed to every ssh as `-F` (`none`: no config). Unset: ssh reads its usual files. */
  configFile?: string;
  /** TCP + handshake + auth, jump hops included. Default 15 s; a host's ssh_config ConnectTimeout beats it. */
  connectTimeoutMs?: number;
  /** A timeout the user chose: beats ssh_config's ConnectTimeout. */
  explicitConnectTimeout?: { ms: number; source: string };
  /** Default 15 s; three missed answers drop the connection. */
  keepaliveIntervalMs?: number;
  /** The agent for nodes whose config names none (the CLI passes SSH_AUTH_SOCK). */
  agentSocket?: string;
  /** The environment of the ssh processes (default: this process's). */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
}

export function createOpensshTransport(opts: OpensshTransportOptions = {}): Transport {
  const log = opts.log ?? silentLogger;
  const env = opts.env ?? process.env;
  return {
    async connect(node: NodeSpec, connectOpts: { signal?: AbortSignal } = {}): Promise<NodeSession> {
      const timeout = resolveConnectTimeout(node.ssh, opts.explicitConnectTimeout, opts.connectTimeoutMs ?? 15_000);
      const settings: OpensshSettings = {
        ssh: opts.sshBinary ?? 'ssh',
        ...(opts.configFile !== undefined ? { configFile: opts.configFile } : {}),
        connectTimeoutMs: timeout.ms,
        keepaliveIntervalMs: node.ssh.keepaliveIntervalMs ?? opts.keepaliveIntervalMs ?? 15_000,
        keepaliveCountMax: node.ssh.keepaliveCountMax ?? 3,
        ...(opts.agentSocket ? { agentSocket: opts.agentSocket } : {}),
      };
      const label = `${node.ssh.user}@${node.ssh.host}:${node.ssh.port}`;
      // A private folder (0700) for the control socket: nobody else can reach our master through it.
      const dir = mkdtempSync(join(tmpdir(), 'rr-ssh-'));
      const controlPath = join(dir, 'm');
      let args: string[];
      try {
        args = masterArgs(node, settings, controlPath);
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        throw new SshError(node.name, `${label}: ${errorMessage(err)}`);
      }
      trackDir(dir);
      log.debug(`${node.name}: connect timeout ${timeout.ms / 1000}s (${timeout.source}); ${settings.ssh} ${args.join(' ')}`);
      const session = new OpensshSession(node, settings.ssh, args, controlPath, dir, env, log);
      try {
        await session.master.ready(timeout.ms, log, connectOpts.signal);
      } catch (err) {
        await session.close();
        throw err;
      }
      return session;
    },
  };
}

class OpensshSession implements NodeSession {
  readonly node: string;
  readonly master: Master;
  private readonly running = new Set<RunningClient>();
  private closedBecause: string | undefined;
  private readonly slots = new ChannelSlots();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly spec: NodeSpec,
    private readonly ssh: string,
    args: string[],
    private readonly controlPath: string,
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: Logger,
  ) {
    this.node = spec.name;
    this.master = new Master(spec, ssh, args, controlPath, env, (why) => this.gone(why));
  }

  isOpen(): boolean {
    return this.closedBecause === undefined;
  }

  /** From now on no command runs; the ones running are killed and rejected as connection-lost. */
  private gone(why: string): void {
    if (this.closedBecause !== undefined) return;
    this.closedBecause = why;
    for (const r of this.running) r.lost(why);
    this.slots.wakeAll();
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
      const running = runClient({
        ssh: this.ssh,
        env: this.env,
        controlPath: this.controlPath,
        host: this.spec.ssh.host,
        node: this.node,
        script,
        commandLine: remoteCommandLine(script, sudo, opts.timeoutMs),
        opts,
        failed: (code, signal, stderr) => this.lostOrFailed(script, code, signal, stderr),
      });
      this.running.add(running);
      let result: RunResult;
      try {
        result = await running.result;
      } finally {
        this.running.delete(running);
      }
      return judgeResult({ node: this.node, user: this.spec.ssh.user, sudo, script, opts, elapsedMs: Date.now() - started }, result);
    } finally {
      this.slots.release();
    }
  }

  /**
   * 255 is ssh's own failure (a remote command's 255 looks the same). When the
   * master went away too, the connection dropped: the outcome is unknown.
   * Otherwise the client could not run the command over the master.
   */
  private async lostOrFailed(script: string, code: number | null, signal: NodeJS.Signals | null, stderr: string): Promise<Error> {
    await Promise.race([this.master.exit, new Promise((r) => setTimeout(r, 300))]);
    const why = this.closedBecause;
    if (why !== undefined) return new RemoteCommandInterruptedError(this.node, script, 'connection-lost', `connection lost while a command ran (${why}); its outcome on the node is unknown`, stderr);
    const detail = stderr.replace(/\r/g, '').trim().split('\n').slice(-3).join('; ');
    return new SshError(this.node, `ssh exited ${code ?? signal} running a command over the open connection (the remote command exited 255 or was killed by a signal, or ssh failed)${detail ? `: ${detail}` : ''}`);
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.gone('the session was closed');
    await this.master.stop();
    removeDir(this.dir);
  }
}
