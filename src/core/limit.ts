// `--limit`: which nodes of the inventory a command acts on. Pure.
import picomatch from 'picomatch';
import { InputError } from '../errors.js';
import type { NodeSpec } from './types.js';

/**
 * Each limit is a name glob (`worker-*`, `{db,web}-?`), an Ansible group name, or `label=value`
 * (value may be a glob too). Several limits are a union; the inventory's order
 * is kept. A limit that matches nothing is refused: it is almost always a typo,
 * and silently acting on fewer nodes than meant is worse than stopping.
 */
export function selectNodes(nodes: NodeSpec[], limits: string[]): NodeSpec[] {
  if (limits.length === 0) return [...nodes];
  const picked = new Set<NodeSpec>();
  const unmatched: string[] = [];
  for (const raw of limits) {
    const limit = raw.trim();
    if (limit === '') throw new InputError('--limit: empty value');
    const matcher = compile(limit);
    const hits = nodes.filter(matcher);
    if (hits.length === 0) unmatched.push(limit);
    for (const n of hits) picked.add(n);
  }
  if (unmatched.length > 0) {
    const names = unmatched.map((l) => JSON.stringify(l)).join(', ');
    throw new InputError(
      `--limit ${names} matched no node${unmatched.length > 1 ? ' (each)' : ''}`,
      unmatched.map((l) => `--limit ${JSON.stringify(l)}: matches no node ${l.includes('=') ? 'label' : 'name or group'}`),
    );
  }
  return nodes.filter((n) => picked.has(n));
}

function compile(limit: string): (node: NodeSpec) => boolean {
  const eq = limit.indexOf('=');
  if (eq > 0) {
    const key = limit.slice(0, eq);
    const glob = limit.slice(eq + 1);
    const value = glob === '' ? (v: string) => v === '' : picomatch(glob, { dot: true });
    return (n) => Object.hasOwn(n.labels, key) && value(n.labels[key]!);
  }
  if (eq === 0) throw new InputError(`--limit ${JSON.stringify(limit)}: label name missing before "="`);
  const name = picomatch(limit, { dot: true });
  return (n) => name(n.name) || (n.groups?.includes(limit) ?? false);
}
