import { describe, expect, it } from 'vitest';
import { parseShard, shardNodes } from '../../src/core/shard.js';
import { InputError } from '../../src/errors.js';

const fleet = (n: number, prefix = 'worker-') =>
  Array.from({ length: n }, (_, i) => ({ name: `${prefix}${String(i + 1).padStart(3, '0')}`, host: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}` }));
const names = (nodes: { name: string }[]) => nodes.map((n) => n.name);

function allShards<T extends { name: string }>(nodes: T[], total: number): T[][] {
  return Array.from({ length: total }, (_, i) => shardNodes(nodes, `${i + 1}/${total}`));
}

describe('parseShard', () => {
  it.each([
    ['1/1', { index: 1, total: 1 }],
    ['2/4', { index: 2, total: 4 }],
    [' 4 / 4 ', { index: 4, total: 4 }],
  ])('%j parses', (spec, expected) => {
    expect(parseShard(spec)).toEqual(expected);
  });

  it.each([
    ['0/4', 'shard 0 does not exist'],
    ['5/4', 'shard 5 does not exist'],
    ['1/0', 'the number of shards must be at least 1'],
    ['2', 'expected i/n'],
    ['a/b', 'expected i/n'],
    ['-1/4', 'expected i/n'],
    ['1.5/4', 'expected i/n'],
    ['', 'expected i/n'],
  ])('%j is refused as an InputError naming --shard', (spec, message) => {
    expect(() => parseShard(spec)).toThrow(InputError);
    expect(() => parseShard(spec)).toThrow(`--shard ${JSON.stringify(spec)}: `);
    expect(() => parseShard(spec)).toThrow(message);
  });

  it('shardNodes refuses a bad spec too', () => {
    expect(() => shardNodes(fleet(3), '4/3')).toThrow(InputError);
  });
});

describe('shardNodes', () => {
  it.each([
    [1, 1],
    [10, 3],
    [37, 4],
    [100, 7],
    [3, 5],
  ])('%i nodes over %i shards: every node exactly once, sizes within ±1', (count, total) => {
    const nodes = fleet(count);
    const shards = allShards(nodes, total);
    const seen = shards.flat().map((n) => n.name).sort();
    expect(seen).toEqual(names(nodes).sort());
    expect(new Set(seen).size).toBe(count);
    const sizes = shards.map((s) => s.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('returns an empty shard when there are more shards than nodes', () => {
    expect(allShards(fleet(3), 5).map((s) => s.length)).toEqual([1, 1, 1, 0, 0]);
  });

  it('is the same on every run and does not depend on the input order', () => {
    const nodes = fleet(23);
    const shuffled = [...nodes].reverse();
    shuffled.push(shuffled.shift()!);
    for (let i = 1; i <= 4; i++) {
      const a = names(shardNodes(nodes, `${i}/4`)).sort();
      expect(names(shardNodes(nodes, `${i}/4`)).sort()).toEqual(a);
      expect(names(shardNodes(shuffled, `${i}/4`)).sort()).toEqual(a);
    }
  });

  it('pins the assignment: round-robin over names in code-unit order', () => {
    // Code-unit order puts upper case before lower case and "b-10" before "b-2":
    // the same on every machine, unlike localeCompare.
    const nodes = ['b-2', 'a', 'B', 'b-10', 'c'].map((name) => ({ name }));
    // Sorted: B, a, b-10, b-2, c. Shard 1 takes positions 0, 2, 4; shard 2 takes 1, 3;
    // each shard is returned in input order.
    expect(names(shardNodes(nodes, '1/2'))).toEqual(['B', 'b-10', 'c']);
    expect(names(shardNodes(nodes, '2/2'))).toEqual(['b-2', 'a']);
  });

  it('keeps the inventory order inside a shard and returns the same objects', () => {
    const nodes = fleet(9);
    const shard = shardNodes(nodes, '2/3');
    expect(shard.every((n) => nodes.includes(n))).toBe(true);
    const positions = shard.map((n) => nodes.indexOf(n));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('with one shard returns every node', () => {
    const nodes = fleet(5);
    expect(shardNodes(nodes, '1/1')).toEqual(nodes);
  });

  it('a node added or removed moves only nodes sorted after it', () => {
    const before = fleet(20);
    const after = [...before, { name: 'worker-999', host: '10.9.9.9' }];
    // worker-999 sorts last: nobody else moves.
    for (let i = 1; i <= 3; i++) {
      const b = names(shardNodes(before, `${i}/3`));
      const a = names(shardNodes(after, `${i}/3`)).filter((n) => n !== 'worker-999');
      expect(a).toEqual(b);
    }
  });
});
