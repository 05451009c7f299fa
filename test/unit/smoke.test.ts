// The smoke container: the OCI config's shape, and the script run locally with
// the machine's real runc and stand-ins (a good one, one that fails create,
// one that hangs), in a temp state dir. Proves each outcome is reported with
// the lifecycle step that failed and that nothing is left behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { SMOKE_SECCOMP_RULES, buildSmokeConfig, buildSmokeScript, smokeFailedStep, smokePaths } from '../../src/apply/smoke.js';
import { buildStandIn } from '../harness/standin.js';

type Cfg = {
  process: { terminal: boolean; args: string[] };
  root: { path: string; readonly: boolean };
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: { cgroupsPath: string; seccomp: { defaultAction: string; syscalls: { names: string[]; action: string; args: { index: number; value: number; op: string }[] }[] } };
};

describe('buildSmokeConfig', () => {
  const cfg = buildSmokeConfig({ hasLib64: true, cgroupName: 'runc-rollout-smoke-t1' }) as unknown as Cfg;

  it('runs a shell that prints ready and then execs sleep, without a terminal, on a read-only empty root', () => {
    expect(cfg.process.terminal).toBe(false);
    expect(cfg.process.args.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(cfg.process.args[2]).toMatch(/^echo \S+; exec sleep \d+$/);
    expect(cfg.root).toEqual({ path: 'rootfs', readonly: true });
    expect(cfg.linux.cgroupsPath).toBe('/runc-rollout-smoke-t1');
  });

  it('bind-mounts the host tool dirs read-only, /lib64 only when the node has it', () => {
    const binds = (c: Cfg) => c.mounts.filter((m) => m.type === 'bind');
    expect(binds(cfg).map((m) => m.destination)).toEqual(['/bin', '/lib', '/lib64', '/usr', '/sbin']);
    for (const m of binds(cfg)) {
      expect(m.source).toBe(m.destination);
      expect(m.options).toEqual(expect.arrayContaining(['rbind', 'ro']));
    }
    const without = buildSmokeConfig({ hasLib64: false, cgroupName: 'x' }) as unknown as Cfg;
    expect(binds(without).map((m) => m.destination)).toEqual(['/bin', '/lib', '/usr', '/sbin']);
  });

  it('carries a large seccomp profile whose rules can never match a real call', () => {
    const sc = cfg.linux.seccomp;
    expect(sc.defaultAction).toBe('SCMP_ACT_ALLOW');
    expect(sc.syscalls).toHaveLength(SMOKE_SECCOMP_RULES);
    expect(SMOKE_SECCOMP_RULES).toBeGreaterThanOrEqual(2000);
    const values = new Set<number>();
    for (const r of sc.syscalls) {
      expect(r.names).toEqual(['setdomainname']);
      expect(r.args).toHaveLength(1);
      const a = r.args[0]!;
      expect(a.index).toBe(1);
      expect(a.op).toBe('SCMP_CMP_EQ');
      // setdomainname's len is at most 64 in any call the kernel accepts.
      expect(a.value).toBeGreaterThan(0x10000000);
      values.add(a.value);
    }
    expect(values.size).toBe(SMOKE_SECCOMP_RULES);
  });
});

describe('smokeFailedStep', () => {
  it('reads the verdict lines', () => {
    expect(smokeFailedStep('x\n@@rr smoke ok\n')).toBeNull();
    expect(smokeFailedStep('@@rr smoke failed exec\n')).toBe('exec');
    expect(smokeFailedStep('')).toBe('unknown');
  });
});

const REAL_RUNC = '/usr/sbin/runc';
const localReason = process.getuid?.() !== 0 ? 'needs root' : !existsSync(REAL_RUNC) ? `needs ${REAL_RUNC}` : null;
if (localReason) console.warn(`skipping local smoke runs: ${localReason}`);

describe.skipIf(localReason)('smoke script with real runc containers (local, temp state dir)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-smoke-unit-'));
  const stateDir = join(dir, 'state dir');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const smoke = (runc: string, runId: string, timeoutSec: number, customCommand?: string) => {
    const p = smokePaths(runId, stateDir);
    const config = gzipSync(JSON.stringify(buildSmokeConfig({ hasLib64: existsSync('/lib64'), cgroupName: p.cgroupName })));
    const script = buildSmokeScript({ runcPath: runc, runId, label: 'staged', timeoutSec, prepare: { gzip: true }, stateDir, customCommand });
    const r = spawnSync('sh', ['-c', script], { input: config, encoding: 'utf8', timeout: 120_000 });
    return { ...r, paths: p };
  };
  const leftovers = (p: ReturnType<typeof smokePaths>) => ({
    root: existsSync(p.root) ? readdirSync(p.root) : [],
    cgroups: spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '3', '-type', 'd', '-name', p.cgroupName], { encoding: 'utf8' }).stdout.trim(),
  });

  it('passes the whole lifecycle with a working runc and keeps the bundle for the next smoke', () => {
    const r = smoke(REAL_RUNC, 'unit-ok', 60);
    expect(r.stdout, r.stderr).toContain('@@rr smoke ok');
    expect(r.status).toBe(0);
    expect(existsSync(join(r.paths.bundle, 'config.json'))).toBe(true);
    expect(leftovers(r.paths)).toEqual({ root: [], cgroups: '' });
  });

  it('reports create as the failing step of a runc that cannot create, and cleans up', () => {
    const bin = buildStandIn(join(dir, 'bin', 'runc-fail'), { version: '1.2.9', mode: 'fail' });
    const r = smoke(bin, 'unit-fail', 30);
    expect(r.status).not.toBe(0);
    expect(smokeFailedStep(r.stdout)).toBe('create');
    expect(r.stderr).toContain('simulated failure');
    expect(existsSync(r.paths.bundle)).toBe(false);
    expect(leftovers(r.paths)).toEqual({ root: [], cgroups: '' });
  });

  it('catches a runc that hangs as a timeout of create', () => {
    const bin = buildStandIn(join(dir, 'bin', 'runc-hang'), { version: '1.0.0-rc93', mode: 'hang' });
    const r = smoke(bin, 'unit-hang', 5);
    expect(r.status).not.toBe(0);
    expect(smokeFailedStep(r.stdout)).toBe('create');
    expect(r.stderr).toMatch(/did not finish within the 5s smoke deadline/);
    expect(leftovers(r.paths)).toEqual({ root: [], cgroups: '' });
    expect(spawnSync('pgrep', ['-f', bin]).status).not.toBe(0);
  });

  it('runs the inventory smoke command after the lifecycle and reports its failure', () => {
    const ok = smoke(REAL_RUNC, 'unit-custom-ok', 60, 'test -x "$RUNC_ROLLOUT_RUNC"');
    expect(ok.stdout, ok.stderr).toContain('@@rr smoke ok');
    const bad = smoke(REAL_RUNC, 'unit-custom-bad', 60, "echo 'engine says no' >&2; exit 3");
    expect(smokeFailedStep(bad.stdout)).toBe('custom-command');
    expect(bad.stderr).toContain('engine says no');
  });
});
