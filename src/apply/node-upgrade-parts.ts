// Pieces of the upgrade pipeline kept out of its main flow: the starting
// outcome, what the lock probe says about the node (and whether it drifted
// from the plan), and the end of a run that failed while changing the node.
import type { NodeState } from '../core/types.js';
import { parseVersionLine } from '../core/version.js';
import type { LockProbe } from './node-lock.js';
import { overwriteCommand, rollBackToRecord } from './node-recovery.js';
import type { NodeRun, RunFacts, StepFailure } from './node-run.js';
import { manualRestoreCommands, restorePlanFromState } from './restore-scripts.js';
import type { tempPaths } from './remote-scripts.js';
import type { NodeJob, NodeOutcome } from './types.js';

export function initialOutcome(job: NodeJob): NodeOutcome {
  const s = job.plan.sysctl;
  return {
    name: job.node.name,
    host: job.plan.host,
    status: 'failed',
    from: job.plan.current,
    to: null,
    failedStep: null,
    error: null,
    backupPath: null,
    sysctl: { before: s ? { live: s.live, persisted: s.persisted } : null, after: null },
    steps: [],
    rollback: null,
  };
}

export interface Locked {
  /** `none`: the node already has the target digest (planned so, or an earlier run got past the swap). */
  mode: 'upgrade' | 'none';
  /** The runc file itself (symlinks followed): the file that is replaced. */
  realPath: string;
  sha256: string;
  from: { version: string | null; sha256: string };
  target: { version: string; sha256: string };
  prev: NodeState | null;
}

/** What the node holds under the lock; throws (node untouched) when it cannot be worked on or drifted from the plan. */
export function lockedNode(job: NodeJob, probe: LockProbe, parseState: (t: string) => NodeState): Locked {
  const path = job.plan.runcPath ?? job.node.runcPath ?? '(unknown)';
  if (!probe.realPath) throw new Error(`no runc at ${path} on the node`);
  if (!probe.sha256) throw new Error(`cannot read the digest of ${probe.realPath}`);
  let prev: NodeState | null = null;
  if (probe.stateText !== null) {
    try {
      prev = parseState(probe.stateText);
    } catch (err) {
      throw new Error(`${(err as Error).message}; it may hold the only record of an earlier change: check it, then move it aside`);
    }
  }
  const from = { version: probe.versionLine ? parseVersionLine(probe.versionLine) : null, sha256: probe.sha256 };
  const planned = job.plan.target ?? (job.plan.action === 'none' ? { version: from.version ?? 'unknown', sha256: probe.sha256 } : null);
  if (!planned) throw new Error('the plan has no target for this node');
  if (job.asset && job.asset.sha256 !== planned.sha256) throw new Error(`the release binary has sha256 ${job.asset.sha256}, the plan targets ${planned.sha256}`);
  // A change that stopped past the swap owns the record of the original binary and sysctl: a run towards
  // another release would replace that record and lose the way back. Finish or undo it first.
  if (prev && (prev.phase === 'swapped' || prev.phase === 'sysctl-applied') && prev.runcPath === probe.realPath && prev.target.sha256 !== planned.sha256) {
    throw new Error(
      `an earlier run (${prev.runId}) stopped half-way (phase ${prev.phase}) towards sha256 ${prev.target.sha256.slice(0, 12)}; finish it (apply that release again) or undo it (runc-rollout rollback) before moving to another release`,
    );
  }
  if (probe.sha256 === planned.sha256) return { mode: 'none', realPath: probe.realPath, sha256: probe.sha256, from, target: planned, prev };
  if (job.plan.action === 'none') throw new Error(`${probe.realPath} changed since the plan: sha256 ${probe.sha256}, planned as already at ${planned.sha256}; re-run plan`);
  const seen = job.plan.current?.sha256;
  if (seen && seen !== probe.sha256) throw new Error(`${probe.realPath} changed since the plan: sha256 ${probe.sha256}, planned from ${seen}; re-run plan`);
  return { mode: 'upgrade', realPath: probe.realPath, sha256: probe.sha256, from, target: planned, prev };
}

/** A step from the swap on failed: roll back to `record`, or report `unknown` when the connection is gone. */
export async function finishChange(
  run: NodeRun,
  job: NodeJob,
  out: NodeOutcome,
  locked: Locked,
  f: StepFailure,
  record: NodeState | null,
  tp: ReturnType<typeof tempPaths>,
  facts: RunFacts,
): Promise<NodeOutcome> {
  const base = { ...out, failedStep: f.step, steps: run.steps };
  const either = `${locked.realPath} holds either the original runc (sha256 ${locked.sha256}) or the release (sha256 ${locked.target.sha256})`;
  if (!record) return { ...base, status: 'unknown', to: null, error: `${f.step}: ${f.message}. No rollback record; ${either}.` };
  const plan = restorePlanFromState(record, tp.restore, [tp.staged], tp.prefix);
  if (f.lostConnection) {
    return {
      ...base,
      status: 'unknown',
      to: null,
      error: `${f.step}: ${f.message}. The connection was lost while the node was being changed: ${either}. Run \`runc-rollout rollback\` or \`apply\` again to bring it to a consistent state.`,
      rollback: { ok: false, smokeOk: null, error: 'not attempted: connection lost', manualCommands: manualRestoreCommands(plan) },
    };
  }
  const rb = await rollBackToRecord(run, record, tp.restore, [tp.staged], { facts, customCommand: job.node.smokeCommand, cleanPrefix: tp.prefix, overwriteCommand: overwriteCommand(job.node.name) });
  const rollback = { ok: rb.ok, smokeOk: rb.smokeOk, error: rb.error, manualCommands: rb.manualCommands };
  if (!rb.ok) {
    return {
      ...base,
      status: rb.lost ? 'unknown' : 'failed',
      to: null,
      rollback,
      error: `${f.step}: ${f.message}. ROLLBACK FAILED: ${rb.error ?? 'unknown'}. ${either}; finish by hand with rollback.manualCommands, or run \`runc-rollout rollback\`.`,
    };
  }
  if (rb.leftAlone) {
    // Someone changed the node since this run did: not ours to overwrite (rollback --overwrite-changed is).
    return { ...base, status: 'failed', to: !rb.binaryLeftAlone ? { version: record.original.version, sha256: record.original.sha256 } : null, rollback, error: `${f.step}: ${f.message}. Rollback ${rb.summary}; ${rb.leftAlone}.` };
  }
  const notOurs = record.original.backupPath === '' && record.original.sha256 === locked.sha256;
  const smokeNote = rb.smokeOk ? 'the restored runc passed the smoke test' : `WARNING: ${rb.error}`;
  return {
    ...base,
    // A binary this tool did not install that fails the smoke needs a human, whatever the sysctl restore did.
    status: notOurs && f.step === 'smoke-after-sysctl' ? 'failed' : 'rolled-back',
    to: { version: record.original.sha256 === locked.sha256 ? locked.from.version : record.original.version, sha256: record.original.sha256 },
    rollback,
    error: `${f.step}: ${f.message}. Rolled back: ${rb.summary}; ${smokeNote}.`,
    sysctl: { before: out.sysctl.before, after: { live: rb.liveAfter, persisted: out.sysctl.before?.persisted ?? null } },
  };
}
