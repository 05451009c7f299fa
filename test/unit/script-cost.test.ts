// What the stage, backup, swap and restore scripts cost a node: the processes
// each starts (strace -f -c), run for real against temp dirs as root. On a
// busy host every fork+exec costs milliseconds; the counts below are what the
// scripts start today (the nodes' GNU userland: one cp for all metadata), so a
// change that adds processes has to say so here.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeState } from '../../src/apply/node-state.js';
import { buildBackupScript, buildStageScript, buildSwapScript, tempPaths } from '../../src/apply/remote-scripts.js';
import { buildRestoreScript } from '../../src/apply/restore-scripts.js';
import type { NodeState } from '../../src/core/types.js';
import { parseProcessCount, processCountCommand, type ProcessCount } from '../harness/process-count.js';
import { buildStandIn } from '../harness/standin.js';

const reason =
  process.getuid?.() !== 0 ? 'needs root' : spawnSync('sh', ['-c', 'command -v strace && command -v gcc']).status !== 0 ? 'needs strace and gcc' : !existsSync('/usr/sbin/runc') ? 'needs /usr/sbin/runc' : null;
if (reason) console.warn(`skipping the script cost test: ${reason}`);

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe.skipIf(reason)('processes the change scripts start', () => {
  const root = mkdtempSync(join(tmpdir(), 'rr-cost-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const stateDir = join(root, 'state');
  const binDir = join(root, 'bin');
  const runc = join(binDir, 'runc');
  const runId = 'cost-run';
  const tp = tempPaths(runc, runId);

  const cost = (script: string, stdin: string | Buffer = ''): ProcessCount & { exitCode: number | null; out: string } => {
    const scriptFile = join(root, 'script.sh');
    const stdinFile = join(root, 'stdin');
    const outFile = join(root, 'out');
    writeFileSync(scriptFile, script);
    writeFileSync(stdinFile, stdin);
    const r = spawnSync('sh', ['-c', processCountCommand({ scriptFile, stdinFile, outFile, summaryFile: join(root, 'summary') })], { encoding: 'utf8' });
    const out = readFileSync(outFile, 'utf8');
    const c = parseProcessCount(r.stdout);
    if (c.exitCode !== 0) throw new Error(`script failed (${c.exitCode}): ${out}`);
    return { ...c, out };
  };
  const seen: Record<string, ProcessCount> = {};
  afterAll(() => console.log(`processes per script: ${JSON.stringify(seen)}`));

  it('stage, backup, swap, restore', () => {
    mkdirSync(binDir, { recursive: true });
    const orig = buildStandIn(join(root, 'orig'), { version: '1.0.0-rc93' });
    copyFileSync(orig, runc);
    chmodSync(runc, 0o755);
    const release = buildStandIn(join(root, 'release'), { version: '1.2.9' });
    const origSha = sha(runc);
    const relSha = sha(release);
    const bytes = readFileSync(release);

    const stagePlain = cost(buildStageScript({ realPath: runc, staged: tp.staged, sha256: relSha, gzip: false }), bytes);
    rmSync(tp.staged);
    const stage = cost(buildStageScript({ realPath: runc, staged: tp.staged, sha256: relSha, gzip: true }), gzipSync(bytes));
    expect(sha(tp.staged)).toBe(relSha);

    const backupPath = join(stateDir, 'backups', 'runc-1.0.0-rc93-x');
    const rec: NodeState = {
      schema: 1,
      runId,
      updatedAt: new Date(0).toISOString(),
      runcPath: runc,
      phase: 'backed-up',
      original: { version: '1.0.0-rc93', sha256: origSha, backupPath },
      target: { version: '1.2.9', sha256: relSha },
      sysctl: { liveBefore: 5, files: [] },
    };
    const backup = cost(buildBackupScript({ realPath: runc, currentSha256: origSha, reuse: null, create: backupPath, protect: [backupPath], runId, stateDir }), serializeState(rec));
    const reuse = cost(buildBackupScript({ realPath: runc, currentSha256: origSha, reuse: backupPath, create: null, protect: [backupPath], runId, stateDir }), serializeState(rec));
    const swap = cost(buildSwapScript({ staged: tp.staged, realPath: runc, sha256: relSha, currentSha256: origSha, stateDir }), serializeState({ ...rec, phase: 'swapped' }));
    expect(sha(runc)).toBe(relSha);

    const proc = join(root, 'proc-key');
    writeFileSync(proc, '16384\n');
    const conf = join(root, 'sysctl.conf');
    writeFileSync(conf, 'changed\n');
    writeFileSync(join(root, 'sysctl.conf.bak'), 'original\n');
    const restore = cost(
      buildRestoreScript({
        realPath: runc,
        originalSha256: origSha,
        targetSha256: relSha,
        backupPath,
        backupMetadata: true,
        restoreTemp: tp.restore,
        remove: [tp.staged],
        cleanPrefix: tp.prefix,
        files: [{ path: conf, backupPath: join(root, 'sysctl.conf.bak'), written: sha(conf) }],
        liveBefore: 5,
        liveSet: 16384,
        procKey: proc,
      }),
    );
    expect(sha(runc)).toBe(origSha);
    expect(readFileSync(conf, 'utf8')).toBe('original\n');

    Object.assign(seen, { stagePlain, stage, backup, reuse, swap, restore });
    for (const [k, v] of Object.entries(seen)) seen[k] = { forks: v.forks, execs: v.execs };
    // Before issue #16 (forks): stage 17 (plain 15), backup 21 (reuse 17), swap 17, restore 25, with fewer checks:
    // no swap re-check of the target, no metadata, no fsync of directories.
    expect(seen).toEqual({
      stagePlain: { forks: 6, execs: 7 },
      stage: { forks: 6, execs: 7 },
      backup: { forks: 10, execs: 11 },
      reuse: { forks: 6, execs: 7 },
      swap: { forks: 9, execs: 10 },
      restore: { forks: 12, execs: 13 },
    });
  });
});
