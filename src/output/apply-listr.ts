// The terminal view: a listr2 tree batch -> node -> step. listr2 wants to run
// tasks itself, so each task here only waits for the executor's events about
// it (a "gate") and mirrors them; the work happens in the executor.
import type { Writable } from 'node:stream';
import { Listr, ListrLogger, ProcessOutput, type ListrTask, type ListrTaskWrapper } from 'listr2';
import type { BatchInfo, ExecutorEvent } from '../apply/executor.js';
import { UPGRADE_STEPS, type NodeOutcome, type StepName } from '../apply/types.js';
import type { ApplyView } from './apply-view.js';
import { STOP_TEXT, describeOutcome, short } from './apply-view.js';

// Health gates sit where they run; on nodes without them they never report and disappear.
const STEPS: readonly StepName[] = ['health', ...UPGRADE_STEPS.slice(0, UPGRADE_STEPS.indexOf('sysctl')), 'health-after-swap', 'sysctl', 'smoke-after-sysctl', 'health-after-sysctl', 'unstick', 'health-after-unstick', 'runc-init-check', 'rollback', 'unlock'];
const OK = new Set(['upgraded', 'unchanged']);

type StepResult = { status: 'ok' | 'failed' | 'skipped'; message?: string } | { status: 'absent' };

/** A value that arrives later; resolving twice keeps the first. */
class Gate<T> {
  value: T | undefined;
  readonly promise: Promise<T>;
  private resolveFn!: (v: T) => void;
  constructor() {
    this.promise = new Promise((r) => (this.resolveFn = r));
  }
  open(v: T): void {
    if (this.value !== undefined) return;
    this.value = v;
    this.resolveFn(v);
  }
}

interface NodeGates {
  started: Gate<{ skipped: string | null }>;
  steps: Map<StepName, Gate<StepResult>>;
  /** null: the run ended without an outcome for this node (close() after a failure). */
  ended: Gate<NodeOutcome | null>;
  running: Set<StepName>;
  title: (s: string) => void;
}

export function createListrView(out: Writable): ApplyView {
  const batchGates = new Map<number, Gate<{ skipped: string | null }>>();
  const nodes = new Map<string, NodeGates>();
  const batchTitles = new Map<number, (s: string) => void>();
  let done: Promise<unknown> = Promise.resolve();

  const nodeGates = (name: string): NodeGates => {
    let g = nodes.get(name);
    if (!g) {
      g = { started: new Gate(), steps: new Map(STEPS.map((s) => [s, new Gate<StepResult>()])), ended: new Gate(), running: new Set(), title: () => {} };
      nodes.set(name, g);
    }
    return g;
  };

  const stepTask = (g: NodeGates, step: StepName): ListrTask => ({
    title: step,
    // Steps that turned out not to happen (no rollback needed, ...) disappear instead of showing as skipped.
    enabled: () => (g.steps.get(step) as Gate<StepResult>).value?.status !== 'absent',
    task: async (_ctx, task) => {
      const r = await (g.steps.get(step) as Gate<StepResult>).promise;
      if (r.status === 'absent') return task.skip(`${step}: not reached`);
      if (r.status === 'skipped') return task.skip(`${step}: ${r.message ?? 'skipped'}`);
      if (r.status === 'failed') throw new Error(`${step}: ${(r.message ?? 'failed').split('\n')[0]}`);
      if (r.message) task.title = `${step}: ${r.message.split('\n')[0]}`;
    },
  });

  const verdict = (o: NodeOutcome | null) => {
    if (o && !OK.has(o.status)) throw new Error(`${o.name}: ${o.status}`);
  };

  const nodeTask = (name: string): ListrTask => {
    const g = nodeGates(name);
    return {
      title: name,
      task: async (_ctx, task: ListrTaskWrapper<unknown, any, any>) => {
        g.title = (s) => (task.title = s);
        const start = await g.started.promise;
        if (start.skipped) return task.skip(`${name}: ${start.skipped}`);
        return task.newListr(
          // The untitled last task only marks the node as failed when its outcome is not OK.
          [...STEPS.map((s) => stepTask(g, s)), { task: async () => verdict(await g.ended.promise) }],
          { concurrent: false, exitOnError: false, rendererOptions: { collapseSubtasks: true } },
        );
      },
    };
  };

  const batchTask = (b: BatchInfo, total: number): ListrTask => {
    const gate = new Gate<{ skipped: string | null }>();
    batchGates.set(b.index, gate);
    const title = `batch ${b.index + 1}/${total}${b.canary ? ' (canary)' : ''}: ${b.nodes.join(', ')}`;
    return {
      title,
      task: async (_ctx, task) => {
        batchTitles.set(b.index, (s) => (task.title = `${title}: ${s}`));
        const start = await gate.promise;
        if (start.skipped) return task.skip(`${title}: ${start.skipped}`);
        // Keep one line per node after the batch; a node's steps collapse unless one failed.
        return task.newListr(b.nodes.map(nodeTask), { concurrent: true, exitOnError: false, rendererOptions: { collapseSubtasks: false } });
      },
    };
  };

  /** Steps before `step` that never reported will not run now. */
  const settleBefore = (g: NodeGates, step: StepName) => {
    for (const s of STEPS) {
      if (s === step) break;
      if (!g.running.has(s)) (g.steps.get(s) as Gate<StepResult>).open({ status: 'absent' });
    }
  };

  const endNode = (o: NodeOutcome) => {
    const g = nodeGates(o.name);
    g.started.open({ skipped: o.status === 'not-attempted' || o.status === 'unreachable' ? `${o.status}: ${o.error ?? ''}` : null });
    for (const gate of g.steps.values()) gate.open({ status: 'absent' });
    g.ended.open(o);
    const to = o.status === 'upgraded' ? ` (sha256 ${short(o.to?.sha256)})` : '';
    g.title(`${o.name}: ${OK.has(o.status) ? '' : '✖ '}${describeOutcome(o)}${to}`);
  };

  return {
    handle(e: ExecutorEvent) {
      switch (e.type) {
        case 'run-start': {
          // Both renderers write to `out`, never straight to process.stdout (it may carry --json).
          const logger = new ListrLogger({ useIcons: true, processOutput: new ProcessOutput(out as NodeJS.WriteStream, out as NodeJS.WriteStream) });
          const list = new Listr(
            e.batches.map((b) => batchTask(b, e.batches.length)),
            {
              concurrent: false,
              exitOnError: false,
              registerSignalListeners: false, // main.ts owns SIGINT: listr2 would exit the process
              renderer: 'default',
              rendererOptions: { collapseSubtasks: true, logger },
              fallbackRenderer: 'simple',
              fallbackRendererOptions: { logger },
            },
          );
          done = list.run().catch(() => undefined);
          break;
        }
        case 'batch-start':
          batchGates.get(e.batch.index)?.open({ skipped: null });
          break;
        case 'node-start':
          nodeGates(e.node).started.open({ skipped: null });
          break;
        case 'node-event': {
          const g = nodeGates(e.event.node);
          const { step, status, message } = e.event;
          settleBefore(g, step);
          if (status === 'start') g.running.add(step);
          else (g.steps.get(step) as Gate<StepResult> | undefined)?.open({ status, message });
          break;
        }
        case 'node-end':
          endNode(e.outcome);
          break;
        case 'batch-end':
          batchTitles.get(e.batch.index)?.(`${e.failures} failed${e.totalFailures !== e.failures ? ` (${e.totalFailures} in this run)` : ''}`);
          break;
        case 'pause':
          batchTitles.get(e.nextBatch - 1)?.(`pausing ${Math.round(e.ms / 1000)}s before the next batch`);
          break;
        case 'stopped':
          for (const gate of batchGates.values()) gate.open({ skipped: `not started: ${STOP_TEXT[e.reason]}` });
          break;
        case 'run-end':
          for (const o of e.report.nodes) endNode(o);
          for (const gate of batchGates.values()) gate.open({ skipped: 'not started' });
          break;
        default:
          break;
      }
    },
    async close() {
      // A run that died mid-way must not leave listr2 waiting (and the cursor hidden).
      for (const gate of batchGates.values()) gate.open({ skipped: 'not started' });
      for (const g of nodes.values()) {
        g.started.open({ skipped: 'not started' });
        for (const gate of g.steps.values()) gate.open({ status: 'absent' });
        g.ended.open(null);
      }
      await done;
    },
  };
}
