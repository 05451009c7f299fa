// Stuck `runc init` processes on a node being changed: the check after each
// node's upgrade (riding with the unlock, read-only), and unstick: end exactly
// the stuck processes that run another runc than the node's current one,
// re-checking each right before its SIGKILL, then wait until they are gone.
import { q } from '../core/shell.js';
import { STUCK_AFTER_SECONDS, UNSTICK_OUTCOMES, describeStuck, type StuckRuncInit, type UnstickOutcome, type UnstuckProcess } from '../core/stuck.js';
import { errorMessage } from '../errors.js';
import { buildStuckScan, parseStuckScan, stuckShellFunctions } from '../facts/stuck-scan.js';
import type { NodeRun } from './node-run.js';
import { parseRecords } from './script-common.js';

export { STUCK_AFTER_SECONDS };

const HEADER = `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
`;

/** The read-only scan on its own (the unlock's ride-along, unstick's look before it acts). */
export function buildStuckRuncInitScript(runcPath: string | null, stuckAfterSeconds: number = STUCK_AFTER_SECONDS): string {
  return `${HEADER}${buildStuckScan({ runcPathExpr: runcPath ? q(runcPath) : '', stuckAfterSeconds })}exit 0\n`;
}

/** How long ended processes get to disappear before they are reported still running. */
export const UNSTICK_WAIT_SECONDS = 10;

/**
 * SIGKILL for each `pid:startTicks` that is still the same process (start time
 * unchanged), still a `runc init` blocked writing into a pipe, and still not
 * running the current runc: neither `runcPath`'s inode nor a file with its
 * content `currentSha256` (one sha256sum per distinct executable). Then waits
 * (polling /proc; a zombie counts as ended) up to `waitSeconds`. Prints
 * `@@rr OUTCOME PID [DETAIL]` per target.
 */
export function buildUnstickScript(o: { runcPath: string; currentSha256: string; targets: Pick<StuckRuncInit, 'pid' | 'startTicks'>[]; waitSeconds?: number }): string {
  const targets = o.targets.map((t) => `${Math.trunc(t.pid)}:${Math.trunc(t.startTicks)}`).join(' ');
  const polls = Math.max(1, Math.ceil((o.waitSeconds ?? UNSTICK_WAIT_SECONDS) * 5));
  return `${HEADER}${stuckShellFunctions()}rr_runc=${q(o.runcPath)}
rr_cur_sha=${q(o.currentSha256)}
# executables already hashed: "pid:yes|no ..." (one sha256sum per distinct file)
rr_known=
rr_is_current() {
  [ "/proc/$1/exe" -ef "$rr_runc" ] && return 0
  for rr_k in $rr_known; do
    if [ "/proc/$1/exe" -ef "/proc/\${rr_k%:*}/exe" ]; then [ "\${rr_k#*:}" = yes ]; return; fi
  done
  rr_h=$(sha256sum <"/proc/$1/exe" 2>/dev/null) || rr_h=
  if [ "\${rr_h%% *}" = "$rr_cur_sha" ]; then rr_known="$rr_known $1:yes"; return 0; fi
  rr_known="$rr_known $1:no"
  return 1
}
rr_killed=
for rr_t in ${targets}; do
  rr_pid=\${rr_t%:*} rr_want=\${rr_t#*:}
  if ! rr_ss_proc "$rr_pid" || [ "$rr_start" != "$rr_want" ] || [ "$rr_state" = Z ]; then
    echo "@@rr gone $rr_pid"
  elif ! rr_ss_blocked "$rr_pid"; then
    echo "@@rr changed $rr_pid no-longer-blocked"
  elif rr_is_current "$rr_pid"; then
    echo "@@rr changed $rr_pid runs-the-current-runc"
  elif kill -9 "$rr_pid" 2>/dev/null; then
    rr_killed="$rr_killed $rr_t"
  else
    echo "@@rr kill-failed $rr_pid"
  fi
done
rr_left=$rr_killed
rr_n=0
while [ -n "$rr_left" ]; do
  rr_next=
  for rr_t in $rr_left; do
    rr_pid=\${rr_t%:*} rr_want=\${rr_t#*:}
    rr_st=
    read -r rr_st 2>/dev/null <"/proc/$rr_pid/stat" || :
    set -- \${rr_st##*) }
    if [ $# -ge 20 ] && [ "$1" != Z ] && [ "$1" != X ]; then
      shift 19
      if [ "$1" = "$rr_want" ]; then rr_next="$rr_next $rr_t"; continue; fi
    fi
    echo "@@rr ended $rr_pid"
  done
  rr_left=$rr_next
  [ -n "$rr_left" ] || break
  rr_n=$((rr_n + 1))
  [ "$rr_n" -le ${polls} ] || break
  sleep 0.2 2>/dev/null || sleep 1
done
for rr_t in $rr_left; do echo "@@rr still-running \${rr_t%:*}"; done
exit 0
`;
}


/** Each target's outcome from the unstick script's output; a target it did not mention is `still-running` (never assumed ended). */
export function parseUnstick(stdout: string, targets: readonly StuckRuncInit[]): UnstuckProcess[] {
  const seen = new Map<number, { outcome: UnstickOutcome; detail?: string }>();
  for (const [key, list] of parseRecords(stdout)) {
    if (!(UNSTICK_OUTCOMES as readonly string[]).includes(key)) continue;
    for (const [pid, detail] of list) seen.set(Number(pid), { outcome: key as UnstickOutcome, ...(detail ? { detail: detail.replace(/-/g, ' ') } : {}) });
  }
  return targets.map((t) => ({ pid: t.pid, ageSeconds: t.ageSeconds, containerId: t.containerId, exe: t.exe, ...(seen.get(t.pid) ?? { outcome: 'still-running' as const, detail: 'no answer from the node' }) }));
}

/** `3 ended (pid 4242 container abc, ...); 1 no longer blocked` */
export function describeUnstuck(list: readonly UnstuckProcess[]): string {
  if (list.length === 0) return 'no stuck `runc init` of another runc to end';
  const by = new Map<UnstickOutcome, UnstuckProcess[]>();
  for (const p of list) by.set(p.outcome, [...(by.get(p.outcome) ?? []), p]);
  const words: Record<UnstickOutcome, string> = { ended: 'ended', gone: 'already gone', changed: 'left alone (changed since the scan)', 'still-running': 'STILL RUNNING after SIGKILL', 'kill-failed': 'could NOT be signalled' };
  return UNSTICK_OUTCOMES.filter((o) => by.has(o))
    .map((o) => `${by.get(o)!.length} ${words[o]} (${by.get(o)!.slice(0, 10).map((p) => `pid ${p.pid}${p.containerId ? ` container ${p.containerId}` : ''}${p.detail ? `: ${p.detail}` : ''}`).join(', ')}${by.get(o)!.length > 10 ? ', ...' : ''})`)
    .join('; ');
}

/**
 * Records the check from the output of the script it rode along with (the
 * unlock, to save a round trip): best effort and read-only, so a failure to
 * look is reported in the step, never fails the node.
 */
export function recordStuckRuncInit(run: NodeRun, stdout: string | null, currentSha256: string | null, stuckAfterSeconds: number, failure?: unknown): StuckRuncInit[] | null {
  run.start('runc-init-check');
  const list = stdout === null ? null : parseStuckScan(stdout, currentSha256);
  if (list === null) {
    run.finish('runc-init-check', 'skipped', `could not look for stuck runc init processes: ${failure ? errorMessage(failure).split('\n')[0] : 'the scan did not finish'}`);
    return null;
  }
  run.finish('runc-init-check', 'ok', describeStuck(list, stuckAfterSeconds));
  return list;
}
