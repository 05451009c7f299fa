// Ending a node run that did not succeed: before the swap, remove what was
// staged and release the lock; after it, put the state.json record back
// (binary, sysctl files, live value), smoke the restored runc, release the lock.
import { errorMessage } from '../errors.js';
import { q } from '../core/shell.js';
import type { NodeState } from '../core/types.js';
import { buildUnlockScript, lockPath } from './node-lock.js';
import { StepFailure, shortDetail, type NodeRun, type RunFacts } from './node-run.js';
import { serializeState, withPhase } from './node-state.js';
import { buildRestoreScript, manualRestoreCommands, restorePlanFromState } from './restore-scripts.js';
import { first, parseRecords } from './script-common.js';

/** Removes `remove` and the smoke bundle, releases our lock. Returns a sentence for the report. */
export async function releaseUnchanged(run: NodeRun, remove: string[]): Promise<string> {
  run.start('unlock');
  try {
    await run.exec('unlock', 'cleaning up and releasing the lock', buildUnlockScript({ runId: run.runId, smokeId: run.smokeId, remove }), { timeoutMs: 60_000 });
    run.finish('unlock', 'ok', remove.length ? `removed ${remove.join(', ')}; lock released` : 'lock released');
    return remove.length ? `staged file removed, lock released` : 'lock released';
  } catch (err) {
    run.finish('unlock', 'failed', shortDetail(errorMessage(err)));
    const left = remove.length ? `staged file ${remove.join(', ')} and ` : '';
    return `cleanup failed (${errorMessage(err).split('\n')[0]}): ${left}the lock may remain; the next run removes them (a stale lock needs --force-unlock)`;
  }
}

export interface RollbackResult {
  ok: boolean;
  smokeOk: boolean | null;
  error: string | null;
  manualCommands: string[];
  /** The connection dropped during the rollback: the node's state is unknown. */
  lost: boolean;
  /** What the rollback did, one line. */
  summary: string;
  liveAfter: number | null;
}

/**
 * Puts the node back to `record`: restore script, smoke of the restored runc,
 * state phase rolled-back, unlock. Never throws.
 */
export async function rollBackToRecord(
  run: NodeRun,
  record: NodeState,
  restoreTemp: string,
  remove: string[],
  facts: RunFacts,
  customCommand: string | undefined,
  cleanPrefix?: string,
): Promise<RollbackResult> {
  const plan = restorePlanFromState(record, restoreTemp, remove, cleanPrefix);
  const manual = manualRestoreCommands(plan);
  run.start('rollback');
  let did: string;
  try {
    const r = await run.exec('rollback', 'restoring the backup and sysctl values', buildRestoreScript(plan), { timeoutMs: 180_000 });
    const recs = parseRecords(r.stdout);
    did = [
      recs.has('binary-restored') ? `runc ${record.original.sha256.slice(0, 12)} restored at ${record.runcPath}` : `runc ${record.original.sha256.slice(0, 12)} already in place`,
      `${(recs.get('file-restored') ?? []).length + (recs.get('file-removed') ?? []).length} sysctl file(s) restored`,
      recs.has('live-restored') ? `live value set back to ${first(recs, 'live-restored')?.[0]}` : 'live value unchanged',
    ].join(', ');
  } catch (err) {
    const f = err instanceof StepFailure ? err : new StepFailure('rollback', errorMessage(err));
    run.finish('rollback', 'failed', shortDetail(f.message));
    const cmds = [...manual];
    let unlocked = false;
    if (!f.lostConnection) unlocked = (await releaseUnchanged(run, [])).startsWith('lock released');
    if (!unlocked) cmds.push(`rm -f ${q(lockPath())}   # only once no runc-rollout run is working on this node`);
    return { ok: false, smokeOk: null, error: f.message, manualCommands: cmds, lost: f.lostConnection, summary: 'rollback failed', liveAfter: null };
  }
  let smokeOk = true;
  let smokeError: string | null = null;
  try {
    await run.smoke('rollback', 'restored', record.runcPath, facts, customCommand);
  } catch (err) {
    smokeOk = false;
    smokeError = `the restored runc fails the smoke test too: ${errorMessage(err)}`;
  }
  run.finish('rollback', 'ok', smokeOk ? `${did}; smoke of the restored runc passed` : `${did}; WARNING: ${shortDetail(smokeError ?? '')}`);
  run.start('unlock');
  try {
    await run.exec('unlock', 'recording the rollback and releasing the lock', buildUnlockScript({ runId: run.runId, smokeId: run.smokeId, writeState: true }), {
      stdin: serializeState(withPhase(record, 'rolled-back', run.runId)),
      timeoutMs: 60_000,
    });
    run.finish('unlock', 'ok', 'state.json marked rolled-back; lock released');
  } catch (err) {
    run.finish('unlock', 'failed', shortDetail(errorMessage(err)));
  }
  return { ok: true, smokeOk, error: smokeError, manualCommands: [], lost: false, summary: did, liveAfter: record.sysctl.liveBefore };
}
