// Input that must be refused before any node is touched, and nodes that must
// be refused as they are: hostile inventories, bad releases and odd GitHub
// answers, unreachable nodes of every kind (changed host key, black hole,
// unresolvable name), sudo asking for a password, a user without rights.
// Every CLI run carries secrets in its environment; cli.ts checks that no
// output and no report ever shows them.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { assertBuilt, releaseDigest, type CliEnv } from '../e2e/apply-cli.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { SECRETS, expectNoSecrets, latestReport, reportCount, runCli, show } from './cli.js';
import { checkInvariants, probing, type NodeTruth } from './invariants.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the fault suite: ${unsupported}`);

const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
/** Where an injected command would leave its mark: on the controller (and, as the same path, inside each node). */
const MARKER = join(tmpdir(), `rr-fault-marker-${process.pid}`);
const markerGone = () => expect(existsSync(MARKER), `${MARKER} exists: something ran an injected command`).toBe(false);

let fx: ReleaseFixtures;
let server: ReleaseServer;
let origBin: string;
const truth: Record<string, NodeTruth> = {};

describe.skipIf(unsupported)('refused input and refused nodes', () => {
  const f = useFleet(() => {
    fx = sharedReleaseFixtures();
    origBin = buildStandIn(join(temp('rr-refuse-bins-'), 'runc-1.1.12'), { version: '1.1.12' });
    const sysctl = { live: 65536, files: { '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 65536\n' } };
    return {
      nodes: [
        { name: 'r1', runc: { binary: origBin }, sysctl },
        { name: 'pw', runc: { binary: origBin }, sysctl, user: { name: 'deploy', sudo: 'password' as const } },
        { name: 'ns', runc: { binary: origBin }, sysctl, user: { name: 'plain', sudo: 'none' as const } },
        { name: 'hk', runc: { binary: origBin }, sysctl, hostKeyChanged: true as const },
        { name: 'bh', blackhole: true as const },
      ],
    };
  });
  const env = (apiUrl = server.url): CliEnv => ({ apiUrl, fixtures: fx, cacheDir: temp('rr-refuse-cache-'), cwd: temp('rr-refuse-cwd-') });
  let release: string;

  beforeAll(async () => {
    if (unsupported) return;
    assertBuilt();
    server = await startReleaseServer(fx.dir);
    release = releaseDigest(fx, 'test/runc', 'v1.2.9');
    const original = releaseDigest(fx, 'test/runc', 'v1.2.9') && (await f.fleet.sha256('r1', '/usr/local/sbin/runc'));
    for (const n of ['r1', 'pw', 'ns', 'hk']) truth[n] = { original, originalLive: 65536 };
    rmSync(MARKER, { force: true });
  });

  afterAll(async () => {
    await server?.stop();
    for (const d of temps) rmSync(d, { recursive: true, force: true });
    rmSync(MARKER, { force: true });
  });

  /** Inventory with only r1 plus `node` fields, and top-level `extra`. */
  const inventoryOf = (nodes: Record<string, unknown>[], extra: Record<string, unknown> = {}) => {
    const base = f.fleet.inventory() as { ssh: Record<string, unknown>; nodes: Record<string, unknown>[] };
    const dir = temp('rr-refuse-inv-');
    const path = join(dir, 'inventory.yaml');
    writeFileSync(path, stringify({ ssh: base.ssh, ...extra, nodes }));
    return path;
  };
  const r1 = () => ({ name: 'r1', host: f.fleet.node('r1').host });
  const snapshots = async () => Object.fromEntries(await Promise.all(['r1', 'pw', 'ns', 'hk'].map(async (n) => [n, await f.fleet.snapshot(n)] as const)));

  describe('hostile inventories are refused before anything connects, naming the field', () => {
    const inj = `touch ${MARKER}`;
    const cases: [string, () => Record<string, unknown>[] | string, RegExp][] = [
      ['host with ;', () => [{ ...r1(), host: `${f.fleet.node('r1').host};${inj}` }], /nodes\[0\]\.host: .* contains ";"/],
      ['host with $(...)', () => [{ ...r1(), host: `$(${inj})` }], /nodes\[0\]\.host: .* contains "\$\("/],
      ['user with backticks', () => [{ ...r1(), ssh: { user: `\`${inj}\`` } }], /nodes\[0\]\.ssh\.user: .* contains a backtick/],
      ['name with a newline', () => [{ ...r1(), name: `r1\n${inj}` }], /nodes\[0\]\.name: .* contains a line break/],
      ['runc.path with a quote', () => [{ ...r1(), runc: { path: `/usr/local/sbin/runc'; ${inj}; '` } }], /nodes\[0\]\.runc\.path: .* contains (";"|a quote)/],
      ['runc.path with a space', () => [{ ...r1(), runc: { path: '/usr/local/my sbin/runc' } }], /nodes\[0\]\.runc\.path: .* contains a space/],
      ['relative runc.path', () => [{ ...r1(), runc: { path: 'sbin/runc' } }], /nodes\[0\]\.runc\.path: "sbin\/runc" must be an absolute path/],
      ['runc.path with ..', () => [{ ...r1(), runc: { path: '/usr/local/../sbin/runc' } }], /nodes\[0\]\.runc\.path: .* normalised/],
      ['duplicate node', () => [r1(), r1()], /nodes\[1\]\.name: duplicate name "r1"/],
      ['port as a string', () => [{ ...r1(), ssh: { port: '22' } }], /nodes\[0\]\.ssh\.port: expected a number/],
      ['sudo as a string', () => [{ ...r1(), ssh: { sudo: 'yes' } }], /nodes\[0\]\.ssh\.sudo: expected true or false/],
      ['label value with ;', () => [{ ...r1(), labels: { pool: `a;${inj}` } }], /nodes\[0\]\.labels\.pool: .* not a valid label value/],
      ['smoke.command over two lines', () => [{ ...r1(), smoke: { command: `true\n${inj}` } }], /nodes\[0\]\.smoke\.command: must be one line/],
      ['empty file', () => '', /the file is empty/],
      ['a list, not a mapping', () => '- r1\n- r2\n', /the top level must be a mapping/],
      ['a scalar', () => 'nodes\n', /the top level must be a mapping/],
      ['huge file (over 5 MiB)', () => `# ${'x'.repeat(6 * 1024 * 1024)}\nnodes: []\n`, /is too large .* the limit is 5\.0 MiB/],
    ];
    it.each(cases)('%s', async (_label, make, field) => {
      const doc = make();
      const path = typeof doc === 'string' ? join(temp('rr-refuse-inv-'), 'inventory.yaml') : inventoryOf(doc);
      if (typeof doc === 'string') writeFileSync(path, doc);
      const e = env();
      for (const args of [
        ['plan', '-i', path, '--repo', 'test/runc', '--version', '1.2.9'],
        ['apply', '-i', path, '--repo', 'test/runc', '--version', '1.2.9', '--yes'],
        ['rollback', '-i', path, '--yes'],
      ]) {
        const r = await runCli(e, args);
        expect(r.code, show(r)).toBe(3);
        expect(r.stderr, show(r)).toMatch(field);
        expect(r.stdout).not.toMatch(/NODE +ARCH/);
      }
      expect(reportCount(e.cwd)).toBe(0);
      markerGone();
    });

    it('an unknown key is warned about, naming it, and does not stop a plan', async () => {
      const path = inventoryOf([{ ...r1(), colour: 'blue' }], { frobnicate: true });
      const r = await runCli(env(), ['plan', '-i', path, '--repo', 'test/runc', '--version', '1.2.9']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stderr).toMatch(/frobnicate/);
      expect(r.stderr).toMatch(/nodes\[0\]\.colour/);
    });
  });

  it('a valid smoke.command full of shell syntax runs exactly as written (no second evaluation); identityFile with spaces, relative to the inventory', async () => {
    await probing(f.fleet, ['r1'], async () => {
      const dir = temp('rr-refuse-inv-');
      mkdirSync(join(dir, 'my keys'));
      copyFileSync(f.fleet.identityFile, join(dir, 'my keys', 'id key'));
      // Single quotes keep $(...), backticks and ; literal for the one sh -c that should run it; a tool that
      // re-evaluated or mis-quoted it would create the marker (on the node, where it runs).
      const command = `echo '$(touch ${MARKER}) \`touch ${MARKER}\` ; touch ${MARKER}' "it's" > /dev/null`;
      const base = f.fleet.inventory() as { ssh: Record<string, unknown> };
      const path = join(dir, 'inventory.yaml');
      writeFileSync(path, stringify({ ssh: { ...base.ssh, identityFile: 'my keys/id key' }, nodes: [{ ...r1(), smoke: { command }, labels: { pool: 'odd.label_value-1' } }] }));
      const e = env();
      const r = await runCli(e, ['apply', '-i', path, '--repo', 'test/runc', '--version', '1.2.9', '--limit', 'pool=odd.label_value-1', '--smoke-timeout', '20s', '--yes']);
      expect(r.code, show(r)).toBe(0);
      const report = latestReport(e.cwd);
      expect(report.nodes[0]?.steps.find((s) => s.name === 'smoke')?.message).toMatch(/custom smoke command passed/);
      await checkInvariants(f.fleet, truth, ['r1'], { release, report, exitCode: r.code });
      expect(await f.fleet.fileExists('r1', MARKER)).toBe(false);
      markerGone();
      // back to the original for the cases below
      const rb = await runCli(e, ['rollback', '-i', path, '--smoke-timeout', '20s', '--yes']);
      expect(rb.code, show(rb)).toBe(0);
      await checkInvariants(f.fleet, truth, ['r1'], { release, report: latestReport(e.cwd), exitCode: rb.code });
    });
  }, 240_000);

  it('a release that reports the wrong version is refused at the stage; the node is unchanged; exit 1', async () => {
    await probing(f.fleet, ['r1'], async () => {
      const before = await f.fleet.snapshot('r1');
      const e = env();
      const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--limit', 'r1', '--repo', 'test/wrong-version', '--version', '1.2.9', '--yes']);
      expect(r.code, show(r)).toBe(1);
      const report = latestReport(e.cwd);
      expect(report.nodes[0]).toMatchObject({ status: 'failed', failedStep: 'stage' });
      expect(report.nodes[0]?.error).toMatch(/reports "runc version 1\.2\.8", expected runc version 1\.2\.9.*Node unchanged/s);
      await checkInvariants(f.fleet, truth, ['r1'], { release, report, exitCode: r.code });
      const after = await f.fleet.snapshot('r1');
      for (const k of Object.keys(before).filter((x) => !x.startsWith('/var/lib/runc-rollout'))) expect(after[k], k).toBe(before[k]);
    });
  }, 240_000);

  describe('releases that must never reach a node: exit 3, no node touched, no report', () => {
    let before: Record<string, Record<string, string>>;
    beforeAll(async () => {
      if (!unsupported) before = await snapshots();
    });
    afterAll(async () => {
      if (!unsupported) expect(await snapshots()).toEqual(before);
    });

    it.each([
      ['test/bad-checksum', /SHA-256 mismatch/],
      ['test/untrusted', /signature verification failed/],
      ['test/expired-key', /signature verification failed|expired/],
      ['test/truncated', /SHA-256 mismatch/],
      ['test/unsigned-sums', /not a clear-signed message/],
      ['test/altered-sums', /signature verification failed|BAD signature/],
      ['test/duplicate-sums', /listed twice with different digests/],
      ['test/path-sums', /has path components/],
    ])('%s', async (repo, why) => {
      const e = env();
      const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--limit', 'r1', '--repo', repo, '--version', '1.2.9', '--yes']);
      expect(r.code, show(r)).toBe(3);
      expect(r.stderr).toMatch(why);
      expect(reportCount(e.cwd)).toBe(0);
    });

    /** A server whose answer for test/runc v1.2.9 is rewritten by `edit`. */
    const withRelease = async (edit: (rel: { assets: { name: string; size: number }[] }) => unknown) => {
      const own = await startReleaseServer(fx.dir);
      const path = /\/repos\/test\/runc\/releases\/tags\/v1\.2\.9$/;
      const rel = (await (await fetch(`${own.url}/repos/test/runc/releases/tags/v1.2.9`)).json()) as { assets: { name: string; size: number }[] };
      own.inject({ path, status: 200, body: edit(rel), times: Infinity });
      return own;
    };

    it.each([
      ['an asset named with ../', (rel: { assets: { name: string; size: number }[] }) => ({ ...rel, assets: rel.assets.map((a) => (a.name === `runc.${fx.arch}` ? { ...a, name: `../runc.${fx.arch}` } : a)) }), /has no asset runc\.\w+/],
      ['an asset listed twice', (rel: { assets: { name: string; size: number }[] }) => ({ ...rel, assets: [...rel.assets, ...rel.assets.filter((a) => a.name === `runc.${fx.arch}`)] }), /more than one asset named runc\.\w+/],
      ['an oversized asset (over the cap)', (rel: { assets: { name: string; size: number }[] }) => ({ ...rel, assets: rel.assets.map((a) => (a.name === `runc.${fx.arch}` ? { ...a, size: 64 * 1024 ** 3 } : a)) }), /over the \d+-byte cap/],
      ['an answer of unexpected shape', (rel: { assets: { name: string; size: number }[] }) => ({ ...rel, assets: 'none', draft: 'no' }), /unexpected shape/],
    ])('GitHub API: %s', async (_label, edit, why) => {
      const own = await withRelease(edit);
      try {
        const e = env(own.url);
        const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--limit', 'r1', '--repo', 'test/runc', '--version', 'v1.2.9', '--yes']);
        expect(r.code, show(r)).toBe(3);
        expect(r.stderr).toMatch(why);
        expect(reportCount(e.cwd)).toBe(0);
        // nothing written outside the cache folder, whatever the asset name said
        expect(readdirSync(join(e.cacheDir, '..')).filter((x) => x.startsWith('runc.'))).toEqual([]);
        expect(own.requests.some((q) => /\.\.%2F|\/\.\.\//.test(q))).toBe(false);
      } finally {
        await own.stop();
      }
    });
  });

  describe('nodes that cannot be worked on are refused by name, and nothing is changed', () => {
    const all = () => {
      const base = f.fleet.inventory() as { ssh: Record<string, unknown>; nodes: Record<string, unknown>[] };
      return inventoryOf([...base.nodes, { name: 'dns', host: 'no-such-node.invalid' }]);
    };

    it('plan: changed host key, black hole (connect timeout), unresolvable name, sudo wanting a password: exit 3, each named', async () => {
      const r = await runCli(env(), ['--json', 'plan', '-i', all(), '--repo', 'test/runc', '--version', '1.2.9', '--connect-timeout', '3s']);
      expect(r.code, show(r)).toBe(3);
      const plan = JSON.parse(r.stdout) as { nodes: { name: string; action: string; error: string | null }[] };
      const by = Object.fromEntries(plan.nodes.map((n) => [n.name, n]));
      expect(by.r1?.action).toBe('upgrade');
      expect(by.hk).toMatchObject({ action: 'unreachable', error: expect.stringMatching(/HOST KEY CHANGED/) });
      expect(by.bh).toMatchObject({ action: 'unreachable', error: expect.stringMatching(/connect timed out after 3s \(TCP connected, but the server did not complete the SSH handshake\)/) });
      expect(by.dns).toMatchObject({ action: 'unreachable', error: expect.stringMatching(/does not resolve/) });
      expect(by.pw?.error).toMatch(/sudo: a password is required\. runc-rollout runs commands with "sudo -n"/);
      expect(['unreachable', 'blocked']).toContain(by.pw?.action);
      expect(r.stderr).toMatch(/cannot be planned/);
    });

    it('apply: the same fleet is refused before any node is touched (exit 3, no report)', async () => {
      const before = await snapshots();
      const e = env();
      const r = await runCli(e, ['--verbose', 'apply', '-i', all(), '--repo', 'test/runc', '--version', '1.2.9', '--connect-timeout', '3s', '--yes']);
      expect(r.code, show(r)).toBe(3);
      expect(r.stderr).toMatch(/cannot be upgraded; nothing was changed/);
      for (const n of ['hk', 'bh', 'dns', 'pw']) expect(r.stderr).toMatch(new RegExp(`^  ${n}: `, 'm'));
      expect(reportCount(e.cwd)).toBe(0);
      expect(await snapshots()).toEqual(before);
    });

    it('rollback: each unreachable node is reported as such, sudo-with-password fails at the lock; exit 1, nothing changed', async () => {
      const before = await snapshots();
      const e = env();
      const r = await runCli(e, ['rollback', '-i', all(), '--connect-timeout', '3s', '--limit', 'hk', '--limit', 'bh', '--limit', 'dns', '--limit', 'pw', '--yes']);
      expect(r.code, show(r)).toBe(1);
      const report = latestReport(e.cwd);
      const by = Object.fromEntries(report.nodes.map((n) => [n.name, n]));
      for (const n of ['hk', 'bh', 'dns']) expect(by[n]?.status, n).toBe('unreachable');
      expect(by.pw).toMatchObject({ status: 'failed', failedStep: 'lock' });
      expect(by.pw?.error).toMatch(/sudo: a password is required.*Nothing was changed/s);
      expect(await snapshots()).toEqual(before);
    });

    it('a user without sudo who cannot write the runc folder is refused at the lock with that reason, node unchanged; exit 1', async () => {
      await probing(f.fleet, ['ns'], async () => {
        const before = await f.fleet.snapshot('ns');
        const e = env();
        const r = await runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--limit', 'ns', '--repo', 'test/runc', '--version', '1.2.9', '--yes']);
        expect(r.code, show(r)).toBe(1);
        const report = latestReport(e.cwd);
        expect(report.nodes[0]).toMatchObject({ name: 'ns', status: 'failed', failedStep: 'lock' });
        // the reason, not a guess at a full disk
        expect(report.nodes[0]?.error).toMatch(/commands run as plain, not root: .*ssh\.sudo: true.*Node unchanged/s);
        await checkInvariants(f.fleet, truth, ['ns'], { release, report, exitCode: r.code });
        expect(await f.fleet.snapshot('ns')).toEqual(before);
      });
    }, 240_000);
  });

  it('secrets: the GitHub token and key passphrase never appear, even with --verbose --json and failures', async () => {
    // Every run above was checked by cli.ts; this one makes the tool talk as much as it can.
    const e = env();
    const r = await runCli(e, ['--verbose', '--json', 'apply', '-i', f.fleet.inventoryPath, '--limit', 'pw', '--limit', 'r1', '--repo', 'test/bad-checksum', '--version', '1.2.9', '--yes']);
    expect(r.code).toBe(3);
    expectNoSecrets(`${r.stdout}${r.stderr}`, 'verbose output');
    expect(SECRETS.GITHUB_TOKEN.length).toBeGreaterThan(20);
  });
});
