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
  makeBatches,
  type BatchSize,
  type FailureBudget,
} from '../core/batching.js';
import { mapLimit } from '../core/concurrency.js';
import type { NodeSpec, Plan, PlanAction, VerifiedRelease } from '../core/types.js';
import type { NodeSession, Transport } from '../ssh/transport.js';
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
  | { type: 'run-end'; at: string; report: RunReport };

export type UpgradeFn = (session: NodeSession, job: NodeJob, emit: (e: NodeEvent) => void, signal?: AbortSignal) => Promise<NodeOutcome>;

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

  const outcomes = new Map<string, NodeOutcome>();
  const skipped: NodeOutcome[] = [];
  for (const np of opts.plan.nodes) {
    if (RUNNABLE.includes(np.action)) continue;
    const o =
      np.action === 'unreachable'
        ? skippedOutcome(np, 'unreachable', `unreachable when planned: ${np.error ?? 'no detail'}`)
        : skippedOutcome(np, 'not-attempted', `blocked by the plan: ${np.error ?? 'no detail'}`);
    outcomes.set(np.name, o);
    skipped.push(o);
  }

  const batches = makeBatches(
    opts.plan.nodes.filter((n) => RUNNABLE.includes(n.action)),
    { batch: batchSize, canary: opts.canary },
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
    record.startedAt = now();
    emit({ type: 'batch-start', at: record.startedAt, batch: info });
    const results = await mapLimit(batch.items, Math.max(1, opts.parallel ?? batch.items.length), async (np) => {
      if (opts.signal?.aborted) {
        const outcome = skippedOutcome(np, 'not-attempted', 'not attempted: interrupted before this node started');
        emit({ type: 'node-end', at: now(), batch: i, outcome });
        return outcome;
      }
      emit({ type: 'node-start', at: now(), batch: i, node: np.name, action: np.action });
      const outcome = await runNode(opts, upgrade, jobs.get(np.name) as NodeJob, (event) => emit({ type: 'node-event', batch: i, event }));
      emit({ type: 'node-end', at: now(), batch: i, outcome });
      return outcome;
    });
    for (const o of results) outcomes.set(o.name, o);
    record.failures = results.filter((o) => FAILED_STATUSES.includes(o.status)).length;
    record.finishedAt = now();
    failures += record.failures;
    emit({ type: 'batch-end', at: record.finishedAt, batch: info, failures: record.failures, totalFailures: failures });

    if (opts.signal?.aborted) {
      stoppedReason = 'interrupted';
      break;
    }
    const more = i < batches.length - 1;
    // Only a budget that stops something is reported as stopping the run.
    if (more && budgetExceeded(failures, budget, selected)) {
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
    const why =
      stoppedReason === 'budget-exceeded'
        ? `not attempted: ${failures} failed node(s) exceeded the failure budget (--max-failures ${formatFailureBudget(budget)})`
        : 'not attempted: interrupted';
    outcomes.set(np.name, skippedOutcome(np, 'not-attempted', why));
    notAttempted.push(np.name);
  }
  if (stoppedReason) emit({ type: 'stopped', at: now(), reason: stoppedReason, notAttempted });

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
    return skippedOutcome(job.plan, 'unreachable', `could not connect: ${errorMessage(err)}`);
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
