// The frame of a command that acts on every selected node at once, in one
// batch with no failure budget (rollback, unstick): the same events apply
// emits (so the same views render it), a bounded number of nodes at a time,
// nothing new started once interrupted, and the run report, always written.
import type { ExecutorEvent } from '../apply/executor.js';
import { OK_STATUSES, assembleReport, untouchedOutcome, writeReport, type BatchRecord, type RunReport } from '../apply/report.js';
import type { NodeEvent, NodeOutcome } from '../apply/types.js';
import { mapLimit } from '../core/concurrency.js';

export interface SingleBatchOptions<N extends { name: string; host: string }> {
  command: Exclude<RunReport['command'], 'apply'>;
  nodes: N[];
  parallel: number;
  runId: string;
  startedAt: string;
  toolVersion: string;
  inventory: string;
  options: RunReport['options'];
  /** The run-start event's budget line. */
  budget: string;
  reportPath: string;
  onEvent?: (e: ExecutorEvent) => void;
  signal?: AbortSignal;
  /** One node's work; `emit` reports its steps. */
  each: (node: N, emit: (e: NodeEvent) => void) => Promise<NodeOutcome>;
}

export async function runSingleBatch<N extends { name: string; host: string }>(o: SingleBatchOptions<N>): Promise<RunReport> {
  const emit = (e: ExecutorEvent) => o.onEvent?.(e);
  const batch = { index: 0, canary: false, nodes: o.nodes.map((n) => n.name) };
  const record: BatchRecord = { ...batch, startedAt: now(), finishedAt: null, failures: 0 };
  emit({ type: 'run-start', at: o.startedAt, runId: o.runId, batches: [batch], skipped: [], budget: o.budget });
  emit({ type: 'batch-start', at: record.startedAt as string, batch });
  const outcomes = await mapLimit(o.nodes, o.parallel, async (node): Promise<NodeOutcome> => {
    let outcome: NodeOutcome;
    if (o.signal?.aborted) {
      outcome = untouchedOutcome(node, 'not-attempted', 'not attempted: interrupted');
    } else {
      emit({ type: 'node-start', at: now(), batch: 0, node: node.name, action: 'none' });
      outcome = await o.each(node, (event) => emit({ type: 'node-event', batch: 0, event }));
    }
    emit({ type: 'node-end', at: now(), batch: 0, outcome });
    return outcome;
  });
  record.failures = outcomes.filter((x) => !OK_STATUSES[o.command].includes(x.status)).length;
  record.finishedAt = now();
  emit({ type: 'batch-end', at: record.finishedAt, batch, failures: record.failures, totalFailures: record.failures });

  const interrupted = Boolean(o.signal?.aborted);
  const notAttempted = outcomes.filter((x) => x.status === 'not-attempted').map((x) => x.name);
  if (interrupted) emit({ type: 'stopped', at: now(), reason: 'interrupted', notAttempted });
  const report = assembleReport({
    command: o.command,
    runId: o.runId,
    startedAt: o.startedAt,
    finishedAt: now(),
    toolVersion: o.toolVersion,
    release: null,
    inventory: o.inventory,
    options: o.options,
    batches: [record],
    interrupted,
    stoppedReason: interrupted ? 'interrupted' : null,
    nodes: outcomes,
  });
  emit({ type: 'run-end', at: report.finishedAt, report });
  await writeReport(report, o.reportPath);
  return report;
}

const now = () => new Date().toISOString();
