// The per-node pipeline of `apply`: the lock, the steps of UPGRADE_PIPELINE
// (upgrade-steps.ts) in order, each reported, then the unlock. Before the
// swap a failure leaves the node as it was; from the swap on, a failure rolls
// back to state.json's record, and a lost connection is reported as
// `unknown`, never guessed.
import { errorMessage } from '../errors.js';
import type { NodeSession } from '../ssh/transport.js';
import { SYSCTL_TARGET } from '../core/types.js';
import { buildLockScript, buildUnlockScript, describeLock, parseLockProbe, type LockProbe } from './node-lock.js';
import { NodeRun, StepFailure } from './node-run.js';
import { releaseUnchanged } from './node-recovery.js';
import { parseNodeState, recordForUnchanged, relateRecord, serializeState, withPhase } from './node-state.js';
import { tempPaths } from './remote-scripts.js';
import type { NodeEvent, NodeJob, NodeOutcome, StepName } from './types.js';
import { finishChange, initialOutcome, lockedNode, type Locked } from './node-upgrade-parts.js';
import { healthBefore } from './health.js';
import { STUCK_AFTER_SECONDS, buildStuckRuncInitScript, recordStuckRuncInit } from './stuck-runc-init.js';
import { UPGRADE_PIPELINE, sysctlNeeded, type UpgradeContext } from './upgrade-steps.js';

export async function upgradeNode(session: NodeSession, job: NodeJob, emit: (e: NodeEvent) => void, signal?: AbortSignal): Promise<NodeOutcome> {
  const out = initialOutcome(job);
  if (signal?.aborted) return { ...out, status: 'not-attempted', error: 'not attempted: interrupted before this node started' };
  const run = new NodeRun(session, job.node.name, emit, job.runId, job.smokeTimeoutMs);
  try {
    return await pipeline(run, job, out, signal);
  } catch (err) {
    // Only a bug gets here; say so rather than guess what the node holds.
    const changing = run.steps.some((s) => s.name === 'swap');
    return { ...out, steps: run.steps, status: changing ? 'unknown' : 'failed', error: `internal error: ${errorMessage(err)}` };
  }
}

async function pipeline(run: NodeRun, job: NodeJob, out: NodeOutcome, signal?: AbortSignal): Promise<NodeOutcome> {
  const done = (patch: Partial<NodeOutcome>): NodeOutcome => ({ ...out, ...patch, steps: run.steps });
  // Health gates (only when the inventory configures them): an unhealthy node is left alone unless --include-unhealthy,
  // or unless --unstick is to end the stuck runc init it was planned with (they keep it unhealthy until then).
  const stuckHoldsIt = job.unstick === true && (job.plan.stuck?.length ?? 0) > 0;
  const gate = await healthBefore(run, job.node.health, (job.includeUnhealthy ?? false) || stuckHoldsIt, signal);
  if (gate.skip) {
    const stuck = job.plan.stuck?.length ?? 0;
    const hint = stuck ? `; it has ${stuck} stuck runc init process${stuck === 1 ? '' : 'es'} (the rc93 hang), which keep it unhealthy: --unstick ends them after the upgrade` : '';
    return done({ status: 'not-attempted', failedStep: 'health', error: `${gate.skip}${hint}` });
  }
  let held = false;
  let taken: { locked: Locked; probe: LockProbe };
  try {
    taken = await run.step('lock', async () => {
      const r = await run.exec('lock', 'locking the node', buildLockScript({ runId: job.runId, lockOwner: job.lockOwner, forceUnlock: job.forceUnlock, runcPath: job.plan.runcPath ?? job.node.runcPath }), { timeoutMs: 120_000, signal });
      const p = parseLockProbe(r.stdout);
      if (p.lock === 'held') throw new StepFailure('lock', `the node is locked by another run that is still connected (${describeLock(p.lockInfo)})`);
      if (p.lock === 'stale') throw new StepFailure('lock', `stale lock left by a run whose connection is gone (${describeLock(p.lockInfo)}${p.holderUnknown ? '; holder cannot be checked' : ''}); re-run with --force-unlock to break it`);
      held = true;
      const notes = [p.lock === 'broken' ? `broke stale lock (${describeLock(p.lockInfo)})` : 'lock acquired', ...(p.cleaned.length ? [`removed leftovers of earlier runs: ${p.cleaned.join(', ')}`] : [])];
      // Refusals here (no runc, unreadable state.json, drift from the plan) leave the node untouched.
      return { value: { locked: lockedNode(job, p, parseNodeState), probe: p }, message: notes.join('; ') };
    });
  } catch (err) {
    const f = err as StepFailure;
    const tail = held ? `; ${await releaseUnchanged(run, [])}` : f.outcomeUnknown ? '; our lock may remain on the node (a later run reports it stale)' : '';
    return done({ status: signal?.aborted ? 'not-attempted' : 'failed', failedStep: 'lock', error: `lock: ${f.message}. Node unchanged${tail}.` });
  }
  const { locked, probe } = taken;
  out.from = locked.from;
  out.to = locked.from;
  out.sysctl = { before: { live: probe.live, persisted: job.plan.sysctl?.persisted ?? null }, after: { live: probe.live, persisted: job.plan.sysctl?.persisted ?? null } };
  const c: UpgradeContext = {
    run,
    job,
    locked,
    probe,
    facts: { hasLib64: probe.hasLib64, hasGzip: probe.hasGzip },
    tp: tempPaths(locked.realPath, job.runId),
    signal,
    wasUnhealthy: gate.wasUnhealthy,
    out,
    record: null,
    base: null,
    swapOut: null,
    liveAfter: probe.live,
  };
  if (locked.mode === 'none') recordsForUnchanged(c);

  let kept: StepFailure | null = null;
  for (const step of UPGRADE_PIPELINE) {
    if (step.applies && !step.applies(c)) continue;
    const why = step.skip?.(c) ?? null;
    if (why !== null) {
      run.skip(step.name, why);
      continue;
    }
    try {
      if (step.recordsItself) await step.run(c);
      else await run.step(step.name, async () => ({ value: undefined, message: await step.run(c) }));
    } catch (err) {
      const f = err instanceof StepFailure ? err.as(step.name) : new StepFailure(step.name, errorMessage(err));
      if (step.failure === 'node-done') {
        kept = f;
        break;
      }
      return step.failure === 'node-unchanged' || step.unchangedIf?.(f) ? untouched(c, f) : changeFailed(c, f);
    }
    // Before the swap an interruption stops the node cleanly (what was staged is removed); from the swap on it is finished.
    if (step.failure === 'node-unchanged' && signal?.aborted) return untouched(c, new StepFailure(step.name, 'interrupted'));
  }
  return finish(c, kept);
}

/**
 * A node already at the target digest: a finished earlier change is history,
 * so this run's record (and a failure's rollback) covers only what this run
 * changes, the sysctl; it must never take the binary back to a version
 * installed weeks ago. An earlier run's change to this binary that is not
 * finished is still ours to finish or undo; a binary we never installed is not.
 */
function recordsForUnchanged(c: UpgradeContext): void {
  const { locked, job } = c;
  const related = relateRecord(locked.prev, locked.realPath, locked.sha256, locked.target.sha256);
  const relation = related === 'continues-target' && locked.prev?.phase === 'done' ? 'fresh' : related;
  c.base = recordForUnchanged({ prev: locked.prev, relation, runId: job.runId, realPath: locked.realPath, current: { version: locked.from.version, sha256: locked.sha256 }, liveBefore: c.probe.live, now: new Date() });
  c.record = relation === 'continues-target' ? locked.prev : null;
  if (relation === 'continues-target' && locked.prev?.original.backupPath) c.out.backupPath = locked.prev.original.backupPath;
}

/** A step before the swap failed or was interrupted: remove what was staged, release the lock. */
async function untouched(c: UpgradeContext, f: StepFailure): Promise<NodeOutcome> {
  const interrupted = c.signal?.aborted ?? false;
  const cleanup = await releaseUnchanged(c.run, [c.tp.staged]);
  return {
    ...c.out,
    steps: c.run.steps,
    status: interrupted ? 'not-attempted' : 'failed',
    failedStep: f.step,
    error: `${f.step}: ${interrupted ? 'interrupted' : f.message}. Node unchanged: runc at ${c.locked.realPath} untouched (sha256 ${c.locked.sha256.slice(0, 12)}); ${cleanup}.`,
  };
}

/** A step from the swap on failed: roll back to the record, unless this run changed nothing. */
async function changeFailed(c: UpgradeContext, f: StepFailure): Promise<NodeOutcome> {
  if (!c.record && !f.lostConnection) {
    // Nothing of this run's is on the node (the sysctl record was never written): there is nothing to roll back.
    const cleanup = await releaseUnchanged(c.run, []);
    return { ...c.out, steps: c.run.steps, status: 'failed', failedStep: f.step, error: `${f.step}: ${f.message}. Nothing was changed by this run (runc at ${c.locked.realPath} was already the target before it); ${cleanup}.` };
  }
  return finishChange(c.run, c.job, c.out, c.locked, f, c.record, c.tp, c.facts);
}

/**
 * Done: record it and release the lock. Old `runc init` processes the upgrade
 * cannot reach are looked for in the same round trip (read-only). `kept`: a
 * step after the change failed (unstick, its health gate): the change stands,
 * the node is reported failed at that step.
 */
async function finish(c: UpgradeContext, kept: StepFailure | null): Promise<NodeOutcome> {
  const { run, job, locked, record } = c;
  const final = record && (locked.mode === 'upgrade' || sysctlNeeded(c) || record.phase !== 'done') ? withPhase(record, 'done', job.runId) : null;
  let unlockNote: string | null = null;
  let unlockOut: string | null = null;
  let unlockErr: unknown;
  const stuckAfter = job.stuckAfterSeconds ?? STUCK_AFTER_SECONDS;
  const unlockStarted = Date.now();
  try {
    const r = await run.exec('unlock', 'recording completion and releasing the lock', buildUnlockScript({ runId: job.runId, smokeId: run.smokeId, writeState: final !== null, before: buildStuckRuncInitScript(locked.realPath, stuckAfter) }), { stdin: final ? serializeState(final) : undefined, timeoutMs: 60_000 });
    unlockOut = r.stdout;
  } catch (err) {
    unlockErr = err;
    unlockNote = `the node is done, but recording it failed: ${errorMessage(err).split('\n')[0]}; the lock may remain (the next run reports it stale)`;
  }
  const stuck = recordStuckRuncInit(run, unlockOut ?? (unlockErr instanceof StepFailure ? unlockErr.result?.stdout : undefined) ?? null, locked.target.sha256, stuckAfter, unlockErr);
  run.record('unlock', unlockNote ? 'failed' : 'ok', unlockNote ?? (final ? 'state.json marked done; lock released' : 'lock released'), unlockStarted);
  const failure = kept ? `${kept.step}: ${kept.message}. runc ${locked.target.version} is installed and verified and nothing was rolled back (the old runc would not help)` : null;
  return {
    ...c.out,
    steps: run.steps,
    // The binary is verified in place, but a node whose record or lock could not be written needs a human: not a success.
    status: unlockNote || kept ? 'failed' : locked.mode === 'upgrade' ? 'upgraded' : 'unchanged',
    ...(kept ? { failedStep: kept.step } : unlockNote ? { failedStep: 'unlock' as StepName } : {}),
    to: { version: locked.target.version, sha256: locked.target.sha256 },
    error: [failure, unlockNote].filter(Boolean).join('; ') || null,
    ...(stuck ? { stuck } : {}),
    sysctl: { before: c.out.sysctl.before, after: { live: c.liveAfter, persisted: SYSCTL_TARGET } },
  };
}
