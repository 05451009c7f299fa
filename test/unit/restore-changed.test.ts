// The restore script never overwrites what the change did not put there: run
// for real (as root) against temp dirs, a runc replaced since the apply, a
// drop-in or commented-out file edited since, a live value set since by
// someone else are each left alone and reported; --overwrite-changed replaces
// them; a missing runc, or files exactly as the change left them, are
// restored. The restored runc takes its owner, mode and capabilities from the
// backup.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { buildRestoreScript, type RestorePlan } from '../../src/apply/restore-scripts.js';
import { first, parseRecords } from '../../src/apply/script-common.js';
import { COMMENT_MARKER } from '../../src/apply/sysctl-scripts.js';

const reason = process.getuid?.() !== 0 ? 'needs root' : null;
const hasSetcap = spawnSync('sh', ['-c', 'command -v setcap && command -v getcap']).status === 0;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe.skipIf(reason)('restore leaves alone what changed since the change', () => {
  const root = mkdtempSync(join(tmpdir(), 'rr-restore-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const bin = join(root, 'bin');
  const runc = join(bin, 'runc');
  const backup = join(root, 'backup-runc');
  const etc = join(root, 'etc');
  const dropin = join(etc, '99-runc-rollout.conf');
  const conf = join(etc, 'sysctl.conf');
  const confBackup = join(root, 'sysctl.conf.bak');
  const proc = join(root, 'proc-key');
  const ORIGINAL_CONF = 'a = 1\nfs.pipe-user-pages-soft = 2\n';
  const OUR_CONF = `a = 1\n${COMMENT_MARKER}fs.pipe-user-pages-soft = 2\n`;
  const OUR_DROPIN = 'fs.pipe-user-pages-soft = 16384\n';
  let orig = '';
  let release = '';

  beforeEach(() => {
    rmSync(bin, { recursive: true, force: true });
    rmSync(etc, { recursive: true, force: true });
    mkdirSync(bin);
    mkdirSync(etc);
    // the original: /bin/true; the release: /bin/false (any two binaries)
    copyFileSync('/bin/true', backup);
    copyFileSync('/bin/false', runc);
    chmodSync(runc, 0o755);
    orig = sha(backup);
    release = sha(runc);
    writeFileSync(conf, OUR_CONF);
    writeFileSync(confBackup, ORIGINAL_CONF);
    writeFileSync(dropin, OUR_DROPIN);
    writeFileSync(proc, '16384\n');
  });

  const plan = (o: Partial<RestorePlan> = {}): RestorePlan => ({
    realPath: runc,
    originalSha256: orig,
    targetSha256: release,
    backupPath: backup,
    backupMetadata: true,
    restoreTemp: join(bin, '.runc.restore'),
    remove: [],
    files: [
      { path: conf, backupPath: confBackup, commented: true },
      { path: dropin, backupPath: null, written: createHash('sha256').update(OUR_DROPIN).digest('hex') },
    ],
    liveBefore: 2,
    liveSet: 16384,
    procKey: proc,
    ...o,
  });
  const restore = (p: RestorePlan) => {
    const r = spawnSync('sh', ['-c', buildRestoreScript(p)], { encoding: 'utf8' });
    return { code: r.status, err: r.stderr, recs: parseRecords(r.stdout) };
  };

  it('everything as the change left it: all restored', () => {
    const r = restore(plan());
    expect(r.code, r.err).toBe(0);
    expect(r.recs.has('restore-ok')).toBe(true);
    expect(sha(runc)).toBe(orig);
    expect(readFileSync(conf, 'utf8')).toBe(ORIGINAL_CONF);
    expect(existsSync(dropin)).toBe(false);
    expect(readFileSync(proc, 'utf8')).toBe('2\n');
  });

  it('a runc installed since (neither target nor original): nothing is touched, binary and sysctl alike; forced, all restored', () => {
    copyFileSync('/bin/sh', runc);
    const other = sha(runc);
    const r = restore(plan());
    expect(r.code, r.err).toBe(0);
    expect(first(r.recs, 'binary-changed')).toEqual([other]);
    expect(first(r.recs, 'restore-left')).toEqual(['binary']);
    expect(r.recs.has('restore-ok')).toBe(false);
    expect(sha(runc)).toBe(other);
    expect(readFileSync(conf, 'utf8')).toBe(OUR_CONF);
    expect(readFileSync(proc, 'utf8')).toBe('16384\n');
    expect(existsSync(join(bin, '.runc.restore'))).toBe(false);

    const forced = restore(plan({ overwriteChanged: true }));
    expect(forced.code, forced.err).toBe(0);
    expect(forced.recs.has('restore-ok')).toBe(true);
    expect(sha(runc)).toBe(orig);
    expect(readFileSync(conf, 'utf8')).toBe(ORIGINAL_CONF);
  });

  it('a runc removed since: restored (there is nothing to overwrite)', () => {
    rmSync(runc);
    const r = restore(plan());
    expect(r.code, r.err).toBe(0);
    expect(r.recs.has('binary-restored')).toBe(true);
    expect(sha(runc)).toBe(orig);
  });

  it('sysctl files edited and a live value set since: each left alone and named; the rest restored; forced, all restored', () => {
    writeFileSync(dropin, `${OUR_DROPIN}# tuned by hand\n`);
    writeFileSync(conf, `${OUR_CONF}b = 2\n`);
    writeFileSync(proc, '8192\n');
    const r = restore(plan());
    expect(r.code, r.err).toBe(0);
    expect(sha(runc)).toBe(orig);
    expect((r.recs.get('file-changed') ?? []).map((f) => f[0])).toEqual(['0', '1']);
    expect(first(r.recs, 'live-changed')).toEqual(['8192']);
    expect(first(r.recs, 'restore-left')).toEqual(['file', 'file', 'live']);
    expect(readFileSync(dropin, 'utf8')).toContain('by hand');
    expect(readFileSync(conf, 'utf8')).toContain('b = 2');
    expect(readFileSync(proc, 'utf8')).toBe('8192\n');

    const forced = restore(plan({ overwriteChanged: true }));
    expect(forced.recs.has('restore-ok'), forced.err).toBe(true);
    expect(readFileSync(conf, 'utf8')).toBe(ORIGINAL_CONF);
    expect(existsSync(dropin)).toBe(false);
    expect(readFileSync(proc, 'utf8')).toBe('2\n');
  });

  it('a record of an older version (nothing recorded of what it wrote) restores as before', () => {
    writeFileSync(dropin, 'edited\n');
    const r = restore(plan({ files: [{ path: dropin, backupPath: null }], liveSet: null, liveBefore: null }));
    expect(r.recs.has('restore-ok'), r.err).toBe(true);
    expect(existsSync(dropin)).toBe(false);
  });

  it.skipIf(!hasSetcap)("the restored runc takes the backup's owner, group, mode and file capabilities", () => {
    chownSync(backup, 0, 4);
    chmodSync(backup, 0o4750);
    expect(spawnSync('setcap', ['cap_net_bind_service=ep', backup]).status).toBe(0);
    const r = restore(plan());
    expect(r.code, r.err).toBe(0);
    const st = statSync(runc);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, 4, 0o4750]);
    expect(spawnSync('getcap', [runc], { encoding: 'utf8' }).stdout).toMatch(/cap_net_bind_service[=+]ep/);
  });
});
