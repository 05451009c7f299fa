// One remote command on an open connection: exec channel, stdin streamed with
// backpressure, bounded capture of stdout/stderr, timeout and abort by closing
// the channel.
import type { Readable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { RemoteCommandInterruptedError, SshError, errorMessage } from '../errors.js';
import type { RunOptions, RunResult } from './transport.js';

/** Output kept per command; beyond this only the tail is kept (the end is where the answer and the error are). */
export const STDOUT_CAP = 8 * 1024 * 1024;
export const STDERR_CAP = 256 * 1024;

/** How long after timeoutMs the local timer gives up on a node-side timeout(1) (which sends KILL after 5 s). */
export const REMOTE_TIMEOUT_GRACE_MS = 10_000;

export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.cap) {
      const head = this.chunks[0]!;
      const excess = this.size - this.cap;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
        this.dropped += head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export interface ExecRequest {
  node: string;
  /** The caller's script, as shown in errors. */
  script: string;
  /** The full command line sent to sshd. */
  commandLine: string;
  /** The command line stops the script itself after opts.timeoutMs (see remoteCommandLine). */
  remoteTimeout?: boolean;
  opts: RunOptions;
}

export interface RunningCommand {
  result: Promise<RunResult>;
  /** Called by the session when the connection drops. */
  lost(why: string): void;
}

export function execCommand(client: Client, req: ExecRequest): RunningCommand {
  const { node, script, opts } = req;
  let lost: (why: string) => void = () => {};
  const result = new Promise<RunResult>((resolve, reject) => {
    const out = new TailBuffer(STDOUT_CAP);
    const err = new TailBuffer(STDERR_CAP);
    let channel: ClientChannel | undefined;
    let settled = false;
    let code: number | null = null;
    let signal: string | null = null;
    let gotExit = false;
    let timer: NodeJS.Timeout | undefined;
    const source = opts.stdin !== undefined && typeof opts.stdin !== 'string' && !Buffer.isBuffer(opts.stdin) ? opts.stdin : undefined;

    const stderrText = () => (err.dropped ? `[... ${err.dropped} bytes of stderr dropped]\n` : '') + err.text();
    const done = (e?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // An upload source the command did not consume would keep its file open.
      if (source && !source.readableEnded) source.destroy();
      if (e) reject(e);
      else resolve({ code, signal, stdout: out.text(), stderr: stderrText() });
    };
    const interrupt = (reason: 'timeout' | 'aborted' | 'connection-lost', detail: string) => {
      if (settled) return;
      if (channel) {
        // Ask sshd to signal the command's process group, then close the channel either way.
        sendSignal(channel, 'TERM');
        try {
          channel.close();
        } catch {
          /* channel already gone */
        }
      }
      done(new RemoteCommandInterruptedError(node, script, reason, detail, stderrText()));
    };
    lost = (why) => interrupt('connection-lost', `connection lost while a command ran (${why}); its outcome on the node is unknown`);
    const onAbort = () => interrupt('aborted', 'aborted; the channel was closed (the command may still be running on the node)');
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      // The node enforces the timeout itself (timeout(1) in the command line); this local timer
      // only catches a command that outlives that, or a connection that stopped answering.
      const localMs = opts.timeoutMs + (req.remoteTimeout ? REMOTE_TIMEOUT_GRACE_MS : 0);
      const secs = Math.round(localMs / 100) / 10;
      timer = setTimeout(() => interrupt('timeout', `timed out after ${secs}s; the channel was closed (the command may still be running on the node)`), localMs);
    }

    const onChannel = (e: Error | undefined, ch: ClientChannel) => {
      if (e) return done(new SshError(node, `cannot start a remote command: ${e.message}`, e));
      channel = ch;
      if (settled) {
        ch.close();
        return;
      }
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => err.push(d));
      ch.on('exit', (c: number | null, s?: string) => {
        gotExit = true;
        code = c ?? null;
        signal = c === null || c === undefined ? (s ?? null) : null;
      });
      ch.on('error', (e2: Error) => interrupt('connection-lost', `channel error (${e2.message}); the command's outcome is unknown`));
      ch.on('close', () => {
        if (gotExit) done();
        else interrupt('connection-lost', 'the channel closed without an exit status; the outcome on the node is unknown');
      });
      feedStdin(ch, opts.stdin, source, (why) => {
        // A failed upload source must not look like a complete upload: kill, don't just send EOF.
        sendSignal(ch, 'KILL');
        ch.close();
        done(new SshError(node, `reading the data to send failed: ${why}`));
      });
    };
    try {
      client.exec(req.commandLine, onChannel);
    } catch (e) {
      done(new RemoteCommandInterruptedError(node, script, 'connection-lost', `connection lost before the command started (${errorMessage(e)})`));
    }
  });
  return { result, lost: (why) => lost(why) };
}

/**
 * ssh2's Channel.signal() sends nothing once our side has sent EOF (it checks
 * `writable`), which is always the case after stdin is done; the request is
 * still valid then, so send it through the protocol object. Best effort.
 */
function sendSignal(ch: ClientChannel, name: 'TERM' | 'KILL'): void {
  const c = ch as unknown as { outgoing?: { id: number; state: string }; _client?: { _protocol?: { signal(id: number, sig: string): void } } };
  try {
    if (c.outgoing && (c.outgoing.state === 'open' || c.outgoing.state === 'eof')) c._client?._protocol?.signal(c.outgoing.id, name);
  } catch {
    /* the channel or connection is already gone */
  }
}

function feedStdin(ch: ClientChannel, stdin: RunOptions['stdin'], source: Readable | undefined, fail: (why: string) => void): void {
  if (stdin === undefined) {
    ch.end();
    return;
  }
  if (!source) {
    ch.end(stdin as string | Buffer);
    return;
  }
  source.once('error', (e) => fail(errorMessage(e)));
  // pipe() pauses the source while the SSH window is full and ends the channel (EOF) at the end.
  source.pipe(ch);
}
