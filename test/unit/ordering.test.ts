// Rollout order: control-plane nodes last, one label value per batch. Pure,
// plus the executor's use of it with a fake pipeline.
import { describe, expect, it } from 'vitest';
import { executePlan, type ExecutorEvent } from '../../src/apply/executor.js';
import { untouchedOutcome } from '../../src/apply/report.js';
import { makeBatches, type BatchPolicy } from '../../src/core/batching.js';
import { isControlPlane, makeOrderedBatches, orderSegments } from '../../src/core/ordering.js';
import type { NodePlan, NodeSpec, Plan, VerifiedRelease } from '../../src/core/types.js';
import type { Transport } from '../../src/ssh/transport.js';

type N = { name: string; labels: Record<string, string> };
const CP = 'node-role.kubernetes.io/control-plane';
const ZONE = 'topology.kubernetes.io/zone';
const n = (name: string, labels: Record<string, string> = {}): N => ({ name, labels });
const names = (bs: { items: N[]; canary: boolean }[]) => bs.map((b) => `${b.canary ? '*' : ''}${b.items.map((i) => i.name).join(',')}`);
const policy = (batch: number | string, canary = 0): BatchPolicy => ({ batch: typeof batch === 'number' ? { kind: 'count', count: batch } : { kind: 'percent', percent: Number(batch.replace('%', '')) }, canary });

// Inventory order interleaves roles and zones on purpose.
const fleet: N[] = [
  n('cp-1', { [CP]: '', [ZONE]: 'a' }),
  n('w-a1', { [ZONE]: 'a' }),
  n('w-b1', { [ZONE]: 'b' }),
  n('cp-2', { 'node-role.kubernetes.io/master': '', [ZONE]: 'b' }),
  n('w-a2', { [ZONE]: 'a' }),
  n('w-c1', { [ZONE]: 'c' }),
  n('w-b2', { [ZONE]: 'b' }),
  n('w-x'),
];
const labelsOf = (t: N) => t.labels;

describe('isControlPlane', () => {
  it('knows the current, legacy and Rancher labels, and nothing else', () => {
    expect(isControlPlane({ [CP]: '' })).toBe(true);
    expect(isControlPlane({ 'node-role.kubernetes.io/master': '' })).toBe(true);
    expect(isControlPlane({ 'node-role.kubernetes.io/controlplane': 'true' })).toBe(true);
    expect(isControlPlane({ 'node-role.kubernetes.io/controlplane': 'false' })).toBe(false);
    expect(isControlPlane({ 'node-role.kubernetes.io/worker': '' })).toBe(false);
    expect(isControlPlane({})).toBe(false);
  });
});

describe('makeOrderedBatches', () => {
  it('without options is exactly makeBatches', () => {
    expect(makeOrderedBatches(fleet, policy(3, 1), labelsOf, {})).toEqual(makeBatches(fleet, policy(3, 1)));
  });

  it('--control-plane-last: workers first, control-plane nodes only in the final batches, never mixed', () => {
    const b = makeOrderedBatches(fleet, policy(3), labelsOf, { controlPlaneLast: true });
    expect(names(b)).toEqual(['w-a1,w-b1,w-a2', 'w-c1,w-b2,w-x', 'cp-1,cp-2']);
    expect(b.map((x) => x.index)).toEqual([0, 1, 2]);
    // A batch size that would straddle the boundary stops at it.
    expect(names(makeOrderedBatches(fleet, policy(4), labelsOf, { controlPlaneLast: true }))).toEqual(['w-a1,w-b1,w-a2,w-c1', 'w-b2,w-x', 'cp-1,cp-2']);
  });

  it('--serial-by: each batch holds one label value; nodes without the label form their own group', () => {
    const b = makeOrderedBatches(fleet, policy(2), labelsOf, { serialBy: ZONE });
    expect(names(b)).toEqual(['cp-1,w-a1', 'w-a2', 'w-b1,cp-2', 'w-b2', 'w-c1', 'w-x']);
    for (const batch of b) expect(new Set(batch.items.map((i) => i.labels[ZONE] ?? '-')).size).toBe(1);
  });

  it('both: workers zone by zone, then control-plane nodes zone by zone; the canary comes from the first group', () => {
    const b = makeOrderedBatches(fleet, policy(5, 1), labelsOf, { controlPlaneLast: true, serialBy: ZONE });
    expect(names(b)).toEqual(['*w-a1', 'w-a2', 'w-b1,w-b2', 'w-c1', 'w-x', 'cp-1', 'cp-2']);
    expect(b.filter((x) => x.canary)).toHaveLength(1);
    expect(b.flatMap((x) => x.items).length).toBe(fleet.length);
  });

  it('a percentage batch is still a share of the whole selection', () => {
    // 25% of 8 selected = 2 per batch, whatever the groups.
    expect(names(makeOrderedBatches(fleet, policy('25%'), labelsOf, { controlPlaneLast: true }))).toEqual(['w-a1,w-b1', 'w-a2,w-c1', 'w-b2,w-x', 'cp-1,cp-2']);
  });

  it('orderSegments names each group', () => {
    expect(orderSegments(fleet, labelsOf, { controlPlaneLast: true, serialBy: ZONE }).map((s) => s.key)).toEqual([
      `worker ${ZONE}=a`,
      `worker ${ZONE}=b`,
      `worker ${ZONE}=c`,
      `worker ${ZONE}=(unset)`,
      `control-plane ${ZONE}=a`,
      `control-plane ${ZONE}=b`,
    ]);
  });
});

describe('executePlan with an order', () => {
  const SHA = 'b'.repeat(64);
  const spec = (x: N): NodeSpec => ({ name: x.name, ssh: { host: '127.0.0.1', port: 22, user: 'root', knownHosts: '/dev/null', hostKeyPolicy: 'strict', sudo: false }, labels: x.labels });
  const np = (x: N): NodePlan => ({ name: x.name, host: '127.0.0.1', port: 22, arch: 'amd64', runcPath: '/usr/local/sbin/runc', action: 'upgrade', current: { version: '1.1.0', sha256: 'a'.repeat(64) }, target: { version: '1.2.9', sha256: SHA }, sysctl: null, warnings: [], error: null });
  const plan: Plan = {
    schema: 1,
    createdAt: '2026-11-28T18:00:00.000Z',
    tool: { name: 'runc-rollout', version: '0.1.0' },
    release: { repo: 'o/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: { amd64: { name: 'runc.amd64', sha256: SHA, size: 1 } } },
    inventory: '/inv.yaml',
    limit: [],
    options: { allowDowngrade: false },
    nodes: fleet.map(np),
    summary: { upgrade: fleet.length, downgrade: 0, unchanged: 0, blocked: 0, unreachable: 0 },
  };
  const release: VerifiedRelease = { repo: 'o/runc', tag: 'v1.2.9', version: '1.2.9', prerelease: false, checksums: {}, assets: { amd64: { arch: 'amd64', name: 'runc.amd64', sha256: SHA, size: 1, path: '/tmp/x' } }, signers: [], signatureVerified: true };
  const transport: Transport = { connect: async (node) => ({ node: node.name, run: async () => ({ code: 0, signal: null, stdout: '', stderr: '' }), close: async () => {} }) };

  it('starts nodes in the ordered batches', async () => {
    const events: ExecutorEvent[] = [];
    const started: string[] = [];
    await executePlan({
      plan, nodes: fleet.map(spec), release, transport, batch: 3, canary: 0, pauseMs: 0, maxFailures: 0, smokeTimeoutMs: 1000,
      runId: 'r', lockOwner: 't', forceUnlock: false, parallel: 1, controlPlaneLast: true, serialBy: ZONE,
      onEvent: (e) => events.push(e),
      upgrade: async (_s, job) => {
        started.push(job.node.name);
        return { ...untouchedOutcome(job.plan, 'upgraded', '', job.plan.current, null) };
      },
    });
    const start = events.find((e) => e.type === 'run-start');
    expect(start?.type === 'run-start' && start.batches.map((b) => b.nodes.join(','))).toEqual(['w-a1,w-a2', 'w-b1,w-b2', 'w-c1', 'w-x', 'cp-1', 'cp-2']);
    expect(started).toEqual(['w-a1', 'w-a2', 'w-b1', 'w-b2', 'w-c1', 'w-x', 'cp-1', 'cp-2']);
  });
});
