// Counts the processes a remote script starts: on a busy host every fork+exec
// costs milliseconds, so the count is the script's cost. Runs the script under
// `strace -f -c` (syscall counts, not timings), as root, on the machine or
// inside a fleet node (`fleet.exec`). Tests assert a bound on the count; they
// never assert a time.
import { q } from '../../src/core/shell.js';

export interface ProcessCount {
  /** New processes: clone, clone3, fork and vfork calls that created one. */
  forks: number;
  /** Programs started: execve and execveat calls that succeeded. */
  execs: number;
}

const CREATE = new Set(['clone', 'clone3', 'fork', 'vfork']);
const EXEC = new Set(['execve', 'execveat']);

/**
 * A `sh -c` command line that runs `sh SCRIPT_FILE` (stdin from STDIN_FILE,
 * default /dev/null) under strace and prints strace's summary after a marker
 * line; the script's own output goes to OUT_FILE. Parse with parseProcessCount.
 */
export function processCountCommand(o: { scriptFile: string; stdinFile?: string; outFile?: string; summaryFile: string; shell?: string }): string {
  const shell = o.shell ?? 'sh';
  const syscalls = [...CREATE, ...EXEC].join(',');
  return [
    `strace -f -qq -c -e trace=${syscalls} -o ${q(o.summaryFile)} ${shell} ${q(o.scriptFile)} <${q(o.stdinFile ?? '/dev/null')} >${q(o.outFile ?? '/dev/null')} 2>&1`,
    `rc=$?`,
    `echo @@strace-summary`,
    `cat ${q(o.summaryFile)}`,
    `echo "@@strace-rc $rc"`,
  ].join('; ');
}

/** Reads `strace -c` output (or text holding it after `@@strace-summary`). Throws when there is no summary table. */
export function parseProcessCount(text: string): ProcessCount & { exitCode: number | null } {
  const at = text.indexOf('@@strace-summary');
  const body = at >= 0 ? text.slice(at) : text;
  if (!/% time\s+seconds/.test(body)) throw new Error(`no strace summary in: ${body.slice(0, 400)}`);
  const out = { forks: 0, execs: 0 };
  for (const line of body.split('\n')) {
    // "% time seconds usecs/call calls [errors] syscall"
    const f = line.trim().split(/\s+/);
    const name = f[f.length - 1] ?? '';
    if (!CREATE.has(name) && !EXEC.has(name)) continue;
    const calls = Number(f[3]);
    const errors = f.length === 6 ? Number(f[4]) : 0;
    const ok = calls - errors;
    if (CREATE.has(name)) out.forks += ok;
    else out.execs += ok;
  }
  const rc = /@@strace-rc (\d+)/.exec(body);
  return { ...out, exitCode: rc ? Number(rc[1]) : null };
}
