import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { assembleReport } from '../../src/apply/report.js';
import type { NodeOutcome } from '../../src/apply/types.js';
import { createApplyView } from '../../src/output/apply-view.js';
import { renderSummary } from '../../src/output/run-summary.js';

const AT = '2026-11-28T18:02:03.456Z';

function outcome(name: string, patch: Partial<NodeOutcome>): NodeOutcome {
  return {
    name,
    host: 'h',
    status: 'upgraded',
    from: { version: '1.1.12', sha256: 'a'.repeat(64) },
    to: { version: '1.2.9', sha256: 'b'.repeat(64) },
    failedStep: null,
    error: null,
    backupPath: null,
    sysctl: { before: { live: 65536, persisted: 65536 }, after: { live: 16384, persisted: 16384 } },
    steps: [],
    rollback: null,
    ...patch,
  };
}

function collect() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  return { out, text: () => text };
}

describe('plain line view (CI / no terminal)', () => {
  it('writes one timestamped line per event, multi-line messages indented', async () => {
    const { out, text } = collect();
    const view = createApplyView({ out, interactive: false });
    const batch = { index: 0, canary: true, nodes: ['node-1'] };
    view.handle({ type: 'run-start', at: AT, runId: 'r1', batches: [batch], skipped: [], budget: 'stops after 1 failed node out of 1' });
    view.handle({ type: 'batch-start', at: AT, batch });
    view.handle({ type: 'node-event', batch: 0, event: { node: 'node-1', step: 'stage', status: 'ok', message: 'sha256 3a4f checked', at: AT } });
    view.handle({ type: 'node-event', batch: 0, event: { node: 'node-1', step: 'smoke', status: 'failed', message: 'timed out\nstderr line', at: AT } });
    view.handle({ type: 'node-end', at: AT, batch: 0, outcome: outcome('node-1', { status: 'rolled-back', failedStep: 'smoke', error: 'timed out' }) });
    view.handle({ type: 'stopped', at: AT, reason: 'budget-exceeded', notAttempted: ['node-2'] });
    await view.close();
    expect(text().split('\n')).toEqual([
      '2026-11-28T18:02:03Z run r1: 1 node(s) in 1 batch(es); failure budget: stops after 1 failed node out of 1',
      '2026-11-28T18:02:03Z batch 1/1 (canary) start: node-1',
      '2026-11-28T18:02:03Z node-1 stage ok sha256 3a4f checked',
      '2026-11-28T18:02:03Z node-1 smoke failed timed out',
      '    stderr line',
      '2026-11-28T18:02:03Z node-1 rolled back to 1.1.12 (failed at smoke): timed out',
      '2026-11-28T18:02:03Z stopped: failure budget exceeded; not attempted: node-2',
      '',
    ]);
  });
});

describe('human summary', () => {
  const base = {
    command: 'apply' as const,
    runId: 'r1',
    startedAt: AT,
    finishedAt: AT,
    toolVersion: '0.1.0',
    release: { repo: 'o/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: {} },
    inventory: null,
    options: { batch: '1', canary: 0, pauseMs: 0, maxFailures: '0', smokeTimeoutMs: 1, forceUnlock: false, allowDowngrade: false },
    batches: [],
    interrupted: false,
    stoppedReason: null,
  };

  it('says where each node stands, with error tails and manual commands for a failed rollback', () => {
    const text = renderSummary(
      assembleReport({
        ...base,
        nodes: [
          outcome('n1', { backupPath: '/var/lib/runc-rollout/backups/x' }),
          outcome('n2', { status: 'failed', failedStep: 'staged-smoke', to: null, error: 'staged-smoke: timed out. Node unchanged' }),
          outcome('n3', {
            status: 'failed',
            failedStep: 'rollback',
            error: 'rollback: rename failed',
            rollback: { ok: false, smokeOk: null, error: 'rename failed', manualCommands: ['cp /var/lib/runc-rollout/backups/x /usr/local/sbin/runc'] },
          }),
        ],
      }),
      '/tmp/report.json',
    );
    expect(text).toMatch(/n1 +upgraded +runs 1\.2\.9 \(sha256 bbbbbbbbbbbb…\); sysctl 65536 -> 16384/);
    expect(text).toMatch(/n2 +failed at staged-smoke +runc not replaced: runs 1\.1\.12/);
    expect(text).toMatch(/\| staged-smoke: timed out\. Node unchanged/);
    expect(text).toMatch(/n3 +failed at rollback +NEEDS ATTENTION/);
    expect(text).toMatch(/to finish by hand on h:\n +cp \/var\/lib\/runc-rollout\/backups\/x \/usr\/local\/sbin\/runc/);
    expect(text).toMatch(/Report: \/tmp\/report\.json/);
  });

  it('for a rollback run, rolled-back means restored', () => {
    const text = renderSummary(
      assembleReport({ ...base, command: 'rollback', release: null, nodes: [outcome('n1', { status: 'rolled-back', from: { version: '1.2.9', sha256: 'b'.repeat(64) }, to: { version: '1.1.12', sha256: 'a'.repeat(64) } })] }),
      null,
    );
    expect(text).toMatch(/n1 +rolled-back +restored: runs 1\.1\.12/);
    expect(text).toMatch(/All nodes are in the desired state/);
  });
});

describe('listr2 view (terminal)', () => {
  it('draws batch, node and steps to the given stream, and close() ends it even when the run died mid-way', async () => {
    const { out, text } = collect();
    const view = createApplyView({ out, interactive: true });
    const b0 = { index: 0, canary: true, nodes: ['node-1'] };
    const b1 = { index: 1, canary: false, nodes: ['node-2'] };
    view.handle({ type: 'run-start', at: AT, runId: 'r1', batches: [b0, b1], skipped: [], budget: '' });
    view.handle({ type: 'batch-start', at: AT, batch: b0 });
    view.handle({ type: 'node-start', at: AT, batch: 0, node: 'node-1', action: 'upgrade' });
    view.handle({ type: 'node-event', batch: 0, event: { node: 'node-1', step: 'lock', status: 'start', at: AT } });
    view.handle({ type: 'node-event', batch: 0, event: { node: 'node-1', step: 'lock', status: 'ok', at: AT } });
    view.handle({ type: 'node-event', batch: 0, event: { node: 'node-1', step: 'stage', status: 'ok', message: 'sha256 3a4f checked', at: AT } });
    await view.close();
    expect(text()).toMatch(/batch 1\/2 \(canary\): node-1/);
    expect(text()).toMatch(/stage: sha256 3a4f checked/);
  });
});
