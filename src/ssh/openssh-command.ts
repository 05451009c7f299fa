// One remote command of the OpenSSH transport: an ssh client multiplexed over
// the node's master, stdin streamed with backpressure, bounded capture of
// stdout/stderr, timeout and abort by killing the client (the master and the
// other commands stay).
import type { ChildProcess } from 'node:child_process';
import { RemoteCommandInterruptedError, SshError } from '../errors.js';
import { clientArgs } from './openssh-args.js';
import { feedStdin, killGroup, spawnSsh } from './openssh-process.js';
import { REMOTE_TIMEOUT_GRACE_MS, STDERR_CAP, STDOUT_CAP, TailBuffer } from './run-command.js';
import type { RunOptions, RunResult } from './transport.js';

export interface ClientRequest {
  ssh: string;
  env: NodeJS.ProcessEnv;
  controlPath: string;
  host: string;
  node: string;
  /** The caller's script, as shown in errors. */
  script: string;
  /** The full command line for the node (remoteCommandLine). */
  commandLine: string;
  opts: RunOptions;
  /** ssh exited 255 or on a signal: say whether the connection dropped or ssh failed. */
  failed(code: number | null, signal: NodeJS.Signals | null, stderr: string): Promise<Error>;
}

export interface RunningClient {
  child: ChildProcess;
  result: Promise<RunResult>;
  /** Called by the session when the connection drops. */
  lost(why: string): void;
}

export function runClient(req: ClientRequest): RunningClient {
  const { node, script, opts } = req;
  const child = spawnSsh(req.ssh, clientArgs(req.controlPath, req.host, req.commandLine), req.env);
  let lost: (why: string) => void = () => {};
  const result = new Promise<RunResult>((resolve, reject) => {
    const out = new TailBuffer(STDOUT_CAP);
    const err = new TailBuffer(STDERR_CAP);
    const source = opts.stdin !== undefined && typeof opts.stdin !== 'string' && !Buffer.isBuffer(opts.stdin) ? opts.stdin : undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const stderrText = () => (err.dropped ? `[... ${err.dropped} bytes of stderr dropped]\n` : '') + err.text();
    const done = (e: Error | undefined, r?: RunResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // An upload source the command did not consume would keep its file open.
      if (source && !source.readableEnded) source.destroy();
      if (e) reject(e);
      else resolve(r!);
    };
    const interrupt = (reason: 'timeout' | 'aborted' | 'connection-lost', detail: string) => {
      if (settled) return;
      // Killing the client closes its channel; the remote command may still run, as in ssh2 mode.
      killGroup(child, 'SIGKILL');
      done(new RemoteCommandInterruptedError(node, script, reason, detail, stderrText()));
    };
    lost = (why) => interrupt('connection-lost', `connection lost while a command ran (${why}); its outcome on the node is unknown`);
    const onAbort = () => interrupt('aborted', 'aborted; the ssh client was killed (the command may still be running on the node)');
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.once('error', (e) => done(new SshError(node, `cannot start ${req.ssh}: ${e.message}`, e)));
    child.once('close', (code, signal) => {
      if (settled) return;
      if (code === 255 || code === null) return void req.failed(code, signal, stderrText()).then((e) => done(e));
      done(undefined, { code, signal: null, stdout: out.text(), stderr: stderrText() });
    });
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      // The node enforces the timeout itself (timeout(1)); this timer catches a command or connection that outlives it.
      const localMs = opts.timeoutMs + REMOTE_TIMEOUT_GRACE_MS;
      const secs = Math.round(localMs / 100) / 10;
      timer = setTimeout(() => interrupt('timeout', `timed out after ${secs}s; the ssh client was killed (the command may still be running on the node)`), localMs);
    }
    feedStdin(child, opts.stdin, source, (why) => {
      // A failed upload source must not look like a complete upload: kill the client, never send EOF.
      killGroup(child, 'SIGKILL');
      done(new SshError(node, `reading the data to send failed: ${why}`));
    });
  });
  return { child, result, lost: (why) => lost(why) };
}
