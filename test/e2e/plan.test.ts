// `runc-rollout plan` end to end: the built CLI against a mixed test fleet over
// real SSH and the loopback GitHub stand-in. The plan must be right in both
// outputs, the exit codes must say what is pending, and no node may change.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlanFile } from '../../src/core/plan-schema.js';
import type { NodePlan, Plan } from '../../src/core/types.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';

const ROOT = resolve(import.meta.dirname, '../..');
const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the plan e2e test: ${unsupported}`);

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe.skipIf(unsupported)('runc-rollout plan on a mixed fleet', () => {
  let fx: ReleaseFixtures;
  let server: ReleaseServer;
  let work: string;
  const bin = (tag: string) => join(fx.releaseDir('test/runc', tag), `runc.${fx.arch}`);

  const f = useFleet(() => {
    fx = sharedReleaseFixtures();
    return {
      nodes: [
        { name: 'rc93', runc: { binary: bin('v1.0.0-rc93') } },
        {
          name: 'old',
          runc: { binary: bin('v1.1.12') },
          // containerd is pointed elsewhere: the plan must say so
          containerdConfig: 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  BinaryName = "/opt/runc/bin/runc"\n',
        },
        { name: 'current', runc: { binary: bin('v1.2.9') } },
        { name: 'usrbin', runc: { binary: bin('v1.2.8'), path: '/usr/bin/runc' } },
        { name: 'sudoer', runc: { binary: bin('v1.1.12') }, user: { name: 'deploy', sudo: 'nopasswd' } },
        {
          name: 'workaround',
          runc: { binary: bin('v1.2.8') },
          sysctl: {
            live: 65536,
            files: {
              '/etc/sysctl.d/90-rc93-workaround.conf': '# raised for the rc93 hang\nfs.pipe-user-pages-soft = 65536\n',
              '/etc/sysctl.conf': '# site settings\nfs.pipe-user-pages-soft=65536\n',
            },
          },
        },
        { name: 'down', down: true },
        { name: 'rekeyed', runc: { binary: bin('v1.1.12') }, hostKeyChanged: true },
      ],
    };
  });

  const reachable = ['rc93', 'old', 'current', 'usrbin', 'sudoer', 'workaround'];
  const before: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/cli/plan.js'))) throw new Error('dist/ is not built: run `npm run build` (npm test does)');
    server = await startReleaseServer(fx.releases);
    work = mkdtempSync(join(tmpdir(), 'rr-plan-e2e-'));
    // an earlier apply that stopped half-way on this node
    const state = {
      schema: 1,
      runId: 'run-e2e-1',
      updatedAt: '2026-11-27T10:00:00.000Z',
      runcPath: '/usr/bin/runc',
      phase: 'staged',
      original: { version: '1.2.8', sha256: sha256(bin('v1.2.8')), backupPath: '/var/lib/runc-rollout/backups/runc-1.2.8' },
      target: { version: '1.2.9', sha256: sha256(bin('v1.2.9')) },
      sysctl: { liveBefore: 16384, files: [] },
    };
    const w = await f.fleet.exec('usrbin', 'cat > /var/lib/runc-rollout/state.json', { input: JSON.stringify(state) });
    expect(w.code).toBe(0);
    for (const n of reachable) before[n] = await f.fleet.snapshot(n);
  });
  afterAll(async () => {
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      const all = ['--github-api-url', server.url, '--keyring', fx.keyringPath, '--cache-dir', join(work, 'cache'), 'plan', '--repo', 'test/runc', '--version', 'v1.2.9', ...args];
      execFile(process.execPath, [join(ROOT, 'bin/runc-rollout'), ...all], { env: { ...process.env, CI: '1', SSH_AUTH_SOCK: '', NO_COLOR: '' }, timeout: 90_000 }, (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
    });

  let json: { code: number; stdout: string; stderr: string };
  let plan: Plan;
  const node = (name: string): NodePlan => {
    const n = plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no ${name} in the plan`);
    return n;
  };

  it('--json --detailed-exitcode --out: the whole fleet, exit 3 because two nodes cannot be reached', async () => {
    const out = join(work, 'plan.json');
    json = await cli(['-i', f.fleet.inventoryPath, '--json', '--detailed-exitcode', '--out', out]);
    expect(json.code, json.stderr).toBe(3);
    plan = parsePlanFile(json.stdout, 'stdout');
    // the saved plan is the printed one
    expect(parsePlanFile(readFileSync(out, 'utf8'), out)).toEqual(plan);
    expect(plan.nodes.map((n) => n.name)).toEqual(['rc93', 'old', 'current', 'usrbin', 'sudoer', 'workaround', 'down', 'rekeyed']);
    expect(plan.summary).toEqual({ upgrade: 5, downgrade: 0, unchanged: 1, blocked: 0, unreachable: 2 });
    expect(plan.release).toMatchObject({ repo: 'test/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true });
    expect(json.stderr).toMatch(/2 nodes cannot be planned/);
  });

  it('reads versions, digests, paths and arch from every reachable node', () => {
    const target = { version: '1.2.9', sha256: sha256(bin('v1.2.9')) };
    const expected: Record<string, { action: string; version: string; tag: string; path: string }> = {
      rc93: { action: 'upgrade', version: '1.0.0-rc93', tag: 'v1.0.0-rc93', path: '/usr/local/sbin/runc' },
      old: { action: 'upgrade', version: '1.1.12', tag: 'v1.1.12', path: '/usr/local/sbin/runc' },
      current: { action: 'none', version: '1.2.9', tag: 'v1.2.9', path: '/usr/local/sbin/runc' },
      usrbin: { action: 'upgrade', version: '1.2.8', tag: 'v1.2.8', path: '/usr/bin/runc' },
      sudoer: { action: 'upgrade', version: '1.1.12', tag: 'v1.1.12', path: '/usr/local/sbin/runc' },
      workaround: { action: 'upgrade', version: '1.2.8', tag: 'v1.2.8', path: '/usr/local/sbin/runc' },
    };
    for (const [name, e] of Object.entries(expected)) {
      expect(node(name), name).toMatchObject({
        action: e.action,
        arch: fx.arch,
        runcPath: e.path,
        current: { version: e.version, sha256: sha256(bin(e.tag)) },
        target,
        error: null,
        host: f.fleet.node(name).host,
      });
    }
  });

  it('warns about advisories, the containerd BinaryName mismatch and an interrupted run', () => {
    expect(node('rc93').warnings).toContainEqual(expect.stringMatching(/^current 1\.0\.0-rc93 is affected by runc-rc93-pipe-hang, .*CVE-2024-21626/));
    expect(node('old').warnings).toContainEqual(expect.stringMatching(/^containerd runs \/opt\/runc\/bin\/runc .*not \/usr\/local\/sbin\/runc/));
    expect(node('current').warnings).toEqual([]);
    expect(node('usrbin').warnings).toContainEqual('an earlier run (run-e2e-1) stopped at "staged" on 2026-11-27T10:00:00.000Z; original binary backed up at /var/lib/runc-rollout/backups/runc-1.2.8');
  });

  it('resolves the persisted sysctl and the lines apply must comment out', () => {
    expect(node('workaround').sysctl).toEqual({
      live: 65536,
      persisted: 65536,
      persistedFrom: '/etc/sysctl.conf:2',
      target: 16384,
      changeLive: true,
      changePersisted: true,
      commentOut: [{ path: '/etc/sysctl.conf', lines: [2] }],
    });
    expect(node('current').sysctl).toMatchObject({ live: 16384, persisted: null, changeLive: false, changePersisted: false, commentOut: [] });
  });

  it('lists unreachable nodes with the reason, the changed host key with its fingerprint', () => {
    expect(node('down')).toMatchObject({ action: 'unreachable', current: null, target: null, sysctl: null });
    expect(node('down').error).toMatch(/ECONNREFUSED|refused/i);
    expect(node('rekeyed')).toMatchObject({ action: 'unreachable' });
    expect(node('rekeyed').error).toMatch(/host key/i);
    expect(node('rekeyed').error).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
  });

  it('the human table says the same, without colour in CI', async () => {
    const r = await cli(['-i', f.fleet.inventoryPath]);
    if (process.env.RR_SHOW_PLAN) console.log(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).not.toMatch(/\x1b\[/);
    const lines = r.stdout.split('\n');
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? '';
    const short = (tag: string) => sha256(bin(tag)).slice(0, 8);
    expect(row('rc93')).toMatch(new RegExp(`^rc93\\s+${fx.arch}\\s+upgrade\\s+1\\.0\\.0-rc93 ${short('v1.0.0-rc93')} -> 1\\.2\\.9 ${short('v1.2.9')}\\s+16384/-\\s+1$`));
    expect(row('current')).toMatch(new RegExp(`^current\\s+${fx.arch}\\s+unchanged\\s+1\\.2\\.9 ${short('v1.2.9')}\\s+16384/-$`));
    expect(row('workaround')).toMatch(/\s65536\/65536 -> 16384$/);
    expect(row('down')).toMatch(/^down\s+-\s+UNREACHABLE/);
    expect(lines).toContain('workaround: sysctl: apply comments out /etc/sysctl.conf line 2');
    expect(lines.some((l) => l.startsWith('rekeyed: unreachable: ') && /SHA256:/.test(l))).toBe(true);
    expect(lines.filter(Boolean).at(-1)).toBe('5 to upgrade, 1 unchanged, 2 unreachable');
  });

  it('--detailed-exitcode: 2 with upgrades pending, 0 without the flag, 0 when nothing is pending', async () => {
    const pending = await cli(['-i', f.fleet.inventoryPath, '--limit', 'rc93', '--limit', 'sudoer', '--detailed-exitcode', '--json']);
    expect(pending.code, pending.stderr).toBe(2);
    expect(JSON.parse(pending.stdout).summary).toEqual({ upgrade: 2, downgrade: 0, unchanged: 0, blocked: 0, unreachable: 0 });
    expect((await cli(['-i', f.fleet.inventoryPath, '--limit', 'rc93', '--json'])).code).toBe(0);
    const nothing = await cli(['-i', f.fleet.inventoryPath, '--limit', 'current', '--detailed-exitcode']);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(nothing.stdout).toMatch(/\n1 unchanged\n$/);
  });

  it('refuses bad input and a release it cannot verify with exit 3', async () => {
    const noMatch = await cli(['-i', f.fleet.inventoryPath, '--limit', 'nope-*']);
    expect(noMatch.code).toBe(3);
    expect(noMatch.stderr).toMatch(/--limit "nope-\*" matched no node/);
    const missing = await cli(['-i', join(work, 'missing.yaml')]);
    expect(missing.code).toBe(3);
    const untrusted = await cli(['-i', f.fleet.inventoryPath, '--limit', 'current', '--repo', 'test/untrusted']);
    expect(untrusted.code).toBe(3);
    expect(untrusted.stdout).toBe('');
  });

  it('changed nothing on any node: files, binaries and the live sysctl are as before', async () => {
    for (const n of reachable) expect(await f.fleet.snapshot(n), n).toEqual(before[n]);
  });
});
