// Unstick one node: end the stuck `runc init` processes that run another runc
// than the node's current one (the old binary an upgrade replaced), so the
// containers they hold can be created again by the runc installed now. Used by
// `apply --unstick` (a pipeline step after every smoke and the sysctl step) and
// by `runc-rollout unstick` (nodes already at the target). Never a process of
// the current binary, never one not blocked on a pipe: the script re-checks
// each right before its SIGKILL.
import { describeStuck, endable, unstickRefusal, type StuckRuncInit, type UnstuckProcess } from '../core/stuck.js';
import { StepFailure, type NodeRun } from './node-run.js';
import { buildStuckRuncInitScript, buildUnstickScript, describeUnstuck, parseUnstick } from './stuck-runc-init.js';
import { parseStuckScan } from '../facts/stuck-scan.js';

export interface UnstickTarget {
  /** The node's runc (what it runs now) and its digest: a process of that binary, or of a copy of it, is never ended. */
  runcPath: string;
  currentSha256: string;
  /** Its version: a runc not past the rc93 hang is refused (ended processes would only hang again). */
  version: string | null;
  stuckAfterSeconds: number;
  /** Processes already found (the preview `unstick` showed); absent: scan now. */
  found?: StuckRuncInit[];
  signal?: AbortSignal;
}

export interface UnstickResult {
  /** What was stuck when it looked. */
  stuck: StuckRuncInit[];
  /** What became of each one it set out to end. */
  unstuck: UnstuckProcess[];
}

/**
 * The work of step `unstick`: resolves with its message; throws a StepFailure
 * when one could not be ended (still running after SIGKILL, or not signalled).
 * `record` gets what was done before any throw, so the report always has it.
 */
export async function unstickNode(run: NodeRun, t: UnstickTarget, record: (r: UnstickResult) => void): Promise<string> {
  const refusal = unstickRefusal(t.version);
  if (refusal) throw new StepFailure('unstick', `refused: ${refusal}`);
  let stuck = t.found;
  if (!stuck) {
    const r = await run.exec('unstick', 'looking for stuck runc init processes', buildStuckRuncInitScript(t.runcPath, t.stuckAfterSeconds), { timeoutMs: 60_000, ...(t.signal ? { signal: t.signal } : {}) });
    const parsed = parseStuckScan(r.stdout, t.currentSha256);
    if (!parsed) throw new StepFailure('unstick', 'the stuck runc init scan did not finish');
    stuck = parsed;
  }
  const targets = endable(stuck);
  if (targets.length === 0) {
    record({ stuck, unstuck: [] });
    return `nothing to end: ${describeStuck(stuck, t.stuckAfterSeconds)}`;
  }
  const r = await run.exec('unstick', `ending ${targets.length} stuck runc init process${targets.length === 1 ? '' : 'es'}`, buildUnstickScript({ runcPath: t.runcPath, currentSha256: t.currentSha256, targets }), { timeoutMs: 60_000 });
  const unstuck = parseUnstick(r.stdout, targets);
  record({ stuck, unstuck });
  const message = describeUnstuck(unstuck);
  if (unstuck.some((p) => p.outcome === 'still-running' || p.outcome === 'kill-failed')) throw new StepFailure('unstick', message);
  return message;
}
