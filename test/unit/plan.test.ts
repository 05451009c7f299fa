import { describe, expect, it } from 'vitest';
import { buildPlan, pendingChanges, refusedNodes, type PlanNodeInput } from '../../src/core/plan.js';
import { PlanSchema, parsePlanFile, validatePlan } from '../../src/core/plan-schema.js';
import type { StuckRuncInit } from '../../src/core/stuck.js';
import type { NodeFacts, NodeSpec, NodeState, VerifiedRelease } from '../../src/core/types.js';
import { InputError } from '../../src/errors.js';

const D = (c: string) => c.repeat(64);
const TARGET_AMD64 = D('a');
const TARGET_ARM64 = D('b');
const SIZE = 12 * 1024 * 1024;

const release: VerifiedRelease = {
  repo: 'opencontainers/runc',
  tag: 'v1.2.9',
  version: '1.2.9',
  prerelease: false,
  checksums: { 'runc.amd64': TARGET_AMD64, 'runc.arm64': TARGET_ARM64 },
  assets: {
    amd64: { arch: 'amd64', name: 'runc.amd64', sha256: TARGET_AMD64, size: SIZE, path: '/cache/runc.amd64' },
    arm64: { arch: 'arm64', name: 'runc.arm64', sha256: TARGET_ARM64, size: SIZE, path: '/cache/runc.arm64' },
  },
  signers: ['C9C370B246B09F6DBCFC744C34401015D1D2D386'],
  signatureVerified: true,
};

function spec(name: string, runcPath?: string): NodeSpec {
  return {
    name,
    ssh: { host: `${name}.example`, port: 22, user: 'root', knownHosts: '/k', hostKeyPolicy: 'strict', sudo: false },
    ...(runcPath ? { runcPath } : {}),
    labels: {},
  };
}

type FactsOver = Omit<Partial<NodeFacts>, 'runc'> & { runc?: Partial<NodeFacts['runc']> };
function facts(over: FactsOver = {}): NodeFacts {
  const { runc, ...rest } = over;
  return {
    machine: 'x86_64',
    arch: 'amd64',
    runcPath: '/usr/local/sbin/runc',
    runcPathSource: 'path',
    containerdBinaryName: null,
    runc: { exists: true, executable: true, versionLine: 'runc version 1.2.8', version: '1.2.8', sha256: D('1'), ...runc },
    packageOwner: null,
    freeBytes: { runcDir: 10 * 1024 ** 3, stateDir: 10 * 1024 ** 3 },
    sysctl: { live: 16384, files: [], names: [] },
    stuck: [],
    state: null,
    ...rest,
  };
}

const plan1 = (input: PlanNodeInput, allowDowngrade = false) =>
  buildPlan({ inventoryPath: '/inv.yaml', limit: [], nodes: [input], release, allowDowngrade, toolVersion: '0.1.0', now: new Date('2026-11-28T12:00:00Z') });
const node1 = (f: NodeFacts | null, error: string | null = null, allowDowngrade = false) => plan1({ node: spec('n1'), facts: f, error }, allowDowngrade).nodes[0]!;

describe('buildPlan actions', () => {
  it('upgrade: older version, different digest', () => {
    const n = node1(facts());
    expect(n).toMatchObject({
      name: 'n1',
      host: 'n1.example',
      port: 22,
      arch: 'amd64',
      runcPath: '/usr/local/sbin/runc',
      action: 'upgrade',
      current: { version: '1.2.8', sha256: D('1') },
      target: { version: '1.2.9', sha256: TARGET_AMD64 },
      error: null,
    });
  });
  it('upgrade from rc93 (rc numbering compared numerically)', () => {
    expect(node1(facts({ runc: { version: '1.0.0-rc93', versionLine: 'runc version 1.0.0-rc93' } })).action).toBe('upgrade');
  });
  it('none: already the target digest, whatever the version says', () => {
    const n = node1(facts({ runc: { version: '1.2.9', sha256: TARGET_AMD64 } }));
    expect(n).toMatchObject({ action: 'none', error: null });
  });
  it('target per arch', () => {
    const n = node1(facts({ machine: 'aarch64', arch: 'arm64' }));
    expect(n.target).toEqual({ version: '1.2.9', sha256: TARGET_ARM64 });
  });
  it('downgrade refused without --allow-downgrade, planned with it', () => {
    const f = facts({ runc: { version: '1.3.4' } });
    expect(node1(f)).toMatchObject({ action: 'blocked', error: expect.stringMatching(/downgrade from 1\.3\.4 to 1\.2\.9 refused.*--allow-downgrade/) });
    expect(node1(f, null, true)).toMatchObject({ action: 'downgrade', error: null });
  });
  it('same version, different binary: replaced, with a warning', () => {
    const n = node1(facts({ runc: { version: '1.2.9+ds1' } }));
    expect(n.action).toBe('upgrade');
    expect(n.warnings).toContainEqual(expect.stringContaining('different binary'));
  });
  it('unknown current version: upgrade with a warning', () => {
    const n = node1(facts({ runc: { version: null, versionLine: 'garbage' } }));
    expect(n.action).toBe('upgrade');
    expect(n.warnings).toContainEqual(expect.stringContaining('current runc version unknown ("garbage")'));
  });
  it('unreachable keeps the error and the inventory path', () => {
    const n = plan1({ node: spec('n1', '/usr/bin/runc'), facts: null, error: 'host key for n1.example changed (SHA256:abc)' }).nodes[0]!;
    expect(n).toMatchObject({ action: 'unreachable', error: 'host key for n1.example changed (SHA256:abc)', runcPath: '/usr/bin/runc', current: null, target: null, sysctl: null, arch: null });
  });

  const blocked: [string, FactsOver, RegExp][] = [
    ['unsupported arch', { machine: 'mips', arch: null }, /unsupported architecture "mips"/],
    ['no runc anywhere', { runcPath: null, runcPathSource: 'none', runc: { exists: false, executable: false, version: null, sha256: null, versionLine: null } }, /no runc found/],
    ['relative runc path', { runcPath: 'runc' }, /not absolute/],
    ['missing at the inventory path', { runcPathSource: 'inventory', runc: { exists: false, executable: false, sha256: null, version: null } }, /no runc at \/usr\/local\/sbin\/runc/],
    ['not executable', { runc: { executable: false } }, /is not executable/],
    ['no asset for the arch', { machine: 's390x', arch: 's390x' }, /v1\.2\.9 has no runc\.s390x asset/],
    ['cannot hash', { runc: { sha256: null } }, /cannot compute the SHA-256/],
  ];
  it.each(blocked)('blocked: %s', (_name, over, reason) => {
    const n = node1(facts(over));
    expect(n.action).toBe('blocked');
    expect(n.error).toMatch(reason);
  });
});

describe('buildPlan warnings', () => {
  const warningsOf = (over: FactsOver) => node1(facts(over)).warnings;
  it('none on a clean node', () => {
    expect(warningsOf({})).toEqual([]);
  });
  it('advisories of the current version', () => {
    const w = warningsOf({ runc: { version: '1.0.0-rc93' } });
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^current 1\.0\.0-rc93 is affected by runc-rc93-pipe-hang, .*CVE-2024-21626/);
    expect(warningsOf({ runc: { version: '1.1.14' } })).toEqual(['current 1.1.14 is affected by CVE-2025-31133, CVE-2025-52565, CVE-2025-52881']);
  });
  it('package-owned binary', () => {
    expect(warningsOf({ packageOwner: 'containerd.io' })).toEqual([expect.stringMatching(/package "containerd\.io": a package update will overwrite it/)]);
  });
  it('a symlinked runc path', () => {
    expect(warningsOf({ runcPath: '/usr/bin/runc', runc: { realPath: '/usr/sbin/runc' } })).toEqual([
      '/usr/bin/runc is a symlink to /usr/sbin/runc: apply replaces the link with the new binary and leaves /usr/sbin/runc as it is',
    ]);
  });
  it('stuck runc init: what they are, and what unstick does about them', () => {
    const p = (pid: number, current: boolean): StuckRuncInit => ({ pid, startTicks: pid, ageSeconds: 900, state: 'S', wchan: 'pipe_write', exe: current ? '/usr/local/sbin/runc' : '/usr/local/sbin/runc (deleted)', current, ppid: 1, parent: null, containerId: null });
    const [w] = warningsOf({ stuck: [p(11, true), p(12, true), p(13, false)] });
    expect(w).toMatch(/^3 `runc init` processes older than 5m blocked writing into a pipe \(the rc93 hang\), 1 from another runc than the current one: pid 11 /);
    expect(w).toMatch(/Raising the sysctl does not free them; `apply --unstick` or `runc-rollout unstick` ends the 1 from another runc; the 2 running the node's current runc are ended by `apply --unstick` only once an upgrade has replaced them/);
    const n = node1(facts({ stuck: [p(11, true)] }));
    expect(n.stuck).toEqual([p(11, true)]);
    expect(node1(null, 'refused').stuck).toEqual([]);
  });
  it('low disk in the runc dir and the state dir', () => {
    expect(warningsOf({ freeBytes: { runcDir: SIZE, stateDir: 2 * SIZE } })).toEqual([expect.stringMatching(/^low disk: 12\.0 MiB free in \/usr\/local\/sbin, want at least 24\.0 MiB/)]);
    expect(warningsOf({ freeBytes: { runcDir: 2 * SIZE, stateDir: 1024 } })).toEqual([expect.stringMatching(/^low disk: .* free for \/var\/lib\/runc-rollout/)]);
  });
  it('containerd BinaryName mismatch', () => {
    expect(warningsOf({ containerdBinaryName: '/usr/local/sbin/runc' })).toEqual([]);
    expect(warningsOf({ containerdBinaryName: '/usr/bin/runc' })).toEqual([expect.stringMatching(/^containerd runs \/usr\/bin\/runc .*not \/usr\/local\/sbin\/runc/)]);
    expect(warningsOf({ containerdBinaryName: 'runc-custom' })).toEqual([expect.stringMatching(/BinaryName "runc-custom" is not on PATH/)]);
  });
  it('an interrupted earlier run', () => {
    const state: NodeState = {
      schema: 1,
      runId: 'run-42',
      updatedAt: '2026-11-27T10:00:00Z',
      runcPath: '/usr/local/sbin/runc',
      phase: 'swapped',
      original: { version: '1.1.14', sha256: D('1'), backupPath: '/var/lib/runc-rollout/backups/runc-1.1.14' },
      target: { version: '1.2.9', sha256: TARGET_AMD64 },
      sysctl: { liveBefore: 65536, files: [] },
    };
    expect(warningsOf({ state })).toEqual([expect.stringMatching(/earlier run \(run-42\) stopped at "swapped".*backups\/runc-1\.1\.14/)]);
    expect(warningsOf({ state: { ...state, phase: 'done' } })).toEqual([]);
  });
  it('facts notes', () => {
    expect(warningsOf({ notes: ['state file is not valid JSON'] })).toEqual(['state file is not valid JSON']);
  });
});

describe('buildPlan as a whole', () => {
  const mixed = buildPlan({
    inventoryPath: '/inv.yaml',
    limit: ['pool=a'],
    nodes: [
      { node: spec('up'), facts: facts(), error: null },
      { node: spec('same'), facts: facts({ runc: { sha256: TARGET_AMD64, version: '1.2.9' }, sysctl: { live: 65536, files: [], names: [] } }), error: null },
      { node: spec('clean'), facts: facts({ runc: { sha256: TARGET_AMD64, version: '1.2.9' } }), error: null },
      { node: spec('newer'), facts: facts({ runc: { version: '1.3.4' } }), error: null },
      { node: spec('down'), facts: null, error: 'connect ECONNREFUSED' },
    ],
    release,
    allowDowngrade: false,
    toolVersion: '0.1.0',
    now: new Date('2026-11-28T12:00:00Z'),
  });

  it('has the header, summary and node order', () => {
    expect(mixed).toMatchObject({
      schema: 1,
      createdAt: '2026-11-28T12:00:00.000Z',
      tool: { name: 'runc-rollout', version: '0.1.0' },
      release: { repo: 'opencontainers/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: { amd64: { name: 'runc.amd64', sha256: TARGET_AMD64, size: SIZE } } },
      inventory: '/inv.yaml',
      limit: ['pool=a'],
      options: { allowDowngrade: false },
      summary: { upgrade: 1, downgrade: 0, unchanged: 2, blocked: 1, unreachable: 1 },
    });
    expect(mixed.nodes.map((n) => `${n.name}:${n.action}`)).toEqual(['up:upgrade', 'same:none', 'clean:none', 'newer:blocked', 'down:unreachable']);
    expect((mixed.release.assets.amd64 as Record<string, unknown>).path).toBeUndefined();
  });

  it('pending changes include an unchanged binary with sysctl to fix; refused are blocked and unreachable', () => {
    expect(pendingChanges(mixed).map((n) => n.name)).toEqual(['up', 'same']);
    expect(refusedNodes(mixed).map((n) => n.name)).toEqual(['newer', 'down']);
  });

  it('validates against its own schema and survives a JSON round trip', () => {
    expect(PlanSchema.safeParse(mixed).success).toBe(true);
    expect(parsePlanFile(JSON.stringify(mixed))).toEqual(mixed);
  });
});

describe('parsePlanFile', () => {
  const good = plan1({ node: spec('n1'), facts: facts(), error: null });
  const issuesOf = (value: unknown): string[] => {
    try {
      validatePlan(value);
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      return (e as InputError).issues;
    }
    return [];
  };
  it('refuses non-JSON and other schema versions', () => {
    expect(() => parsePlanFile('{nope', 'p.json')).toThrow(/p\.json: not JSON/);
    expect(() => parsePlanFile(JSON.stringify({ ...good, schema: 2 }), 'p.json')).toThrow(/schema 2 is not supported/);
  });
  it('names the path of each schema problem', () => {
    const bad = structuredClone(good) as unknown as { nodes: Record<string, unknown>[]; release: Record<string, unknown> };
    bad.nodes[0]!.action = 'explode';
    (bad.nodes[0]!.target as Record<string, unknown>).sha256 = 'XYZ';
    bad.release.repo = 'runc';
    const issues = issuesOf(bad);
    expect(issues).toContainEqual(expect.stringMatching(/^nodes\[0\]\.action: /));
    expect(issues).toContainEqual(expect.stringMatching(/^nodes\[0\]\.target\.sha256: expected a lowercase hex SHA-256/));
    expect(issues).toContainEqual(expect.stringMatching(/^release\.repo: expected owner\/name/));
  });
  it('checks cross-field rules', () => {
    const edited = structuredClone(good);
    edited.nodes[0]!.target!.sha256 = D('c');
    edited.summary.upgrade = 5;
    edited.nodes.push({ ...edited.nodes[0]!, action: 'blocked', error: null });
    const issues = issuesOf(edited);
    expect(issues).toEqual(
      expect.arrayContaining([
        'nodes[0].target.sha256: does not match the release\'s runc.amd64',
        'nodes[1].name: duplicate node "n1"',
        'nodes[1].error: required for action "blocked"',
        'summary.upgrade: 5 but 1 nodes have that action',
        'summary.blocked: 0 but 1 nodes have that action',
      ]),
    );
    const down = structuredClone(good);
    down.nodes[0]!.action = 'downgrade';
    down.summary = { ...down.summary, upgrade: 0, downgrade: 1 };
    expect(issuesOf(down)).toEqual(['nodes[0].action: "downgrade" without options.allowDowngrade']);
  });
});
