// `runc-rollout rollback` on one node: put back what state.json says the last
// apply replaced. Also the repair for a node an interrupted run left mid-way
// (phase staged, backed-up or swapped): the restore goes by digests, not by
// the phase, so it is right whichever side of the swap the node is on.
import { errorMessage } from '../errors.js';
import type { NodeSpec } from '../core/types.js';
import type { NodeSession } from '../ssh/transport.js';
import { buildLockScript, describeLock, parseLockProbe, type LockProbe } from './node-lock.js';
import { overwriteCommand, releaseUnchanged, rollBackToRecord } from './node-recovery.js';
import { NodeRun, StepFailure } from './node-run.js';
import { parseNodeState } from './node-state.js';
import { buildReadBinaryScript, tempPaths } from './remote-scripts.js';
import { first, parseRecords } from './script-common.js';
import type { NodeEvent, NodeOutcome } from './types.js';

export interface RollbackNodeOptions {
  runId: string;
  smokeTimeoutMs: number;
  lockOwner: string;
  forceUnlock: boolean;
  /** Restore even a runc or sysctl file changed since the apply (someone else's): rollback --overwrite-changed. */
  overwriteChanged?: boolean;
  /** The inventory as given, for the --overwrite-changed command in the report. */
  inventoryPath?: string;
}

export async function rollbackNode(session: NodeSession, node: NodeSpec, emit: (e: NodeEvent) => void, opts: RollbackNodeOptions): Promise<NodeOutcome> {
  const run = new NodeRun(session, node.name, emit, opts.runId, opts.smokeTimeoutMs);
  const out: NodeOutcome = {
    name: node.name,
    host: node.ssh.host,
    status: 'failed',
    from: null,
    to: null,
    failedStep: null,
    error: null,
    backupPath: null,
    sysctl: { before: null, after: null },
    steps: [],
    rollback: null,
  };
  const done = (patch: Partial<NodeOutcome>): NodeOutcome => ({ ...out, ...patch, steps: run.steps });
  let held = false;
  let probe: LockProbe;
  try {
    probe = await run.step('lock', async () => {
      const r = await run.exec('lock', 'locking the node', buildLockScript({ runId: opts.runId, lockOwner: opts.lockOwner, forceUnlock: opts.forceUnlock, runcPath: node.runcPath }), { timeoutMs: 120_000 });
      const p = parseLockProbe(r.stdout);
      if (p.lock === 'held') throw new StepFailure('lock', `the node is locked by another run that is still connected (${describeLock(p.lockInfo)})`);
      if (p.lock === 'stale') throw new StepFailure('lock', `stale lock left by a run whose connection is gone (${describeLock(p.lockInfo)}); re-run with --force-unlock to break it`);
      held = true;
      return { value: p, message: p.lock === 'broken' ? `broke stale lock (${describeLock(p.lockInfo)})` : 'lock acquired' };
    });
  } catch (err) {
    const tail = held ? `; ${await releaseUnchanged(run, [])}` : '';
    return done({ failedStep: 'lock', error: `lock: ${errorMessage(err)}. Nothing was changed${tail}.` });
  }
  out.sysctl.before = { live: probe.live, persisted: null };

  if (probe.stateText === null) {
    run.skip('rollback', 'no state.json: nothing to roll back');
    await releaseUnchanged(run, []);
    return done({ status: 'unchanged', error: 'nothing to roll back: no state.json on this node (runc-rollout never changed it)' });
  }
  let state;
  try {
    state = parseNodeState(probe.stateText);
  } catch (err) {
    run.skip('rollback', 'state.json unreadable');
    return done({ failedStep: 'rollback', error: `rollback: ${errorMessage(err)}. Nothing was changed; ${await releaseUnchanged(run, [])}.` });
  }
  out.backupPath = state.original.backupPath || null;

  let current = probe.realPath === state.runcPath ? probe.sha256 : null;
  if (current === null) {
    try {
      const r = await run.exec('rollback', 'reading the current runc', buildReadBinaryScript(state.runcPath), { timeoutMs: 60_000 });
      current = first(parseRecords(r.stdout), 'sha')?.[0] ?? null;
    } catch {
      // The restore checks the digest itself; this is only for the report.
    }
  }
  out.from = { version: null, sha256: current };
  if (state.phase === 'rolled-back') {
    run.skip('rollback', `already rolled back by run ${state.runId} at ${state.updatedAt}`);
    await releaseUnchanged(run, []);
    return done({ status: 'unchanged', error: `nothing to roll back: run ${state.runId} already rolled this node back (${state.updatedAt})` });
  }

  const tp = tempPaths(state.runcPath, opts.runId);
  // The restore renames nothing over a runc that is neither the record's target nor its original (nor a sysctl file changed since).
  const rb = await rollBackToRecord(run, state, tp.restore, [], {
    facts: { hasLib64: probe.hasLib64, hasGzip: probe.hasGzip },
    customCommand: node.smokeCommand,
    cleanPrefix: tp.prefix,
    overwriteChanged: opts.overwriteChanged ?? false,
    overwriteCommand: overwriteCommand(node.name, opts.inventoryPath),
  });
  const rollback = { ok: rb.ok, smokeOk: rb.smokeOk, error: rb.error, manualCommands: rb.manualCommands };
  if (!rb.ok) {
    return done({ status: rb.lost ? 'unknown' : 'failed', failedStep: 'rollback', rollback, error: `rollback: ${rb.error ?? 'failed'}. Finish by hand with rollback.manualCommands.` });
  }
  if (rb.leftAlone) {
    const to = rb.binaryLeftAlone ? null : { version: state.original.version, sha256: state.original.sha256 };
    return done({ status: 'failed', failedStep: 'rollback', to, rollback, error: `rollback: ${rb.summary}; ${rb.leftAlone}.` });
  }
  return done({
    status: rb.smokeOk ? 'rolled-back' : 'failed',
    to: { version: state.original.version, sha256: state.original.sha256 },
    rollback,
    error: rb.smokeOk ? null : `rollback: restored, but ${rb.error}`,
    sysctl: { before: out.sysctl.before, after: { live: rb.liveAfter ?? probe.live, persisted: null } },
  });
}
