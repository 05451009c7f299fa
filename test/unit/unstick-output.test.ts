// What unstick leaves for people and CI: the preview before it asks, the
// summary, JUnit system-out and the report's JSON after it (apply --unstick
// and the unstick command).
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { assembleReport, parseReport, serializeReport, type ReportInput } from '../../src/apply/report.js';
import type { NodeOutcome } from '../../src/apply/types.js';
import type { StuckRuncInit, UnstickPreview, UnstuckProcess } from '../../src/core/stuck.js';
import { toJUnitXml } from '../../src/output/junit.js';
import { renderSummary } from '../../src/output/run-summary.js';
import { renderUnstickPreview } from '../../src/output/unstick-preview.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

const stuck = (pid: number, over: Partial<StuckRuncInit> = {}): StuckRuncInit => ({
  pid,
  startTicks: pid * 10,
  ageSeconds: 3725,
  state: 'S',
  wchan: 'anon_pipe_write',
  exe: '/usr/local/sbin/runc (deleted)',
  current: false,
  ppid: 4200,
  parent: '/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id pod-a',
  containerId: 'pod-a',
  ...over,
});
const ended = (pid: number, outcome: UnstuckProcess['outcome'] = 'ended', detail?: string): UnstuckProcess => ({ pid, ageSeconds: 3725, containerId: 'pod-a', exe: '/usr/local/sbin/runc (deleted)', outcome, ...(detail ? { detail } : {}) });

function outcome(name: string, over: Partial<NodeOutcome>): NodeOutcome {
  return {
    name,
    host: '127.0.0.11',
    status: 'upgraded',
    from: { version: '1.0.0-rc93', sha256: A },
    to: { version: '1.2.9', sha256: B },
    failedStep: null,
    error: null,
    backupPath: null,
    sysctl: { before: { live: 65536, persisted: 65536 }, after: { live: 16384, persisted: 16384 } },
    steps: [{ name: 'unstick', status: 'ok', startedAt: '2026-11-28T18:02:03.000Z', durationMs: 250, message: '1 ended (pid 4242 container pod-a)' }],
    rollback: null,
    ...over,
  };
}

function report(command: ReportInput['command'], nodes: NodeOutcome[]) {
  return assembleReport({
    command,
    runId: '20261128T180203Z-abcdef',
    startedAt: '2026-11-28T18:02:03.000Z',
    finishedAt: '2026-11-28T18:03:03.000Z',
    toolVersion: '0.1.0',
    release: command === 'apply' ? { repo: 'opencontainers/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: {} } : null,
    inventory: '/tmp/inv.yaml',
    options: { batch: '1', canary: 0, pauseMs: 0, maxFailures: '0', smokeTimeoutMs: 60_000, forceUnlock: false, allowDowngrade: false, unstick: true, stuckAfterSeconds: 300 },
    batches: [],
    interrupted: false,
    stoppedReason: null,
    nodes,
  });
}

describe('apply --unstick in the report, the summary and JUnit', () => {
  const done = outcome('n1', { unstuck: [ended(4242)], stuck: [stuck(5000, { current: true, exe: '/usr/local/sbin/runc', containerId: null, parent: null })] });
  const r = report('apply', [done]);

  it('keeps each ended process (pid, age, container, outcome) and what is still stuck in the JSON, which parses back', () => {
    const back = parseReport(serializeReport(r));
    expect(back.nodes[0]!.unstuck).toEqual([ended(4242)]);
    expect(back.nodes[0]!.stuck?.[0]).toMatchObject({ pid: 5000, current: true });
    expect(back.options).toMatchObject({ unstick: true, stuckAfterSeconds: 300 });
  });

  it('the summary says what was ended and what is left', () => {
    const text = renderSummary(r, null);
    expect(text).toContain('unstick: 1 of 1 stuck runc init ended');
    expect(text).toContain('pid 4242 (age 62m5s, container pod-a): ended');
    expect(text).toMatch(/still stuck: 1 `runc init` process older than 5m blocked writing into a pipe \(the rc93 hang\), all running the current runc: pid 5000/);
  });

  it('JUnit system-out carries the same lines', () => {
    const xml = new XMLParser({ ignoreAttributes: false }).parse(toJUnitXml(r)) as { testsuites: { testsuite: { testcase: { 'system-out': string } } } };
    expect(xml.testsuites.testsuite.testcase['system-out']).toContain('pid 4242 (age 62m5s, container pod-a): ended');
  });

  it('a node where a stuck process outlived SIGKILL is failed at unstick, runs the new runc, and was not rolled back', () => {
    const failed = outcome('n2', {
      status: 'failed',
      failedStep: 'unstick',
      error: 'unstick: 1 ended (pid 1); 1 STILL RUNNING after SIGKILL (pid 2). runc 1.2.9 is installed and verified and nothing was rolled back (the old runc would not help)',
      unstuck: [ended(1), ended(2, 'still-running')],
    });
    const text = renderSummary(report('apply', [failed]), null);
    expect(text).toContain('failed at unstick');
    expect(text).toContain('runs 1.2.9 (sha256 bbbbbbbbbbbb…), verified; BUT stuck runc init processes could not all be ended: check the node');
    expect(text).toContain('pid 2 (age 62m5s, container pod-a): still-running');
    expect(text).not.toContain('rollback');
  });
});

describe('the unstick command', () => {
  it('previews every stuck process with what would happen to it, and refused nodes with why', () => {
    const p: UnstickPreview = {
      stuckAfterSeconds: 300,
      nodes: [
        { name: 'n1', host: 'h1', runcPath: '/usr/local/sbin/runc', version: '1.2.9', sha256: B, stuck: [stuck(4242), stuck(5000, { current: true, exe: '/usr/local/sbin/runc' })], toEnd: [], refused: null },
        { name: 'n2', host: 'h2', runcPath: '/usr/local/sbin/runc', version: '1.0.0-rc93', sha256: A, stuck: [stuck(7)], toEnd: [], refused: 'it still runs runc 1.0.0-rc93, which has not been upgraded past the rc93 hang' },
      ],
    };
    p.nodes[0]!.toEnd = [p.nodes[0]!.stuck[0]!];
    const text = renderUnstickPreview(p);
    expect(text.split('\n').slice(0, 5)).toEqual([
      'Stuck runc init (blocked writing into a pipe for longer than 5m) on 2 nodes',
      '',
      'NODE  RUNC (current)              STUCK  TO END',
      'n1    1.2.9 /usr/local/sbin/runc  2      1',
      'n2    REFUSED                     1      -',
    ]);
    expect(text).toContain('n1: END (SIGKILL): pid 4242 (age 62m5s, anon_pipe_write, exe /usr/local/sbin/runc (deleted), parent 4200 /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id pod-a, container pod-a)');
    expect(text).toContain('n1: left alone, runs the current runc: pid 5000 ');
    expect(text).toContain('n2: refused: it still runs runc 1.0.0-rc93');
    expect(text.trimEnd().split('\n').at(-1)).toBe('1 process to end on 1 node(s)');
  });

  it('its summary says per node what was ended', () => {
    const r = report('unstick', [outcome('n1', { status: 'unchanged', from: { version: '1.2.9', sha256: B }, to: { version: '1.2.9', sha256: B }, unstuck: [ended(4242), ended(4243, 'changed', 'no longer blocked')] })]);
    expect(r.exitCode).toBe(0);
    const text = renderSummary(r, '/r.json');
    expect(text).toContain('Summary of unstick, run 20261128T180203Z-abcdef: 1 unchanged');
    expect(text).toContain('ended 1 of 2 stuck runc init; runs 1.2.9');
    expect(text).toContain('pid 4243 (age 62m5s, container pod-a): changed (no longer blocked)');
    const failed = report('unstick', [outcome('n1', { status: 'failed', failedStep: 'unstick', error: 'unstick: x', unstuck: [ended(1, 'kill-failed')] })]);
    expect(failed.exitCode).toBe(1);
    expect(renderSummary(failed, null)).toContain('Re-running unstick is safe');
  });
});
