// The per-node pipeline of `apply`: UPGRADE_STEPS in order, each reported.
// Before the swap a failure leaves the node as it was; from the swap on, a
// failure rolls back to state.json's record, and a lost connection is
// reported as `unknown`, never guessed.
import { createReadStream } from 'node:fs';
import { errorMessage } from '../errors.js';
import type { NodeSession } from '../ssh/transport.js';
import { SYSCTL_DROPIN, SYSCTL_TARGET, type NodeState } from '../core/types.js';
import { parseVersionLine } from '../core/version.js';
import { buildLockScript, buildUnlockScript, describeLock, parseLockProbe, type LockProbe } from './node-lock.js';
import { NodeRun, StepFailure, type RunFacts } from './node-run.js';
import { releaseUnchanged } from './node-recovery.js';
import { decideBackup, parseNodeState, planSysctlChange, recordAtBackup, recordForUnchanged, relateRecord, serializeState, withPhase } from './node-state.js';
import { buildBackupScript, buildStageScript, buildSwapScript, tempPaths } from './remote-scripts.js';
import { first, parseRecords, unhex } from './script-common.js';
import { buildSysctlApplyScript } from './sysctl-scripts.js';
import type { NodeEvent, NodeJob, NodeOutcome } from './types.js';
import { finishChange, initialOutcome, lockedNode, type Locked } from './node-upgrade-parts.js';
import { healthAfter, healthBefore } from './health.js';
import { STUCK_AFTER_SECONDS, buildStuckRuncInitScript, recordStuckRuncInit } from './stuck-runc-init.js';
import type { RunResult } from '../ssh/transport.js';

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
  // Health gates (only when the inventory configures them): an unhealthy node is left alone unless --include-unhealthy.
  const gate = await healthBefore(run, job.node.health, job.includeUnhealthy ?? false, signal);
  if (gate.skip) return done({ status: 'not-attempted', failedStep: 'health', error: gate.skip });
  let held = false;
  let probe: LockProbe | undefined;
  let locked: Locked;
  try {
    locked = await run.step('lock', async () => {
      const r = await run.exec('lock', 'locking the node', buildLockScript({ runId: job.runId, lockOwner: job.lockOwner, forceUnlock: job.forceUnlock, runcPath: job.plan.runcPath ?? job.node.runcPath }), { timeoutMs: 120_000, signal });
      const p = parseLockProbe(r.stdout);
      if (p.lock === 'held') throw new StepFailure('lock', `the node is locked by another run that is still connected (${describeLock(p.lockInfo)})`);
      if (p.lock === 'stale') throw new StepFailure('lock', `stale lock left by a run whose connection is gone (${describeLock(p.lockInfo)}${p.holderUnknown ? '; holder cannot be checked' : ''}); re-run with --force-unlock to break it`);
      held = true;
      probe = p;
      const notes = [p.lock === 'broken' ? `broke stale lock (${describeLock(p.lockInfo)})` : 'lock acquired', ...(p.cleaned.length ? [`removed leftovers of earlier runs: ${p.cleaned.join(', ')}`] : [])];
      // Refusals here (no runc, unreadable state.json, drift from the plan) leave the node untouched.
      return { value: lockedNode(job, p, parseNodeState), message: notes.join('; ') };
    });
  } catch (err) {
    const f = err as StepFailure;
    const tail = held ? `; ${await releaseUnchanged(run, [])}` : f.outcomeUnknown ? '; our lock may remain on the node (a later run reports it stale)' : '';
    return done({ status: signal?.aborted ? 'not-attempted' : 'failed', failedStep: 'lock', error: `lock: ${f.message}. Node unchanged${tail}.` });
  }
  if (!probe) throw new Error('lock step passed without a probe');
  out.from = locked.from;
  out.to = locked.from;
  out.sysctl = { before: { live: probe.live, persisted: job.plan.sysctl?.persisted ?? null }, after: { live: probe.live, persisted: job.plan.sysctl?.persisted ?? null } };
  const facts: RunFacts = { hasLib64: probe.hasLib64, hasGzip: probe.hasGzip };
  const tp = tempPaths(locked.realPath, job.runId);
  const untouched = async (step: NodeOutcome['failedStep'], f: StepFailure, remove: string[]): Promise<NodeOutcome> => {
    const interrupted = signal?.aborted ?? false;
    const cleanup = await releaseUnchanged(run, remove);
    return done({
      status: interrupted ? 'not-attempted' : 'failed',
      failedStep: step,
      error: `${step}: ${interrupted ? 'interrupted' : f.message}. Node unchanged: runc at ${locked.realPath} untouched (sha256 ${locked.from.sha256?.slice(0, 12)}); ${cleanup}.`,
    });
  };

  // `record`: the state.json record of this change as it is on the node (what a rollback goes back to);
  // `base`: the record the sysctl step extends.
  let record: NodeState | null = null;
  let base: NodeState | null = null;
  if (locked.mode === 'upgrade') {
    const asset = job.asset;
    if (!asset) return untouched('stage', new StepFailure('stage', 'no verified release binary for this node'), []);
    try {
      await run.step('stage', async () => {
        const gz = facts.hasGzip && job.gzipped ? await job.gzipped() : null;
        const script = buildStageScript({ realPath: locked.realPath, staged: tp.staged, sha256: asset.sha256, gzip: gz !== null });
        const what = `uploading ${asset.name}${gz ? ` (gzip, ${Math.ceil(gz.length / 1024)} KiB)` : ''} and checking it`;
        const r = await run.exec('stage', what, script, { stdin: gz ?? createReadStream(asset.path), timeoutMs: 180_000 + asset.size / 50, signal });
        const line = unhex(first(parseRecords(r.stdout), 'version')?.[0]).trim();
        const v = parseVersionLine(line);
        if (v?.replace(/^v/, '') !== locked.target.version.replace(/^v/, '')) {
          throw new StepFailure('stage', `staged binary reports ${JSON.stringify(line)}, expected runc version ${locked.target.version}`);
        }
        return { value: undefined, message: `${tp.staged}: sha256 ${asset.sha256.slice(0, 12)} checked, reports ${v}` };
      });
      if (signal?.aborted) throw new StepFailure('stage', 'interrupted');
      await run.step('staged-smoke', async () => ({ value: undefined, message: await run.smoke('staged-smoke', 'staged', tp.staged, facts) }));
      if (signal?.aborted) throw new StepFailure('staged-smoke', 'interrupted');
    } catch (err) {
      const f = err as StepFailure;
      return untouched(f.step, f, [tp.staged]);
    }

    const now = new Date();
    const relation = relateRecord(locked.prev, locked.realPath, locked.sha256, locked.target.sha256);
    const current = { version: locked.from.version, sha256: locked.sha256 };
    const decision = decideBackup({ prev: locked.prev, relation, current, backups: probe.backups, now });
    const backupPath = (decision.reuse ?? decision.create) as string;
    const atBackup = recordAtBackup({ prev: locked.prev, relation, runId: job.runId, realPath: locked.realPath, current, target: locked.target, backupPath, liveBefore: probe.live, now });
    try {
      await run.step('backup', async () => {
        const r = await run.exec('backup', 'backing up the current runc', buildBackupScript({ realPath: locked.realPath, currentSha256: locked.sha256, reuse: decision.reuse, create: decision.create, protect: decision.protect, runId: job.runId }), {
          stdin: serializeState(atBackup),
          timeoutMs: 180_000,
        });
        const recs = parseRecords(r.stdout);
        const rotated = (recs.get('rotated') ?? []).map((x) => unhex(x[0]));
        return { value: undefined, message: `${decision.reuse ? 'kept existing backup' : 'backed up to'} ${backupPath}${rotated.length ? `; rotated out ${rotated.join(', ')}` : ''}` };
      });
    } catch (err) {
      const f = err as StepFailure;
      return untouched('backup', f, [tp.staged]);
    }
    record = atBackup;
    base = atBackup;
    out.backupPath = backupPath;
    // Last point to stop without changing anything (the backup is harmless).
    if (signal?.aborted) return untouched('backup', new StepFailure('backup', 'interrupted'), [tp.staged]);

    // From here the node is being changed: no more interruption, finish or roll back.
    let swapOut: ReturnType<typeof parseRecords> | null = null;
    const swapped = withPhase(atBackup, 'swapped', job.runId);
    try {
      await run.step('swap', async () => {
        const r = await run.exec('swap', 'renaming the staged binary over the target', buildSwapScript({ staged: tp.staged, realPath: locked.realPath, sha256: locked.target.sha256 }), {
          stdin: serializeState(swapped),
          timeoutMs: 90_000,
        });
        record = swapped;
        base = swapped;
        swapOut = parseRecords(r.stdout);
        return { value: undefined, message: `${tp.staged} renamed over ${locked.realPath}` };
      });
      await run.step('verify', async () => {
        const sha = swapOut ? first(swapOut, 'sha')?.[0] : undefined;
        const line = swapOut ? unhex(first(swapOut, 'version')?.[0]).trim() : '';
        if (sha !== locked.target.sha256) throw new StepFailure('verify', `${locked.realPath} has sha256 ${sha ?? '?'} after the swap, expected ${locked.target.sha256}`);
        const v = parseVersionLine(line);
        if (v?.replace(/^v/, '') !== locked.target.version.replace(/^v/, '')) throw new StepFailure('verify', `${locked.realPath} reports ${JSON.stringify(line)} after the swap, expected ${locked.target.version}`);
        return { value: undefined, message: `sha256 ${sha.slice(0, 12)}, version ${v}` };
      });
      await run.step('smoke', async () => ({ value: undefined, message: await run.smoke('smoke', 'installed', locked.realPath, facts, job.node.smokeCommand) }));
      await healthAfter(run, 'health-after-swap', job.node.health, gate.wasUnhealthy);
    } catch (err) {
      return finishChange(run, job, out, locked, err as StepFailure, record, tp, facts);
    }
  } else {
    for (const s of ['stage', 'staged-smoke', 'backup', 'swap'] as const) run.skip(s, `already at the target digest ${locked.target.sha256.slice(0, 12)}`);
    run.start('verify');
    run.finish('verify', 'ok', `${locked.realPath} has sha256 ${locked.sha256.slice(0, 12)} (the target)`);
    run.skip('smoke', 'binary unchanged; smoked after the sysctl step');
    const related = relateRecord(locked.prev, locked.realPath, locked.sha256, locked.target.sha256);
    // A finished earlier change is history: this run's record (and so a failure's rollback) covers only what
    // this run changes, the sysctl; it must never take the binary back to a version installed weeks ago.
    const relation = related === 'continues-target' && locked.prev?.phase === 'done' ? 'fresh' : related;
    base = recordForUnchanged({ prev: locked.prev, relation, runId: job.runId, realPath: locked.realPath, current: { version: locked.from.version, sha256: locked.sha256 }, liveBefore: probe.live, now: new Date() });
    // An earlier run's change to this binary is still ours to finish or undo; a binary we never installed is not.
    record = relation === 'continues-target' ? locked.prev : null;
    if (relation === 'continues-target' && locked.prev?.original.backupPath) out.backupPath = locked.prev.original.backupPath;
  }

  // sysctl, then the last smoke.
  const sp = job.plan.sysctl;
  const needSysctl = !sp || sp.changeLive || sp.changePersisted || probe.live !== SYSCTL_TARGET || !probe.dropinExists;
  let liveAfter = probe.live;
  try {
    if (needSysctl) {
      const change = planSysctlChange({ state: base as NodeState, commentOut: sp?.commentOut ?? [], dropin: SYSCTL_DROPIN, dropinExists: probe.dropinExists, runId: job.runId, now: new Date() });
      await run.step('sysctl', async () => {
        try {
          const r = await run.exec('sysctl', `setting ${'fs.pipe-user-pages-soft'}`, buildSysctlApplyScript({ runId: job.runId, commentOut: change.commentOut, dropinBackup: change.dropinBackup }), { stdin: serializeState(change.state), timeoutMs: 90_000 });
          record = change.state;
          const recs = parseRecords(r.stdout);
          liveAfter = Number(first(recs, 'live')?.[0] ?? SYSCTL_TARGET);
          const commented = (recs.get('commented') ?? []).map((x) => unhex(x[0]));
          return { value: undefined, message: `live ${liveAfter}; ${SYSCTL_DROPIN} written${commented.length ? `; overriding lines commented out in ${commented.join(', ')}` : ''}` };
        } catch (err) {
          // The record naming the changed files was written before the changes: roll back from it.
          const res = (err as { result?: { stdout: string } }).result;
          // So was it when the outcome is unknown (timeout, lost connection): restoring from it is idempotent.
          if ((res && parseRecords(res.stdout).has('state-written')) || (err as StepFailure).outcomeUnknown) record = change.state;
          throw err;
        }
      });
    } else {
      run.skip('sysctl', `already ${SYSCTL_TARGET} live and persisted`);
    }
    await run.step('smoke-after-sysctl', async () => ({ value: undefined, message: await run.smoke('smoke-after-sysctl', 'sysctl', locked.realPath, facts, job.node.smokeCommand) }));
    await healthAfter(run, 'health-after-sysctl', job.node.health, gate.wasUnhealthy);
  } catch (err) {
    const f = err as StepFailure;
    if (!record && !f.lostConnection) {
      // Nothing of this run's is on the node (the sysctl record was never written): there is nothing to roll back.
      const cleanup = await releaseUnchanged(run, []);
      return done({ status: 'failed', failedStep: f.step, error: `${f.step}: ${f.message}. Nothing was changed by this run (runc at ${locked.realPath} was already the target before it); ${cleanup}.` });
    }
    return finishChange(run, job, out, locked, f, record, tp, facts);
  }

  // Done: record it and release the lock. Old `runc init` processes the
  // upgrade cannot reach are looked for in the same round trip (read-only).
  const final = record && (locked.mode === 'upgrade' || needSysctl || record.phase !== 'done') ? withPhase(record, 'done', job.runId) : null;
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
  recordStuckRuncInit(run, unlockOut ?? (unlockErr as { result?: RunResult } | undefined)?.result?.stdout ?? null, locked.target.sha256, stuckAfter, unlockErr);
  run.record('unlock', unlockNote ? 'failed' : 'ok', unlockNote ?? (final ? 'state.json marked done; lock released' : 'lock released'), unlockStarted);
  return done({
    // The binary is verified in place, but a node whose record or lock could not be written needs a human: not a success.
    status: unlockNote ? 'failed' : locked.mode === 'upgrade' ? 'upgraded' : 'unchanged',
    ...(unlockNote ? { failedStep: 'unlock' as const } : {}),
    to: { version: locked.target.version, sha256: locked.target.sha256 },
    error: unlockNote,
    sysctl: { before: out.sysctl.before, after: { live: liveAfter, persisted: SYSCTL_TARGET } },
  });
}
