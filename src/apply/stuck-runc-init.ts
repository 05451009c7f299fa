// After an upgrade: list `runc init` processes older than five minutes, with
// their age and parent. They are the rc93 hang's symptom; they were started
// by the OLD binary (runc is exec'd per operation, so the upgrade cannot
// reach them) and stay until their container is removed or the parent shim
// is killed. The new binary does not start new ones. Reported, never touched.
import { formatDuration } from '../core/batching.js';
import { errorMessage } from '../errors.js';
import type { NodeRun } from './node-run.js';

export const STUCK_AFTER_SECONDS = 300;

export interface StuckRuncInit {
  pid: number;
  ageSeconds: number;
  ppid: number;
  /** The parent's command name (usually containerd-shim-runc-v2). */
  parent: string;
}

/** Reads /proc directly, so it works with BusyBox too. */
export function buildStuckRuncInitScript(minAgeSeconds = STUCK_AFTER_SECONDS): string {
  return `rr_hz=$(getconf CLK_TCK 2>/dev/null) || rr_hz=
[ -n "$rr_hz" ] || rr_hz=100
rr_up=$(cut -d. -f1 /proc/uptime)
for rr_p in /proc/[0-9]*; do
  # argv[0] and argv[1] only: this shell has the pattern in its own script text
  rr_c=$(tr '\\000' '\\n' < "$rr_p/cmdline" 2>/dev/null | head -n 2 | tr '\\n' ' ') || continue
  case $rr_c in 'runc init ' | */'runc init ') ;; *) continue ;; esac
  rr_st=$(cat "$rr_p/stat" 2>/dev/null) || continue
  set -- \${rr_st##*) }
  rr_ppid=$2
  shift 19
  rr_age=$((rr_up - $1 / rr_hz))
  [ "$rr_age" -gt ${Math.trunc(minAgeSeconds)} ] || continue
  rr_pc=$(cat "/proc/$rr_ppid/comm" 2>/dev/null) || rr_pc=?
  echo "stuck \${rr_p#/proc/} $rr_age $rr_ppid $rr_pc"
done
exit 0
`;
}

export function parseStuckRuncInit(stdout: string): StuckRuncInit[] {
  const out: StuckRuncInit[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^stuck (\d+) (-?\d+) (\d+) (.*)$/.exec(line.trim());
    if (m) out.push({ pid: Number(m[1]), ageSeconds: Number(m[2]), ppid: Number(m[3]), parent: (m[4] as string).trim() || '?' });
  }
  return out;
}

export function describeStuck(list: StuckRuncInit[]): string {
  if (list.length === 0) return 'no `runc init` process older than 5m';
  const shown = list.slice(0, 10).map((p) => `pid ${p.pid} (age ${formatDuration(p.ageSeconds * 1000)}, parent ${p.ppid} ${p.parent})`);
  return `${list.length} \`runc init\` process${list.length === 1 ? '' : 'es'} older than 5m, started by the old runc and not fixed by the upgrade (the new binary starts no new ones; these stay until their container is removed or its shim is restarted): ${shown.join(', ')}${list.length > 10 ? ', ...' : ''}`;
}

/**
 * Records the check from the output of the script it rode along with (the
 * unlock, to save a round trip): best effort and read-only, so a failure to
 * look is reported in the step, never fails the node.
 */
export function recordStuckRuncInit(run: NodeRun, stdout: string | null, failure?: unknown): StuckRuncInit[] | null {
  run.start('runc-init-check');
  if (stdout === null) {
    run.finish('runc-init-check', 'skipped', `could not look for stuck runc init processes: ${errorMessage(failure).split('\n')[0]}`);
    return null;
  }
  const list = parseStuckRuncInit(stdout);
  run.finish('runc-init-check', 'ok', describeStuck(list));
  return list;
}
