// Process plumbing for the test fleet: run a command to completion, wait for a
// TCP listener, and find a node's processes through /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Keeps only the end of a growing log so a chatty sshd cannot eat memory. */
export class Tail {
  private text = '';
  constructor(private readonly max = 16_000) {}
  push(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-this.max);
  }
  toString(): string {
    return this.text;
  }
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  /** Lets the caller stop the command early; the result is still resolved. */
  onStart?: (stop: () => void) => void;
}

/**
 * Runs a command to completion and collects its output. Stopping it (timeout
 * or onStart's stop) SIGKILLs its whole process tree: a command entered into a
 * node's pid namespace is not a child of the nsenter we spawn, only a descendant.
 */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const stop = () => {
      if (!child.pid || child.exitCode !== null) return;
      // Freeze top-down first so no shell reacts to a dead child (or forks a new one) before it dies too.
      for (const p of descendants(child.pid)) killQuietly(p.pid, 'SIGSTOP');
      for (const p of descendants(child.pid)) killQuietly(p.pid);
      killQuietly(child.pid);
    };
    const timer = opts.timeoutMs ? setTimeout(stop, opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    child.stdin.end(opts.input ?? '');
    opts.onStart?.(stop);
  });
}

export async function runOk(file: string, args: string[], what: string): Promise<string> {
  const r = await run(file, args);
  if (r.code !== 0) throw new Error(`${what}: ${file} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.setTimeout(1000);
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('timeout', () => { sock.destroy(); resolve(false); });
    sock.once('error', () => resolve(false));
  });
}

/** True when something accepts TCP connections at host:port right now. */
export const isListening = tryConnect;

/**
 * Resolves once host:port accepts a connection. Rejects as soon as `child`
 * exits (its stderr tells why) or after `timeoutMs`, whichever comes first.
 */
export async function waitForListener(host: string, port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = child.exitCode !== null || child.signalCode !== null;
  const onExit = () => { exited = true; };
  child.once('exit', onExit);
  try {
    for (;;) {
      if (exited) throw new Error(`exited (code ${child.exitCode}, signal ${child.signalCode}) before listening on ${host}:${port}`);
      if (await tryConnect(host, port)) return;
      if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    child.off('exit', onExit);
  }
}

/** Waits until the child has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

interface ProcInfo { pid: number; ppid: number; comm: string }

function listProcs(): ProcInfo[] {
  const procs: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // comm may contain spaces and parentheses: split at the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      procs.push({ pid: Number(entry), ppid, comm });
    } catch {
      // gone while we looked
    }
  }
  return procs;
}

/** Host pids of every process below `root` (not including it). */
export function descendants(root: number): ProcInfo[] {
  const all = listProcs();
  const found: ProcInfo[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.pop()!;
    for (const p of all) if (p.ppid === parent) { found.push(p); frontier.push(p.pid); }
  }
  return found;
}

export function childrenOf(pid: number): number[] {
  return listProcs().filter((p) => p.ppid === pid).map((p) => p.pid);
}

/** Identifies the pid namespace of a process, or null if it is gone. */
export function pidNamespace(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** Host pids of all processes in the given pid namespace. */
export function processesInNamespace(ns: string): number[] {
  return listProcs().map((p) => p.pid).filter((pid) => pidNamespace(pid) === ns);
}

export function killQuietly(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
