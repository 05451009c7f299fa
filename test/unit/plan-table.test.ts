import { describe, expect, it } from 'vitest';
import type { NodePlan, Plan, SysctlPlan } from '../../src/core/types.js';
import type { StuckRuncInit } from '../../src/core/stuck.js';
import { renderPlanTable, shortDigest, summaryLine } from '../../src/output/plan-table.js';

const T = `8e1b0a7c${'a'.repeat(56)}`;
const C = `3f2a91c0${'1'.repeat(56)}`;
const sysctl = (over: Partial<SysctlPlan> = {}): SysctlPlan => ({
  live: 16384,
  persisted: null,
  persistedFrom: null,
  target: 16384,
  changeLive: false,
  changePersisted: false,
  commentOut: [],
  ...over,
});
const node = (over: Partial<NodePlan>): NodePlan => ({
  name: 'n',
  host: 'h',
  port: 22,
  arch: 'amd64',
  runcPath: '/usr/local/sbin/runc',
  action: 'upgrade',
  current: { version: '1.1.12', sha256: C },
  target: { version: '1.2.9', sha256: T },
  sysctl: sysctl(),
  warnings: [],
  error: null,
  ...over,
});

function plan(nodes: NodePlan[], over: Partial<Plan> = {}): Plan {
  const count = (a: NodePlan['action']) => nodes.filter((n) => n.action === a).length;
  return {
    schema: 1,
    createdAt: '2026-11-28T12:00:00.000Z',
    tool: { name: 'runc-rollout', version: '0.1.0' },
    release: { repo: 'opencontainers/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: { amd64: { name: 'runc.amd64', sha256: T, size: 1 } } },
    inventory: '/inv.yaml',
    limit: [],
    options: { allowDowngrade: false },
    nodes,
    summary: { upgrade: count('upgrade'), downgrade: count('downgrade'), unchanged: count('none'), blocked: count('blocked'), unreachable: count('unreachable') },
    ...over,
  };
}

const mixed = plan([
  node({ name: 'worker-1', current: { version: '1.0.0-rc93', sha256: C }, sysctl: sysctl({ live: 65536, persisted: 65536, changeLive: true, changePersisted: true, commentOut: [{ path: '/etc/sysctl.conf', lines: [3, 7] }] }), warnings: ['current 1.0.0-rc93 is affected by runc-rc93-pipe-hang'] }),
  node({ name: 'worker-2', action: 'none', current: { version: '1.2.9', sha256: T } }),
  node({ name: 'w3', action: 'blocked', current: { version: '1.3.4', sha256: C }, error: 'downgrade from 1.3.4 to 1.2.9 refused' }),
  node({ name: 'worker-4', action: 'unreachable', arch: null, current: null, target: null, sysctl: null, error: 'connect ECONNREFUSED' }),
]);

describe('renderPlanTable', () => {
  const text = renderPlanTable(mixed, { colour: false });
  const lines = text.split('\n');

  it('shows one aligned row per node', () => {
    const header = lines.find((l) => l.startsWith('NODE'))!;
    const rows = lines.filter((l) => /^(worker-|w3)/.test(l) && !l.includes(': '));
    expect(rows).toHaveLength(4);
    for (const col of ['ARCH', 'ACTION', 'RUNC', 'SYSCTL']) {
      const at = header.indexOf(col);
      for (const r of rows) expect(r[at - 1], `${col} in ${JSON.stringify(r)}`).toBe(' ');
      for (const r of rows) expect(r.slice(0, at).endsWith('  ') || r.slice(0, at).trimEnd().length < at).toBe(true);
    }
    expect(rows[0]).toMatch(/^worker-1\s+amd64\s+upgrade\s+1\.0\.0-rc93 3f2a91c0 -> 1\.2\.9 8e1b0a7c\s+65536\/65536 -> 16384\s+1$/);
    expect(rows[1]).toMatch(/^worker-2\s+amd64\s+unchanged\s+1\.2\.9 8e1b0a7c\s+16384\/-$/);
    expect(rows[2]).toMatch(/^w3\s+amd64\s+BLOCKED\s+1\.3\.4 3f2a91c0 -> 1\.2\.9 8e1b0a7c/);
    expect(rows[3]).toMatch(/^worker-4\s+-\s+UNREACHABLE\s+-\s+-$/);
  });

  it('lists reasons, sysctl edits and warnings per node, then the summary', () => {
    expect(lines).toContain('worker-1: sysctl: apply comments out /etc/sysctl.conf lines 3, 7');
    expect(lines).toContain('worker-1: current 1.0.0-rc93 is affected by runc-rc93-pipe-hang');
    expect(lines).toContain('w3: blocked: downgrade from 1.3.4 to 1.2.9 refused');
    expect(lines).toContain('worker-4: unreachable: connect ECONNREFUSED');
    expect(lines.filter(Boolean).at(-1)).toBe('1 to upgrade, 1 unchanged, 1 blocked, 1 unreachable');
    expect(lines[0]).toBe('runc 1.2.9 from opencontainers/runc@v1.2.9 (signature verified), 4 nodes');
  });

  it('fits a 100-column terminal for ordinary rows', () => {
    const rows = lines.filter((l) => /^(NODE|worker-|w3)/.test(l) && !l.includes(': '));
    for (const r of rows) expect(r.length).toBeLessThanOrEqual(100);
  });

  it('has no escape codes unless asked, and colours actions when asked', () => {
    expect(text).not.toMatch(/\x1b\[/);
    const coloured = renderPlanTable(mixed, { colour: true });
    expect(coloured).toMatch(/\x1b\[32mupgrade/);
    expect(coloured).toMatch(/\x1b\[31mUNREACHABLE/);
    // stripping the codes gives the plain table back
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toBe(text);
  });

  it('shouts when signatures were not verified, and shows the limit', () => {
    const p = plan([node({})], { limit: ['pool=gpu'], release: { ...mixed.release, signatureVerified: false } });
    expect(renderPlanTable(p, { colour: false }).split('\n')[0]).toBe('runc 1.2.9 from opencontainers/runc@v1.2.9 (SIGNATURE NOT VERIFIED), 1 node (limit: pool=gpu)');
  });
});

describe('summaryLine', () => {
  it('counts only what is there', () => {
    expect(summaryLine(plan([node({}), node({}), node({}), node({ action: 'none' }), node({ action: 'unreachable', error: 'x' })]))).toBe(
      '3 to upgrade, 1 unchanged, 1 unreachable',
    );
    expect(summaryLine(plan([]))).toBe('no nodes');
    expect(summaryLine(plan([node({ action: 'downgrade' })]))).toBe('1 to downgrade');
  });
  it('mentions unchanged nodes whose sysctl still needs fixing', () => {
    expect(summaryLine(plan([node({ action: 'none', sysctl: sysctl({ live: 65536, changeLive: true }) }), node({ action: 'none' })]))).toBe(
      '2 unchanged; sysctl to fix on 1 unchanged node',
    );
  });
  it('short digests', () => {
    expect(shortDigest(T)).toBe('8e1b0a7c');
    expect(shortDigest(null)).toBe('?');
  });
});

describe('the STUCK column', () => {
  const stuck = (pid: number, current: boolean): StuckRuncInit => ({ pid, startTicks: pid, ageSeconds: 900, state: 'S', wchan: 'pipe_write', exe: null, current, ppid: 1, parent: null, containerId: null });

  it('appears only when a node has stuck runc init, with how many run another runc', () => {
    expect(renderPlanTable(plan([node({})]), { colour: false })).not.toContain('STUCK');
    const text = renderPlanTable(plan([node({ name: 'a', stuck: [stuck(1, true), stuck(2, false)] }), node({ name: 'b' }), node({ name: 'c', stuck: [stuck(3, true)] })]), { colour: false });
    const rows = text.split('\n');
    const header = rows.find((l) => l.startsWith('NODE'))!;
    expect(header).toMatch(/SYSCTL \(live\/boot\)\s+STUCK\s+WARN$/);
    const cell = (name: string) => rows.find((l) => l.startsWith(`${name} `))!.slice(header.indexOf('STUCK'), header.indexOf('WARN')).trim();
    expect([cell('a'), cell('b'), cell('c')]).toEqual(['2 (1 old)', '', '1']);
  });
});
