// `apply` and `rollback` end to end: the built CLI, real sshd nodes, real
// containers through stand-in runc releases served by the loopback GitHub.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetUnsupportedReason, type Fleet, type FleetNodeSpec } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { assertBuilt, latestReport, releaseDigest, reportCount, runCli, runCliOnTty, show, startCli, type CliEnv } from './apply-cli.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping apply e2e: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const DROPIN = '/etc/sysctl.d/99-runc-rollout.conf';
const OLD_CONF = '/etc/sysctl.d/90-pipe.conf';
/** Sorts after the drop-in, so after a reboot it would win: apply must comment it out. */
const LATE_CONF = '/etc/sysctl.d/99-zz-pipe.conf';
const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

let fx: ReleaseFixtures;
let server: ReleaseServer;
let bins: string;
const start: Record<string, string> = {};

beforeAll(async () => {
  if (unsupported) return;
  assertBuilt();
  fx = sharedReleaseFixtures();
  server = await startReleaseServer(fx.dir);
  bins = temp('rr-apply-bins-');
  for (const v of ['1.0.0-rc93', '1.1.12', '1.2.8']) start[v] = buildStandIn(join(bins, `runc-${v}`), { version: v });
});

afterAll(async () => {
  await server?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function env(): CliEnv {
  return { apiUrl: server.url, fixtures: fx, cacheDir: temp('rr-apply-cache-'), cwd: temp('rr-apply-cwd-') };
}

/** A node where the rc93 workaround raised the sysctl, live and in `conf`. */
const raised = (name: string, version: string, conf = OLD_CONF): FleetNodeSpec => ({
  name,
  runc: { binary: start[version] as string },
  sysctl: { live: 65536, files: { [conf]: '# old rc93 workaround\nfs.pipe-user-pages-soft = 65536\n' } },
});
const plain = (name: string, version: string, extra: Partial<FleetNodeSpec> = {}): FleetNodeSpec => ({ name, runc: { binary: start[version] as string }, ...extra });

async function runcVersion(fleet: Fleet, name: string): Promise<string> {
  const r = await fleet.exec(name, `${RUNC} --version`);
  return r.stdout.split('\n')[0] ?? '';
}

/** Lines that set the key and are not comments: what would win after a reboot. */
async function activeSettings(fleet: Fleet, name: string, path: string): Promise<string[]> {
  if (!(await fleet.fileExists(name, path))) return [];
  return (await fleet.readFile(name, path)).split('\n').filter((l) => /^\s*fs[./]pipe-user-pages-soft\s*=/.test(l));
}

/**
 * Everything the tool may touch on each node: runc and its directory, sysctl
 * files, the live value. The tool's own workspace (/var/lib/runc-rollout) is
 * compared apart where it matters: it may keep its smoke folder.
 */
async function snapshots(fleet: Fleet, names: string[]): Promise<Record<string, Record<string, string>>> {
  const outside = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => !k.startsWith('/var/lib/runc-rollout')));
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, outside(await fleet.snapshot(n))] as const)));
}

/** Files a failed or finished run must not leave in the tool's workspace: locks, staged binaries. */
async function leftovers(fleet: Fleet, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    for (const k of Object.keys(await fleet.snapshot(n))) if (k.startsWith('/var/lib/runc-rollout') && /lock|\.new|stag/i.test(k)) out.push(`${n}:${k}`);
  }
  return out;
}

describe.skipIf(unsupported)('apply: a good release, then rollback', () => {
  const f = useFleet(() => ({ nodes: [raised('a1', '1.0.0-rc93'), raised('a2', '1.1.12', LATE_CONF), plain('a3', '1.2.8')] }));
  const names = ['a1', 'a2', 'a3'];
  const e = () => sharedEnv;
  let sharedEnv: CliEnv;
  let original: Record<string, string>;

  beforeAll(async () => {
    if (unsupported) return;
    sharedEnv = env();
    original = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await f.fleet.sha256(n, RUNC)] as const)));
  });

  it('without --yes and without a terminal it refuses with exit 3 and touches nothing', async () => {
    const before = await snapshots(f.fleet, names);
    const r = await runCli(e(), ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9']);
    expect(r.code, show(r)).toBe(3);
    expect(r.stderr).toMatch(/--yes/);
    expect(await snapshots(f.fleet, names)).toEqual(before);
    expect(reportCount(e().cwd)).toBe(0);
  });

  it('on a terminal it shows the plan and asks y/N before touching anything; "n" refuses with exit 3', async () => {
    const before = await snapshots(f.fleet, names);
    const r = await runCliOnTty(e(), ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9'], 'n\r');
    expect(r.prompted, show(r)).toBe(true);
    expect(r.code, show(r)).toBe(3);
    expect(r.stdout.indexOf('NODE')).toBeLessThan(r.stdout.indexOf('[y/N]'));
    expect(r.stdout).toMatch(/cancelled; nothing was changed/);
    expect(await snapshots(f.fleet, names)).toEqual(before);
    expect(reportCount(e().cwd)).toBe(0);
  });

  it('upgrades every node: digest, version, sysctl live and persisted, backup, report; exit 0', async () => {
    const want = releaseDigest(fx, 'test/runc', 'v1.2.9');
    const logins = () => names.map((n) => (f.fleet.sshdLog(n).match(/Accepted publickey/g) ?? []).length);
    const loginsBefore = logins();
    const r = await runCli(e(), ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '2', '--canary', '1', '--yes']);
    expect(r.code, show(r)).toBe(0);
    // facts and the change over one SSH connection per node
    expect(logins().map((n, i) => n - (loginsBefore[i] as number))).toEqual([1, 1, 1]);
    // plain timestamped lines without a TTY
    expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ a1 stage ok/m);
    for (const n of names) {
      expect(await f.fleet.sha256(n, RUNC)).toBe(want);
      expect(await runcVersion(f.fleet, n)).toBe('runc version 1.2.9');
      expect(await f.fleet.liveSysctl(n)).toBe(16384);
      expect(await activeSettings(f.fleet, n, DROPIN)).toEqual([expect.stringMatching(/=\s*16384\s*$/)]);
    }
    // a file sorting after the drop-in would win after a reboot: commented out; one sorting before is left alone
    expect(await activeSettings(f.fleet, 'a2', LATE_CONF)).toEqual([]);
    expect(await f.fleet.readFile('a2', LATE_CONF)).toMatch(/^#.*fs\.pipe-user-pages-soft = 65536/m);
    expect(await activeSettings(f.fleet, 'a1', OLD_CONF)).toEqual(['fs.pipe-user-pages-soft = 65536']);

    const report = latestReport(e().cwd);
    expect(report).toMatchObject({ command: 'apply', exitCode: 0, interrupted: false, stoppedReason: null, release: { repo: 'test/runc', tag: 'v1.2.9' } });
    expect(report.batches.map((b) => b.nodes)).toEqual([['a1'], ['a2', 'a3']]);
    expect(report.summary).toMatchObject({ total: 3, upgraded: 3 });
    for (const n of report.nodes) {
      expect(n).toMatchObject({ status: 'upgraded', failedStep: null, from: { sha256: original[n.name] }, to: { version: '1.2.9', sha256: want } });
      expect(n.sysctl.after?.live).toBe(16384);
      expect(n.backupPath).toBeTruthy();
      expect(await f.fleet.sha256(n.name, n.backupPath as string)).toBe(original[n.name]);
      expect(n.steps.map((s) => s.name)).toEqual(expect.arrayContaining(['stage', 'staged-smoke', 'backup', 'swap', 'verify', 'smoke', 'sysctl', 'smoke-after-sysctl']));
    }
    expect(report.nodes.find((n) => n.name === 'a1')?.sysctl.before?.live).toBe(65536);
    expect(report.nodes.find((n) => n.name === 'a2')?.sysctl.before?.live).toBe(65536);
  });

  it('a second apply finds nothing to change and exits 0', async () => {
    const r = await runCli(e(), ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--parallel', '1', '--yes', '--json']);
    expect(r.code, show(r)).toBe(0);
    const report = JSON.parse(r.stdout) as { nodes: { status: string }[] };
    expect(report.nodes.map((n) => n.status)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('rollback restores the original binaries and sysctl values', async () => {
    const r = await runCli(e(), ['rollback', '-i', f.fleet.inventoryPath, '--parallel', '1', '--yes']);
    expect(r.code, show(r)).toBe(0);
    for (const n of names) expect(await f.fleet.sha256(n, RUNC)).toBe(original[n]);
    for (const n of ['a1', 'a2']) expect(await f.fleet.liveSysctl(n)).toBe(65536);
    expect(await f.fleet.liveSysctl('a3')).toBe(16384);
    expect(await activeSettings(f.fleet, 'a2', LATE_CONF)).toEqual(['fs.pipe-user-pages-soft = 65536']);
    expect(await f.fleet.fileExists('a1', DROPIN)).toBe(false);
    const report = latestReport(e().cwd);
    expect(report).toMatchObject({ command: 'rollback', exitCode: 0 });
    expect(report.nodes.map((n) => [n.name, n.status, n.to?.sha256])).toEqual(names.map((n) => [n, 'rolled-back', original[n]]));
  });

  it('a saved plan made stale by a changed node is refused (exit 3), naming the node', async () => {
    const planFile = join(e().cwd, 'p.json');
    const p = await runCli(e(), ['plan', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--out', planFile]);
    expect(p.code, show(p)).toBe(0);
    await f.fleet.exec('a2', `cp ${RUNC} ${RUNC}.new && printf x >> ${RUNC}.new && mv ${RUNC}.new ${RUNC}`);
    const before = await snapshots(f.fleet, names);
    const reports = reportCount(e().cwd);
    const r = await runCli(e(), ['apply', planFile, '--yes']);
    expect(r.code, show(r)).toBe(3);
    expect(r.stderr).toMatch(/a2: runc digest/);
    expect(r.stderr).not.toMatch(/a1:|a3:/);
    expect(await snapshots(f.fleet, names)).toEqual(before);
    expect(reportCount(e().cwd)).toBe(reports);
  });

  it('a fresh saved plan is applied as approved (plan --out, then apply FILE --yes)', async () => {
    const planFile = join(e().cwd, 'p2.json');
    const p = await runCli(e(), ['plan', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--out', planFile]);
    expect(p.code, show(p)).toBe(0);
    const r = await runCli(e(), ['apply', planFile, '--parallel', '1', '--yes']);
    expect(r.code, show(r)).toBe(0);
    const want = releaseDigest(fx, 'test/runc', 'v1.2.9');
    for (const n of names) expect(await f.fleet.sha256(n, RUNC)).toBe(want);
    expect(latestReport(e().cwd).nodes.map((n) => n.status)).toEqual(['upgraded', 'upgraded', 'upgraded']);
  });
});

describe.skipIf(unsupported)('apply: releases that must not replace anything', () => {
  const f = useFleet(() => ({ nodes: [raised('b1', '1.1.12'), plain('b2', '1.2.8')] }));
  const names = ['b1', 'b2'];

  it.each(['test/hang', 'test/fail'])('%s is stopped at the staged smoke; every node byte-for-byte unchanged; exit 1', async (repo) => {
    const before = await snapshots(f.fleet, names);
    const e = env();
    const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', repo, '--version', '1.2.9', '--batch', '2', '--parallel', '1', '--max-failures', '5', '--smoke-timeout', '10s', '--yes']);
    expect(r.code, show(r)).toBe(1);
    const report = latestReport(e.cwd);
    for (const n of report.nodes) {
      expect(n.failedStep).toBe('staged-smoke');
      expect(n.status).toBe('failed');
      expect(n.error).toMatch(/Node unchanged/);
    }
    expect(await snapshots(f.fleet, names)).toEqual(before);
    expect(await leftovers(f.fleet, names)).toEqual([]);
  });

  it('a release that fails once installed is rolled back to the original digest and sysctl; exit 1', async () => {
    const original = { b1: await f.fleet.sha256('b1', RUNC), b2: await f.fleet.sha256('b2', RUNC) };
    const e = env();
    const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/fail-installed', '--version', '1.2.9', '--batch', '2', '--parallel', '1', '--max-failures', '5', '--smoke-timeout', '10s', '--yes']);
    expect(r.code, show(r)).toBe(1);
    const report = latestReport(e.cwd);
    expect(report.nodes.map((n) => [n.name, n.status, n.failedStep])).toEqual([
      ['b1', 'rolled-back', 'smoke'],
      ['b2', 'rolled-back', 'smoke'],
    ]);
    expect(await f.fleet.sha256('b1', RUNC)).toBe(original.b1);
    expect(await f.fleet.sha256('b2', RUNC)).toBe(original.b2);
    expect(await f.fleet.liveSysctl('b1')).toBe(65536);
    expect(await activeSettings(f.fleet, 'b1', OLD_CONF)).toEqual([expect.stringMatching(/65536/)]);
    expect(r.stdout).toMatch(/original restored/);
  });
});

describe.skipIf(unsupported)('apply: failure budget, rerun, interruption', () => {
  const f = useFleet(() => ({ nodes: [plain('c1', '1.1.12'), plain('c2', '1.1.12', { diskSize: '8m' }), plain('c3', '1.2.8'), plain('c4', '1.2.8')] }));
  const want = () => releaseDigest(fx, 'test/runc', 'v1.2.9');

  it('--max-failures 0 --batch 1: a node failing (full disk) stops the run, the rest not-attempted; exit 1', async () => {
    // Leave too little room to stage the binary next to the old one.
    await f.fleet.exec('c2', `dd if=/dev/zero of=/usr/local/sbin/filler bs=64k count=1000 2>/dev/null; true`);
    const before = await snapshots(f.fleet, ['c2', 'c3', 'c4']);
    const e = env();
    const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '1', '--max-failures', '0', '--yes']);
    expect(r.code, show(r)).toBe(1);
    const report = latestReport(e.cwd);
    expect(report.stoppedReason).toBe('budget-exceeded');
    expect(report.nodes.map((n) => n.status)).toEqual(['upgraded', expect.stringMatching(/^(failed|rolled-back)$/), 'not-attempted', 'not-attempted']);
    expect(await f.fleet.sha256('c1', RUNC)).toBe(want());
    expect(await snapshots(f.fleet, ['c2', 'c3', 'c4'])).toEqual(before);
    expect(await leftovers(f.fleet, ['c1', 'c2'])).toEqual([]);
    expect(r.stdout).toMatch(/c3 +not-attempted/);
  });

  it('rerunning after the failure finishes the job; a probe running runc meanwhile never finds it missing or broken', async () => {
    await f.fleet.exec('c2', 'rm -f /usr/local/sbin/filler');
    // What kubelet/containerd would see during the swap: every exec of the path must work.
    await f.fleet.exec('c3', 'rm -f /run/stop-probe');
    const probe = f.fleet.exec(
      'c3',
      `n=0; bad=0; while [ ! -e /run/stop-probe ]; do n=$((n+1)); ${RUNC} --version >/dev/null 2>&1 || bad=$((bad+1)); done; echo "runs=$n bad=$bad"`,
      { timeoutMs: 300_000 },
    );
    const e = env();
    const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '2', '--parallel', '1', '--yes']);
    await f.fleet.exec('c3', 'touch /run/stop-probe');
    const counts = /runs=(\d+) bad=(\d+)/.exec((await probe).stdout);
    expect(Number(counts?.[1])).toBeGreaterThan(0);
    expect(Number(counts?.[2])).toBe(0);
    expect(r.code, show(r)).toBe(0);
    expect(latestReport(e.cwd).nodes.map((n) => n.status)).toEqual(['unchanged', 'upgraded', 'upgraded', 'upgraded']);
    for (const n of ['c1', 'c2', 'c3', 'c4']) expect(await f.fleet.sha256(n, RUNC)).toBe(want());
  });

  it('SIGINT during the pause between batches starts no new node: exit 130 with the report', async () => {
    const e = env();
    // back to an older release everywhere first, so there is work to interrupt
    const down = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.8', '--allow-downgrade', '--batch', '4', '--parallel', '1', '--yes']);
    expect(down.code, show(down)).toBe(0);
    const before = await snapshots(f.fleet, ['c2', 'c3', 'c4']);
    let sent = false;
    const { done } = startCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--batch', '1', '--pause', '10m', '--yes'], (out, child) => {
      if (!sent && /pausing .* before batch 2/.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(sent).toBe(true);
    expect(r.code, show(r)).toBe(130);
    const report = latestReport(e.cwd);
    expect(report).toMatchObject({ interrupted: true, stoppedReason: 'interrupted', exitCode: 130 });
    expect(report.nodes.map((n) => n.status)).toEqual(['upgraded', 'not-attempted', 'not-attempted', 'not-attempted']);
    expect(await snapshots(f.fleet, ['c2', 'c3', 'c4'])).toEqual(before);
  });
});
