// The executor's scheduling (batches, budget, interruption) with an in-memory
// transport and a scripted per-node pipeline; the real pipeline is covered
// end to end in test/e2e/apply.test.ts.
import { describe, expect, it } from 'vitest';
import { executePlan, type ExecutorEvent, type RollbackFn, type UpgradeFn } from '../../src/apply/executor.js';
import { parseWindows } from '../../src/core/window.js';
import type { NodeOutcome, NodeStatus } from '../../src/apply/types.js';
import type { NodePlan, NodeSpec, Plan, PlanAction, VerifiedRelease } from '../../src/core/types.js';
import { ReleaseError } from '../../src/errors.js';
import type { NodeSession, Transport } from '../../src/ssh/transport.js';

const SHA = 'b'.repeat(64);

function nodeSpec(name: string): NodeSpec {
  return { name, ssh: { host: '127.0.0.1', port: 22, user: 'root', knownHosts: '/dev/null', hostKeyPolicy: 'strict', sudo: false }, labels: {} };
}

function nodePlan(name: string, action: PlanAction = 'upgrade'): NodePlan {
  return {
    name,
    host: '127.0.0.1',
    port: 22,
    arch: 'amd64',
    runcPath: '/usr/local/sbin/runc',
    action,
    current: { version: '1.1.0', sha256: 'a'.repeat(64) },
    target: action === 'upgrade' ? { version: '1.2.9', sha256: SHA } : null,
    sysctl: null,
    warnings: [],
    error: action === 'blocked' || action === 'unreachable' ? 'because' : null,
  };
}

function plan(nodes: NodePlan[]): Plan {
  return {
    schema: 1,
    createdAt: '2026-11-28T18:00:00.000Z',
    tool: { name: 'runc-rollout', version: '0.1.0' },
    release: { repo: 'o/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: { amd64: { name: 'runc.amd64', sha256: SHA, size: 1 } } },
    inventory: '/inv.yaml',
    limit: [],
    options: { allowDowngrade: false },
    nodes,
    summary: { upgrade: 0, downgrade: 0, unchanged: 0, blocked: 0, unreachable: 0 },
  };
}

const release: VerifiedRelease = {
  repo: 'o/runc',
  tag: 'v1.2.9',
  version: '1.2.9',
  prerelease: false,
  checksums: {},
  assets: { amd64: { arch: 'amd64', name: 'runc.amd64', sha256: SHA, size: 1, path: '/tmp/runc.amd64' } },
  signers: [],
  signatureVerified: true,
};

function fakeTransport(down: string[] = []) {
  const open = new Set<string>();
  const transport: Transport = {
    async connect(node) {
      if (down.includes(node.name)) throw new Error('connection refused');
      open.add(node.name);
      const session: NodeSession = {
        node: node.name,
        run: async () => ({ code: 0, signal: null, stdout: '', stderr: '' }),
        close: async () => {
          open.delete(node.name);
        },
      };
      return session;
    },
  };
  return { transport, open };
}

/** A pipeline whose result per node is scripted; records the order nodes started in. */
function scripted(results: Record<string, NodeStatus>, started: string[], hook?: (name: string) => void): UpgradeFn {
  return async (session, job, emit) => {
    started.push(job.node.name);
    hook?.(job.node.name);
    emit({ node: job.node.name, step: 'stage', status: 'start', at: new Date().toISOString() });
    await new Promise((r) => setImmediate(r));
    const status = results[job.node.name] ?? 'upgraded';
    emit({ node: job.node.name, step: 'stage', status: status === 'upgraded' ? 'ok' : 'failed', at: new Date().toISOString() });
    const o: NodeOutcome = {
      name: job.node.name,
      host: job.plan.host,
      status,
      from: job.plan.current,
      to: job.plan.target,
      failedStep: status === 'upgraded' ? null : 'stage',
      error: status === 'upgraded' ? null : 'boom',
      backupPath: null,
      sysctl: { before: null, after: null },
      steps: [],
      rollback: null,
    };
    return o;
  };
}

const base = { release, batch: 2, canary: 1, pauseMs: 0, maxFailures: 0, smokeTimeoutMs: 1000, runId: 'r1', lockOwner: 't', forceUnlock: false };
const names = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`);

describe('executePlan', () => {
  it('runs canary then batches in plan order and closes every session', async () => {
    const { transport, open } = fakeTransport();
    const started: string[] = [];
    const events: ExecutorEvent[] = [];
    const report = await executePlan({
      ...base,
      plan: plan(names(5).map((n) => nodePlan(n))),
      nodes: names(5).map(nodeSpec),
      transport,
      upgrade: scripted({}, started),
      onEvent: (e) => events.push(e),
    });
    expect(report.exitCode).toBe(0);
    expect(report.batches.map((b) => b.nodes)).toEqual([['n1'], ['n2', 'n3'], ['n4', 'n5']]);
    expect(started).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    expect(open.size).toBe(0);
    expect(events.filter((e) => e.type === 'batch-start').length).toBe(3);
    expect(events.some((e) => e.type === 'node-event' && e.event.node === 'n3' && e.event.status === 'ok')).toBe(true);
    expect(events.at(-1)?.type).toBe('run-end');
  });

  it('stops starting batches once failures exceed the budget; the rest are not-attempted', async () => {
    const { transport } = fakeTransport();
    const started: string[] = [];
    const report = await executePlan({
      ...base,
      canary: 0,
      batch: 1,
      plan: plan(names(4).map((n) => nodePlan(n))),
      nodes: names(4).map(nodeSpec),
      transport,
      upgrade: scripted({ n2: 'rolled-back' }, started),
    });
    expect(started).toEqual(['n1', 'n2']);
    expect(report.nodes.map((n) => n.status)).toEqual(['upgraded', 'rolled-back', 'not-attempted', 'not-attempted']);
    expect(report.stoppedReason).toBe('budget-exceeded');
    expect(report.nodes[2]?.error).toMatch(/failure budget/);
    expect(report.exitCode).toBe(1);
  });

  it('a budget exceeded by the last batch stops nothing and is not reported as a stop', async () => {
    const { transport } = fakeTransport();
    const report = await executePlan({
      ...base,
      canary: 0,
      batch: 2,
      plan: plan(names(2).map((n) => nodePlan(n))),
      nodes: names(2).map(nodeSpec),
      transport,
      upgrade: scripted({ n2: 'rolled-back' }, []),
    });
    expect(report.stoppedReason).toBeNull();
    expect(report.exitCode).toBe(1);
  });

  it('the budget is one for the whole run, not per batch', async () => {
    const { transport } = fakeTransport();
    const started: string[] = [];
    const report = await executePlan({
      ...base,
      canary: 0,
      batch: 2,
      maxFailures: 1,
      plan: plan(names(6).map((n) => nodePlan(n))),
      nodes: names(6).map(nodeSpec),
      transport,
      upgrade: scripted({ n1: 'failed', n3: 'rolled-back' }, started),
    });
    expect(started).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(report.stoppedReason).toBe('budget-exceeded');
  });

  it('reports blocked and unreachable plan nodes without running them; a connect failure is unreachable', async () => {
    const { transport } = fakeTransport(['n3']);
    const started: string[] = [];
    const report = await executePlan({
      ...base,
      maxFailures: 5,
      plan: plan([nodePlan('n1', 'blocked'), nodePlan('n2', 'unreachable'), nodePlan('n3'), nodePlan('n4', 'none')]),
      nodes: names(4).map(nodeSpec),
      transport,
      upgrade: scripted({ n4: 'unchanged' }, started),
    });
    expect(started).toEqual(['n4']);
    expect(report.nodes.map((n) => [n.name, n.status])).toEqual([
      ['n1', 'not-attempted'],
      ['n2', 'unreachable'],
      ['n3', 'unreachable'],
      ['n4', 'unchanged'],
    ]);
    expect(report.nodes[0]?.error).toMatch(/blocked/);
    expect(report.nodes[2]?.error).toMatch(/connection refused/);
  });

  it('on abort starts no new node or batch, lets running ones finish, and marks the run interrupted', async () => {
    const { transport } = fakeTransport();
    const started: string[] = [];
    const abort = new AbortController();
    const report = await executePlan({
      ...base,
      canary: 0,
      batch: 3,
      parallel: 1,
      plan: plan(names(6).map((n) => nodePlan(n))),
      nodes: names(6).map(nodeSpec),
      transport,
      signal: abort.signal,
      upgrade: scripted({}, started, (name) => {
        if (name === 'n2') abort.abort();
      }),
    });
    expect(started).toEqual(['n1', 'n2']);
    expect(report.nodes.map((n) => n.status)).toEqual(['upgraded', 'upgraded', 'not-attempted', 'not-attempted', 'not-attempted', 'not-attempted']);
    expect(report.interrupted).toBe(true);
    expect(report.stoppedReason).toBe('interrupted');
    expect(report.exitCode).toBe(130);
  });

  it('an abort during the pause between batches stops the run', async () => {
    const { transport } = fakeTransport();
    const started: string[] = [];
    const abort = new AbortController();
    const report = await executePlan({
      ...base,
      canary: 0,
      batch: 1,
      pauseMs: 600_000,
      plan: plan(names(2).map((n) => nodePlan(n))),
      nodes: names(2).map(nodeSpec),
      transport,
      signal: abort.signal,
      upgrade: scripted({}, started),
      onEvent: (e) => {
        if (e.type === 'pause') abort.abort();
      },
    });
    expect(started).toEqual(['n1']);
    expect(report.nodes.map((n) => n.status)).toEqual(['upgraded', 'not-attempted']);
    expect(report.exitCode).toBe(130);
  });

  it('a throw after the swap began is unknown, before it failed', async () => {
    const { transport } = fakeTransport();
    const upgrade: UpgradeFn = async (_s, job, emit) => {
      emit({ node: job.node.name, step: 'stage', status: 'start', at: '' });
      if (job.node.name === 'n2') emit({ node: job.node.name, step: 'swap', status: 'start', at: '' });
      throw new Error('connection lost');
    };
    const report = await executePlan({ ...base, maxFailures: 9, plan: plan(names(2).map((n) => nodePlan(n))), nodes: names(2).map(nodeSpec), transport, upgrade });
    expect(report.nodes.map((n) => [n.status, n.failedStep])).toEqual([
      ['failed', 'stage'],
      ['unknown', 'swap'],
    ]);
  });

  describe('rollout policies', () => {
    /** A rollback that records the order it was asked in and restores the plan's current version. */
    function recordingRollback(order: string[], fail: string[] = []): RollbackFn {
      return async (_s, node) => {
        order.push(node.name);
        const ok = !fail.includes(node.name);
        return {
          name: node.name,
          host: node.ssh.host,
          status: ok ? 'rolled-back' : 'failed',
          from: { version: null, sha256: SHA },
          to: ok ? { version: '1.1.0', sha256: 'a'.repeat(64) } : null,
          failedStep: ok ? null : 'rollback',
          error: ok ? null : 'restore failed',
          backupPath: null,
          sysctl: { before: null, after: null },
          steps: [{ name: 'rollback', status: ok ? 'ok' : 'failed', startedAt: '', durationMs: 0 }],
          rollback: { ok, smokeOk: ok ? true : null, error: ok ? null : 'restore failed', manualCommands: [] },
        };
      };
    }

    it('rollback-all rolls back every node this run upgraded, newest first, and says so per node', async () => {
      const { transport, open } = fakeTransport();
      const order: string[] = [];
      const events: ExecutorEvent[] = [];
      const report = await executePlan({
        ...base,
        canary: 0,
        batch: 2,
        maxFailures: 0,
        onBudgetExceeded: 'rollback-all',
        plan: plan([...names(5).map((n) => nodePlan(n)), nodePlan('n6', 'none')]),
        nodes: names(6).map(nodeSpec),
        transport,
        // n1, n2 upgraded in batch 1; batch 2: n3 upgraded, n4 fails; n5, n6 never start
        upgrade: scripted({ n4: 'rolled-back' }, [], undefined),
        rollback: recordingRollback(order),
        onEvent: (e) => events.push(e),
      });
      expect(order).toEqual(['n3', 'n2', 'n1']);
      expect(report.stoppedReason).toBe('budget-exceeded');
      expect(report.nodes.map((n) => [n.name, n.status, n.policy ?? null])).toEqual([
        ['n1', 'rolled-back', 'rollback-all'],
        ['n2', 'rolled-back', 'rollback-all'],
        ['n3', 'rolled-back', 'rollback-all'],
        ['n4', 'rolled-back', null],
        ['n5', 'not-attempted', 'budget'],
        ['n6', 'not-attempted', 'budget'],
      ]);
      expect(report.nodes[0]).toMatchObject({ from: { version: '1.1.0' }, to: { version: '1.1.0' }, error: expect.stringMatching(/rolled back by --on-budget-exceeded rollback-all/) });
      expect(report.options).toMatchObject({ onBudgetExceeded: 'rollback-all', onUnreachable: 'fail' });
      expect(report.exitCode).toBe(1);
      expect(open.size).toBe(0);
      expect(events.find((e) => e.type === 'rollback-all-start')).toMatchObject({ nodes: ['n3', 'n2', 'n1'] });
    });

    it('rollback-all: a failed rollback is failed, the others still rolled back; stop leaves upgraded nodes alone', async () => {
      const order: string[] = [];
      const report = await executePlan({
        ...base,
        canary: 0,
        batch: 1,
        onBudgetExceeded: 'rollback-all',
        plan: plan(names(4).map((n) => nodePlan(n))),
        nodes: names(4).map(nodeSpec),
        transport: fakeTransport().transport,
        upgrade: scripted({ n3: 'failed' }, []),
        rollback: recordingRollback(order, ['n2']),
      });
      expect(order).toEqual(['n2', 'n1']);
      expect(report.nodes.map((n) => [n.status, n.policy ?? null])).toEqual([
        ['rolled-back', 'rollback-all'],
        ['failed', 'rollback-all'],
        ['failed', null],
        ['not-attempted', 'budget'],
      ]);
      const stopOrder: string[] = [];
      const stopped = await executePlan({
        ...base,
        canary: 0,
        batch: 1,
        plan: plan(names(3).map((n) => nodePlan(n))),
        nodes: names(3).map(nodeSpec),
        transport: fakeTransport().transport,
        upgrade: scripted({ n2: 'failed' }, []),
        rollback: recordingRollback(stopOrder),
      });
      expect(stopOrder).toEqual([]);
      expect(stopped.nodes.map((n) => n.status)).toEqual(['upgraded', 'failed', 'not-attempted']);
    });

    it('rollback-all also undoes the run when the last batch exceeds the budget', async () => {
      const order: string[] = [];
      const report = await executePlan({
        ...base,
        canary: 0,
        batch: 2,
        onBudgetExceeded: 'rollback-all',
        plan: plan(names(2).map((n) => nodePlan(n))),
        nodes: names(2).map(nodeSpec),
        transport: fakeTransport().transport,
        upgrade: scripted({ n2: 'failed' }, []),
        rollback: recordingRollback(order),
      });
      expect(order).toEqual(['n1']);
      expect(report.stoppedReason).toBe('budget-exceeded');
    });

    it('on-unreachable fail: a node lost mid-run counts against the budget', async () => {
      const started: string[] = [];
      const report = await executePlan({
        ...base,
        canary: 0,
        batch: 1,
        plan: plan(names(3).map((n) => nodePlan(n))),
        nodes: names(3).map(nodeSpec),
        transport: fakeTransport(['n1']).transport,
        upgrade: scripted({}, started),
      });
      expect(started).toEqual([]);
      expect(report.nodes.map((n) => [n.status, n.policy ?? null])).toEqual([
        ['unreachable', null],
        ['not-attempted', 'budget'],
        ['not-attempted', 'budget'],
      ]);
      expect(report.batches[0]?.failures).toBe(1);
    });

    it('on-unreachable skip: unreachable nodes (planned or mid-run) are outside the budget; the others proceed', async () => {
      const started: string[] = [];
      const report = await executePlan({
        ...base,
        canary: 0,
        batch: 1,
        onUnreachable: 'skip',
        plan: plan([nodePlan('n1', 'unreachable'), nodePlan('n2'), nodePlan('n3'), nodePlan('n4')]),
        nodes: names(4).map(nodeSpec),
        transport: fakeTransport(['n2']).transport,
        upgrade: scripted({}, started),
      });
      expect(started).toEqual(['n3', 'n4']);
      expect(report.nodes.map((n) => [n.name, n.status, n.policy ?? null])).toEqual([
        ['n1', 'unreachable', 'unreachable-skip'],
        ['n2', 'unreachable', 'unreachable-skip'],
        ['n3', 'upgraded', null],
        ['n4', 'upgraded', null],
      ]);
      expect(report.stoppedReason).toBeNull();
      expect(report.batches.map((b) => b.failures)).toEqual([0, 0, 0]);
      // not in the desired state, so not exit 0
      expect(report.exitCode).toBe(1);
    });

    it('windows: no batch starts outside one; the rest is not-attempted with policy window; exit 0', async () => {
      const started: string[] = [];
      const reads: string[] = [];
      const instants = ['2026-11-28T01:00:00Z', '2026-11-28T04:59:00Z', '2026-11-28T05:00:00Z'];
      const report = await executePlan({
        ...base,
        canary: 0,
        batch: 1,
        windows: parseWindows(['Sat 01:00-05:00 UTC']),
        now: () => {
          const t = instants[Math.min(reads.length, instants.length - 1)] as string;
          reads.push(t);
          return new Date(t);
        },
        plan: plan(names(4).map((n) => nodePlan(n))),
        nodes: names(4).map(nodeSpec),
        transport: fakeTransport().transport,
        upgrade: scripted({}, started),
      });
      expect(started).toEqual(['n1', 'n2']);
      expect(reads.length).toBe(3);
      expect(report.stoppedReason).toBe('window');
      expect(report.nodes.map((n) => [n.status, n.policy ?? null])).toEqual([
        ['upgraded', null],
        ['upgraded', null],
        ['not-attempted', 'window'],
        ['not-attempted', 'window'],
      ]);
      expect(report.nodes[2]?.error).toMatch(/no rollout window open/);
      expect(report.options.windows).toEqual(['Sat 01:00-05:00 UTC']);
      expect(report.exitCode).toBe(0);
    });

    it('a window already closed starts nothing; one open throughout changes nothing', async () => {
      const started: string[] = [];
      const closed = await executePlan({
        ...base,
        windows: parseWindows(['Sun 01:00-05:00 UTC']),
        now: () => new Date('2026-11-28T02:00:00Z'),
        plan: plan(names(2).map((n) => nodePlan(n))),
        nodes: names(2).map(nodeSpec),
        transport: fakeTransport().transport,
        upgrade: scripted({}, started),
      });
      expect(started).toEqual([]);
      expect(closed.nodes.map((n) => n.policy)).toEqual(['window', 'window']);
      expect(closed.exitCode).toBe(0);
      const open = await executePlan({
        ...base,
        windows: parseWindows(['Sun 01:00-05:00 UTC', 'Sat 01:00-05:00 UTC']),
        now: () => new Date('2026-11-28T02:00:00Z'),
        plan: plan(names(2).map((n) => nodePlan(n))),
        nodes: names(2).map(nodeSpec),
        transport: fakeTransport().transport,
        upgrade: scripted({}, started),
      });
      expect(open.stoppedReason).toBeNull();
      expect(open.nodes.map((n) => n.status)).toEqual(['upgraded', 'upgraded']);
    });
  });

  it('refuses a plan whose target digest is not the verified asset, touching nothing', async () => {
    const { transport } = fakeTransport();
    const started: string[] = [];
    const bad = nodePlan('n1');
    bad.target = { version: '1.2.9', sha256: 'c'.repeat(64) };
    await expect(executePlan({ ...base, plan: plan([bad]), nodes: [nodeSpec('n1')], transport, upgrade: scripted({}, started) })).rejects.toThrow(ReleaseError);
    expect(started).toEqual([]);
  });
});
