// Rollout policies end to end: the built CLI on real sshd nodes. One failure
// budget across batches, unreachable nodes with fail and skip, rollback-all
// returning every upgraded node to its original digest and sysctl, a window
// that closes mid-rollout (the clock fed through RUNC_ROLLOUT_NOW), resume.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetUnsupportedReason, type Fleet, type FleetNodeSpec } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { assertBuilt, latestReport, releaseDigest, reportCount, runCli, show, type CliEnv } from './apply-cli.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping policies e2e: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const DROPIN = '/etc/sysctl.d/99-runc-rollout.conf';
const OLD_CONF = '/etc/sysctl.d/90-pipe.conf';
const FILL = `dd if=/dev/zero of=/usr/local/sbin/filler bs=64k count=1000 2>/dev/null; true`;
const UNFILL = 'rm -f /usr/local/sbin/filler';
const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

let fx: ReleaseFixtures;
let server: ReleaseServer;
const start: Record<string, string> = {};

beforeAll(async () => {
  if (unsupported) return;
  assertBuilt();
  fx = sharedReleaseFixtures();
  server = await startReleaseServer(fx.dir);
  const bins = temp('rr-pol-bins-');
  for (const v of ['1.0.0-rc93', '1.1.12']) start[v] = buildStandIn(join(bins, `runc-${v}`), { version: v });
});

afterAll(async () => {
  await server?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function env(extra?: Record<string, string>): CliEnv {
  return { apiUrl: server.url, fixtures: fx, cacheDir: temp('rr-pol-cache-'), cwd: temp('rr-pol-cwd-'), ...(extra ? { env: extra } : {}) };
}

const raised = (name: string, version: string, extra: Partial<FleetNodeSpec> = {}): FleetNodeSpec => ({
  name,
  runc: { binary: start[version] as string },
  sysctl: { live: 65536, files: { [OLD_CONF]: '# old rc93 workaround\nfs.pipe-user-pages-soft = 65536\n' } },
  ...extra,
});
const plain = (name: string, extra: Partial<FleetNodeSpec> = {}): FleetNodeSpec => ({ name, runc: { binary: start['1.1.12'] as string }, ...extra });

async function snapshots(fleet: Fleet, names: string[]): Promise<Record<string, Record<string, string>>> {
  const outside = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => !k.startsWith('/var/lib/runc-rollout')));
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, outside(await fleet.snapshot(n))] as const)));
}

const statuses = (cwd: string) => latestReport(cwd).nodes.map((n) => [n.name, n.status, n.policy ?? null]);

describe.skipIf(unsupported)('policies: unreachable nodes', () => {
  const f = useFleet(() => ({ nodes: [plain('u1'), plain('u2'), { name: 'u3', down: true }] }));

  it('--on-unreachable fail (default) refuses with exit 3 before touching anything', async () => {
    const before = await snapshots(f.fleet, ['u1', 'u2']);
    const e = env();
    const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--yes']);
    expect(r.code, show(r)).toBe(3);
    expect(r.stderr).toMatch(/u3: unreachable/);
    expect(r.stdout).toMatch(/Unreachable nodes: refused before the run/);
    expect(await snapshots(f.fleet, ['u1', 'u2'])).toEqual(before);
    expect(reportCount(e.cwd)).toBe(0);
  });

  it('--on-unreachable skip upgrades the others, reports the node unreachable (never rolled-back), outside the budget, listed at the end', async () => {
    const e = env();
    const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--on-unreachable', 'skip', '--max-failures', '0', '--batch', '1', '--yes']);
    expect(r.code, show(r)).toBe(1);
    expect(statuses(e.cwd)).toEqual([
      ['u1', 'upgraded', null],
      ['u2', 'upgraded', null],
      ['u3', 'unreachable', 'unreachable-skip'],
    ]);
    const report = latestReport(e.cwd);
    expect(report.stoppedReason).toBeNull();
    expect(report.options).toMatchObject({ onUnreachable: 'skip', maxFailures: '0' });
    for (const n of ['u1', 'u2']) expect(await f.fleet.sha256(n, RUNC)).toBe(releaseDigest(fx, 'test/runc', 'v1.2.9'));
    expect(r.stdout).toMatch(/Unreachable nodes: skipped, not counted against the budget/);
    expect(r.stdout).toMatch(/u3 +unreachable .*\[policy: skipped, outside the budget \(--on-unreachable skip\)\]/);
    expect(r.stdout).toMatch(/Unreachable, skipped \(--on-unreachable skip\), not upgraded: u3\./);
  });
});

describe.skipIf(unsupported)('policies: --on-budget-exceeded rollback-all', () => {
  // r3's disk is too full to stage the binary: it fails after r1 and r2 were upgraded.
  const f = useFleet(() => ({ nodes: [raised('r1', '1.0.0-rc93'), raised('r2', '1.1.12'), plain('r3', { diskSize: '8m' })] }));

  it('rolls every node this run upgraded back to its original digest and sysctl, newest first; the report says so per node', async () => {
    await f.fleet.exec('r3', FILL);
    const original = { r1: await f.fleet.sha256('r1', RUNC), r2: await f.fleet.sha256('r2', RUNC) };
    const e = env();
    const r = await runCli(e, [
      'apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9',
      '--batch', '1', '--max-failures', '0', '--on-budget-exceeded', 'rollback-all', '--yes',
    ]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/When the budget is exceeded: .*every node upgraded in this run is rolled back, newest first/);
    const report = latestReport(e.cwd);
    expect(report.stoppedReason).toBe('budget-exceeded');
    expect(report.options.onBudgetExceeded).toBe('rollback-all');
    expect(report.nodes.map((n) => [n.name, n.status, n.policy ?? null])).toEqual([
      ['r1', 'rolled-back', 'rollback-all'],
      ['r2', 'rolled-back', 'rollback-all'],
      ['r3', expect.stringMatching(/^(failed|rolled-back)$/), null],
    ]);
    for (const n of ['r1', 'r2'] as const) {
      expect(await f.fleet.sha256(n, RUNC)).toBe(original[n]);
      expect(await f.fleet.liveSysctl(n)).toBe(65536);
      expect(await f.fleet.fileExists(n, DROPIN)).toBe(false);
      expect(await f.fleet.readFile(n, OLD_CONF)).toMatch(/^fs\.pipe-user-pages-soft = 65536$/m);
      const node = report.nodes.find((x) => x.name === n);
      expect(node).toMatchObject({ from: { sha256: original[n] }, to: { sha256: original[n] }, rollback: { ok: true } });
      expect(node?.steps.map((s) => s.name)).toEqual(expect.arrayContaining(['swap', 'rollback']));
    }
    // newest first: r2 (upgraded second) is rolled back before r1
    const r2At = r.stdout.search(/r2 rolled back .*\(rollback-all\)/);
    const r1At = r.stdout.search(/r1 rolled back .*\(rollback-all\)/);
    expect(r2At, show(r)).toBeGreaterThan(-1);
    expect(r1At).toBeGreaterThan(r2At);
    expect(r.stdout).toMatch(/r1 +rolled-back .*\[policy: rolled back after the budget was exceeded/);
    await f.fleet.exec('r3', UNFILL);
  });
});

describe.skipIf(unsupported)('policies: one budget across batches, resume, windows', () => {
  const f = useFleet(() => ({ nodes: [plain('w1'), plain('w2', { diskSize: '8m' }), plain('w3'), plain('w4', { diskSize: '8m' }), plain('w5')] }));
  const all = ['w1', 'w2', 'w3', 'w4', 'w5'];
  const want = () => releaseDigest(fx, 'test/runc', 'v1.2.9');
  const e = () => shared;
  let shared: CliEnv;
  let stoppedReport: string;

  beforeAll(() => {
    if (unsupported) return;
    shared = env();
  });

  it('--max-failures 1 --batch 1: one failure per batch never exceeds it, but the second failure over the run stops it', async () => {
    await f.fleet.exec('w2', FILL);
    await f.fleet.exec('w4', FILL);
    stoppedReport = join(e().cwd, 'stopped.json');
    const r = await runCli(e(), ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '1', '--max-failures', '1', '--report', stoppedReport, '--yes']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/Failure budget: stops after 2 failed nodes out of 5 \(one budget for the whole run, checked after each batch\)\./);
    const report = latestReportAt(stoppedReport);
    expect(report.stoppedReason).toBe('budget-exceeded');
    expect(report.nodes.map((n) => [n.name, n.status === 'rolled-back' ? 'failed' : n.status, n.policy ?? null])).toEqual([
      ['w1', 'upgraded', null],
      ['w2', 'failed', null],
      ['w3', 'upgraded', null],
      ['w4', 'failed', null],
      ['w5', 'not-attempted', 'budget'],
    ]);
    expect(report.batches.map((b) => b.failures)).toEqual([0, 1, 0, 1, 0]);
    expect(r.stdout).toMatch(/w5 +not-attempted .*\[policy: failure budget exceeded/);
    await f.fleet.exec('w2', UNFILL);
    await f.fleet.exec('w4', UNFILL);
  });

  it('--resume refuses a report whose release digests differ (exit 3), touching nothing', async () => {
    const doc = JSON.parse(readFileSync(stoppedReport, 'utf8')) as { release: { assets: Record<string, { sha256: string }> } };
    for (const a of Object.values(doc.release.assets)) a.sha256 = 'f'.repeat(64);
    const forged = join(e().cwd, 'forged.json');
    writeFileSync(forged, JSON.stringify(doc));
    const before = await snapshots(f.fleet, all);
    const reports = reportCount(e().cwd);
    const r = await runCli(e(), ['apply', '--resume', forged, '--yes']);
    expect(r.code, show(r)).toBe(3);
    expect(r.stderr).toMatch(/the release differs/);
    expect(r.stderr).toMatch(/sha256 was f{64}/);
    const v = await runCli(e(), ['apply', '--resume', stoppedReport, '--version', '1.2.8', '--yes']);
    expect(v.code, show(v)).toBe(3);
    expect(v.stderr).toMatch(/not --version 1\.2\.8/);
    expect(await snapshots(f.fleet, all)).toEqual(before);
    expect(reportCount(e().cwd)).toBe(reports);
  });

  it('--resume retries only the nodes the stopped run did not finish, with its options', async () => {
    const r = await runCli(e(), ['apply', '--resume', stoppedReport, '--yes']);
    expect(r.code, show(r)).toBe(0);
    const report = latestReport(e().cwd);
    expect(report.nodes.map((n) => [n.name, n.status])).toEqual([
      ['w2', 'upgraded'],
      ['w4', 'upgraded'],
      ['w5', 'upgraded'],
    ]);
    expect(report.options).toMatchObject({ batch: '1', maxFailures: '1', resumedFrom: { finished: ['w1', 'w3'] } });
    expect(report.batches.map((b) => b.nodes)).toEqual([['w2'], ['w4'], ['w5']]);
    for (const n of all) expect(await f.fleet.sha256(n, RUNC)).toBe(want());
  });

  it('a window that closes mid-rollout: the running batch finishes, no new one starts, exit 0, the rest left with policy window; --resume in the next window finishes', async () => {
    // 02:00 then 05:30 in Berlin (CET): open for the first batch, closed before the second.
    const closing = env({ RUNC_ROLLOUT_NOW: '2026-11-28T01:00:00Z,2026-11-28T04:30:00Z' });
    const win = 'Sat 01:00-05:00 Europe/Berlin';
    const before = Object.fromEntries(await Promise.all(all.map(async (n) => [n, await f.fleet.sha256(n, RUNC)] as const)));
    const r = await runCli(closing, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.8', '--allow-downgrade', '--batch', '2', '--window', win, '--yes']);
    expect(r.code, show(r)).toBe(0);
    const report = latestReport(closing.cwd);
    expect(report.stoppedReason).toBe('window');
    expect(report.options.windows).toEqual([win]);
    expect(report.nodes.map((n) => [n.name, n.status, n.policy ?? null])).toEqual([
      ['w1', 'upgraded', null],
      ['w2', 'upgraded', null],
      ['w3', 'not-attempted', 'window'],
      ['w4', 'not-attempted', 'window'],
      ['w5', 'not-attempted', 'window'],
    ]);
    expect(r.stdout).toMatch(/Windows: batches start only within Sat 01:00-05:00 Europe\/Berlin/);
    expect(r.stdout).toMatch(/Stopped cleanly: no rollout window open .*left for the next window: w3, w4, w5\./);
    expect(r.stdout).toMatch(/runc-rollout apply --resume /);
    for (const n of ['w3', 'w4', 'w5']) expect(await f.fleet.sha256(n, RUNC)).toBe(before[n]);

    const path = join(closing.cwd, '.runc-rollout', 'runs', `${report.runId}.json`);
    const next = env({ RUNC_ROLLOUT_NOW: '2026-12-05T01:30:00Z' }); // next Saturday, 02:30 Berlin
    const again = await runCli(next, ['apply', '--resume', path, '--yes']);
    expect(again.code, show(again)).toBe(0);
    const resumed = latestReport(next.cwd);
    expect(resumed.options).toMatchObject({ windows: [win], batch: '2', allowDowngrade: true, resumedFrom: { runId: report.runId, finished: ['w1', 'w2'] } });
    expect(resumed.nodes.map((n) => [n.name, n.status])).toEqual([
      ['w3', 'upgraded'],
      ['w4', 'upgraded'],
      ['w5', 'upgraded'],
    ]);
    const old = releaseDigest(fx, 'test/runc', 'v1.2.8');
    for (const n of all) expect(await f.fleet.sha256(n, RUNC)).toBe(old);
  });
});

function latestReportAt(path: string) {
  return JSON.parse(readFileSync(path, 'utf8')) as ReturnType<typeof latestReport>;
}
