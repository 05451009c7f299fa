// Durability of what the change scripts write, proved from their system
// calls (strace -f), run for real as root against temp dirs: after every
// rename the directory it renamed into is fsynced before the script ends;
// every file renamed into place is fsynced; and a file renamed over a live
// one (runc, state.json, a sysctl file) is fsynced before the rename, so a
// crash can never leave the live name pointing at unwritten data.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { planSysctlChange, serializeState } from '../../src/apply/node-state.js';
import { buildBackupScript, buildStageScript, buildSwapScript, tempPaths } from '../../src/apply/remote-scripts.js';
import { buildRestoreScript, restorePlanFromState } from '../../src/apply/restore-scripts.js';
import { buildSysctlApplyScript } from '../../src/apply/sysctl-scripts.js';
import type { NodeState } from '../../src/core/types.js';
import { buildStandIn } from '../harness/standin.js';

const reason =
  process.getuid?.() !== 0 ? 'needs root' : spawnSync('sh', ['-c', 'command -v strace && command -v gcc']).status !== 0 ? 'needs strace and gcc' : !existsSync('/usr/sbin/runc') ? 'needs /usr/sbin/runc' : null;
if (reason) console.warn(`skipping the durability test: ${reason}`);

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

interface Trace {
  renames: { from: string; to: string; at: number }[];
  /** path -> the event indexes at which it was fsynced */
  synced: Map<string, number[]>;
}

/** Renames and fsyncs of a script and all its children, in order, by path. */
function trace(root: string, script: string, stdin: string | Buffer = ''): Trace {
  const out = join(root, 'strace.out');
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=openat,open,dup2,dup3,rename,renameat,renameat2,fsync,fdatasync', '-o', out, 'sh', '-c', script], { input: stdin });
  if (r.status !== 0) throw new Error(`script failed: ${r.stderr.toString()}`);
  const fds = new Map<string, string>();
  const t: Trace = { renames: [], synced: new Map() };
  readFileSync(out, 'utf8')
    .split('\n')
    .forEach((line, at) => {
      const pid = line.split(' ')[0];
      let m = /(?:openat\(AT_FDCWD, |open\()"([^"]+)".*= (\d+)$/.exec(line);
      if (m) return fds.set(`${pid}:${m[2]}`, m[1] as string);
      m = /dup[23]\((\d+), (\d+).*= \d+$/.exec(line);
      if (m) return fds.set(`${pid}:${m[2]}`, fds.get(`${pid}:${m[1]}`) ?? '');
      m = /rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)".*= 0$/.exec(line);
      if (m) return t.renames.push({ from: m[1] as string, to: m[2] as string, at });
      m = /f(?:data)?sync\((\d+)\)\s+= 0$/.exec(line);
      if (m) {
        const path = fds.get(`${pid}:${m[1]}`);
        if (path) t.synced.set(path, [...(t.synced.get(path) ?? []), at]);
      }
      return undefined;
    });
  return t;
}

/** What every script must do; `live` names the destinations that are live files (fsync of the source before the rename). */
function expectDurable(t: Trace, live: (to: string) => boolean): void {
  expect(t.renames.length).toBeGreaterThan(0);
  for (const r of t.renames) {
    const dir = t.synced.get(dirname(r.to)) ?? [];
    expect(dir.some((i) => i > r.at), `directory of ${r.to} fsynced after the rename`).toBe(true);
    const file = [...(t.synced.get(r.from) ?? []), ...(t.synced.get(r.to) ?? [])];
    expect(file.length, `${r.to} fsynced`).toBeGreaterThan(0);
    if (live(r.to)) expect((t.synced.get(r.from) ?? []).some((i) => i < r.at), `${r.from} fsynced before it is renamed over ${r.to}`).toBe(true);
  }
}

describe.skipIf(reason)('durability of the change scripts', () => {
  const root = mkdtempSync(join(tmpdir(), 'rr-durable-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('stage, backup, swap, sysctl and restore fsync what they rename and where', () => {
    const stateDir = join(root, 'state');
    const bin = join(root, 'bin');
    const runc = join(bin, 'runc');
    const etc = join(root, 'etc');
    mkdirSync(bin);
    mkdirSync(etc);
    mkdirSync(stateDir);
    copyFileSync(buildStandIn(join(root, 'orig'), { version: '1.0.0-rc93' }), runc);
    chmodSync(runc, 0o755);
    const release = buildStandIn(join(root, 'release'), { version: '1.2.9' });
    const [origSha, relSha] = [sha(runc), sha(release)];
    const tp = tempPaths(runc, 'dur-run');
    const liveFiles = new Set([runc, join(stateDir, 'state.json')]);
    const live = (to: string) => liveFiles.has(to);

    // stage renames nothing itself; its fsync of the staged file is what the swap's rename relies on
    const stage = trace(root, buildStageScript({ realPath: runc, staged: tp.staged, sha256: relSha, gzip: true }), gzipSync(readFileSync(release)));
    expect(stage.synced.get(tp.staged)?.length).toBeGreaterThan(0);

    const backupPath = join(stateDir, 'backups', 'runc-1.0.0-rc93-x');
    const rec: NodeState = {
      schema: 1,
      runId: 'dur-run',
      updatedAt: new Date(0).toISOString(),
      runcPath: runc,
      phase: 'backed-up',
      original: { version: '1.0.0-rc93', sha256: origSha, backupPath, metadata: 'backup' },
      target: { version: '1.2.9', sha256: relSha },
      sysctl: { liveBefore: 4, files: [] },
    };
    expectDurable(trace(root, buildBackupScript({ realPath: runc, currentSha256: origSha, reuse: null, create: backupPath, protect: [backupPath], runId: 'dur-run', stateDir }), serializeState(rec)), live);
    // swap: the staged file was fsynced by the stage, before this script
    const swapped = { ...rec, phase: 'swapped' as const };
    const swap = trace(root, buildSwapScript({ staged: tp.staged, realPath: runc, sha256: relSha, currentSha256: origSha, stateDir }), serializeState(swapped));
    expectDurable({ ...swap, synced: new Map([...swap.synced, [tp.staged, [-1]]]) }, live);

    const conf = join(etc, '90-pipe.conf');
    const dropin = join(etc, '99-runc-rollout.conf');
    writeFileSync(conf, 'fs.pipe-user-pages-soft = 4\n');
    writeFileSync(dropin, 'an older drop-in\n');
    const proc = join(root, 'proc-key');
    writeFileSync(proc, '4\n');
    for (const f of [conf, dropin]) liveFiles.add(f);
    const change = planSysctlChange({ state: swapped, commentOut: [{ path: conf, lines: [1] }], dropin, dropinExists: true, runId: 'dur-run', now: new Date(0), stateDir });
    const sysctl = trace(root, buildSysctlApplyScript({ runId: 'dur-run', commentOut: change.commentOut, dropinBackup: change.dropinBackup, dropin, procKey: proc, stateDir }), serializeState(change.state));
    expectDurable(sysctl, live);

    const restore = trace(root, buildRestoreScript({ ...restorePlanFromState(change.state, tp.restore, [], tp.prefix), procKey: proc }));
    expectDurable(restore, live);
    expect(sha(runc)).toBe(origSha);
    expect(readFileSync(conf, 'utf8')).toBe('fs.pipe-user-pages-soft = 4\n');
    expect(readFileSync(dropin, 'utf8')).toBe('an older drop-in\n');
  });
});
