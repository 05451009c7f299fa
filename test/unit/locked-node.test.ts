// lockedNode: what the pipeline refuses before it changes anything.
import { describe, expect, it } from 'vitest';
import type { LockProbe } from '../../src/apply/node-lock.js';
import { lockedNode } from '../../src/apply/node-upgrade-parts.js';
import { parseNodeState } from '../../src/apply/node-state.js';
import type { NodeJob } from '../../src/apply/types.js';
import type { NodeState } from '../../src/core/types.js';

const A = 'a'.repeat(64); // original
const B = 'b'.repeat(64); // an earlier run's target
const C = 'c'.repeat(64); // this run's target
const PATH = '/usr/local/sbin/runc';

const probe = (sha: string, state: NodeState | null): LockProbe => ({
  lock: 'acquired', lockInfo: null, holderUnknown: false, hasLib64: true, hasGzip: true, live: 16384, dropinExists: true,
  stateText: state ? JSON.stringify(state) : null, backups: [], realPath: PATH, sha256: sha, versionLine: 'runc version 1.2.8', cleaned: [],
});
const job = (current: string): NodeJob =>
  ({
    node: { name: 'n1', ssh: { host: '127.0.0.1', port: 22, user: 'root', knownHosts: '/kh', hostKeyPolicy: 'strict', sudo: false }, labels: {} },
    plan: { name: 'n1', host: '127.0.0.1', port: 22, arch: 'amd64', runcPath: PATH, action: 'upgrade', current: { version: '1.2.8', sha256: current }, target: { version: '1.3.4', sha256: C }, sysctl: null, warnings: [], error: null },
    asset: null, runId: 'r2', smokeTimeoutMs: 60_000, lockOwner: 'test', forceUnlock: false, includeUnhealthy: false,
  }) as NodeJob;
const record = (phase: NodeState['phase']): NodeState => ({
  schema: 1, runId: 'r1', updatedAt: '2026-11-28T00:00:00.000Z', runcPath: PATH, phase,
  original: { version: '1.1.12', sha256: A, backupPath: '/var/lib/runc-rollout/backups/runc-1.1.12' },
  target: { version: '1.2.9', sha256: B }, sysctl: { liveBefore: 65536, files: [] },
});

describe('lockedNode', () => {
  it.each(['swapped', 'sysctl-applied'] as const)('refuses another release while an earlier run is stopped at %s', (phase) => {
    expect(() => lockedNode(job(B), probe(B, record(phase)), parseNodeState)).toThrow(/earlier run \(r1\) stopped half-way .*finish it .*or undo it/);
  });

  it.each(['done', 'rolled-back', 'staged', 'backed-up'] as const)('goes ahead after an earlier run that is %s', (phase) => {
    expect(lockedNode(job(phase === 'done' ? B : A), probe(phase === 'done' ? B : A, record(phase)), parseNodeState).mode).toBe('upgrade');
  });
});
