// The ssh master of one node (ControlMaster): the only connection to it. It
// runs a remote `cat` whose stdin is our pipe, so it also ends when this
// process dies without closing it (the pipe closes, cat ends, the master
// exits). Ready once that remote command has printed its marker: TCP, host
// key, authentication, and the control socket are all in place by then.
import type { ChildProcess } from 'node:child_process';
import type { NodeSpec } from '../core/types.js';
import { SshError } from '../errors.js';
import type { Logger } from '../output/logger.js';
import { exitArgs, MASTER_READY } from './openssh-args.js';
import { describeSshExit } from './openssh-errors.js';
import { exited, isRunning, killGroup, spawnSsh } from './openssh-process.js';
import { TailBuffer } from './run-command.js';

export class Master {
  /** Resolves when the master process is gone (or never started). */
  readonly exit: Promise<void>;
  private readonly child: ChildProcess;
  private readonly stderr = new TailBuffer(64 * 1024);

  constructor(
    private readonly spec: NodeSpec,
    private readonly ssh: string,
    args: string[],
    private readonly controlPath: string,
    private readonly env: NodeJS.ProcessEnv,
    /** Called once, when the master goes away, with why. */
    onGone: (why: string) => void,
  ) {
    const child = spawnSsh(ssh, args, env);
    this.child = child;
    child.stdin!.on('error', () => {});
    child.stderr!.on('data', (d: Buffer) => this.stderr.push(d));
    this.exit = new Promise<void>((resolve) => {
      // A spawn failure (no ssh binary) arrives as 'error', not as 'close'.
      child.once('error', (err) => {
        this.stderr.push(Buffer.from(`cannot start ${ssh}: ${err.message}\n`));
        onGone(`cannot start ${ssh}: ${err.message}`);
        resolve();
      });
      child.once('close', (code, signal) => {
        const tail = this.stderr.text().replace(/\r/g, '').trim().split('\n').slice(-3).join('; ');
        onGone(`the connection closed (ssh exited ${code ?? signal})${tail ? `: ${tail}` : ''}`);
        resolve();
      });
    });
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  /** Resolves once logged in; rejects with a clear SshError (and the master killed) otherwise. */
  ready(timeoutMs: number, log: Logger, signal?: AbortSignal): Promise<void> {
    const { spec, child } = this;
    const label = `${spec.ssh.user}@${spec.ssh.host}:${spec.ssh.port}`;
    return new Promise<void>((resolve, reject) => {
      let out = '';
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        child.stdout!.off('data', onData);
        child.stdout!.resume(); // nothing more is printed; a full pipe must never stall the master
        if (!err) return resolve();
        killGroup(child, 'SIGKILL');
        reject(err);
      };
      const onData = (d: Buffer) => {
        out += d.toString('latin1');
        if (out.includes(`${MASTER_READY}\n`)) finish();
      };
      const secs = Math.round(timeoutMs / 100) / 10;
      const timer = setTimeout(() => finish(new SshError(spec.name, `${label}: connect timed out after ${secs}s (TCP, SSH handshake and authentication did not all finish)`)), timeoutMs);
      const onAbort = () => finish(new SshError(spec.name, `${label}: connect aborted`));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout!.on('data', onData);
      void this.exit.then(() => finish(new SshError(spec.name, `${label}: ${describeSshExit(child.exitCode, this.stderr.text(), spec, timeoutMs)}`)));
      // What ssh says about host keys it adds (accept-new), as ssh2 mode says it.
      child.stderr!.on('data', (d: Buffer) => {
        for (const line of d.toString('utf8').replace(/\r/g, '').split('\n')) {
          if (/^Warning: Permanently added/.test(line)) log.warn(`${spec.name}: ${line} (hostKeyPolicy ${spec.ssh.hostKeyPolicy})`);
        }
      });
    });
  }

  /** `-O exit` first (the master says goodbye to sshd and removes its socket), then close its stdin, then signals. */
  async stop(): Promise<void> {
    if (this.running) {
      const ctl = spawnSsh(this.ssh, exitArgs(this.controlPath, this.spec.ssh.host), this.env, 'ignore');
      ctl.once('error', () => {});
      if (!(await exited(ctl, 2_000))) killGroup(ctl, 'SIGKILL');
    }
    this.child.stdin!.end();
    if (!(await exited(this.child, 2_000))) {
      killGroup(this.child, 'SIGTERM');
      if (!(await exited(this.child, 1_000))) killGroup(this.child, 'SIGKILL');
    }
    await Promise.race([this.exit, new Promise((r) => setTimeout(r, 1_000))]);
  }
}
