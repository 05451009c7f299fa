// The human summary names, for every node, the policy that decided its fate.
import { describe, expect, it } from 'vitest';
import { assembleReport, untouchedOutcome } from '../../src/apply/report.js';
import type { NodeOutcome } from '../../src/apply/types.js';
import type { NodePolicy } from '../../src/core/policies.js';
import { renderSummary } from '../../src/output/run-summary.js';

const node = (name: string, status: NodeOutcome['status'], policy: NodePolicy | null, error = 'why'): NodeOutcome => ({
  ...untouchedOutcome({ name, host: '10.0.0.1' }, status, error, { version: '1.1.12', sha256: 'a'.repeat(64) }),
  policy,
});

function report(nodes: NodeOutcome[], stoppedReason: 'budget-exceeded' | 'window' | null) {
  return assembleReport({
    command: 'apply',
    runId: 'r1',
    startedAt: '',
    finishedAt: '',
    toolVersion: '0.1.0',
    release: { repo: 'o/runc', tag: 'v1.2.9', version: '1.2.9', signatureVerified: true, assets: {} },
    inventory: '/inv.yaml',
    options: { batch: '1', canary: 0, pauseMs: 0, maxFailures: '0', smokeTimeoutMs: 1, forceUnlock: false, allowDowngrade: false, windows: ['Sat 01:00-05:00 Europe/Berlin'] },
    batches: [],
    interrupted: false,
    stoppedReason,
    nodes,
  });
}

describe('renderSummary with policies', () => {
  it('says per node which policy decided, and lists skipped unreachable nodes at the end', () => {
    const text = renderSummary(
      report(
        [
          node('n1', 'rolled-back', 'rollback-all'),
          { ...node('n2', 'upgraded', 'rollback-all', 'rollback-all could not connect'), to: { version: '1.2.9', sha256: 'b'.repeat(64) } },
          node('n3', 'failed', null),
          node('n4', 'not-attempted', 'budget'),
          node('n5', 'unreachable', 'unreachable-skip'),
        ],
        'budget-exceeded',
      ),
      '/r.json',
    );
    expect(text).toMatch(/n1 +rolled-back .*\[policy: rolled back after the budget was exceeded \(--on-budget-exceeded rollback-all\)\]/);
    expect(text).toMatch(/n2 +upgraded .*\[policy: --on-budget-exceeded rollback-all could NOT roll it back; see below\]\n.*\| rollback-all could not connect/);
    expect(text).not.toMatch(/n3 .*\[policy/);
    expect(text).toMatch(/n4 +not-attempted .*\[policy: failure budget exceeded \(--max-failures\)\]/);
    expect(text).toMatch(/n5 +unreachable .*\[policy: skipped, outside the budget/);
    expect(text).toMatch(/1 node\(s\) this run upgraded were rolled back \(--on-budget-exceeded rollback-all\): n1\./);
    expect(text).toMatch(/NOT rolled back despite --on-budget-exceeded rollback-all: n2 \(upgraded\)\./);
    expect(text).toMatch(/Unreachable, skipped \(--on-unreachable skip\), not upgraded: n5\./);
  });

  it('a window stop is clean: exit 0, what is left, and how to resume', () => {
    const r = report([{ ...node('n1', 'upgraded', null), to: { version: '1.2.9', sha256: 'b'.repeat(64) } }, node('n2', 'not-attempted', 'window')], 'window');
    expect(r.exitCode).toBe(0);
    const text = renderSummary(r, '/r.json');
    expect(text).toMatch(/left for the next window: n2\./);
    expect(text).toMatch(/runc-rollout apply --resume \/r\.json/);
    expect(text).not.toMatch(/All nodes are in the desired state/);
  });
});
