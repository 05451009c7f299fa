import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assembleReport,
  defaultReportPath,
  newRunId,
  parseReport,
  runExitCode,
  serializeReport,
  summarize,
  writeReport,
  type ReportInput,
} from '../../src/apply/report.js';
import type { NodeOutcome, NodeStatus } from '../../src/apply/types.js';
import { InputError } from '../../src/errors.js';

function outcome(name: string, status: NodeStatus, extra: Partial<NodeOutcome> = {}): NodeOutcome {
  return {
    name,
    host: '127.0.0.1',
    status,
    from: { version: '1.1.0', sha256: 'a'.repeat(64) },
    to: status === 'upgraded' ? { version: '1.2.9', sha256: 'b'.repeat(64) } : null,
    failedStep: status === 'rolled-back' ? 'smoke' : null,
    error: status === 'rolled-back' ? 'smoke timed out' : null,
    backupPath: null,
    sysctl: { before: { live: 65536, persisted: 65536 }, after: { live: 16384, persisted: 16384 } },
    steps: [{ name: 'stage', status: 'ok', startedAt: '2026-11-28T18:02:03.000Z', durationMs: 120, message: 'sha256 bbbb' }],
    rollback: null,
    ...extra,
  };
}

function input(nodes: NodeOutcome[], interrupted = false): ReportInput {
  return {
    command: 'apply',
    runId: '20261128T180203Z-abcdef',
    startedAt: '2026-11-28T18:02:03.000Z',
    finishedAt: '2026-11-28T18:03:03.000Z',
    toolVersion: '0.1.0',
    release: { repo: 'opencontainers/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: { amd64: { name: 'runc.amd64', sha256: 'b'.repeat(64), size: 10 } } },
    inventory: '/tmp/inv.yaml',
    options: { batch: '2', canary: 1, pauseMs: 0, maxFailures: '0', smokeTimeoutMs: 60_000, forceUnlock: false, allowDowngrade: false },
    batches: [{ index: 0, canary: true, nodes: nodes.map((n) => n.name), startedAt: null, finishedAt: null, failures: 0 }],
    interrupted,
    stoppedReason: interrupted ? 'interrupted' : null,
    nodes,
  };
}

describe('summary and exit code', () => {
  it('counts every status', () => {
    const s = summarize([outcome('a', 'upgraded'), outcome('b', 'upgraded'), outcome('c', 'rolled-back'), outcome('d', 'not-attempted')]);
    expect(s).toMatchObject({ total: 4, upgraded: 2, 'rolled-back': 1, 'not-attempted': 1, failed: 0, unchanged: 0 });
  });
  it('is 0 only when every node is upgraded or unchanged', () => {
    expect(runExitCode([outcome('a', 'upgraded'), outcome('b', 'unchanged')], false)).toBe(0);
    for (const bad of ['rolled-back', 'failed', 'unknown', 'unreachable', 'not-attempted'] as const) {
      expect(runExitCode([outcome('a', 'upgraded'), outcome('b', bad)], false)).toBe(1);
    }
  });
  it('for a rollback, rolled-back is success and upgraded is not', () => {
    expect(runExitCode([outcome('a', 'rolled-back'), outcome('b', 'unchanged')], false, 'rollback')).toBe(0);
    expect(runExitCode([outcome('a', 'rolled-back'), outcome('b', 'failed')], false, 'rollback')).toBe(1);
    expect(runExitCode([outcome('a', 'upgraded')], false, 'rollback')).toBe(1);
  });
  it('an interruption wins', () => {
    expect(runExitCode([outcome('a', 'upgraded')], true)).toBe(130);
  });
});

describe('report file', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('round-trips through the schema', () => {
    const report = assembleReport(input([outcome('a', 'upgraded'), outcome('b', 'rolled-back')]));
    expect(report.exitCode).toBe(1);
    expect(report.summary.upgraded).toBe(1);
    expect(parseReport(serializeReport(report))).toEqual(report);
  });

  it('refuses something that is not a report, naming the field', () => {
    const report = assembleReport(input([outcome('a', 'upgraded')]));
    const broken = JSON.parse(serializeReport(report));
    broken.nodes[0].status = 'fine';
    expect(() => parseReport(JSON.stringify(broken))).toThrow(InputError);
    try {
      parseReport(JSON.stringify(broken));
    } catch (err) {
      expect((err as InputError).issues.join('\n')).toMatch(/nodes\.0\.status/);
    }
    expect(() => parseReport('{nope')).toThrow(/not JSON/);
  });

  it('is written atomically under .runc-rollout/runs/ with no temp file left', async () => {
    dir = await mkdtemp(join(tmpdir(), 'report-test-'));
    const runId = newRunId(new Date('2026-11-28T18:02:03.456Z'));
    expect(runId).toMatch(/^20261128T180203456Z-[0-9a-f]{6}$/);
    // later runs sort after earlier ones, even within the same second
    expect(newRunId(new Date('2026-11-28T18:02:03.457Z')) > runId).toBe(true);
    const path = defaultReportPath(dir, runId);
    expect(path).toBe(join(dir, '.runc-rollout', 'runs', `${runId}.json`));
    const report = assembleReport({ ...input([outcome('a', 'upgraded')]), runId });
    await writeReport(report, path);
    await writeReport(report, path); // overwrite is fine
    expect(parseReport(await readFile(path, 'utf8'))).toEqual(report);
    expect(await readdir(join(dir, '.runc-rollout', 'runs'))).toEqual([`${runId}.json`]);
  });
});
