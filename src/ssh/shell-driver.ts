// One root shell per node for the rest of the run. Every exec channel costs
// the node an sshd session, the login shell with its rc files and a sudo:
// 50-300 ms of node CPU before the script's first line, ~10 times per
// upgrade. The driver pays that once: a small POSIX sh loop, started over one
// exec channel, reads framed requests (script, stdin, timeout), runs each
// script exactly as an exec would (`sh`, under timeout(1) with its own
// process group, stdin given, stdout and stderr to files), and answers with
// the exit status and both outputs, framed by byte counts.
//
// The loop never decides anything; scripts behave as they do over exec. A
// lost connection leaves a running script to finish (as with exec); the
// driver then finds its stdin closed and exits. A loop that dies on a live
// connection is looked at afterwards (shell-look.ts). Anything the driver
// cannot do (no exact byte reader, a refused sudo, a stdin stream of unknown
// length, a large stdin where only `dd bs=1` reads exactly) falls back to one
// exec per command.
import type { Client, ClientChannel } from 'ssh2';
import { RemoteCommandInterruptedError } from '../errors.js';
import { REMOTE_TIMEOUT_GRACE_MS, STDERR_CAP, STDOUT_CAP, TailBuffer, type RunningCommand } from './run-command.js';
import { READY, framedScript, type ShellReader } from './shell-loop.js';
import type { RunOptions, RunResult } from './transport.js';

/** Above this, a node that can only read exactly with `dd bs=1` (a syscall per byte) gets the command over exec. */
export const BYTEWISE_STDIN_MAX = 64 * 1024;

/** The loop ended (died, closed) while a command ran; the connection may still be alive. */
export class ShellLostError extends Error {
  constructor(
    readonly why: string,
    /** The request's id and the loop's folder on the node: what a look needs. */
    readonly id: number,
    readonly dir: string,
    readonly stderr: string,
  ) {
    super(`the node's shell ended while a command ran (${why})`);
  }
}

interface Pending {
  id: number;
  script: string;
  out: TailBuffer;
  err: TailBuffer;
  need: { out: number; err: number } | null;
  code: number | null;
  finish: (r: RunResult | Error) => void;
}

export class ShellDriver {
  private buf: Buffer = Buffer.alloc(0);
  private ready = false;
  private dead: string | undefined;
  private current: Pending | undefined;
  private nextId = 1;
  private onReady: ((ok: boolean) => void) | undefined;
  private readonly startErr = new TailBuffer(16 * 1024);
  /** Which exact reader the loop uses, and its folder on the node (from its ready line). */
  reader: ShellReader = 'head';
  dir = '';

  private constructor(
    private readonly node: string,
    private readonly channel: ClientChannel,
  ) {
    channel.on('data', (d: Buffer) => this.feed(d));
    channel.stderr.on('data', (d: Buffer) => {
      if (!this.ready) this.startErr.push(d);
    });
    channel.on('error', () => this.die('the shell channel failed'));
    channel.on('close', () => this.die('the shell channel closed'));
  }

  /** Starts the loop; null (with why) when this node cannot run it, so the caller uses exec. */
  static start(client: Client, node: string, commandLine: string, timeoutMs: number): Promise<{ driver: ShellDriver } | { why: string }> {
    return new Promise((resolve) => {
      let d: ShellDriver | undefined;
      const timer = setTimeout(() => {
        resolve({ why: `no answer within ${timeoutMs / 1000}s` });
        d?.close();
      }, timeoutMs);
      try {
        client.exec(commandLine, (e, ch) => {
          if (e) {
            clearTimeout(timer);
            return resolve({ why: e.message });
          }
          d = new ShellDriver(node, ch);
          const started = d;
          started.onReady = (ok) => {
            clearTimeout(timer);
            if (ok) resolve({ driver: started });
            else {
              resolve({ why: started.startErr.text().trim().split('\n').slice(-3).join('; ') || 'the shell exited before it was ready' });
              started.close();
            }
          };
        });
      } catch (e) {
        clearTimeout(timer);
        resolve({ why: (e as Error).message });
      }
    });
  }

  /** Exited, failed or closed: a new one must be started. */
  get gone(): boolean {
    return this.dead !== undefined;
  }

  /** Ready, alive and not running a command. */
  get idle(): boolean {
    return this.ready && this.dead === undefined && this.current === undefined;
  }

  /** Whether this loop should take a command with this much stdin (a bytewise reader takes only small ones). */
  accepts(stdinBytes: number): boolean {
    return this.reader !== 'dd1' || stdinBytes <= BYTEWISE_STDIN_MAX;
  }

  /** Only for stdin of known length (a string or Buffer); one command at a time (check `idle`). */
  run(node: string, script: string, opts: RunOptions): RunningCommand {
    let lost: (why: string) => void = () => {};
    const result = new Promise<RunResult>((resolve, reject) => {
      const stdin = opts.stdin === undefined ? Buffer.alloc(0) : Buffer.from(opts.stdin as string | Buffer);
      const body = framedScript(script);
      const id = this.nextId++;
      let timer: NodeJS.Timeout | undefined;
      const p: Pending = {
        id,
        script,
        out: new TailBuffer(STDOUT_CAP),
        err: new TailBuffer(STDERR_CAP),
        need: null,
        code: null,
        finish: (r) => {
          if (this.current !== p) return;
          this.current = undefined;
          if (timer) clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          if (r instanceof Error) reject(r);
          else resolve(r);
        },
      };
      const interrupt = (reason: 'timeout' | 'aborted' | 'connection-lost', detail: string) => {
        // The frame stream is out of step from here on: this driver is done (the script runs on, as with exec).
        p.finish(new RemoteCommandInterruptedError(node, script, reason, detail, p.err.text()));
        this.close();
      };
      lost = (why) => interrupt('connection-lost', `connection lost while a command ran (${why}); its outcome on the node is unknown`);
      const onAbort = () => interrupt('aborted', 'aborted; the channel was closed (the command may still be running on the node)');
      this.current = p;
      if (this.dead !== undefined) return interrupt('connection-lost', `the shell is gone (${this.dead}); the command was not sent`);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        const localMs = opts.timeoutMs + REMOTE_TIMEOUT_GRACE_MS;
        timer = setTimeout(() => interrupt('timeout', `timed out after ${Math.round(localMs / 100) / 10}s; the channel was closed (the command may still be running on the node)`), localMs);
      }
      const secs = opts.timeoutMs === undefined ? '0' : String(Math.max(Math.ceil(opts.timeoutMs), 1) / 1000);
      this.channel.write(`@@rrq ${id} ${body.length} ${stdin.length} ${secs}\n`);
      this.channel.write(body);
      if (stdin.length) this.channel.write(stdin);
    });
    return { result, lost: (why) => lost(why) };
  }

  close(): void {
    this.die('closed');
    try {
      this.channel.close();
    } catch {
      /* already gone */
    }
  }

  private die(why: string): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    if (!this.ready) this.onReady?.(false);
    const p = this.current;
    if (p) p.finish(new ShellLostError(why, p.id, this.dir, p.err.text()));
  }

  private feed(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (!this.ready) {
      // Login noise (rc files that print) may come first: wait for the ready line.
      const at = this.buf.indexOf(READY);
      const nl = at < 0 ? -1 : this.buf.indexOf(10, at);
      if (nl < 0) return;
      // `READER DIR`: the folder is the rest of the line (TMPDIR may hold spaces)
      const line = this.buf.subarray(at + READY.length, nl).toString('utf8');
      const reader = line.slice(0, line.indexOf(' '));
      const dir = line.slice(line.indexOf(' ') + 1);
      this.buf = this.buf.subarray(nl + 1);
      if ((reader !== 'head' && reader !== 'dd' && reader !== 'dd1') || !dir.startsWith('/')) return this.protocolError('an unexpected ready line');
      this.reader = reader;
      this.dir = dir;
      this.ready = true;
      this.onReady?.(true);
    }
    for (;;) {
      const p = this.current;
      if (!p) {
        if (this.buf.length) this.protocolError('output between commands');
        return;
      }
      if (!p.need) {
        const nl = this.buf.indexOf(10);
        if (nl < 0) return;
        const m = /^@@rrr (\d+) (\d+) (\d+) (\d+)$/.exec(this.buf.subarray(0, nl).toString('latin1'));
        if (!m || Number(m[1]) !== p.id) return this.protocolError('an unexpected answer line');
        this.buf = this.buf.subarray(nl + 1);
        p.code = Number(m[2]);
        p.need = { out: Number(m[3]), err: Number(m[4]) };
      }
      const take = (n: number, into: TailBuffer): number => {
        const k = Math.min(n, this.buf.length);
        if (k > 0) into.push(this.buf.subarray(0, k));
        this.buf = this.buf.subarray(k);
        return n - k;
      };
      p.need.out = take(p.need.out, p.out);
      if (p.need.out > 0) return;
      p.need.err = take(p.need.err, p.err);
      if (p.need.err > 0) return;
      const stderr = (p.err.dropped ? `[... ${p.err.dropped} bytes of stderr dropped]\n` : '') + p.err.text();
      p.finish({ code: p.code, signal: null, stdout: p.out.text(), stderr });
    }
  }

  private protocolError(what: string): void {
    this.die(`protocol error: ${what}`);
    this.close();
  }
}
