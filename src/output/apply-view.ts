// Live progress of an apply or rollback, driven only by executor events:
// a listr2 tree (batch -> node -> step) on a terminal, plain timestamped lines
// in CI or when output is not a terminal, so logs stay greppable.
import type { Writable } from 'node:stream';
import type { ExecutorEvent } from '../apply/executor.js';
import type { NodeOutcome } from '../apply/types.js';
import { formatDuration } from '../core/batching.js';

export interface ApplyView {
  handle(e: ExecutorEvent): void;
  /** Resolves once everything is drawn; safe to call when the run failed before it started. */
  close(): Promise<void>;
}

export function createApplyView(opts: { out: Writable; interactive: boolean }): ApplyView {
  return opts.interactive ? lazyListrView(opts.out) : createLineView(opts.out);
}

/** listr2 loads only on a terminal (CI runs never pay for it); events wait the few ms it takes. */
function lazyListrView(out: Writable): ApplyView {
  const pending: ExecutorEvent[] = [];
  let view: ApplyView | undefined;
  const loading = import('./apply-listr.js').then((m) => {
    view = m.createListrView(out);
    for (const e of pending.splice(0)) view.handle(e);
  });
  return {
    handle: (e) => (view ? view.handle(e) : void pending.push(e)),
    close: async () => {
      await loading;
      await view?.close();
    },
  };
}

/** `2026-11-28T18:02:03Z`: second precision is plenty for a log and keeps lines short. */
export function stamp(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

export const STOP_TEXT: Record<'budget-exceeded' | 'interrupted' | 'window', string> = {
  'budget-exceeded': 'failure budget exceeded',
  interrupted: 'interrupted',
  window: 'no rollout window open',
};

export function short(sha: string | null | undefined): string {
  return sha ? `${sha.slice(0, 12)}…` : '?';
}

export function describeOutcome(o: NodeOutcome): string {
  const from = o.from?.version ?? '?';
  switch (o.status) {
    case 'upgraded':
      return `upgraded ${from} -> ${o.to?.version ?? '?'}`;
    case 'unchanged':
      return `unchanged at ${from}`;
    case 'rolled-back':
      // From `rollback` there is no failed step: the restored version is in `to`.
      return o.failedStep ? `rolled back to ${from} (failed at ${o.failedStep})` : `rolled back to ${o.to?.version ?? '?'}`;
    default:
      return `${o.status}${o.failedStep ? ` at ${o.failedStep}` : ''}`;
  }
}

function firstLine(s: string | undefined | null): string {
  return (s ?? '').split('\n')[0] ?? '';
}

export function createLineView(out: Writable): ApplyView {
  let total = 0;
  const line = (at: string, text: string) => out.write(`${stamp(at)} ${text}\n`);
  const detail = (at: string, text: string, rest: string | null | undefined) => {
    line(at, text);
    const more = (rest ?? '').split('\n').slice(1).filter(Boolean);
    for (const m of more) out.write(`    ${m}\n`);
  };
  return {
    handle(e) {
      switch (e.type) {
        case 'run-start': {
          total = e.batches.length;
          const nodes = e.batches.reduce((n, b) => n + b.nodes.length, 0);
          line(e.at, `run ${e.runId}: ${nodes} node(s) in ${total} batch(es); failure budget: ${e.budget}`);
          for (const s of e.skipped) line(e.at, `${s.name} ${s.status}: ${firstLine(s.error)}`);
          break;
        }
        case 'batch-start':
          line(e.at, `batch ${e.batch.index + 1}/${total}${e.batch.canary ? ' (canary)' : ''} start: ${e.batch.nodes.join(', ')}`);
          break;
        case 'node-start':
          line(e.at, `${e.node} start (${e.action})`);
          break;
        case 'node-event': {
          const ev = e.event;
          const msg = ev.message ? ` ${firstLine(ev.message)}` : '';
          if (ev.status === 'failed') detail(ev.at, `${ev.node} ${ev.step} failed${msg}`, ev.message);
          else line(ev.at, `${ev.node} ${ev.step} ${ev.status}${msg}`);
          break;
        }
        case 'node-end': {
          const o = e.outcome;
          const err = o.status === 'upgraded' || o.status === 'unchanged' ? '' : o.error ? `: ${firstLine(o.error)}` : '';
          line(e.at, `${o.name} ${describeOutcome(o)}${err}`);
          break;
        }
        case 'batch-end':
          line(e.at, `batch ${e.batch.index + 1}/${total} end: ${e.failures} failed (${e.totalFailures} in this run)`);
          break;
        case 'pause':
          line(e.at, `pausing ${formatDuration(e.ms)} before batch ${e.nextBatch + 1}/${total}`);
          break;
        case 'stopped':
          line(
            e.at,
            `stopped: ${STOP_TEXT[e.reason]}` +
              (e.notAttempted.length ? `; not attempted: ${e.notAttempted.join(', ')}` : ''),
          );
          break;
        case 'rollback-all-start':
          line(e.at, `rolling back every node this run upgraded, newest first (--on-budget-exceeded rollback-all): ${e.nodes.join(', ')}`);
          break;
        case 'rollback-all-node':
          line(e.at, `${e.outcome.name} ${describeOutcome(e.outcome)} (rollback-all)${e.outcome.status === 'rolled-back' ? '' : `: ${firstLine(e.outcome.error)}`}`);
          break;
        case 'run-end':
          line(e.at, `run ${e.report.runId} finished: exit ${e.report.exitCode}`);
          break;
      }
    },
    async close() {},
  };
}
