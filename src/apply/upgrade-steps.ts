// The per-node upgrade pipeline as a table: each step with its name, what it
// runs, when it does not run on a node (and why), and what its failure means
// for the node. node-upgrade.ts takes the lock, runs the table in order and
// releases the lock; this file only says what each step does.
import { createReadStream } from 'node:fs';
import { SYSCTL_DROPIN, SYSCTL_KEY, SYSCTL_TARGET, type NodeState } from '../core/types.js';
import { parseVersionLine } from '../core/version.js';
import { healthAfter } from './health.js';
import { STUCK_AFTER_SECONDS, unstickRefusal } from '../core/stuck.js';
import { unstickNode } from './node-unstick.js';
import type { LockProbe } from './node-lock.js';
import { StepFailure, type NodeRun, type RunFacts } from './node-run.js';
import { decideBackup, planSysctlChange, recordAtBackup, relateRecord, serializeState, withPhase } from './node-state.js';
import type { Locked } from './node-upgrade-parts.js';
import { buildBackupScript, buildStageScript, buildSwapScript, type tempPaths } from './remote-scripts.js';
import { first, lineOf, parseRecords, unhex, type Records } from './script-common.js';
import { buildSysctlApplyScript } from './sysctl-scripts.js';
import type { NodeJob, NodeOutcome, StepName } from './types.js';

/** What the steps share on one node, between the lock and the unlock. */
export interface UpgradeContext {
  readonly run: NodeRun;
  readonly job: NodeJob;
  readonly locked: Locked;
  readonly probe: LockProbe;
  readonly facts: RunFacts;
  readonly tp: ReturnType<typeof tempPaths>;
  readonly signal: AbortSignal | undefined;
  /** The node failed its health gate before the change and --include-unhealthy let it in. */
  readonly wasUnhealthy: boolean;
  readonly out: NodeOutcome;
  /** The state.json record of this change as it is on the node: what a rollback goes back to. */
  record: NodeState | null;
  /** The record the sysctl step extends. */
  base: NodeState | null;
  /** What the swap script read back (digest, version), for verify. */
  swapOut: Records | null;
  /** Live fs.pipe-user-pages-soft after the sysctl step (the probe's until then). */
  liveAfter: number | null;
}

/**
 * What a failed step leaves: `node-unchanged` (before the swap: the staged
 * file is removed, the node is as it was), `roll-back` (from the swap on:
 * back to the record, or `unknown` when the connection is gone), or
 * `node-done` (after every smoke and the sysctl step: the change stands and is
 * recorded as done; the node is reported failed at that step, nothing is
 * rolled back, since the old runc would only make things worse).
 */
export type FailureMeaning = 'node-unchanged' | 'roll-back' | 'node-done';

export interface PipelineStep {
  readonly name: StepName;
  readonly failure: FailureMeaning;
  /** False: not part of this node's pipeline at all, and not reported (health gates the inventory does not configure). */
  readonly applies?: (c: UpgradeContext) => boolean;
  /** Why the step does not run on this node (reported as skipped), or null when it runs. */
  readonly skip?: (c: UpgradeContext) => string | null;
  /** The step's work; resolves with the message its record carries. */
  readonly run: (c: UpgradeContext) => Promise<string>;
  /** Records itself instead of through NodeRun.step (health gates, which may only warn). */
  readonly recordsItself?: boolean;
  /** A failure of this step that provably changed nothing (its script refused before it changed anything) means node-unchanged. */
  readonly unchangedIf?: (f: StepFailure) => boolean;
}

const atTarget = (c: UpgradeContext) => (c.locked.mode === 'none' ? `already at the target digest ${c.locked.target.sha256.slice(0, 12)}` : null);
const noHealth = (c: UpgradeContext) => c.job.node.health !== undefined;

/** Steps between the lock and the unlock, in order. */
export const UPGRADE_PIPELINE: readonly PipelineStep[] = [
  { name: 'stage', failure: 'node-unchanged', skip: atTarget, run: stage },
  { name: 'staged-smoke', failure: 'node-unchanged', skip: atTarget, run: (c) => c.run.smoke('staged-smoke', 'staged', c.tp.staged, c.facts) },
  { name: 'backup', failure: 'node-unchanged', skip: atTarget, run: backup },
  // The swap script refuses (exits before the rename: no `swapped` record) when the target is no longer the file the backup step saw.
  { name: 'swap', failure: 'roll-back', skip: atTarget, run: swap, unchangedIf: (f) => f.result !== undefined && !parseRecords(f.result.stdout).has('swapped') },
  { name: 'verify', failure: 'roll-back', run: verify },
  {
    name: 'smoke',
    failure: 'roll-back',
    skip: (c) => (c.locked.mode === 'none' ? 'binary unchanged; smoked after the sysctl step' : null),
    run: (c) => c.run.smoke('smoke', 'installed', c.locked.realPath, c.facts, c.job.node.smokeCommand),
  },
  {
    name: 'health-after-swap',
    failure: 'roll-back',
    applies: (c) => c.locked.mode === 'upgrade' && noHealth(c),
    recordsItself: true,
    run: async (c) => (await healthAfter(c.run, 'health-after-swap', c.job.node.health, c.wasUnhealthy), ''),
  },
  { name: 'sysctl', failure: 'roll-back', skip: (c) => (sysctlNeeded(c) ? null : `already ${SYSCTL_TARGET} live and persisted`), run: sysctl },
  { name: 'smoke-after-sysctl', failure: 'roll-back', run: (c) => c.run.smoke('smoke-after-sysctl', 'sysctl', c.locked.realPath, c.facts, c.job.node.smokeCommand) },
  {
    name: 'health-after-sysctl',
    failure: 'roll-back',
    applies: noHealth,
    recordsItself: true,
    run: async (c) => (await healthAfter(c.run, 'health-after-sysctl', c.job.node.health, c.wasUnhealthy), ''),
  },
  {
    name: 'unstick',
    failure: 'node-done',
    applies: (c) => c.job.unstick === true,
    skip: (c) => unstickRefusal(c.locked.target.version),
    run: (c) => unstickNode(c.run, { runcPath: c.locked.realPath, currentSha256: c.locked.target.sha256, version: c.locked.target.version, stuckAfterSeconds: c.job.stuckAfterSeconds ?? STUCK_AFTER_SECONDS }, (r) => {
      c.out.unstuck = r.unstuck;
    }),
  },
  {
    // The gate that decides once the stuck processes are gone: it only warns where the user let an unhealthy node in.
    name: 'health-after-unstick',
    failure: 'node-done',
    applies: (c) => c.job.unstick === true && noHealth(c),
    recordsItself: true,
    run: async (c) => (await healthAfter(c.run, 'health-after-unstick', c.job.node.health, c.wasUnhealthy && c.job.includeUnhealthy === true), ''),
  },
];

export function sysctlNeeded(c: UpgradeContext): boolean {
  const sp = c.job.plan.sysctl;
  return !sp || sp.changeLive || sp.changePersisted || c.probe.live !== SYSCTL_TARGET || !c.probe.dropinExists;
}

async function stage(c: UpgradeContext): Promise<string> {
  const { run, job, locked, tp } = c;
  const asset = job.asset;
  if (!asset) throw new StepFailure('stage', 'no verified release binary for this node');
  const gz = c.facts.hasGzip && job.gzipped ? await job.gzipped() : null;
  const script = buildStageScript({ realPath: locked.realPath, staged: tp.staged, sha256: asset.sha256, gzip: gz !== null });
  const what = `uploading ${asset.name}${gz ? ` (gzip, ${Math.ceil(gz.length / 1024)} KiB)` : ''} and checking it`;
  const r = await run.exec('stage', what, script, { stdin: gz ?? createReadStream(asset.path), timeoutMs: 180_000 + asset.size / 50, signal: c.signal });
  const line = lineOf(parseRecords(r.stdout), 'vline');
  const v = parseVersionLine(line);
  if (!sameVersion(v, locked.target.version)) throw new StepFailure('stage', `staged binary reports ${JSON.stringify(line)}, expected runc version ${locked.target.version}`);
  return `${tp.staged}: sha256 ${asset.sha256.slice(0, 12)} checked, reports ${v}`;
}

/** Backup of the current binary (or reuse of a verified one) and the record of the change, written before anything changes. */
async function backup(c: UpgradeContext): Promise<string> {
  const { locked, job } = c;
  const now = new Date();
  const relation = relateRecord(locked.prev, locked.realPath, locked.sha256, locked.target.sha256);
  const current = { version: locked.from.version, sha256: locked.sha256 };
  const decision = decideBackup({ prev: locked.prev, relation, current, backups: c.probe.backups, now });
  const backupPath = (decision.reuse ?? decision.create) as string;
  const atBackup = recordAtBackup({ prev: locked.prev, relation, runId: job.runId, realPath: locked.realPath, current, target: locked.target, backupPath, liveBefore: c.probe.live, now });
  const script = buildBackupScript({ realPath: locked.realPath, currentSha256: locked.sha256, reuse: decision.reuse, create: decision.create, protect: decision.protect, runId: job.runId });
  const r = await c.run.exec('backup', 'backing up the current runc', script, { stdin: serializeState(atBackup), timeoutMs: 180_000 });
  c.record = atBackup;
  c.base = atBackup;
  c.out.backupPath = backupPath;
  const rotated = (parseRecords(r.stdout).get('rotated') ?? []).map((x) => unhex(x[0]));
  return `${decision.reuse ? 'kept existing backup' : 'backed up to'} ${backupPath}${rotated.length ? `; rotated out ${rotated.join(', ')}` : ''}`;
}

/** From here the node is being changed: no more stopping on an interruption, finish or roll back. */
async function swap(c: UpgradeContext): Promise<string> {
  const { locked, tp } = c;
  const swapped = withPhase(c.record as NodeState, 'swapped', c.job.runId);
  const r = await c.run.exec('swap', 'renaming the staged binary over the target', buildSwapScript({ staged: tp.staged, realPath: locked.realPath, sha256: locked.target.sha256, currentSha256: locked.sha256 }), {
    stdin: serializeState(swapped),
    timeoutMs: 90_000,
  });
  c.record = swapped;
  c.base = swapped;
  c.swapOut = parseRecords(r.stdout);
  return `${tp.staged} renamed over ${locked.realPath}`;
}

async function verify(c: UpgradeContext): Promise<string> {
  const { locked } = c;
  if (locked.mode === 'none') return `${locked.realPath} has sha256 ${locked.sha256.slice(0, 12)} (the target)`;
  const sha = c.swapOut ? first(c.swapOut, 'sha')?.[0] : undefined;
  const line = c.swapOut ? lineOf(c.swapOut, 'vline') : '';
  if (sha !== locked.target.sha256) throw new StepFailure('verify', `${locked.realPath} has sha256 ${sha ?? '?'} after the swap, expected ${locked.target.sha256}`);
  const v = parseVersionLine(line);
  if (!sameVersion(v, locked.target.version)) throw new StepFailure('verify', `${locked.realPath} reports ${JSON.stringify(line)} after the swap, expected ${locked.target.version}`);
  return `sha256 ${sha.slice(0, 12)}, version ${v}`;
}

async function sysctl(c: UpgradeContext): Promise<string> {
  const { job } = c;
  const change = planSysctlChange({ state: c.base as NodeState, commentOut: job.plan.sysctl?.commentOut ?? [], dropin: SYSCTL_DROPIN, dropinExists: c.probe.dropinExists, runId: job.runId, now: new Date() });
  let r;
  try {
    r = await c.run.exec('sysctl', `setting ${SYSCTL_KEY}`, buildSysctlApplyScript({ runId: job.runId, commentOut: change.commentOut, dropinBackup: change.dropinBackup }), { stdin: serializeState(change.state), timeoutMs: 90_000 });
  } catch (err) {
    // The record naming the changed files is written before the changes: once it is (or may be) on the node, roll back from it.
    const f = err as StepFailure;
    if ((f.result && parseRecords(f.result.stdout).has('state-written')) || f.outcomeUnknown) c.record = change.state;
    throw err;
  }
  c.record = change.state;
  const recs = parseRecords(r.stdout);
  c.liveAfter = Number(first(recs, 'live')?.[0] ?? SYSCTL_TARGET);
  const commented = (recs.get('commented') ?? []).map((x) => unhex(x[0]));
  return `live ${c.liveAfter}; ${SYSCTL_DROPIN} written${commented.length ? `; overriding lines commented out in ${commented.join(', ')}` : ''}`;
}

function sameVersion(got: string | null, want: string): boolean {
  return got?.replace(/^v/, '') === want.replace(/^v/, '');
}
