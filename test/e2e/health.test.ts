// Health gates on the test fleet: each node's "kubelet healthz" is a tiny HTTP
// server on the controller, on its own loopback port (the nodes share the
// machine's network namespace, so 127.0.0.1 on the node is this machine's).
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeNode } from '../../src/apply/node-upgrade.js';
import type { NodeEvent, NodeJob, NodeOutcome } from '../../src/apply/types.js';
import { planSysctl } from '../../src/core/sysctl.js';
import type { HealthSpec, NodeSpec } from '../../src/core/types.js';
import { gatherFacts } from '../../src/facts/gather.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { buildStandIn } from '../harness/standin.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the health gate e2e test: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A fake kubelet healthz: answers `ok`, or 500 with kubelet's failure text once made unhealthy. */
class Healthz {
  healthy = true;
  hits = 0;
  readonly server: Server = createServer((_req, res) => {
    this.hits += 1;
    if (this.healthy) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    else res.writeHead(500, { 'content-type': 'text/plain' }).end('[-]pleg failed: pleg was last seen active 3m5s ago\nhealthz check failed');
  });
  async start(): Promise<number> {
    await new Promise<void>((res) => this.server.listen(0, '127.0.0.1', res));
    return (this.server.address() as AddressInfo).port;
  }
  stop(): Promise<void> {
    return new Promise((res) => this.server.close(() => res()));
  }
}

describe.skipIf(unsupported)('health gates on the test fleet', () => {
  let fleet: Fleet;
  let tmp: string;
  let specs: Map<string, NodeSpec>;
  const bins = {} as Record<'orig' | 'next', string>;
  const transport = createSshTransport({ connectTimeoutMs: 10_000 });
  const sessions: NodeSession[] = [];
  const healthz = new Map<string, Healthz>();
  const ports = new Map<string, number>();
  let runs = 0;

  const open = async (name: string) => {
    const s = await transport.connect(specs.get(name) as NodeSpec);
    sessions.push(s);
    return s;
  };

  const health = (name: string, extra: Partial<HealthSpec> = {}): HealthSpec => ({
    kubelet: true,
    kubeletUrl: `http://127.0.0.1:${ports.get(name)}/healthz`,
    timeoutMs: 2_000,
    settleMs: 0,
    commands: [],
    ...extra,
  });

  const upgrade = async (name: string, h: HealthSpec, extra: Partial<NodeJob> = {}, onEvent?: (e: NodeEvent) => void) => {
    const node = { ...(specs.get(name) as NodeSpec), health: h };
    const facts = await gatherFacts(await open(name), node);
    const targetSha = sha(bins.next);
    const job: NodeJob = {
      node,
      plan: {
        name,
        host: node.ssh.host,
        port: node.ssh.port,
        arch: 'amd64',
        runcPath: RUNC,
        action: 'upgrade',
        current: { version: facts.runc.version, sha256: facts.runc.sha256 },
        target: { version: '1.2.9', sha256: targetSha },
        sysctl: planSysctl(facts.sysctl),
        warnings: [],
        error: null,
      },
      asset: { arch: 'amd64', name: 'runc.amd64', sha256: targetSha, size: statSync(bins.next).size, path: bins.next },
      runId: `e2e-health-${process.pid}-${++runs}`,
      smokeTimeoutMs: 20_000,
      lockOwner: `tester@controller pid ${process.pid}`,
      forceUnlock: false,
      ...extra,
    };
    const events: NodeEvent[] = [];
    const outcome = await upgradeNode(await open(name), job, (e) => {
      events.push(e);
      onEvent?.(e);
    });
    return { outcome, events };
  };
  const ends = (events: NodeEvent[]) => events.filter((e) => e.status !== 'start').map((e) => `${e.step}:${e.status}`);
  const why = (o: NodeOutcome) => JSON.stringify({ status: o.status, failedStep: o.failedStep, error: o.error, steps: o.steps }, null, 1);

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rr-health-e2e-'));
    bins.orig = buildStandIn(join(tmp, 'orig'), { version: '1.0.0-rc93', mode: 'exec' });
    bins.next = buildStandIn(join(tmp, 'next'), { version: '1.2.9', mode: 'exec' });
    const names = ['good', 'turnsbad', 'sick', 'included'];
    fleet = await startFleet({ nodes: names.map((name) => ({ name, runc: { binary: bins.orig } })) });
    for (const name of names) {
      const h = new Healthz();
      healthz.set(name, h);
      ports.set(name, await h.start());
    }
    const inv = await loadInventory(fleet.inventoryPath, { home: tmp });
    specs = new Map(inv.nodes.map((n) => [n.name, n]));
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await Promise.allSettled([...healthz.values()].map((h) => h.stop()));
    await fleet?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a healthy node passes every gate (kubelet healthz, a custom command, settle) and is upgraded', async () => {
    const h = healthz.get('good') as Healthz;
    const { outcome, events } = await upgrade('good', health('good', { commands: ['test -x /usr/local/sbin/runc'], settleMs: 1_000 }));
    expect(outcome.status, why(outcome)).toBe('upgraded');
    expect(ends(events)).toEqual(['health', 'lock', 'stage', 'staged-smoke', 'backup', 'swap', 'verify', 'smoke', 'health-after-swap', 'sysctl', 'smoke-after-sysctl', 'health-after-sysctl', 'runc-init-check', 'unlock'].map((s) => `${s}:ok`));
    const gate = outcome.steps.find((s) => s.name === 'health-after-swap');
    expect(gate?.message).toMatch(/kubelet healthz ok \(via (curl|wget)\), 1 health command passed, still healthy after settling 1s/);
    // Three gates, each a check plus the settle re-check.
    expect(h.hits).toBeGreaterThanOrEqual(6);
    expect(await fleet.sha256('good', RUNC)).toBe(sha(bins.next));
  });

  it('a node whose healthz turns bad after the swap is rolled back to the original runc', async () => {
    const h = healthz.get('turnsbad') as Healthz;
    const { outcome, events } = await upgrade('turnsbad', health('turnsbad'), {}, (e) => {
      if (e.step === 'swap' && e.status === 'ok') h.healthy = false;
    });
    expect(outcome.status, why(outcome)).toBe('rolled-back');
    expect(outcome.failedStep).toBe('health-after-swap');
    expect(outcome.error).toMatch(/health-after-swap: .*unhealthy: kubelet healthz http:\/\/127\.0\.0\.1:\d+\/healthz answered \[-\]pleg failed/);
    expect(ends(events)).toContain('health-after-swap:failed');
    expect(ends(events)).toContain('rollback:ok');
    expect(ends(events)).not.toContain('sysctl:ok');
    expect(outcome.rollback).toMatchObject({ ok: true });
    expect(await fleet.sha256('turnsbad', RUNC)).toBe(sha(bins.orig));
  });

  it('a node already unhealthy is skipped with the reason, and nothing on it is touched', async () => {
    (healthz.get('sick') as Healthz).healthy = false;
    const before = await fleet.snapshot('sick');
    const { outcome, events } = await upgrade('sick', health('sick', { timeoutMs: 1_000 }));
    expect(outcome.status, why(outcome)).toBe('not-attempted');
    expect(outcome.failedStep).toBe('health');
    expect(outcome.error).toMatch(/^skipped: unhealthy before the upgrade, nothing was changed \(.*pleg failed.*\); fix the node or pass --include-unhealthy$/);
    expect(ends(events)).toEqual(['health:failed']);
    expect(await fleet.snapshot('sick')).toEqual(before);
  });

  it('--include-unhealthy upgrades an unhealthy node; its later gates are reported, not rolled back over', async () => {
    (healthz.get('included') as Healthz).healthy = false;
    const { outcome, events } = await upgrade('included', health('included', { timeoutMs: 1_000 }), { includeUnhealthy: true });
    expect(outcome.status, why(outcome)).toBe('upgraded');
    expect(ends(events)).toEqual(expect.arrayContaining(['health:failed', 'health-after-swap:failed', 'health-after-sysctl:failed', 'unlock:ok']));
    expect(await fleet.sha256('included', RUNC)).toBe(sha(bins.next));
  });
});
