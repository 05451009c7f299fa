// The built CLI on an inventory marked `source: kubernetes`: control-plane
// nodes go last by default, --serial-by keeps one zone per batch, and
// --no-control-plane-last turns the default off. Batches are read back from
// the run report.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetUnsupportedReason, type FleetNodeSpec } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { assertBuilt, latestReport, runCli, show, type CliEnv } from './apply-cli.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the Kubernetes apply e2e test: ${unsupported}`);

const CP = 'node-role.kubernetes.io/control-plane';
const ZONE = 'topology.kubernetes.io/zone';
const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
let fx: ReleaseFixtures;
let server: ReleaseServer;
let orig = '';

beforeAll(async () => {
  if (unsupported) return;
  assertBuilt();
  fx = sharedReleaseFixtures();
  server = await startReleaseServer(fx.dir);
  orig = buildStandIn(join(temp('rr-k8s-bins-'), 'runc'), { version: '1.1.12' });
});

afterAll(async () => {
  await server?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(unsupported)('apply on an inventory from Kubernetes', () => {
  const node = (name: string, labels: Record<string, string>): FleetNodeSpec => ({ name, runc: { binary: orig }, labels });
  // Inventory order puts a control-plane node first and mixes zones.
  const f = useFleet(() => ({
    nodes: [node('cp-a', { [CP]: '', [ZONE]: 'a' }), node('w-a', { [ZONE]: 'a' }), node('w-b', { [ZONE]: 'b' }), node('cp-b', { 'node-role.kubernetes.io/master': '', [ZONE]: 'b' })],
  }));
  const env = (): CliEnv => ({ apiUrl: server.url, fixtures: fx, cacheDir: temp('rr-k8s-cache-'), cwd: temp('rr-k8s-cwd-') });

  it('puts control-plane nodes in the last batches by default, one zone per batch with --serial-by', async () => {
    const inv = f.fleet.writeInventory({ source: 'kubernetes' });
    const e = env();
    const r = await runCli(e, ['apply', '-i', inv, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '2', '--serial-by', ZONE, '--yes']);
    expect(r.code, show(r)).toBe(0);
    const report = latestReport(e.cwd);
    expect(report.batches.map((b) => b.nodes)).toEqual([['w-a'], ['w-b'], ['cp-a'], ['cp-b']]);
    expect(report.nodes.every((n) => n.status === 'upgraded')).toBe(true);
  });

  it('--no-control-plane-last keeps inventory order', async () => {
    const e = env();
    const inv = f.fleet.writeInventory({ source: 'kubernetes' });
    // The nodes are at the target now: their action is `none`, still batched (the sysctl is checked on each).
    const r = await runCli(e, ['apply', '-i', inv, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '2', '--no-control-plane-last', '--yes']);
    expect(r.code, show(r)).toBe(0);
    expect(latestReport(e.cwd).batches.map((b) => b.nodes)).toEqual([['cp-a', 'w-a'], ['w-b', 'cp-b']]);
  });
});
