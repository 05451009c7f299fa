// `--shard i/n`: split the selected nodes between n controllers running in
// parallel (a CI matrix), so that every node lands in exactly one shard. Pure.
//
// Strategy: round-robin over the nodes sorted by name (UTF-16 code unit order,
// not locale order, so every machine and Node version agrees). Why this and not
// rendezvous (highest-random-weight) hashing:
// - Balance. Round-robin gives shard sizes within ±1 of each other. Rendezvous
//   hashing only balances on average: with 40 nodes over 4 shards one shard
//   routinely gets 14 and another 7, and the slowest shard sets the pipeline's
//   wall time.
// - Stability. A node's shard depends only on the set of selected names, never on
//   inventory order or `--limit` order, so the same inventory gives the same
//   shards on every run and on every machine. What round-robin gives up is
//   stability under *membership* changes: adding or removing a node moves the
//   nodes sorted after it. That is harmless for the intended use, because all n
//   jobs of one pipeline read the same inventory, so their shards are always
//   disjoint and complete; only comparing shard contents across two different
//   inventories shows the shift.
import { InputError } from '../errors.js';

export interface ShardSpec {
  /** 1-based, as in CI matrices (GitLab's CI_NODE_INDEX is 1-based too). */
  index: number;
  total: number;
}

/** Parse `i/n` (1 <= i <= n). Errors name `--shard`, since that is what the user typed. */
export function parseShard(spec: string): ShardSpec {
  const m = /^\s*(\d{1,6})\s*\/\s*(\d{1,6})\s*$/.exec(spec);
  const hint = 'expected i/n with 1 <= i <= n, e.g. --shard 2/4';
  if (!m) throw new InputError(`--shard ${JSON.stringify(spec)}: ${hint}`);
  const index = Number(m[1]);
  const total = Number(m[2]);
  if (total < 1) throw new InputError(`--shard ${JSON.stringify(spec)}: the number of shards must be at least 1`);
  if (index < 1 || index > total) {
    throw new InputError(`--shard ${JSON.stringify(spec)}: shard ${index} does not exist; ${hint}`);
  }
  return { index, total };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The nodes of shard `spec` ("i/n"), in their original (inventory) order.
 * A shard may be empty when n exceeds the number of nodes; that is not an
 * error here, so a fixed-size CI matrix keeps working as a fleet shrinks.
 */
export function shardNodes<T extends { name: string }>(nodes: T[], spec: string): T[] {
  const { index, total } = parseShard(spec);
  // Array.prototype.sort is stable, so duplicate names (which a validated
  // inventory never has) still get a deterministic order.
  const sorted = [...nodes].sort(byName);
  const mine = new Set<T>(sorted.filter((_, i) => i % total === index - 1));
  return nodes.filter((n) => mine.has(n));
}
