// Rollout arithmetic: batch sizes, canaries, the failure budget and durations.
// Pure, so the policy can be read and tested without a fleet.
import { InputError } from '../errors.js';

/** `--batch N` or `--batch P%` (of the selected nodes). */
export type BatchSize = { kind: 'count'; count: number } | { kind: 'percent'; percent: number };

/**
 * `--max-failures N` (or `P%` of the selected nodes): one budget for the whole
 * rollout, checked after each batch; the run stops once failures EXCEED it.
 */
export type FailureBudget = { kind: 'count'; count: number } | { kind: 'percent'; percent: number };

export interface BatchPolicy {
  batch: BatchSize;
  /** Nodes in the canary batch (0: no canary). */
  canary: number;
}

export interface Batch<T> {
  /** 0-based position in the run. */
  index: number;
  canary: boolean;
  items: T[];
}

const COUNT = /^\d+$/;
const PERCENT = /^(\d+(?:\.\d+)?)%$/;

export function parseBatchSize(text: string, flag = '--batch'): BatchSize {
  const s = text.trim();
  const pct = PERCENT.exec(s);
  if (pct) {
    const percent = Number(pct[1]);
    if (!(percent > 0 && percent <= 100)) throw new InputError(`${flag} ${text}: a percentage must be above 0% and at most 100%`);
    return { kind: 'percent', percent };
  }
  if (COUNT.test(s) && Number(s) >= 1) return { kind: 'count', count: Number(s) };
  throw new InputError(`${flag} ${text}: expected a node count (e.g. 5) or a percentage of the selected nodes (e.g. 20%)`);
}

/** A non-negative whole number flag (`--canary`, `--parallel` with min 1). */
export function parseCount(text: string, flag: string, min = 0): number {
  const s = text.trim();
  if (!COUNT.test(s) || Number(s) < min) throw new InputError(`${flag} ${text}: expected a whole number${min > 0 ? ` of at least ${min}` : ''}`);
  return Number(s);
}

export function parseFailureBudget(text: string, flag = '--max-failures'): FailureBudget {
  const s = text.trim();
  const pct = PERCENT.exec(s);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent > 100) throw new InputError(`${flag} ${text}: a percentage must be at most 100%`);
    return { kind: 'percent', percent };
  }
  if (COUNT.test(s)) return { kind: 'count', count: Number(s) };
  throw new InputError(`${flag} ${text}: expected a number of failed nodes (e.g. 0, 2) or a percentage of the selected nodes (e.g. 10%)`);
}

/** Nodes per batch for `selected` selected nodes: a percentage is rounded up, never below 1. */
export function batchCount(size: BatchSize, selected: number): number {
  if (size.kind === 'count') return size.count;
  return Math.max(1, Math.ceil((selected * size.percent) / 100));
}

/**
 * Split `items` (plan order) into batches: the first `canary` items as their
 * own batch, then batches of `batchCount(batch, selected)`. `selected` is the
 * size of the whole selection (including nodes that will not be batched), so
 * `--batch 20%` means the same thing whatever the plan decided per node.
 */
export function makeBatches<T>(items: readonly T[], policy: BatchPolicy, selected = items.length): Batch<T>[] {
  const batches: Batch<T>[] = [];
  let rest = items.slice();
  if (policy.canary > 0 && rest.length > 0) {
    batches.push({ index: 0, canary: true, items: rest.slice(0, policy.canary) });
    rest = rest.slice(policy.canary);
  }
  const size = batchCount(policy.batch, selected);
  for (let i = 0; i < rest.length; i += size) {
    batches.push({ index: batches.length, canary: false, items: rest.slice(i, i + size) });
  }
  return batches;
}

/** Failures tolerated before the run stops; a percentage rounds down (10% of 5 nodes tolerates 0). */
export function budgetLimit(budget: FailureBudget, selected: number): number {
  if (budget.kind === 'count') return budget.count;
  return Math.floor((selected * budget.percent) / 100);
}

/** Like Ansible's max_fail_percentage, the budget must be exceeded, not reached. */
export function budgetExceeded(failures: number, budget: FailureBudget, selected: number): boolean {
  return failures > budgetLimit(budget, selected);
}

/** The budget in words, for plan output and reports. */
export function describeBudget(budget: FailureBudget, selected: number): string {
  const stopAt = budgetLimit(budget, selected) + 1;
  const of = `out of ${selected}`;
  return `stops after ${stopAt} failed node${stopAt === 1 ? '' : 's'} ${of}`;
}

export function formatBatchSize(size: BatchSize): string {
  return size.kind === 'count' ? String(size.count) : `${size.percent}%`;
}

export function formatFailureBudget(budget: FailureBudget): string {
  return budget.kind === 'count' ? String(budget.count) : `${budget.percent}%`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `2m`, `1h`, `1m30s`; a bare `0` is allowed. Returns milliseconds. */
export function parseDuration(text: string, flag = 'duration'): number {
  const s = text.trim();
  if (s === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) throw new InputError(`${flag} ${text}: expected a duration like 500ms, 30s, 2m or 1h`);
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    pos = part.lastIndex;
  }
  if (s.length === 0) throw new InputError(`${flag}: empty duration`);
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}
