import { describe, expect, it } from 'vitest';
import {
  batchCount,
  budgetExceeded,
  budgetLimit,
  describeBudget,
  formatDuration,
  makeBatches,
  parseBatchSize,
  parseCount,
  parseDuration,
  parseFailureBudget,
} from '../../src/core/batching.js';
import { InputError } from '../../src/errors.js';

const names = (n: number) => Array.from({ length: n }, (_, i) => `node-${i + 1}`);
const shape = (bs: { items: string[]; canary: boolean }[]) => bs.map((b) => `${b.canary ? 'c:' : ''}${b.items.join(',')}`);

describe('parseBatchSize', () => {
  it('reads counts and percentages', () => {
    expect(parseBatchSize('5')).toEqual({ kind: 'count', count: 5 });
    expect(parseBatchSize('20%')).toEqual({ kind: 'percent', percent: 20 });
    expect(parseBatchSize('12.5%')).toEqual({ kind: 'percent', percent: 12.5 });
  });
  it.each(['0', '0%', '101%', '-1', 'five', '5x', '', '%', '1.5'])('refuses %j', (text) => {
    expect(() => parseBatchSize(text)).toThrow(InputError);
  });
});

describe('parseFailureBudget and parseCount', () => {
  it('allows zero, counts and percentages', () => {
    expect(parseFailureBudget('0')).toEqual({ kind: 'count', count: 0 });
    expect(parseFailureBudget('3')).toEqual({ kind: 'count', count: 3 });
    expect(parseFailureBudget('10%')).toEqual({ kind: 'percent', percent: 10 });
    expect(() => parseFailureBudget('-1')).toThrow(InputError);
    expect(() => parseFailureBudget('150%')).toThrow(InputError);
  });
  it('parseCount enforces the minimum', () => {
    expect(parseCount('0', '--canary')).toBe(0);
    expect(() => parseCount('0', '--parallel', 1)).toThrow(/at least 1/);
    expect(() => parseCount('1e3', '--canary')).toThrow(InputError);
  });
});

describe('makeBatches', () => {
  it('puts the canary first, then fixed-size batches in plan order', () => {
    const bs = makeBatches(names(6), { batch: { kind: 'count', count: 2 }, canary: 1 });
    expect(shape(bs)).toEqual(['c:node-1', 'node-2,node-3', 'node-4,node-5', 'node-6']);
    expect(bs.map((b) => b.index)).toEqual([0, 1, 2, 3]);
  });
  it('without a canary, only fixed-size batches', () => {
    expect(shape(makeBatches(names(3), { batch: { kind: 'count', count: 5 }, canary: 0 }))).toEqual(['node-1,node-2,node-3']);
  });
  it('a canary larger than the list takes everything', () => {
    expect(shape(makeBatches(names(2), { batch: { kind: 'count', count: 1 }, canary: 5 }))).toEqual(['c:node-1,node-2']);
  });
  it('no items, no batches', () => {
    expect(makeBatches([], { batch: { kind: 'count', count: 1 }, canary: 2 })).toEqual([]);
  });
  it('a percentage is of the selected nodes, rounded up, at least one', () => {
    expect(batchCount({ kind: 'percent', percent: 20 }, 10)).toBe(2);
    expect(batchCount({ kind: 'percent', percent: 20 }, 11)).toBe(3);
    expect(batchCount({ kind: 'percent', percent: 1 }, 10)).toBe(1);
    // 4 runnable nodes out of 10 selected: 50% means batches of 5, not 2
    expect(shape(makeBatches(names(4), { batch: { kind: 'percent', percent: 50 }, canary: 0 }, 10))).toEqual(['node-1,node-2,node-3,node-4']);
  });
});

describe('failure budget', () => {
  it('must be exceeded, not reached', () => {
    const zero = { kind: 'count', count: 0 } as const;
    expect(budgetExceeded(0, zero, 10)).toBe(false);
    expect(budgetExceeded(1, zero, 10)).toBe(true);
    const two = { kind: 'count', count: 2 } as const;
    expect(budgetExceeded(2, two, 10)).toBe(false);
    expect(budgetExceeded(3, two, 10)).toBe(true);
  });
  it('a percentage rounds down', () => {
    expect(budgetLimit({ kind: 'percent', percent: 10 }, 5)).toBe(0);
    expect(budgetLimit({ kind: 'percent', percent: 10 }, 40)).toBe(4);
    expect(budgetExceeded(4, { kind: 'percent', percent: 10 }, 40)).toBe(false);
    expect(budgetExceeded(5, { kind: 'percent', percent: 10 }, 40)).toBe(true);
  });
  it('is stated in words', () => {
    expect(describeBudget({ kind: 'count', count: 1 }, 40)).toBe('stops after 2 failed nodes out of 40');
    expect(describeBudget({ kind: 'count', count: 0 }, 6)).toBe('stops after 1 failed node out of 6');
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['0', 0],
  ])('%s -> %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it.each(['', '30', 's', '10 s', '5d', '-1s', '1m 2s'])('refuses %j', (text) => {
    expect(() => parseDuration(text, '--pause')).toThrow(InputError);
  });
  it('formats back', () => {
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(90_000)).toBe('1m30s');
  });
});
