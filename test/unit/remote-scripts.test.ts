// The pipeline's remote scripts, built with hostile values (a runc path with
// spaces, quotes, newlines, `$(...)`, backticks and `;`), checked three ways:
// sh and bash parse them; a quote-aware scan finds every hostile value only
// inside single quotes; and the scripts run for real, locally, against temp
// dirs (lock, upload, check, backup, swap, sysctl, restore, unlock), doing
// exactly their job while no injected command ever runs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLockScript, buildUnlockScript, lockPath, parseLockProbe } from '../../src/apply/node-lock.js';
import { backupName, serializeState, sysctlBackupPath } from '../../src/apply/node-state.js';
import { buildBackupScript, buildReadBinaryScript, buildStageScript, buildSwapScript, tempPaths } from '../../src/apply/remote-scripts.js';
import { buildRestoreScript, manualRestoreCommands, type RestorePlan } from '../../src/apply/restore-scripts.js';
import { first, lineOf, parseRecords, unhex } from '../../src/apply/script-common.js';
import { buildSmokeScript } from '../../src/apply/smoke.js';
import { COMMENT_MARKER, buildSysctlApplyScript } from '../../src/apply/sysctl-scripts.js';
import type { NodeState } from '../../src/core/types.js';
import { buildStandIn } from '../harness/standin.js';

const EVIL = `a b'q"\`touch PWNED1\`$(touch PWNED2);touch PWNED3\n|&>x`;
const SHA_A = 'a'.repeat(64);

/** Positions of `needle` that a POSIX shell would see outside single quotes. */
function unquoted(script: string, needle: string): number[] {
  const bad: number[] = [];
  let state: 'plain' | 'single' | 'double' = 'plain';
  for (let i = 0; i < script.length; i++) {
    if (state !== 'single' && script.startsWith(needle, i)) bad.push(i);
    const c = script[i];
    if (state === 'plain') {
      if (c === '\\') i++;
      else if (c === "'") state = 'single';
      else if (c === '"') state = 'double';
      else if (c === '#' && (i === 0 || /\s/.test(script[i - 1] ?? ''))) {
        const nl = script.indexOf('\n', i);
        i = nl < 0 ? script.length : nl;
      }
    } else if (state === 'single') {
      if (c === "'") state = 'plain';
    } else if (c === '\\') i++;
    else if (c === '"') state = 'plain';
  }
  return bad;
}

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A restore plan as an older record gives it (no change recorded beyond the files), unless overridden. */
const restorePlan = (o: Omit<RestorePlan, 'targetSha256' | 'backupMetadata' | 'liveSet'> & Partial<RestorePlan>): RestorePlan => ({ targetSha256: SHA_A, backupMetadata: false, liveSet: null, ...o });

const state = (o: Partial<NodeState> & Pick<NodeState, 'runcPath' | 'original' | 'target'>): NodeState => ({
  schema: 1,
  runId: 'r1',
  updatedAt: '2026-01-01T00:00:00.000Z',
  phase: 'backed-up',
  sysctl: { liveBefore: 100, files: [] },
  ...o,
});

describe('every generated script quotes hostile values', () => {
  const runc = `/opt/${EVIL}/runc`;
  const tp = tempPaths(runc, 'run-1');
  const scripts: Record<string, string> = {
    lock: buildLockScript({ runId: 'run-1', lockOwner: `me@${EVIL}`, forceUnlock: true, runcPath: runc }),
    unlock: buildUnlockScript({ runId: 'run-1', remove: [tp.staged], writeState: true }),
    stage: buildStageScript({ realPath: runc, staged: tp.staged, sha256: SHA_A, gzip: false }),
    'stage (gzip)': buildStageScript({ realPath: runc, staged: tp.staged, sha256: SHA_A, gzip: true }),
    backup: buildBackupScript({ realPath: runc, currentSha256: SHA_A, reuse: null, create: `/b/${EVIL}`, protect: [`/b/${EVIL}`, '/b/x'], runId: 'run-1' }),
    swap: buildSwapScript({ staged: tp.staged, realPath: runc, sha256: SHA_A, currentSha256: SHA_A }),
    read: buildReadBinaryScript(runc),
    sysctl: buildSysctlApplyScript({ runId: `run ${EVIL}`, commentOut: [{ path: `/etc/sysctl.d/${EVIL}.conf`, lines: [2, 5], backupPath: `/s/${EVIL}` }], dropinBackup: `/s/${EVIL}.d` }),
    restore: buildRestoreScript(
      restorePlan({ realPath: runc, originalSha256: SHA_A, backupPath: `/b/${EVIL}`, restoreTemp: tp.restore, remove: [tp.staged], cleanPrefix: tp.prefix, files: [{ path: `/etc/${EVIL}`, backupPath: `/s/${EVIL}`, commented: true }, { path: '/etc/x', backupPath: null, written: SHA_A }], liveBefore: 4, liveSet: 16384, backupMetadata: true }),
    ),
    'restore (binary only)': buildRestoreScript(restorePlan({ realPath: runc, originalSha256: SHA_A, backupPath: '', restoreTemp: tp.restore, remove: [], files: [], liveBefore: null, overwriteChanged: true })),
    'sysctl (nothing to comment out)': buildSysctlApplyScript({ runId: 'r', commentOut: [], dropinBackup: null }),
    'unlock (bare)': buildUnlockScript({ runId: 'r' }),
    'smoke (no prepare, no custom command)': buildSmokeScript({ runcPath: runc, runId: 'r', label: 'staged', timeoutSec: 60, prepare: false }),
    smoke: buildSmokeScript({ runcPath: runc, runId: `r${EVIL}`, label: 'installed', timeoutSec: 60, prepare: { gzip: true }, customCommand: `ctr run ${EVIL}` }),
  };

  it.each(Object.keys(scripts))('%s parses with sh -n and bash -n', (name) => {
    for (const shell of ['sh', 'bash']) {
      const r = spawnSync(shell, ['-n'], { input: scripts[name], encoding: 'utf8' });
      expect(r.stderr, `${shell} -n ${name}`).toBe('');
      expect(r.status).toBe(0);
    }
  });

  it.each(Object.keys(scripts))('%s holds the hostile parts only inside single quotes', (name) => {
    const s = scripts[name] as string;
    for (const needle of ['touch PWNED1', 'touch PWNED2', 'touch PWNED3', '|&>x']) expect(unquoted(s, needle), `${name}: ${needle}`).toEqual([]);
  });

  it('the scanner does find an unquoted value (so the check above can fail)', () => {
    expect(unquoted('echo $(touch PWNED2)', 'touch PWNED2')).not.toEqual([]);
    expect(unquoted('echo "x$(touch PWNED2)"', 'touch PWNED2')).not.toEqual([]);
    expect(unquoted("echo 'x'$(touch PWNED2)", 'touch PWNED2')).not.toEqual([]);
    expect(unquoted("echo 'x$(touch PWNED2)'", 'touch PWNED2')).toEqual([]);
  });

  it('manual restore commands quote too', () => {
    const cmds = manualRestoreCommands(restorePlan({ realPath: runc, originalSha256: SHA_A, backupPath: `/b/${EVIL}`, restoreTemp: tp.restore, remove: [], files: [], liveBefore: 7, backupMetadata: true }));
    for (const c of cmds) expect(unquoted(c.replace(/#.*$/, ''), 'touch PWNED2')).toEqual([]);
    // the digest gates the rename in one chained line, not a comment to read; the metadata comes from the backup
    expect(cmds.join('\n')).toMatch(new RegExp(`${SHA_A}  .*\\| sha256sum -c - && mv -f `, 's'));
    expect(cmds.join('\n')).toContain(`cp --attributes-only --preserve=mode,ownership,xattr '/b/`);
  });
});

const localReason = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/usr/sbin/runc') ? 'needs /usr/sbin/runc' : null;

describe.skipIf(localReason)('the scripts run for real against temp dirs with hostile names', () => {
  const root = mkdtempSync(join(tmpdir(), 'rr-scripts-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const stateDir = join(root, `state ${EVIL}`);
  const binDir = join(root, `bin ${EVIL}`);
  const runc = join(binDir, 'runc');
  const runId = 'unit-run';
  const sh = (script: string, input?: string | Buffer) => {
    const r = spawnSync('sh', ['-c', script], { input, cwd: root, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr, recs: parseRecords(r.stdout) };
  };
  const pwned = () => readdirSync(root).filter((f) => f.startsWith('PWNED'));

  it('locks, stages, backs up, swaps, restores and unlocks exactly as intended', () => {
    mkdirSync(binDir, { recursive: true });
    copyFileSync('/usr/sbin/runc', runc);
    chmodSync(runc, 0o755);
    const original = sha(runc);
    const release = buildStandIn(join(root, 'release'), { version: '1.2.9' });
    const releaseSha = sha(release);
    const tp = tempPaths(runc, runId);
    writeFileSync(`${tp.prefix}old-run.new`, 'leftover of a dead run');

    const lock = sh(buildLockScript({ runId, lockOwner: `sre@${EVIL}`, forceUnlock: false, runcPath: runc, stateDir }));
    expect(lock.code, lock.err).toBe(0);
    const probe = parseLockProbe(lock.out);
    expect(probe.lock).toBe('acquired');
    expect(probe.realPath).toBe(runc);
    expect(probe.sha256).toBe(original);
    expect(probe.versionLine).toMatch(/^runc version /);
    expect(probe.cleaned).toEqual([`${tp.prefix}old-run.new`]);
    expect(readFileSync(lockPath(stateDir), 'utf8')).toContain(`run=${runId}\n`);

    // A second run meets the lock: held while its holder lives, stale when it is gone, broken only when forced.
    const other = buildLockScript({ runId: 'other', lockOwner: 'x', forceUnlock: false, runcPath: runc, stateDir });
    const self = spawnSync('sh', ['-c', `sed 's/^.*) //' /proc/${process.pid}/stat | cut -d' ' -f20`], { encoding: 'utf8' }).stdout.trim();
    const lockText = readFileSync(lockPath(stateDir), 'utf8');
    writeFileSync(lockPath(stateDir), lockText.replace(/^pid=.*$/m, `pid=${process.pid}`).replace(/^start=.*$/m, `start=${self}`));
    expect(parseLockProbe(sh(other).out).lock).toBe('held');
    writeFileSync(lockPath(stateDir), lockText.replace(/^pid=.*$/m, 'pid=999999999').replace(/^start=.*$/m, 'start=1'));
    const stale = parseLockProbe(sh(other).out);
    expect(stale.lock).toBe('stale');
    expect(stale.lockInfo).toContain(`owner=sre@a b'q"`);
    expect(parseLockProbe(sh(buildLockScript({ runId: 'other', lockOwner: 'x', forceUnlock: true, runcPath: runc, stateDir })).out).lock).toBe('broken');
    writeFileSync(lockPath(stateDir), lockText);

    const st = sh(buildStageScript({ realPath: runc, staged: tp.staged, sha256: releaseSha, gzip: false }), readFileSync(release));
    expect(st.code, st.err).toBe(0);
    expect(lineOf(st.recs, 'vline')).toBe('runc version 1.2.9');
    expect(sh(buildStageScript({ realPath: runc, staged: tp.staged, sha256: SHA_A, gzip: false }), readFileSync(release)).code).not.toBe(0);
    expect(existsSync(tp.staged)).toBe(false); // a wrong digest removes the staged file
    sh(buildStageScript({ realPath: runc, staged: tp.staged, sha256: releaseSha, gzip: false }), readFileSync(release));

    const backupPath = backupName('1.1.5+ds1', original, new Date('2026-01-02T03:04:05Z'), stateDir);
    const rec = state({ runcPath: runc, original: { version: '1.1.5', sha256: original, backupPath }, target: { version: '1.2.9', sha256: releaseSha } });
    const bk = sh(buildBackupScript({ realPath: runc, currentSha256: original, reuse: null, create: backupPath, protect: [backupPath], runId, stateDir }), serializeState(rec));
    expect(bk.code, bk.err).toBe(0);
    expect(sha(backupPath)).toBe(original);
    expect(JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'))).toEqual(rec);
    // Refuses when the binary is not the one the lock step saw.
    expect(sh(buildBackupScript({ realPath: runc, currentSha256: SHA_A, reuse: null, create: `${backupPath}-2`, protect: [], runId, stateDir }), serializeState(rec)).code).not.toBe(0);

    // The swap refuses a target that is not the file the backup step saw.
    const moved = sh(buildSwapScript({ staged: tp.staged, realPath: runc, sha256: releaseSha, currentSha256: SHA_A, stateDir }), serializeState({ ...rec, phase: 'swapped' }));
    expect(moved.code).not.toBe(0);
    expect(moved.err).toMatch(/changed since the backup: sha256 [0-9a-f]{64}, expected a{64}; not swapped/);
    expect(sha(runc)).toBe(original);
    const sw = sh(buildSwapScript({ staged: tp.staged, realPath: runc, sha256: releaseSha, currentSha256: original, stateDir }), serializeState({ ...rec, phase: 'swapped' }));
    expect(sw.code, sw.err).toBe(0);
    expect(first(sw.recs, 'sha')?.[0]).toBe(releaseSha);
    expect(sha(runc)).toBe(releaseSha);
    expect(existsSync(tp.staged)).toBe(false);

    const rs = sh(buildRestoreScript(restorePlan({ realPath: runc, originalSha256: original, targetSha256: releaseSha, backupPath, restoreTemp: tp.restore, remove: [tp.staged], cleanPrefix: tp.prefix, files: [], liveBefore: null })));
    expect(rs.code, rs.err).toBe(0);
    expect(rs.recs.has('binary-restored')).toBe(true);
    expect(sha(runc)).toBe(original);
    expect(readdirSync(binDir)).toEqual(['runc']);
    // Idempotent: a second restore finds it in place.
    expect(sh(buildRestoreScript(restorePlan({ realPath: runc, originalSha256: original, backupPath, restoreTemp: tp.restore, remove: [], files: [], liveBefore: null }))).recs.has('binary-in-place')).toBe(true);

    const un = sh(buildUnlockScript({ runId, stateDir }));
    expect(un.recs.has('unlocked')).toBe(true);
    expect(existsSync(lockPath(stateDir))).toBe(false);
    expect(pwned()).toEqual([]);
  });

  it('rotates backups to the newest 3 but never one a record needs', () => {
    const bdir = join(root, 'rotation', 'backups');
    mkdirSync(bdir, { recursive: true });
    const names = ['runc-1.0-aaa-1', 'runc-1.1-bbb-2', 'runc-1.2-ccc-3', 'runc-1.3-ddd-4'];
    names.forEach((n, i) => {
      copyFileSync(runc, join(bdir, n));
      spawnSync('touch', ['-d', `2026-01-0${i + 1}`, join(bdir, n)]);
    });
    const cur = sha(runc);
    const keep = join(bdir, names[0] as string);
    const create = join(bdir, 'runc-1.4-eee-5');
    const rec = state({ runcPath: runc, original: { version: null, sha256: cur, backupPath: create }, target: { version: '1.2.9', sha256: SHA_A } });
    const r = sh(buildBackupScript({ realPath: runc, currentSha256: cur, reuse: null, create, protect: [keep, create], runId, stateDir: join(root, 'rotation') }), serializeState(rec));
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(bdir).filter((n) => n.startsWith('runc-')).sort()).toEqual(['runc-1.0-aaa-1', 'runc-1.2-ccc-3', 'runc-1.3-ddd-4', 'runc-1.4-eee-5']);
  });

  it('stage in one round trip: plain or gzip\'d upload, inflated and checked; a corrupt stream or wrong digest leaves nothing', () => {
    const release = buildStandIn(join(root, 'release-gz'), { version: '1.2.9' });
    const releaseSha = sha(release);
    const tp = tempPaths(runc, 'gz-run');
    const bytes = readFileSync(release);
    for (const gzip of [false, true]) {
      const r = sh(buildStageScript({ realPath: runc, staged: tp.staged, sha256: releaseSha, gzip }), gzip ? gzipSync(bytes) : bytes);
      expect(r.code, r.err).toBe(0);
      expect(first(r.recs, 'sha')?.[0]).toBe(releaseSha);
      expect(lineOf(r.recs, 'vline')).toBe('runc version 1.2.9');
      expect(sha(tp.staged)).toBe(releaseSha);
      rmSync(tp.staged);
    }
    const gz = gzipSync(bytes);
    const corrupt = Buffer.concat([gz.subarray(0, gz.length / 2), Buffer.from('not gzip at all')]);
    const bad = sh(buildStageScript({ realPath: runc, staged: tp.staged, sha256: releaseSha, gzip: true }), corrupt);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/failed \(gzip's error above/);
    const wrong = sh(buildStageScript({ realPath: runc, staged: tp.staged, sha256: SHA_A, gzip: true }), gz);
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toMatch(/expected a{64}/);
    expect(readdirSync(binDir).filter((f) => f.includes('gz-run') || f.includes('.new'))).toEqual([]);
    expect(pwned()).toEqual([]);
  });

  it('sysctl: backs up, writes the drop-in, comments out overriding lines, writes live; restore puts every byte back', () => {
    const etc = join(root, `etc ${EVIL}`);
    mkdirSync(etc, { recursive: true });
    const conf = join(etc, '90-pipe.conf');
    const original = '# old workaround\nfs.pipe-user-pages-soft = 0\nvm.swappiness = 1\n - fs/pipe-user-pages-soft=2\n';
    writeFileSync(conf, original);
    chmodSync(conf, 0o640);
    const proc = join(root, `proc ${EVIL}`);
    writeFileSync(proc, '0\n');
    const dropin = join(etc, '99-runc-rollout.conf');
    const backup = sysctlBackupPath(runId, 0, conf, stateDir);
    const rec = state({ runcPath: runc, original: { version: null, sha256: SHA_A, backupPath: '' }, target: { version: '1', sha256: SHA_A }, sysctl: { liveBefore: 0, files: [{ path: conf, backupPath: backup }, { path: dropin, backupPath: null }] } });
    const apply = buildSysctlApplyScript({ runId, commentOut: [{ path: conf, lines: [2, 4], backupPath: backup }], dropinBackup: null, dropin, procKey: proc, stateDir });
    const r = sh(apply, serializeState(rec));
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(backup, 'utf8')).toBe(original);
    expect(readFileSync(conf, 'utf8')).toBe(`# old workaround\n${COMMENT_MARKER}fs.pipe-user-pages-soft = 0\nvm.swappiness = 1\n${COMMENT_MARKER} - fs/pipe-user-pages-soft=2\n`);
    expect(spawnSync('stat', ['-c', '%a', conf], { encoding: 'utf8' }).stdout.trim()).toBe('640');
    expect(readFileSync(dropin, 'utf8')).toMatch(/^fs\.pipe-user-pages-soft = 16384$/m);
    expect(readFileSync(proc, 'utf8').trim()).toBe('16384');
    // Rerun: lines already ours are left alone, nothing breaks.
    expect(sh(apply, serializeState(rec)).code).toBe(0);
    // A line edited since the plan is refused.
    expect(sh(buildSysctlApplyScript({ runId, commentOut: [{ path: conf, lines: [3], backupPath: null }], dropinBackup: null, dropin, procKey: proc, stateDir }), serializeState(rec)).code).not.toBe(0);

    const restore = sh(buildRestoreScript(restorePlan({ realPath: runc, originalSha256: sha(runc), backupPath: '', restoreTemp: join(binDir, '.t'), remove: [], files: rec.sysctl.files, liveBefore: 0, liveSet: 16384, procKey: proc })));
    expect(restore.code, restore.err).toBe(0);
    expect(restore.out).toContain("file-restored");
    expect(readFileSync(conf, 'utf8')).toBe(original);
    expect(existsSync(dropin)).toBe(false);
    expect(readFileSync(proc, 'utf8').trim()).toBe('0');
    expect(pwned()).toEqual([]);
  });

  it('restore leaves the sysctl alone while the binary cannot be restored, and reports each part it could not do', () => {
    const proc = join(root, 'proc2');
    writeFileSync(proc, '16384\n');
    const r = sh(buildRestoreScript(restorePlan({ realPath: runc, originalSha256: SHA_A, targetSha256: sha(runc), backupPath: join(root, 'no-such-backup'), restoreTemp: join(binDir, '.t2'), remove: [], files: [], liveBefore: 5, liveSet: 16384, procKey: proc })));
    expect(r.code).not.toBe(0);
    expect(first(r.recs, 'restore-failed')).toEqual(['binary']);
    expect(r.err).toContain('no backup to restore');
    expect(readFileSync(proc, 'utf8').trim()).toBe('16384');

    // With the binary in place, a file whose backup is gone fails alone: the live value is still restored.
    const f = join(root, 'some.conf');
    writeFileSync(f, 'x\n');
    const r2 = sh(buildRestoreScript(restorePlan({ realPath: runc, originalSha256: sha(runc), backupPath: '', restoreTemp: join(binDir, '.t3'), remove: [], files: [{ path: f, backupPath: join(root, 'gone') }], liveBefore: 5, liveSet: 16384, procKey: proc })));
    expect(r2.code).not.toBe(0);
    expect(first(r2.recs, 'restore-failed')).toEqual(['file']);
    expect(readFileSync(proc, 'utf8').trim()).toBe('5');
  });
});
