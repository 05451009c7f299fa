// Healing the nodes the rc93 hang already hit, end to end: the built CLI, real
// sshd nodes, the loopback GitHub. A node runs the rc93 stand-in with a
// `runc init` blocked for ever writing into a full pipe (its `runc create`
// parent names the container), a copy of the target binary blocked the same
// way (a look-alike of the current runc once upgraded: it must survive), and
// an old `runc init` that sleeps, blocked on nothing (it must survive). Its
// health gate fails while the old init hangs, as kubelet's PLEG does.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/core/types.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { aliveInNode, startInNode } from '../harness/stuck-processes.js';
import { assertBuilt, latestReport, runCli, runCliOnTty, show, type CliEnv } from './apply-cli.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the unstick e2e test: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};

describe.skipIf(unsupported)('unstick on the test fleet', () => {
  let fx: ReleaseFixtures;
  let server: ReleaseServer;
  let rc93 = '';
  const f = useFleet(() => {
    rc93 = buildStandIn(join(temp('rr-unstick-bins-'), 'runc-rc93'), { version: '1.0.0-rc93' });
    return { nodes: [{ name: 'heal', runc: { binary: rc93 } }, { name: 'old', runc: { binary: rc93 } }] };
  });
  let env: CliEnv;
  let inventory = '';
  let d = '';
  const pids = { old: 0, copy: 0, sleeping: 0, untouched: 0, later: 0 };
  // each node has its own pid space: pids of one node say nothing about the other's
  const known = () => [pids.old, pids.copy, pids.sleeping, pids.later].filter(Boolean);
  const alive = (pid: number, node = 'heal') => aliveInNode(f.fleet, node, pid);
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    assertBuilt();
    fx = sharedReleaseFixtures();
    server = await startReleaseServer(fx.dir);
    env = { apiUrl: server.url, fixtures: fx, cacheDir: temp('rr-unstick-cache-'), cwd: temp('rr-unstick-cwd-') };
    const fleet = f.fleet;
    d = join(fleet.dir, 'unstick');
    mkdirSync(join(d, 'copy'), { recursive: true });
    mkdirSync(join(d, 'old'), { recursive: true });
    copyFileSync(join(fx.releaseDir('test/runc', 'v1.2.9'), `runc.${fx.arch}`), join(d, 'copy', 'runc'));
    copyFileSync(rc93, join(d, 'old', 'runc'));
    // kubelet's PLEG stand-in: unhealthy while an init of the node's runc is blocked on its pipe
    writeFileSync(
      join(d, 'pleg.sh'),
      `for p in /proc/[0-9]*; do\n  [ "$(tr '\\000' ' ' <$p/cmdline 2>/dev/null)" = "${RUNC} init " ] || continue\n  case $(cat $p/wchan 2>/dev/null) in *pipe_write) echo "PLEG is not healthy: runc init \${p#/proc/} blocked" >&2; exit 1 ;; esac\ndone\n`,
    );
    inventory = fleet.writeInventory({}, { nodes: { heal: { health: { commands: [`sh ${d}/pleg.sh`], timeout: '2s', settle: '0s' } } } });
    pids.old = await startInNode(fleet, 'heal', `env STANDIN_CREATE=stuck-init ${RUNC} create --bundle /nonexistent ctr-old`, `${RUNC} init`, known());
    pids.copy = await startInNode(fleet, 'heal', `bash -c 'exec -a runc ${d}/copy/runc init'`, 'runc init', known());
    pids.sleeping = await startInNode(fleet, 'heal', `env STANDIN_INIT=pause bash -c 'exec -a runc ${RUNC} init'`, 'runc init', known());
    pids.untouched = await startInNode(fleet, 'old', `env STANDIN_CREATE=stuck-init ${RUNC} create --bundle /nonexistent ctr-keep`, `${RUNC} init`);
    // older than --stuck-after 1s
    await wait(2000);
  });

  afterAll(async () => {
    await server?.stop();
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  });

  it('plan lists each stuck runc init (table column and JSON) and warns what unstick would do', async () => {
    const r = await runCli(env, ['--json', 'plan', '-i', inventory, '--repo', 'test/runc', '--version', 'v1.2.9', '--stuck-after', '1s', '--limit', 'heal']);
    expect(r.code, show(r)).toBe(0);
    const plan = JSON.parse(r.stdout) as Plan;
    const heal = plan.nodes[0]!;
    expect(plan.options.stuckAfterSeconds).toBe(1);
    expect(heal.stuck?.map((p) => [p.pid, p.current, p.containerId]).sort()).toEqual(
      [
        [pids.old, true, 'ctr-old'],
        [pids.copy, false, null],
      ].sort(),
    );
    expect(heal.stuck?.find((p) => p.pid === pids.old)).toMatchObject({ exe: RUNC, wchan: expect.stringMatching(/pipe_write$/), parent: `${RUNC} create --bundle /nonexistent ctr-old` });
    expect(heal.warnings.join('\n')).toMatch(/2 `runc init` processes older than 1s blocked writing into a pipe \(the rc93 hang\)/);
    const table = await runCli(env, ['plan', '-i', inventory, '--repo', 'test/runc', '--version', 'v1.2.9', '--stuck-after', '1s', '--limit', 'heal']);
    const header = table.stdout.split('\n').find((l) => l.startsWith('NODE'))!;
    expect(header).toMatch(/\bSTUCK\b/);
    expect(table.stdout.split('\n').find((l) => l.startsWith('heal '))!.slice(header.indexOf('STUCK')).trim()).toMatch(/^2 \(1 old\)/);
  });

  it('apply --unstick ends exactly the old binary’s stuck init after the smokes and the sysctl step; the node’s health gate then passes', async () => {
    const junit = join(env.cwd, 'apply.xml');
    const r = await runCli(env, ['apply', '-i', inventory, '--repo', 'test/runc', '--version', 'v1.2.9', '--limit', 'heal', '--unstick', '--stuck-after', '1s', '--yes', '--report-junit', junit]);
    expect(r.code, show(r)).toBe(0);
    expect(await alive(pids.old)).toBe(false);
    for (const p of [pids.copy, pids.sleeping]) expect(await alive(p), String(p)).toBe(true);

    const report = latestReport(env.cwd);
    const heal = report.nodes[0]!;
    expect(heal.status).toBe('upgraded');
    expect(report.options).toMatchObject({ unstick: true, stuckAfterSeconds: 1 });
    expect(heal.unstuck).toEqual([{ pid: pids.old, ageSeconds: expect.any(Number), containerId: 'ctr-old', exe: `${RUNC} (deleted)`, outcome: 'ended' }]);
    // what is left: the copy of the current binary, which counts as current
    expect(heal.stuck?.map((p) => [p.pid, p.current])).toEqual([[pids.copy, true]]);
    const steps = heal.steps.map((s) => `${s.name}:${s.status}`);
    // unhealthy before (the stuck init), so the gates before unstick only warned; the one after it passed
    expect(steps).toEqual(expect.arrayContaining(['health:failed', 'sysctl:ok', 'smoke-after-sysctl:ok', 'unstick:ok', 'health-after-unstick:ok']));
    expect(steps.indexOf('unstick:ok')).toBeGreaterThan(steps.indexOf('smoke-after-sysctl:ok'));
    expect(steps.indexOf('unstick:ok')).toBeGreaterThan(steps.indexOf('sysctl:ok'));

    expect(r.stdout).toContain('unstick: 1 of 1 stuck runc init ended');
    expect(r.stdout).toMatch(new RegExp(`pid ${pids.old} \\(age \\d+(\\.\\d)?s, container ctr-old\\): ended`));
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8')) as { testsuites: { testsuite: { testcase: { 'system-out': string } } } };
    expect(xml.testsuites.testsuite.testcase['system-out']).toContain(`pid ${pids.old} (age`);
    expect(xml.testsuites.testsuite.testcase['system-out']).toContain('container ctr-old): ended');
  });

  it('unstick refuses without confirmation when there is no terminal, and asks on one before doing anything', async () => {
    pids.later = await startInNode(f.fleet, 'heal', `env STANDIN_CREATE=stuck-init ${d}/old/runc create --bundle /nonexistent ctr-later`, `${d}/old/runc init`, known());
    await wait(2000);
    const ci = await runCli(env, ['unstick', '-i', inventory, '--limit', 'heal', '--stuck-after', '1s']);
    expect(ci.code, show(ci)).toBe(3);
    expect(ci.stderr).toMatch(/refusing to end processes without confirmation/);
    const tty = await runCliOnTty(env, ['unstick', '-i', inventory, '--limit', 'heal', '--stuck-after', '1s'], 'n\n');
    expect(tty.prompted).toBe(true);
    expect(tty.code).toBe(3);
    // the preview comes before the question, and names what would be ended
    const before = tty.stdout.slice(0, tty.stdout.indexOf('[y/N]'));
    expect(before).toMatch(new RegExp(`heal: END \\(SIGKILL\\): pid ${pids.later} .*container ctr-later`));
    expect(before).toMatch(new RegExp(`heal: left alone, runs the current runc: pid ${pids.copy} `));
    expect(await alive(pids.later)).toBe(true);
  });

  it('unstick --yes on an upgraded node ends the stuck init of another runc, and leaves the current binary’s and the sleeping one', async () => {
    const r = await runCli(env, ['unstick', '-i', inventory, '--limit', 'heal', '--stuck-after', '1s', '--yes']);
    expect(r.code, show(r)).toBe(0);
    expect(await alive(pids.later)).toBe(false);
    for (const p of [pids.copy, pids.sleeping]) expect(await alive(p), String(p)).toBe(true);
    const report = latestReport(env.cwd);
    expect(report.command).toBe('unstick');
    expect(report.nodes[0]).toMatchObject({ status: 'unchanged', unstuck: [{ pid: pids.later, containerId: 'ctr-later', exe: `${d}/old/runc`, outcome: 'ended' }] });
    expect(report.nodes[0]!.steps.map((s) => `${s.name}:${s.status}`)).toEqual(['unstick:ok', 'health-after-unstick:ok']);
    expect(r.stdout).toContain('ended 1 of 1 stuck runc init; runs 1.2.9');
  });

  it('unstick refuses a node whose runc is not past the hang, and ends nothing anywhere', async () => {
    const r = await runCli(env, ['unstick', '-i', inventory, '--stuck-after', '1s', '--yes']);
    expect(r.code, show(r)).toBe(3);
    expect(r.stderr).toMatch(/1 node cannot be unstuck; nothing was ended/);
    expect(r.stderr).toMatch(/old: it still runs runc 1\.0\.0-rc93, which has not been upgraded past the rc93 hang/);
    expect(await alive(pids.untouched, 'old')).toBe(true);
  });

  it('plan refuses a release for an advisory only the GitHub API knows, and warns about current versions with it', async () => {
    server.setAdvisories('test/runc', [
      { ghsa_id: 'GHSA-2222-3333-4444', cve_id: 'CVE-2099-0001', summary: 'only the API knows', severity: 'high', state: 'published', vulnerabilities: [{ package: { ecosystem: 'go', name: 'github.com/opencontainers/runc' }, vulnerable_version_range: '>= 1.2.0, < 1.2.9', patched_versions: '1.2.9' }] },
      { ghsa_id: 'GHSA-5555-6666-7777', cve_id: 'CVE-2099-0093', summary: 'rc93 again', severity: 'low', state: 'published', vulnerabilities: [{ package: { ecosystem: 'go', name: 'github.com/opencontainers/runc' }, vulnerable_version_range: '>= 1.0.0-rc90, < 1.0.0-rc94', patched_versions: '1.0.0-rc94' }] },
    ]);
    const cacheDir = temp('rr-unstick-adv-');
    const refused = await runCli({ ...env, cacheDir }, ['plan', '-i', inventory, '--repo', 'test/runc', '--version', 'v1.2.8', '--limit', 'old']);
    expect(refused.code, show(refused)).toBe(3);
    expect(refused.stderr).toMatch(/runc 1\.2\.8 has known advisories: GHSA-2222-3333-4444 \(CVE-2099-0001\); refusing it as a target/);
    const ok = await runCli({ ...env, cacheDir }, ['--json', 'plan', '-i', inventory, '--repo', 'test/runc', '--version', 'v1.2.9', '--limit', 'old']);
    expect(ok.code, show(ok)).toBe(0);
    expect((JSON.parse(ok.stdout) as Plan).nodes[0]!.warnings.join('\n')).toMatch(/current 1\.0\.0-rc93 is affected by .*CVE-2099-0093/);
    const builtin = await runCli({ ...env, cacheDir: temp('rr-unstick-adv-') }, ['plan', '-i', inventory, '--repo', 'test/runc', '--version', 'v1.2.8', '--limit', 'old', '--advisories', 'builtin']);
    expect(builtin.code, show(builtin)).toBe(0);
  });
});
