// Stuck `runc init` processes: the rc93 hang's symptom. runc 1.0.0-rc93 writes
// its seccomp filter into a pipe nobody reads while it writes; when the kernel
// made that pipe small (root over fs.pipe-user-pages-soft) `runc init` blocks
// for ever, and kubelet's PLEG goes unhealthy. Raising the sysctl only makes
// NEW pipes big again, and upgrading runc only changes what runs NEXT: the
// stuck processes keep running the old binary until something ends them.
// Pure: what is stuck, which may be ended, how to say it.
import { formatDuration } from './batching.js';
import { compareRuncVersions } from './version.js';

/** `runc init` younger than this is not called stuck (default of --stuck-after). */
export const STUCK_AFTER_SECONDS = 300;

/** A `runc init` process older than --stuck-after and blocked writing into a pipe. */
export interface StuckRuncInit {
  pid: number;
  /** /proc/PID/stat starttime (clock ticks after boot): with the pid, names the process across round trips. */
  startTicks: number;
  ageSeconds: number;
  /** Process state (S: sleeping). */
  state: string;
  /** How the blocked pipe write was seen: the wchan (`pipe_write`, `anon_pipe_write`), or `stack`, or `syscall`. */
  wchan: string;
  /** Where /proc/PID/exe points (`/usr/local/sbin/runc (deleted)` once the binary was replaced); null when unreadable. */
  exe: string | null;
  /** It runs the node's current runc (same inode, or a clone with the same content): never ended. */
  current: boolean;
  ppid: number;
  /** The parent's command line (`runc create ... ID` or `containerd-shim-runc-v2 -namespace k8s.io -id ID ...`). */
  parent: string | null;
  containerId: string | null;
}

/** What unstick did with one process: ended by it; gone before it acted; left alone because it changed since the scan; not gone in time; not signalled. */
export const UNSTICK_OUTCOMES = ['ended', 'gone', 'changed', 'still-running', 'kill-failed'] as const;
export type UnstickOutcome = (typeof UNSTICK_OUTCOMES)[number];

export interface UnstuckProcess {
  pid: number;
  ageSeconds: number;
  containerId: string | null;
  exe: string | null;
  outcome: UnstickOutcome;
  /** Why it was not ended (changed: no longer blocked, now the current binary, pid reused). */
  detail?: string;
}

/** What `unstick` would do on one node, shown before it asks. */
export interface UnstickPreviewNode {
  name: string;
  host: string;
  runcPath: string | null;
  version: string | null;
  sha256: string | null;
  /** Every stuck `runc init` found. */
  stuck: StuckRuncInit[];
  /** Those that would be ended (another runc than the current one). */
  toEnd: StuckRuncInit[];
  /** Why this node cannot be unstuck (unreachable, no runc, not past the hang), or null. */
  refused: string | null;
}

export interface UnstickPreview {
  stuckAfterSeconds: number;
  nodes: UnstickPreviewNode[];
}

/**
 * The container a stuck init belongs to, from its parent's command line:
 * the last argument of `runc [global options] create|run [options] ID`, or
 * the `-id` of a containerd shim.
 */
export function containerIdFrom(argv: readonly string[]): string | null {
  const base = (argv[0] ?? '').split('/').pop() ?? '';
  if (base.startsWith('containerd-shim')) {
    const i = argv.findIndex((a) => a === '-id' || a === '--id');
    if (i >= 0 && argv[i + 1]) return argv[i + 1]!;
    const eq = argv.find((a) => /^--?id=/.test(a));
    return eq ? eq.slice(eq.indexOf('=') + 1) || null : null;
  }
  if (!/^runc/.test(base)) return null;
  const sub = argv.findIndex((a, i) => i > 0 && (a === 'create' || a === 'run'));
  if (sub < 0 || sub === argv.length - 1) return null;
  const last = argv[argv.length - 1]!;
  return last.startsWith('-') ? null : last;
}

/** The stuck processes unstick may end: every listed one (old enough, blocked on a pipe) that does not run the current binary. */
export function endable(list: readonly StuckRuncInit[]): StuckRuncInit[] {
  return list.filter((p) => !p.current);
}

/**
 * Why `unstick` must leave a node alone, or null: its runc must be past the
 * hang (1.0.0-rc94 or later), or ending the process only lets the same binary
 * hang again on the next try.
 */
export function unstickRefusal(version: string | null): string | null {
  if (!version) return 'its runc version is unknown: cannot tell whether it is past the rc93 hang';
  let cmp: number;
  try {
    cmp = compareRuncVersions(version, '1.0.0-rc94');
  } catch {
    return `its runc version ${JSON.stringify(version)} cannot be read: cannot tell whether it is past the rc93 hang`;
  }
  return cmp < 0 ? `it still runs runc ${version}, which has not been upgraded past the rc93 hang (upgrade it first: ending the process would only let the same binary hang again)` : null;
}

export function describeStuckProcess(p: StuckRuncInit): string {
  const parent = p.parent ? `parent ${p.ppid} ${p.parent.length > 80 ? `${p.parent.slice(0, 77)}...` : p.parent}` : `parent ${p.ppid}`;
  return `pid ${p.pid} (age ${formatDuration(p.ageSeconds * 1000)}, ${p.wchan}, exe ${p.exe ?? '?'}${p.current ? ' = the current runc' : ''}, ${parent}${p.containerId ? `, container ${p.containerId}` : ''})`;
}

/** One line for step messages and plan warnings. */
export function describeStuck(list: readonly StuckRuncInit[], stuckAfterSeconds: number = STUCK_AFTER_SECONDS): string {
  const after = formatDuration(stuckAfterSeconds * 1000);
  if (list.length === 0) return `no \`runc init\` process older than ${after} blocked writing into a pipe`;
  const old = endable(list).length;
  const shown = list.slice(0, 10).map(describeStuckProcess);
  const what = `${list.length} \`runc init\` process${list.length === 1 ? '' : 'es'} older than ${after} blocked writing into a pipe (the rc93 hang)`;
  const which = old === list.length ? 'all from another runc than the current one' : old === 0 ? 'all running the current runc' : `${old} from another runc than the current one`;
  return `${what}, ${which}: ${shown.join('; ')}${list.length > 10 ? '; ...' : ''}`;
}

/** The plan warning: what is stuck, and what apply --unstick or unstick would do about it. */
export function stuckWarning(list: readonly StuckRuncInit[], stuckAfterSeconds: number = STUCK_AFTER_SECONDS): string {
  const other = endable(list).length;
  const current = list.length - other;
  const them = (n: number) => (n === 1 ? 'it' : 'them');
  const hints = [
    other ? `\`apply --unstick\` or \`runc-rollout unstick\` ends the ${other} from another runc` : '',
    current ? `the ${current} running the node's current runc are ended by \`apply --unstick\` only once an upgrade has replaced ${them(current)} (never while ${current === 1 ? 'it is' : 'they are'} the current binary)` : '',
  ].filter(Boolean);
  return `${describeStuck(list, stuckAfterSeconds)}. Raising the sysctl does not free ${them(list.length)}; ${hints.join('; ')}`;
}
