import { describe, expect, it } from 'vitest';
import type { NodeOutcome } from '../../src/apply/types.js';
import type { RunReport } from '../../src/apply/report.js';
import type { NodePlan, Plan } from '../../src/core/types.js';
import { mdCell, planStepSummary, runStepSummary } from '../../src/output/step-summary.js';

const release = { repo: 'opencontainers/runc', tag: 'v1.2.9', version: '1.2.9' };

function outcome(name: string, status: NodeOutcome['status'], extra: Partial<NodeOutcome> = {}): NodeOutcome {
  return {
    name,
    host: `${name}.example`,
    status,
    from: { version: '1.0.0-rc93', sha256: 'a'.repeat(64) },
    to: status === 'upgraded' ? { version: '1.2.9', sha256: 'b'.repeat(64) } : null,
    failedStep: null,
    error: null,
    backupPath: null,
    sysctl: { before: null, after: null },
    steps: [],
    rollback: null,
    ...extra,
  };
}

/** Splits a Markdown table row into cells the way GFM does: on `|` not preceded by a backslash. */
function cells(row: string): string[] {
  return row
    .replace(/^\| /, '')
    .replace(/ \|$/, '')
    .split(/(?<!\\) \| /);
}

function tableRows(md: string): string[] {
  return md.split('\n').filter((l) => l.startsWith('| '));
}

describe('mdCell', () => {
  it.each([
    ['a|b', 'a\\|b'],
    ['line 1\nline 2\r\nline 3', 'line 1<br>line 2<br>line 3'],
    ['<init> & co', '&lt;init&gt; &amp; co'],
    ['ends in \\', 'ends in \\\\'],
    ['`code`', '\\`code\\`'],
    ['', ' '],
    [null, ' '],
  ])('%j -> %j', (input, expected) => {
    expect(mdCell(input)).toBe(expected);
  });

  it('keeps the end of a very long value', () => {
    const cell = mdCell(`${'x'.repeat(1000)}THE END`);
    expect(cell.length).toBe(300);
    expect(cell.startsWith('…')).toBe(true);
    expect(cell.endsWith('THE END')).toBe(true);
  });
});

describe('runStepSummary', () => {
  const md = runStepSummary({
    command: 'apply',
    runId: '20261128T180203Z-3fa9c1',
    release,
    nodes: [
      outcome('web-1', 'upgraded'),
      outcome('web-2', 'rolled-back', { failedStep: 'smoke', error: 'smoke failed | exit 1\nstderr: <nil>' }),
      outcome('web-3', 'failed', { failedStep: 'swap', error: 'mv failed', rollback: { ok: false, smokeOk: null, error: 'connection lost', manualCommands: [] } }),
      outcome('web-4', 'not-attempted', { error: 'failure budget exceeded' }),
    ],
  });

  it('has a heading with the outcome and the counts', () => {
    expect(md.split('\n')[0]).toBe('### runc-rollout apply of runc 1.2.9 (opencontainers/runc v1.2.9): FAILED');
    expect(md).toContain('Run `20261128T180203Z-3fa9c1`: 1 upgraded, 1 rolled-back, 1 failed, 1 not-attempted.');
  });

  it('has one row per node with five cells each, pipes and newlines escaped', () => {
    const rows = tableRows(md);
    expect(rows[0]).toBe('| Node | Status | runc | Failed step | Error |');
    expect(rows.slice(1).map(cells)).toEqual([
      ['web-1', 'upgraded', '1.0.0-rc93 → 1.2.9', ' ', ' '],
      ['web-2', '**rolled-back**', '1.0.0-rc93', 'smoke', 'smoke failed \\| exit 1<br>stderr: &lt;nil&gt;'],
      ['web-3', '**failed**', '1.0.0-rc93', 'swap', 'mv failed<br>rollback FAILED: connection lost'],
      ['web-4', 'not-attempted', '1.0.0-rc93', ' ', 'failure budget exceeded'],
    ]);
  });

  it('says ok when every node is fine', () => {
    const ok = runStepSummary({ runId: 'r', release, nodes: [outcome('a', 'upgraded'), outcome('b', 'unchanged')] });
    expect(ok.split('\n')[0]).toMatch(/: ok$/);
    expect(ok).toContain('1 upgraded, 1 unchanged.');
  });

  it('names a rollback without a release', () => {
    const rb = runStepSummary({ command: 'rollback', runId: 'r', release: null, nodes: [], interrupted: true });
    expect(rb.split('\n')[0]).toBe('### runc-rollout rollback: interrupted');
    expect(rb).toContain('no nodes (interrupted).');
  });
});

function planNode(name: string, action: NodePlan['action'], extra: Partial<NodePlan> = {}): NodePlan {
  return {
    name,
    host: `${name}.example`,
    port: 22,
    arch: 'amd64',
    runcPath: '/usr/bin/runc',
    action,
    current: { version: '1.1.0', sha256: 'a'.repeat(64) },
    target: { version: '1.2.9', sha256: 'b'.repeat(64) },
    sysctl: { live: 1048576, persisted: 1048576, persistedFrom: '/etc/sysctl.d/90-pipe.conf:1', target: 16384, changeLive: true, changePersisted: true, commentOut: [] },
    warnings: [],
    error: null,
    ...extra,
  };
}

describe('planStepSummary', () => {
  it('tables every node with action, versions, sysctl and problems', () => {
    const md = planStepSummary({
      release,
      nodes: [
        planNode('a', 'upgrade', { warnings: ['owned by package runc', '2 stuck runc init'] }),
        planNode('b', 'none', { current: { version: '1.2.9', sha256: 'b'.repeat(64) }, sysctl: { live: 16384, persisted: null, persistedFrom: null, target: 16384, changeLive: false, changePersisted: false, commentOut: [] } }),
        planNode('c', 'unreachable', { current: null, target: null, sysctl: null, error: 'connect timed out | after 10s' }),
      ],
    });
    expect(md.split('\n')[0]).toBe('### runc-rollout plan: runc 1.2.9 (opencontainers/runc v1.2.9): REFUSED');
    expect(md).toContain('1 to upgrade, 1 unchanged, 1 unreachable.');
    expect(tableRows(md).slice(1).map(cells)).toEqual([
      ['a', 'to upgrade', '1.1.0 → 1.2.9', '1048576 / 1048576 → 16384', 'warning: owned by package runc<br>warning: 2 stuck runc init'],
      ['b', 'unchanged', '1.2.9', '16384 / default', ' '],
      ['c', '**unreachable**', '?', ' ', 'connect timed out \\| after 10s'],
    ]);
  });
});

// Compile-time: a full run report and a full plan are accepted as they are (checked by tsc).
export const acceptsFullReport = (r: RunReport): string => runStepSummary(r);
export const acceptsFullPlan = (p: Plan): string => planStepSummary(p);
