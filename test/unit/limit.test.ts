import { describe, expect, it } from 'vitest';
import { selectNodes } from '../../src/core/limit.js';
import type { NodeSpec } from '../../src/core/types.js';
import { InputError } from '../../src/errors.js';

const node = (name: string, labels: Record<string, string> = {}): NodeSpec => ({
  name,
  labels,
  ssh: { host: `${name}.example`, port: 22, user: 'root', knownHosts: '/kh', hostKeyPolicy: 'strict', sudo: false },
});
const fleet = [
  node('web-1', { pool: 'web', zone: 'a' }),
  node('web-2', { pool: 'web', zone: 'b' }),
  node('gpu-1', { pool: 'gpu', zone: 'a' }),
  node('db-1', { pool: '' }),
];
const names = (nodes: NodeSpec[]) => nodes.map((n) => n.name);

describe('selectNodes', () => {
  it('returns every node without limits', () => {
    expect(names(selectNodes(fleet, []))).toEqual(['web-1', 'web-2', 'gpu-1', 'db-1']);
  });

  it.each([
    [['web-1'], ['web-1']],
    [['web-*'], ['web-1', 'web-2']],
    [['*-1'], ['web-1', 'gpu-1', 'db-1']],
    [['{gpu,db}-?'], ['gpu-1', 'db-1']],
    [['pool=gpu'], ['gpu-1']],
    [['zone=a'], ['web-1', 'gpu-1']],
    [['pool=w*'], ['web-1', 'web-2']],
    [['pool='], ['db-1']],
    // A union, kept in inventory order, without duplicates.
    [['gpu-1', 'zone=a', 'web-2'], ['web-1', 'web-2', 'gpu-1']],
  ])('%j selects %j', (limits, expected) => {
    expect(names(selectNodes(fleet, limits))).toEqual(expected);
  });

  it('refuses a limit that matches nothing, naming it, even next to ones that match', () => {
    const run = () => selectNodes(fleet, ['web-*', 'wbe-1', 'pool=cpu']);
    expect(run).toThrow(InputError);
    expect(run).toThrow('--limit "wbe-1", "pool=cpu" matched no node (each)');
    try {
      run();
    } catch (err) {
      expect((err as InputError).issues).toEqual(['--limit "wbe-1": matches no node name or group', '--limit "pool=cpu": matches no node label']);
    }
  });

  it('does not match a label the node does not have, and refuses malformed limits', () => {
    expect(() => selectNodes(fleet, ['rack=*'])).toThrow('--limit "rack=*" matched no node');
    expect(() => selectNodes(fleet, ['=web'])).toThrow('--limit "=web": label name missing before "="');
    expect(() => selectNodes(fleet, [' '])).toThrow('--limit: empty value');
  });
});

describe('selectNodes by Ansible group', () => {
  const grouped = [
    { ...node('cp-1'), groups: ['control_plane', 'k8s'] },
    { ...node('worker-01'), groups: ['k8s', 'workers'] },
    node('edge-01'),
  ];
  it('selects the members of a group, ancestors included', () => {
    expect(names(selectNodes(grouped, ['workers']))).toEqual(['worker-01']);
    expect(names(selectNodes(grouped, ['k8s']))).toEqual(['cp-1', 'worker-01']);
  });
  it('matches group names exactly, not as globs', () => {
    expect(() => selectNodes(grouped, ['k8*'])).toThrow('matched no node');
  });
});
