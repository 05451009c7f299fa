// The scan for stuck `runc init` processes (the rc93 hang's symptom), shared by
// the facts script (plan), the check after each node's upgrade, and unstick.
// One pass over /proc with shell builtins only (`read` drops the NUL bytes of
// /proc/PID/cmdline, so `runc init` reads as `runcinit`): no process per PID,
// which is what made the old `tr | head | tr` scan cost seconds of CPU on a
// node with 1,000 processes. The few candidates left (old enough, blocked
// writing into a pipe) get a handful of processes between them: one `ls`, one
// `sha256sum` for the executables that are not the current runc's inode, one
// `head | tr` for all command lines.
// The script only gathers; parseStuckScan (TypeScript) decides.
import { containerIdFrom, type StuckRuncInit } from '../core/stuck.js';
import { q } from '../core/shell.js';

/**
 * Clock ticks per second of /proc/PID/stat's starttime: USER_HZ, a fixed ABI
 * value of 100 on every architecture runc is released for (only alpha and
 * ia64 differed), so no `getconf CLK_TCK` process is needed.
 */
const USER_HZ = 100;

export const SCAN_BEGIN = '@@stuck-scan 1';
export const SCAN_END = '@@stuck-scan end';

/** write(2) by `uname -m`: what /proc/PID/syscall shows for a process blocked writing. */
const WRITE_SYSCALL_CASE = `case $(uname -m) in x86_64) rr_ss_wr=1 ;; aarch64 | arm64 | riscv64) rr_ss_wr=64 ;; *) rr_ss_wr=4 ;; esac`;

/**
 * Shell functions every stuck-process script uses (POSIX sh, BusyBox ash,
 * safe under `set -eu`):
 * - rr_ss_proc PID: a `runc init` process? sets rr_state, rr_ppid, rr_start (stat's starttime);
 * - rr_ss_blocked PID: blocked writing into a pipe? sets rr_how: the wchan
 *   (`pipe_write`, `anon_pipe_write`), else `stack` (the kernel stack shows
 *   pipe_write), else `syscall` (sleeping in write(2) on a fd that is a pipe).
 */
export function stuckShellFunctions(): string {
  // rr_proc: another /proc, for tests of kernels that hide the wchan
  return `rr_proc=\${rr_proc:-/proc}
rr_ss_proc() {
  rr_p=$rr_proc/$1
  rr_c=
  read -r rr_c 2>/dev/null <"$rr_p/cmdline" || :
  case $rr_c in runcinit | */runcinit) ;; *) return 1 ;; esac
  rr_st=
  read -r rr_st 2>/dev/null <"$rr_p/stat" || :
  set -- \${rr_st##*) }
  [ $# -ge 20 ] || return 1
  rr_state=$1 rr_ppid=$2
  shift 19
  rr_start=$1
  case $rr_start$rr_ppid in '' | *[!0-9]*) return 1 ;; esac
  return 0
}
rr_ss_wr=
rr_ss_blocked() {
  rr_p=$rr_proc/$1
  rr_how=
  rr_w=
  read -r rr_w 2>/dev/null <"$rr_p/wchan" || :
  case $rr_w in *pipe_write) rr_how=$rr_w; return 0 ;; esac
  while read -r rr_l; do
    case $rr_l in *pipe_write+*) rr_how=stack; return 0 ;; esac
  done 2>/dev/null <"$rr_p/stack" || :
  [ "$rr_state" = S ] || return 1
  rr_sc= rr_fd=
  read -r rr_sc rr_fd rr_rest 2>/dev/null <"$rr_p/syscall" || :
  case $rr_fd in 0x*[!0-9a-fA-F]* | '') return 1 ;; 0x?*) ;; *) return 1 ;; esac
  [ -n "$rr_ss_wr" ] || ${WRITE_SYSCALL_CASE}
  [ "$rr_sc" = "$rr_ss_wr" ] || return 1
  [ -p "$rr_p/fd/$((rr_fd))" ] || return 1
  rr_how=syscall
  return 0
}
`;
}

export interface StuckScanOptions {
  /** Shell expression (e.g. `"$rr_runc"`) or quoted path of the node's current runc; empty: none. */
  runcPathExpr: string;
  /** `runc init` younger than this is not stuck (yet). */
  stuckAfterSeconds: number;
}

/**
 * Prints SCAN_BEGIN, a `stuck PID START AGE PPID STATE HOW REP` line per stuck
 * process (REP: `current` when /proc/PID/exe is the current runc's inode, else
 * the first pid with the same executable), then `@@exe` (ls -ld of their
 * /proc/PID/exe), `@@sha` (sha256sum of each distinct executable that is not
 * the current inode: a memfd or overlay clone of the current runc has its
 * content), `@@cmdline` (head of their and their parents' command lines, NUL
 * as \x01), and SCAN_END.
 */
export function buildStuckScan(o: StuckScanOptions): string {
  const after = Math.max(0, Math.trunc(o.stuckAfterSeconds));
  return `${stuckShellFunctions()}rr_ss_runc=${o.runcPathExpr || "''"}
rr_ss_up= rr_ss_reps= rr_ss_repexes= rr_ss_exes= rr_ss_files=/dev/null
echo ${q(SCAN_BEGIN)}
for rr_d in /proc/[0-9]*; do
  rr_pid=\${rr_d#/proc/}
  rr_ss_proc "$rr_pid" || continue
  if [ -z "$rr_ss_up" ]; then
    read -r rr_ss_up rr_rest </proc/uptime || :
    rr_ss_up=\${rr_ss_up%.*}
  fi
  rr_age=$((rr_ss_up - rr_start / ${USER_HZ}))
  [ "$rr_age" -ge ${after} ] || continue
  rr_ss_blocked "$rr_pid" || continue
  rr_rep=
  if [ -n "$rr_ss_runc" ] && [ "$rr_d/exe" -ef "$rr_ss_runc" ]; then
    rr_rep=current
  else
    for rr_r in $rr_ss_reps; do
      if [ "$rr_d/exe" -ef "/proc/$rr_r/exe" ]; then rr_rep=$rr_r; break; fi
    done
    if [ -z "$rr_rep" ]; then
      rr_rep=$rr_pid
      rr_ss_reps="$rr_ss_reps $rr_pid"
      rr_ss_repexes="$rr_ss_repexes $rr_d/exe"
    fi
  fi
  echo "stuck $rr_pid $rr_start $rr_age $rr_ppid $rr_state $rr_how $rr_rep"
  rr_ss_exes="$rr_ss_exes $rr_d/exe"
  rr_ss_files="$rr_ss_files $rr_d/cmdline"
  case " $rr_ss_files " in *" /proc/$rr_ppid/cmdline "*) ;; *) rr_ss_files="$rr_ss_files /proc/$rr_ppid/cmdline" ;; esac
done
if [ -n "$rr_ss_exes" ]; then
  echo @@exe
  ls -ld $rr_ss_exes 2>/dev/null || :
  if [ -n "$rr_ss_repexes" ]; then
    echo @@sha
    sha256sum $rr_ss_repexes 2>/dev/null || :
  fi
  echo @@cmdline
  head -c 4096 $rr_ss_files 2>/dev/null | tr '\\000' '\\001' || :
  echo
fi
echo ${q(SCAN_END)}
`;
}

const RUNC_INIT = (argv: string[]) => argv.length === 2 && /(^|\/)runc$/.test(argv[0] ?? '') && argv[1] === 'init';

/**
 * The stuck processes from a scan's output. `currentSha256`: the current
 * runc's digest, so a process running a clone of it (another inode, same
 * content) counts as current. null when the output has no complete scan.
 */
export function parseStuckScan(stdout: string, currentSha256: string | null): StuckRuncInit[] | null {
  const begin = stdout.indexOf(`${SCAN_BEGIN}\n`);
  const end = stdout.indexOf(`\n${SCAN_END}`, begin);
  if (begin < 0 || end < 0) return null;
  const body = stdout.slice(begin + SCAN_BEGIN.length + 1, end + 1);
  // Records, ls and sha256sum lines first; the command lines (any text) last.
  const cmdAt = body.indexOf('\n@@cmdline\n');
  const head = cmdAt >= 0 ? body.slice(0, cmdAt + 1) : body;
  const cmd = cmdAt >= 0 ? body.slice(cmdAt + '\n@@cmdline\n'.length) : '';
  const exes = new Map<number, string>();
  for (const m of head.matchAll(/\/proc\/(\d+)\/exe -> (.*)$/gm)) exes.set(Number(m[1]), m[2]!);
  const shas = new Map<number, string>();
  for (const m of head.matchAll(/^([0-9a-f]{64})\s+\/proc\/(\d+)\/exe$/gm)) shas.set(Number(m[2]), m[1]!);
  const argvs = new Map<number, string[]>();
  const headers = [...cmd.matchAll(/(?:^|\n)==> \/proc\/(\d+)\/cmdline <==\n/g)];
  headers.forEach((h, i) => {
    const from = h.index + h[0].length;
    const to = i + 1 < headers.length ? headers[i + 1]!.index : cmd.length;
    const text = cmd.slice(from, to).replace(/\n+$/, '');
    argvs.set(Number(h[1]), text.replace(/\x01$/, '').split('\x01'));
  });

  const out: StuckRuncInit[] = [];
  for (const m of head.matchAll(/^stuck (\d+) (\d+) (-?\d+) (\d+) (\S+) (\S+) (\S+)$/gm)) {
    const pid = Number(m[1]);
    const argv = argvs.get(pid);
    if (!argv || !RUNC_INIT(argv)) continue; // gone since, or only looked like `runc init` with its NULs dropped
    const rep = m[7]!;
    const repSha = rep === 'current' ? null : (shas.get(Number(rep)) ?? null);
    const parentArgv = argvs.get(Number(m[4])) ?? null;
    out.push({
      pid,
      startTicks: Number(m[2]),
      ageSeconds: Number(m[3]),
      ppid: Number(m[4]),
      state: m[5]!,
      wchan: m[6]!,
      exe: exes.get(pid) ?? null,
      current: rep === 'current' || (repSha !== null && repSha === currentSha256),
      parent: parentArgv ? parentArgv.join(' ') : null,
      containerId: parentArgv ? containerIdFrom(parentArgv) : null,
    });
  }
  return out;
}
