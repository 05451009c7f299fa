// Carries out a plan, batch by batch. Decides nothing about what a node needs
// (the plan did that); it only decides when to start a node and when to stop
// starting them: failure budget exceeded, or the user interrupted.
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import {
  budgetExceeded,
  describeBudget,
  formatBatchSize,
  formatFailureBudget,
  type BatchSize,
  type FailureBudget,
} from '../core/batching.js';
import { mapLimit } from '../core/concurrency.js';
import { makeOrderedBatches } from '../core/ordering.js';
import type { NodePolicy, OnBudgetExceeded, OnUnreachable } from '../core/policies.js';
import { describeWindows, windowsOpen, type RolloutWindow } from '../core/window.js';
import type { NodeSpec, Plan, PlanAction, VerifiedRelease } from '../core/types.js';
import type { NodeSession, Transport } from '../ssh/transport.js';
import { rollbackNode, type RollbackNodeOptions } from './node-rollback.js';
import { upgradeNode } from './node-upgrade.js';
import { RUNNABLE, prepareJobs, skippedOutcome } from './plan-jobs.js';
import { FAILED_STATUSES, assembleReport, type BatchRecord, type RunReport, type StopReason } from './report.js';
import { UPGRADE_STEPS, type NodeEvent, type NodeJob, type NodeOutcome, type StepName } from './types.js';

export interface BatchInfo {
  index: number;
  canary: boolean;
  nodes: string[];
}

/** The progress stream: for library callers and for the views. */
export type ExecutorEvent =
  | { type: 'run-start'; at: string; runId: string; batches: BatchInfo[]; skipped: NodeOutcome[]; budget: string }
  | { type: 'batch-start'; at: string; batch: BatchInfo }
  | { type: 'node-start'; at: string; batch: number; node: string; action: PlanAction }
  | { type: 'node-event'; batch: number; event: NodeEvent }
  | { type: 'node-end'; at: string; batch: number; outcome: NodeOutcome }
  | { type: 'batch-end'; at: string; batch: BatchInfo; failures: number; totalFailures: number }
  | { type: 'pause'; at: string; ms: number; nextBatch: number }
  | { type: 'stopped'; at: string; reason: StopReason; notAttempted: string[] }
  /** `--on-budget-exceeded rollback-all`: `nodes` (newest first) are rolled back one by one. */
  | { type: 'rollback-all-start'; at: string; nodes: string[] }
  | { type: 'rollback-all-node'; at: string; outcome: NodeOutcome }
  | { type: 'run-end'; at: string; report: RunReport };

export type UpgradeFn = (session: NodeSession, job: NodeJob, emit: (e: NodeEvent) => void, signal?: AbortSignal) => Promise<NodeOutcome>;
export type RollbackFn = (session: NodeSession, node: NodeSpec, emit: (e: NodeEvent) => void, opts: RollbackNodeOptions) => Promise<NodeOutcome>;

export interface ExecuteOptions {
  plan: Plan;
  /** Inventory nodes; every plan node must be among them. */
  nodes: NodeSpec[];
  release: VerifiedRelease;
  transport: Transport;
  batch: BatchSize | number;
  canary: number;
  pauseMs: number;
  maxFailures: FailureBudget | number;
  smokeTimeoutMs: number;
  runId: string;
  lockOwner: string;
  forceUnlock: boolean;
  /** At most this many nodes of a batch at once (default: the whole batch). */
  parallel?: number;
  signal?: AbortSignal;
  onEvent?: (e: ExecutorEvent) => void;
  /** Defaults to the plan's. */
  toolVersion?: string;
  /** The per-node pipeline; tests pass a fake. */
  upgrade?: UpgradeFn;
  /** Control-plane nodes (node-role.kubernetes.io/control-plane or master) only in the final batches (src/core/ordering.ts). */
  controlPlaneLast?: boolean;
  /** Each batch holds nodes of one value of this label only. */
  serialBy?: string;
  /** Upgrade nodes whose health gates fail before the change instead of skipping them. */
  includeUnhealthy?: boolean;
  /** `--unstick`: after every smoke and the sysctl step, end each node's stuck `runc init` of the old runc. */
  unstick?: boolean;
  /** `runc init` blocked on a pipe for longer than this is stuck (--stuck-after). */
  stuckAfterSeconds?: number;
  /** `fail` (default): a node lost during the run counts against the budget. `skip`: it does not, and the others go on. */
  onUnreachable?: OnUnreachable;
  /** `stop` (default): no further batch starts. `rollback-all`: also roll back every node this run upgraded, newest first. */
  onBudgetExceeded?: OnBudgetExceeded;
  /** No batch starts while none of these is open (none: any time). */
  windows?: readonly RolloutWindow[];
  /** The clock the windows are checked against, read once before each batch (default: the system clock). */
  now?: () => Date;
  /** The per-node rollback of `rollback-all`; tests pass a fake. */
  rollback?: RollbackFn;
  /** Recorded in the report's options. */
  resumedFrom?: { runId: string; path: string; finished: string[] } | null;
}

const AFTER_BACKUP = new Set<StepName>(UPGRADE_STEPS.slice(UPGRADE_STEPS.indexOf('swap')));

export async function executePlan(opts: ExecuteOptions): Promise<RunReport> {
  const startedAt = new Date().toISOString();
  const emit = (e: ExecutorEvent) => opts.onEvent?.(e);
  const upgrade = opts.upgrade ?? upgradeNode;
  const batchSize: BatchSize = typeof opts.batch === 'number' ? { kind: 'count', count: opts.batch } : opts.batch;
  const budget: FailureBudget = typeof opts.maxFailures === 'number' ? { kind: 'count', count: opts.maxFailures } : opts.maxFailures;
  const selected = opts.plan.nodes.length;
  const jobs = prepareJobs(opts.plan, opts.nodes, opts.release, opts);
  const onUnreachable = opts.onUnreachable ?? 'fail';
  const onBudgetExceeded = opts.onBudgetExceeded ?? 'stop';
  const windows = opts.windows ?? [];
  const clock = opts.now ?? (() => new Date());
  /** Counts against the budget: a failed status, except unreachable nodes `--on-unreachable skip` leaves out. */
  const counts = (o: NodeOutcome) => FAILED_STATUSES.includes(o.status) && o.policy !== 'unreachable-skip';
  /** Nodes this run upgraded, in the order they finished. */
  const upgradedOrder: string[] = [];

  const outcomes = new Map<string, NodeOutcome>();
  const skipped: NodeOutcome[] = [];
  for (const np of opts.plan.nodes) {
    if (RUNNABLE.includes(np.action)) continue;
    const o =
      np.action === 'unreachable'
        ? withPolicy(skippedOutcome(np, 'unreachable', `unreachable when planned: ${np.error ?? 'no detail'}`), onUnreachable === 'skip' ? 'unreachable-skip' : null)
        : withPolicy(skippedOutcome(np, 'not-attempted', `blocked by the plan: ${np.error ?? 'no detail'}`), null);
    outcomes.set(np.name, o);
    skipped.push(o);
  }

  const labels = new Map(opts.nodes.map((n) => [n.name, n.labels]));
  const batches = makeOrderedBatches(
    opts.plan.nodes.filter((n) => RUNNABLE.includes(n.action)),
    { batch: batchSize, canary: opts.canary },
    (n) => labels.get(n.name) ?? {},
    { controlPlaneLast: opts.controlPlaneLast ?? false, ...(opts.serialBy ? { serialBy: opts.serialBy } : {}) },
    selected,
  );
  const infos: BatchInfo[] = batches.map((b) => ({ index: b.index, canary: b.canary, nodes: b.items.map((n) => n.name) }));
  const records: BatchRecord[] = infos.map((b) => ({ ...b, startedAt: null, finishedAt: null, failures: 0 }));
  emit({ type: 'run-start', at: now(), runId: opts.runId, batches: infos, skipped, budget: describeBudget(budget, selected) });

  let failures = 0;
  let stoppedReason: StopReason | null = null;
  for (const [i, batch] of batches.entries()) {
    const info = infos[i] as BatchInfo;
    const record = records[i] as BatchRecord;
    if (opts.signal?.aborted) {
      stoppedReason = 'interrupted';
      break;
    }
    // A batch starts only inside a window; one already running always finishes.
    if (windows.length > 0 && !windowsOpen(windows, clock())) {
      stoppedReason = 'window';
      break;
    }
    record.startedAt = now();
    emit({ type: 'batch-start', at: record.startedAt, batch: info });
    const results = await mapLimit(batch.items, Math.max(1, opts.parallel ?? batch.items.length), async (np) => {
      if (opts.signal?.aborted) {
        const outcome = withPolicy(skippedOutcome(np, 'not-attempted', 'not attempted: interrupted before this node started'), 'interrupted');
        emit({ type: 'node-end', at: now(), batch: i, outcome });
        return outcome;
      }
      emit({ type: 'node-start', at: now(), batch: i, node: np.name, action: np.action });
      const outcome = await runNode(opts, upgrade, jobs.get(np.name) as NodeJob, (event) => emit({ type: 'node-event', batch: i, event }));
      if (outcome.status === 'upgraded') upgradedOrder.push(outcome.name);
      emit({ type: 'node-end', at: now(), batch: i, outcome });
      return outcome;
    });
    for (const o of results) outcomes.set(o.name, o);
    record.failures = results.filter(counts).length;
    record.finishedAt = now();
    failures += record.failures;
    emit({ type: 'batch-end', at: record.finishedAt, batch: info, failures: record.failures, totalFailures: failures });

    if (opts.signal?.aborted) {
      stoppedReason = 'interrupted';
      break;
    }
    const more = i < batches.length - 1;
    // Only a budget that stops something is reported as stopping the run;
    // with rollback-all, a budget exceeded by the last batch still undoes the run.
    if ((more || onBudgetExceeded === 'rollback-all') && budgetExceeded(failures, budget, selected)) {
      stoppedReason = 'budget-exceeded';
      break;
    }
    if (more && opts.pauseMs > 0) {
      emit({ type: 'pause', at: now(), ms: opts.pauseMs, nextBatch: i + 1 });
      if (!(await pause(opts.pauseMs, opts.signal))) {
        stoppedReason = 'interrupted';
        break;
      }
    }
  }

  const notAttempted: string[] = [];
  for (const np of opts.plan.nodes) {
    if (outcomes.has(np.name)) continue;
    const [why, policy]: [string, NodePolicy] =
      stoppedReason === 'budget-exceeded'
        ? [`not attempted: ${failures} failed node(s) exceeded the failure budget (--max-failures ${formatFailureBudget(budget)})`, 'budget']
        : stoppedReason === 'window'
          ? [`not attempted: no rollout window open (--window ${describeWindows(windows)}); left for the next run (--resume)`, 'window']
          : ['not attempted: interrupted', 'interrupted'];
    outcomes.set(np.name, withPolicy(skippedOutcome(np, 'not-attempted', why), policy));
    notAttempted.push(np.name);
  }
  if (stoppedReason) emit({ type: 'stopped', at: now(), reason: stoppedReason, notAttempted });

  if (stoppedReason === 'budget-exceeded' && onBudgetExceeded === 'rollback-all') {
    await rollbackAll(opts, [...upgradedOrder].reverse(), outcomes, failures, budget, emit);
  }

  const interrupted = Boolean(opts.signal?.aborted);
  const report = assembleReport({
    command: 'apply',
    runId: opts.runId,
    startedAt,
    finishedAt: now(),
    toolVersion: opts.toolVersion ?? opts.plan.tool.version,
    release: opts.plan.release,
    inventory: opts.plan.inventory,
    options: {
      batch: formatBatchSize(batchSize),
      canary: opts.canary,
      pauseMs: opts.pauseMs,
      maxFailures: formatFailureBudget(budget),
      smokeTimeoutMs: opts.smokeTimeoutMs,
      forceUnlock: opts.forceUnlock,
      allowDowngrade: opts.plan.options.allowDowngrade,
      onUnreachable,
      onBudgetExceeded,
      windows: windows.map((w) => w.text),
      resumedFrom: opts.resumedFrom ?? null,
      ...(opts.unstick ? { unstick: true } : {}),
      ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    },
    batches: records,
    interrupted,
    stoppedReason: interrupted ? 'interrupted' : stoppedReason,
    nodes: opts.plan.nodes.map((np) => outcomes.get(np.name) as NodeOutcome),
  });
  emit({ type: 'run-end', at: report.finishedAt, report });
  return report;
}

async function runNode(opts: ExecuteOptions, upgrade: UpgradeFn, job: NodeJob, emit: (e: NodeEvent) => void): Promise<NodeOutcome> {
  let session: NodeSession;
  try {
    session = await opts.transport.connect(job.node, { signal: opts.signal });
  } catch (err) {
    const o = skippedOutcome(job.plan, 'unreachable', `could not connect: ${errorMessage(err)}`);
    return withPolicy(o, opts.onUnreachable === 'skip' ? 'unreachable-skip' : null);
  }
  // Which steps began, so an unexpected throw can say whether runc may have been replaced.
  const started = new Set<StepName>();
  try {
    return await upgrade(
      session,
      job,
      (e) => {
        if (e.status === 'start') started.add(e.step);
        emit(e);
      },
      opts.signal,
    );
  } catch (err) {
    const touched = [...started].some((s) => AFTER_BACKUP.has(s));
    return {
      ...skippedOutcome(job.plan, touched ? 'unknown' : 'failed', errorMessage(err)),
      failedStep: [...started].pop() ?? null,
    };
  } finally {
    await session.close().catch(() => undefined);
  }
}

/**
 * `--on-budget-exceeded rollback-all`: every node this run upgraded, newest
 * first, one at a time, through the same restore as `runc-rollout rollback`.
 * An interruption stops starting further rollbacks; those nodes stay upgraded.
 */
async function rollbackAll(
  opts: ExecuteOptions,
  newestFirst: string[],
  outcomes: Map<string, NodeOutcome>,
  failures: number,
  budget: FailureBudget,
  emit: (e: ExecutorEvent) => void,
): Promise<void> {
  if (newestFirst.length === 0) return;
  const rollback = opts.rollback ?? rollbackNode;
  const specs = new Map(opts.nodes.map((n) => [n.name, n]));
  const why = `${failures} failed node(s) exceeded the failure budget (--max-failures ${formatFailureBudget(budget)})`;
  emit({ type: 'rollback-all-start', at: now(), nodes: newestFirst });
  for (const name of newestFirst) {
    const upgraded = outcomes.get(name) as NodeOutcome;
    if (opts.signal?.aborted) {
      outcomes.set(name, { ...upgraded, error: `not rolled back: interrupted before --on-budget-exceeded rollback-all reached it (${why})` });
      continue;
    }
    const node = specs.get(name) as NodeSpec;
    let result: NodeOutcome;
    let session: NodeSession | undefined;
    try {
      session = await opts.transport.connect(node, { signal: opts.signal });
      result = await rollback(session, node, () => undefined, {
        runId: opts.runId,
        smokeTimeoutMs: opts.smokeTimeoutMs,
        lockOwner: opts.lockOwner,
        forceUnlock: opts.forceUnlock,
      });
    } catch (err) {
      result = { ...upgraded, status: 'upgraded', error: `--on-budget-exceeded rollback-all could not roll it back: ${errorMessage(err)}`, steps: [] };
    } finally {
      await session?.close().catch(() => undefined);
    }
    const merged: NodeOutcome = {
      ...upgraded,
      status: result.status === 'unchanged' ? 'failed' : result.status,
      to: result.status === 'rolled-back' ? result.to : upgraded.to,
      error:
        result.status === 'rolled-back'
          ? `rolled back by --on-budget-exceeded rollback-all: ${why}`
          : `--on-budget-exceeded rollback-all: ${result.error ?? 'rollback failed'}`,
      sysctl: { before: upgraded.sysctl.before, after: result.sysctl.after ?? upgraded.sysctl.after },
      steps: [...upgraded.steps, ...result.steps],
      rollback: result.rollback,
      policy: 'rollback-all',
    };
    if (result.status === 'upgraded') merged.status = 'upgraded';
    outcomes.set(name, merged);
    emit({ type: 'rollback-all-node', at: now(), outcome: merged });
  }
}

function withPolicy(o: NodeOutcome, policy: NodePolicy | null): NodeOutcome {
  return { ...o, policy };
}

/** Resolves false when interrupted. */
async function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

const now = () => new Date().toISOString();
