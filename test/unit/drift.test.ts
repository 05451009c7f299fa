import { describe, expect, it } from 'vitest';
import { planDrift } from '../../src/core/drift.js';
import type { NodePlan, Plan } from '../../src/core/types.js';

function node(name: string, sha = 'a'.repeat(64)): NodePlan {
  return {
    name,
    host: '10.0.0.1',
    port: 22,
    arch: 'amd64',
    runcPath: '/usr/local/sbin/runc',
    action: 'upgrade',
    current: { version: '1.1.12', sha256: sha },
    target: { version: '1.2.9', sha256: 'b'.repeat(64) },
    sysctl: { live: 65536, persisted: 65536, persistedFrom: '/etc/sysctl.d/90-pipe.conf:2', target: 16384, changeLive: true, changePersisted: true, commentOut: [] },
    warnings: [],
    error: null,
  };
}

function plan(nodes: NodePlan[], assetSha = 'b'.repeat(64)): Plan {
  return {
    schema: 1,
    createdAt: '2026-11-28T18:00:00.000Z',
    tool: { name: 'runc-rollout', version: '0.1.0' },
    release: { repo: 'o/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: { amd64: { name: 'runc.amd64', sha256: assetSha, size: 1 } } },
    inventory: '/inv.yaml',
    limit: [],
    options: { allowDowngrade: false },
    nodes,
    summary: { upgrade: nodes.length, downgrade: 0, unchanged: 0, blocked: 0, unreachable: 0 },
  };
}

describe('planDrift', () => {
  it('is empty when nothing changed', () => {
    expect(planDrift(plan([node('n1'), node('n2')]), plan([node('n1'), node('n2')]))).toEqual([]);
  });

  it('names each node whose runc digest changed, and only those', () => {
    const drift = planDrift(plan([node('n1'), node('n2'), node('n3')]), plan([node('n1'), node('n2', 'c'.repeat(64)), node('n3')]));
    expect(drift).toEqual([`n2: runc digest was ${'a'.repeat(12)} (1.1.12), now ${'c'.repeat(12)} (1.1.12)`]);
  });

  it('names a changed release asset', () => {
    expect(planDrift(plan([node('n1')]), plan([node('n1')], 'd'.repeat(64)))).toEqual([`release: runc.amd64 digest was ${'b'.repeat(12)}, now ${'d'.repeat(12)}`]);
  });

  it('names nodes that appeared, vanished, or cannot be reached', () => {
    const gone = { ...node('n2'), action: 'unreachable' as const, current: null, error: 'connection refused' };
    const drift = planDrift(plan([node('n1'), node('n2')]), plan([node('n3'), gone]));
    expect(drift).toEqual([
      'n1: in the saved plan but no longer selected in the inventory',
      'n2: unreachable now (connection refused); its runc cannot be checked',
      'n3: selected now but not in the saved plan',
    ]);
  });

  it('names a sysctl change that would alter what apply does', () => {
    const fresh = node('n1');
    fresh.sysctl = { ...(fresh.sysctl as NonNullable<NodePlan['sysctl']>), live: 16384 };
    expect(planDrift(plan([node('n1')]), plan([fresh]))).toEqual([expect.stringMatching(/^n1: sysctl was live 65536.*, now live 16384/)]);
  });
});
