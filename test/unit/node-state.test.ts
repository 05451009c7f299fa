// The state.json decisions: which record a run continues, when a backup is
// reused (never a second backup of the same binary, never the original's
// backup replaced), and which files the sysctl step backs up.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dropinContent } from '../../src/apply/sysctl-scripts.js';
import {
  backupName,
  decideBackup,
  parseNodeState,
  planSysctlChange,
  recordAtBackup,
  recordForUnchanged,
  relateRecord,
  serializeState,
} from '../../src/apply/node-state.js';
import type { NodeState } from '../../src/core/types.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const P = '/usr/local/sbin/runc';
const now = new Date('2026-03-04T05:06:07.123Z');

const rec = (o: Partial<NodeState> = {}): NodeState => ({
  schema: 1,
  runId: 'old',
  updatedAt: '2026-01-01T00:00:00.000Z',
  runcPath: P,
  phase: 'done',
  original: { version: '1.1.5', sha256: A, backupPath: '/var/lib/runc-rollout/backups/runc-1.1.5-aaaaaaaaaaaa-20260101T000000Z' },
  target: { version: '1.2.9', sha256: B },
  sysctl: { liveBefore: 2, files: [{ path: '/etc/sysctl.conf', backupPath: '/var/lib/runc-rollout/sysctl-backups/old/0-sysctl.conf' }] },
  ...o,
});

describe('relateRecord', () => {
  it('continues a record whose change is under way or done, starts fresh otherwise', () => {
    expect(relateRecord(null, P, A, B)).toBe('fresh');
    expect(relateRecord(rec({ phase: 'backed-up' }), P, A, B)).toBe('continues-original');
    expect(relateRecord(rec({ phase: 'done' }), P, B, B)).toBe('continues-target');
    expect(relateRecord(rec({ phase: 'rolled-back' }), P, A, B)).toBe('fresh');
    expect(relateRecord(rec(), '/usr/bin/runc', A, B)).toBe('fresh');
    // A record of an older change (to B) says nothing about a change to C.
    expect(relateRecord(rec(), P, B, C)).toBe('fresh');
  });
});

describe('decideBackup', () => {
  const cur = { version: '1.1.5', sha256: A };
  it('reuses any verified backup of the same binary instead of making a second one', () => {
    const prev = rec({ phase: 'backed-up' });
    const d = decideBackup({ prev, relation: 'continues-original', current: cur, backups: [{ path: prev.original.backupPath, sha256: A }], now });
    expect(d).toEqual({ reuse: prev.original.backupPath, create: null, protect: [prev.original.backupPath] });
    const other = decideBackup({ prev: null, relation: 'fresh', current: cur, backups: [{ path: '/x/runc-old', sha256: A }], now });
    expect(other.reuse).toBe('/x/runc-old');
  });

  it('makes a new backup named by version, digest and time, and protects the record in place', () => {
    const prev = rec();
    const d = decideBackup({ prev, relation: 'fresh', current: { version: '1.2.9', sha256: B }, backups: [{ path: prev.original.backupPath, sha256: A }], now });
    expect(d.reuse).toBeNull();
    expect(d.create).toBe('/var/lib/runc-rollout/backups/runc-1.2.9-bbbbbbbbbbbb-20260304T050607Z');
    expect(d.protect).toEqual([prev.original.backupPath, d.create]);
  });

  it('keeps backup names to safe characters', () => {
    expect(backupName('1.1.5+ds1 $(x)/y', A, now)).toBe('/var/lib/runc-rollout/backups/runc-1.1.5+ds1___x__y-aaaaaaaaaaaa-20260304T050607Z');
    expect(backupName(null, A, now)).toContain('runc-unknown-');
  });
});

describe('records', () => {
  it('a run continuing the original keeps the sysctl values from before the change', () => {
    const prev = rec({ phase: 'sysctl-applied' });
    const r = recordAtBackup({ prev, relation: 'continues-original', runId: 'new', realPath: P, current: { version: '1.1.5', sha256: A }, target: { version: '1.2.9', sha256: B }, backupPath: prev.original.backupPath, liveBefore: 16384, now });
    expect(r.sysctl).toEqual(prev.sysctl);
    expect(r.phase).toBe('backed-up');
    const fresh = recordAtBackup({ prev, relation: 'fresh', runId: 'new', realPath: P, current: { version: '1.2.9', sha256: B }, target: { version: '1.3.0', sha256: C }, backupPath: '/b', liveBefore: 16384, now });
    expect(fresh.sysctl).toEqual({ liveBefore: 16384, files: [] });
    // the backup step gives the backup the original's owner, mode, capabilities and label
    expect(fresh.original).toEqual({ version: '1.2.9', sha256: B, backupPath: '/b', metadata: 'backup' });
  });

  it('a rerun on an upgraded node keeps the original and its backup; a node never changed gets a sysctl-only record', () => {
    const prev = rec();
    expect(recordForUnchanged({ prev, relation: 'continues-target', runId: 'n', realPath: P, current: { version: '1.2.9', sha256: B }, liveBefore: 16384, now })).toMatchObject({ original: prev.original, sysctl: prev.sysctl, runId: 'n' });
    const own = recordForUnchanged({ prev: null, relation: 'fresh', runId: 'n', realPath: P, current: { version: '1.2.9', sha256: B }, liveBefore: 7, now });
    expect(own.original).toEqual({ version: '1.2.9', sha256: B, backupPath: '' });
    expect(own.sysctl).toEqual({ liveBefore: 7, files: [] });
  });

  it('the sysctl step backs up only files the record has no pristine backup of', () => {
    const state = rec({ phase: 'swapped' });
    const c = planSysctlChange({ state, commentOut: [{ path: '/etc/sysctl.conf', lines: [2] }, { path: '/etc/sysctl.d/99-zz.conf', lines: [1] }], dropin: '/etc/sysctl.d/99-runc-rollout.conf', dropinExists: true, runId: 'new', now, stateDir: '/s' });
    expect(c.commentOut).toEqual([
      { path: '/etc/sysctl.conf', lines: [2], backupPath: null },
      { path: '/etc/sysctl.d/99-zz.conf', lines: [1], backupPath: '/s/sysctl-backups/new/1-99-zz.conf' },
    ]);
    expect(c.dropinBackup).toBe('/s/sysctl-backups/new/2-99-runc-rollout.conf');
    expect(c.state.sysctl.files.map((f) => f.path)).toEqual(['/etc/sysctl.conf', '/etc/sysctl.d/99-zz.conf', '/etc/sysctl.d/99-runc-rollout.conf']);
    expect(c.state.sysctl.liveBefore).toBe(2);
    expect(c.state.phase).toBe('sysctl-applied');
    // What the run leaves in each file is recorded (a rollback restores only files still so): lines commented out, the drop-in's digest.
    expect(c.state.sysctl.files.map((f) => [f.commented, f.written])).toEqual([
      [true, undefined],
      [true, undefined],
      [undefined, createHash('sha256').update(dropinContent('new')).digest('hex')],
    ]);
    // A drop-in that did not exist is recorded for removal; recorded once only, with the digest of the last run that wrote it.
    const again = planSysctlChange({ state: { ...state, sysctl: { liveBefore: 2, files: [] } }, commentOut: [], dropin: '/d', dropinExists: false, runId: 'n', now });
    const digest = (run: string) => createHash('sha256').update(dropinContent(run)).digest('hex');
    expect(again.state.sysctl.files).toEqual([{ path: '/d', backupPath: null, written: digest('n') }]);
    expect(planSysctlChange({ state: again.state, commentOut: [], dropin: '/d', dropinExists: true, runId: 'n2', now }).state.sysctl.files).toEqual([{ path: '/d', backupPath: null, written: digest('n2') }]);
    // The record it extends is not changed in place.
    expect(again.state.sysctl.files[0]?.written).toBe(digest('n'));
  });
});

describe('parseNodeState', () => {
  it('round-trips and refuses what is not ours', () => {
    const r = rec();
    expect(parseNodeState(serializeState(r))).toEqual(r);
    // records of older versions (no metadata, written or commented) still parse; newer ones keep their fields
    const full = { ...r, original: { ...r.original, metadata: 'backup' as const }, sysctl: { liveBefore: 1, files: [{ path: '/e', backupPath: '/b', commented: true as const }, { path: '/d', backupPath: null, written: A }] } };
    expect(parseNodeState(serializeState(full))).toEqual(full);
    expect(() => parseNodeState(JSON.stringify({ ...full, sysctl: { liveBefore: 1, files: [{ path: '/d', backupPath: null, written: 'x' }] } }))).toThrow(/written/);
    expect(() => parseNodeState('{')).toThrow(/not JSON/);
    expect(() => parseNodeState(JSON.stringify({ ...r, phase: 'weird' }))).toThrow(/phase/);
    expect(() => parseNodeState(JSON.stringify({ ...r, original: { ...r.original, sha256: 'x' } }))).toThrow(/original\.sha256/);
  });
});
