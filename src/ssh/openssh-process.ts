// Process plumbing of the OpenSSH transport: every ssh it starts runs in its
// own process group (a Ctrl-C at the terminal must not cut a node's command
// while the run winds down), is tracked, and is killed, group and all, when
// this process exits without closing its sessions (a crash, process.exit).
// On Linux it also gets a parent-death signal (util-linux setpriv), so not
// even a SIGKILL of this process leaves an ssh behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { errorMessage } from '../errors.js';
import type { RunOptions } from './transport.js';

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const c of live) killGroup(c, 'SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}

/** How many ssh processes this module started are still running (tests look). */
export function liveSshProcesses(): number {
  return live.size;
}

let setpriv: string | null | undefined;

/** `setpriv` on PATH, on Linux (where PR_SET_PDEATHSIG exists); null elsewhere. */
function setprivPath(env: NodeJS.ProcessEnv): string | null {
  if (setpriv !== undefined) return setpriv;
  const dirs = process.platform === 'linux' ? (env.PATH ?? '/usr/bin:/bin').split(delimiter) : [];
  setpriv = dirs.map((d) => join(d, 'setpriv')).find((p) => p.startsWith('/') && existsSync(p)) ?? null;
  return setpriv;
}

/** spawn() in a new process group, killed when this process dies (where setpriv can arrange it), tracked until it exits. */
export function spawnSsh(file: string, args: string[], env: NodeJS.ProcessEnv, stdio: 'pipe' | 'ignore' = 'pipe'): ChildProcess {
  installExitHook();
  const guard = setprivPath(env);
  // setpriv sets the parent-death signal and execs ssh: same pid, same process group.
  const child = guard ? spawn(guard, ['--pdeathsig', 'KILL', '--', file, ...args], { stdio, detached: true, env }) : spawn(file, args, { stdio, detached: true, env });
  live.add(child);
  const forget = () => live.delete(child);
  child.once('exit', forget);
  child.once('error', forget);
  return child;
}

/** A private folder removed at close, or at exit if nobody closed. */
export function trackDir(dir: string): void {
  installExitHook();
  dirs.add(dir);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Signal the child's whole process group (ssh's ProxyCommand children too). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!isRunning(child)) return;
  try {
    process.kill(-child.pid!, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** True once the child has exited, false when `ms` passed first. */
export function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** stdin for one command: nothing (EOF at once), a whole buffer, or a stream piped with backpressure. */
export function feedStdin(child: ChildProcess, stdin: RunOptions['stdin'], source: Readable | undefined, fail: (why: string) => void): void {
  const pipe = child.stdin!;
  // ssh may exit before reading everything (a failed command): EPIPE is not our error.
  pipe.on('error', () => {});
  if (stdin === undefined) return void pipe.end();
  if (!source) return void pipe.end(stdin as string | Buffer);
  source.once('error', (e) => fail(errorMessage(e)));
  // pipe() pauses the source while ssh's stdin pipe is full and ends it (EOF) at the end.
  source.pipe(pipe);
}
