// Ending a node run that did not succeed: before the swap, remove what was
// staged and release the lock; after it, put the state.json record back
// (binary, sysctl files, live value), smoke the restored runc, release the lock.
import { errorMessage } from '../errors.js';
import { q } from '../core/shell.js';
import { SYSCTL_KEY, type NodeState } from '../core/types.js';
import { buildUnlockScript, lockPath } from './node-lock.js';
import { StepFailure, shortDetail, type NodeRun, type RunFacts } from './node-run.js';
import { serializeState, withPhase } from './node-state.js';
import { buildRestoreScript, manualRestoreCommands, restorePlanFromState } from './restore-scripts.js';
import { first, parseRecords, type Records } from './script-common.js';

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
  /**
   * What the restore left alone because it changed since the change (a runc
   * or sysctl file someone else installed): one sentence with the command
   * that replaces them anyway; null when nothing was left.
   */
  leftAlone: string | null;
  /** The runc in place was not the change's: it (and the sysctl) stayed as they were. */
  binaryLeftAlone: boolean;
}

export interface RollbackToRecordOptions {
  facts: RunFacts;
  customCommand: string | undefined;
  cleanPrefix?: string;
  /** rollback --overwrite-changed: replace what changed since the change too. */
  overwriteChanged?: boolean;
  /** The command that does this rollback with --overwrite-changed, for the report. */
  overwriteCommand: string;
}

/** `runc-rollout rollback` for one node, replacing what changed since (the inventory as given, or a placeholder). */
export function overwriteCommand(node: string, inventoryPath?: string): string {
  return `runc-rollout rollback -i ${inventoryPath ? q(inventoryPath) : 'INVENTORY'} --limit ${q(node)} --overwrite-changed`;
}

/** What a restore left alone, from its records. */
function changedSince(record: NodeState, recs: Records): string[] {
  const out: string[] = [];
  const bin = first(recs, 'binary-changed')?.[0];
  if (bin) {
    out.push(
      `runc at ${record.runcPath} (sha256 ${bin.slice(0, 12)}: neither the release ${record.target.sha256.slice(0, 12)} run ${record.runId} installed nor the original ${record.original.sha256.slice(0, 12)}; replaced since, by a package upgrade or by hand?) and, with it, the sysctl values and files`,
    );
  }
  for (const [i] of recs.get('file-changed') ?? []) out.push(`${record.sysctl.files[Number(i)]?.path ?? `sysctl file ${i}`} (changed since run ${record.runId} wrote it)`);
  const live = first(recs, 'live-changed')?.[0];
  if (live) out.push(`the live ${SYSCTL_KEY} ${live} (set since by someone else)`);
  return out;
}

/**
 * Puts the node back to `record`: restore script, smoke of the restored runc,
 * state phase rolled-back, unlock. What changed since the change is left
 * alone (and the record kept, so a forced rollback can still use it). Never
 * throws.
 */
export async function rollBackToRecord(run: NodeRun, record: NodeState, restoreTemp: string, remove: string[], o: RollbackToRecordOptions): Promise<RollbackResult> {
  const plan = restorePlanFromState(record, restoreTemp, remove, o.cleanPrefix, o.overwriteChanged);
  const manual = manualRestoreCommands(plan);
  run.start('rollback');
  let did: string;
  let left: string[];
  let liveAfter: number | null;
  let binaryLeft: boolean;
  try {
    const r = await run.exec('rollback', 'restoring the backup and sysctl values', buildRestoreScript(plan), { timeoutMs: 180_000 });
    const recs = parseRecords(r.stdout);
    left = changedSince(record, recs);
    const liveLeft = first(recs, 'live-changed')?.[0];
    binaryLeft = recs.has('binary-changed');
    liveAfter = binaryLeft ? null : liveLeft !== undefined ? Number(liveLeft) : record.sysctl.liveBefore;
    const restored = (recs.get('file-restored') ?? []).length + (recs.get('file-removed') ?? []).length;
    did = [
      recs.has('binary-restored') ? `runc ${record.original.sha256.slice(0, 12)} restored at ${record.runcPath}` : recs.has('binary-in-place') ? `runc ${record.original.sha256.slice(0, 12)} already in place` : 'runc left alone',
      `${restored} sysctl file(s) restored`,
      recs.has('live-restored') ? `live value set back to ${first(recs, 'live-restored')?.[0]}` : 'live value unchanged',
    ].join(', ');
  } catch (err) {
    const f = err instanceof StepFailure ? err : new StepFailure('rollback', errorMessage(err));
    run.finish('rollback', 'failed', shortDetail(f.message));
    const cmds = [...manual];
    let unlocked = false;
    if (!f.lostConnection) unlocked = (await releaseUnchanged(run, [])).startsWith('lock released');
    if (!unlocked) cmds.push(`rm -f ${q(lockPath())}   # only once no runc-rollout run is working on this node`);
    return { ok: false, smokeOk: null, error: f.message, manualCommands: cmds, lost: f.lostConnection, summary: 'rollback failed', liveAfter: null, leftAlone: null, binaryLeftAlone: false };
  }
  const leftAlone = left.length ? `left alone: ${left.join('; ')}. To restore the original anyway: ${o.overwriteCommand}` : null;
  let smokeOk: boolean | null = null;
  let smokeError: string | null = null;
  // A runc left alone is not ours to smoke.
  if (!binaryLeft) {
    try {
      await run.smoke('rollback', 'restored', record.runcPath, o.facts, o.customCommand);
      smokeOk = true;
    } catch (err) {
      smokeOk = false;
      smokeError = `the restored runc fails the smoke test too: ${errorMessage(err)}`;
    }
  }
  const smokeNote = smokeOk === null ? '' : smokeOk ? '; smoke of the restored runc passed' : `; WARNING: ${shortDetail(smokeError ?? '')}`;
  run.finish('rollback', leftAlone ? 'failed' : 'ok', `${did}${smokeNote}${leftAlone ? `; ${leftAlone}` : ''}`);
  run.start('unlock');
  try {
    // A record with something left alone stays as it is: a forced rollback still needs it.
    const mark = leftAlone === null;
    await run.exec('unlock', mark ? 'recording the rollback and releasing the lock' : 'releasing the lock', buildUnlockScript({ runId: run.runId, smokeId: run.smokeId, writeState: mark }), {
      ...(mark ? { stdin: serializeState(withPhase(record, 'rolled-back', run.runId)) } : {}),
      timeoutMs: 60_000,
    });
    run.finish('unlock', 'ok', mark ? 'state.json marked rolled-back; lock released' : 'state.json kept (something was left alone); lock released');
  } catch (err) {
    run.finish('unlock', 'failed', shortDetail(errorMessage(err)));
  }
  return { ok: true, smokeOk, error: smokeError, manualCommands: [], lost: false, summary: did, liveAfter, leftAlone, binaryLeftAlone: binaryLeft };
}
