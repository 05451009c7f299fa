// The look after a node's shell loop died under a command (shell-look.ts),
// run here against folders laid out as the loop leaves them: what it reads
// from `run` and `done`, that it waits for a script still running, and that it
// removes the folder once it has answered.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildShellLookScript, parseShellLook } from '../../src/ssh/shell-look.js';

const root = mkdtempSync(join(tmpdir(), 'rr-look-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function loopDir(files: Record<string, string>): string {
  const d = join(root, `runc-rollout-sh.t${++n}`);
  mkdirSync(d);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

/** Waits until a process runs `cmdline` (the look must find it running, not before it starts). */
const started = async (cmdline: string) => {
  for (let i = 0; spawnSync('pgrep', ['-f', cmdline]).status !== 0; i++) {
    if (i > 1000) throw new Error(`${cmdline} did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const look = (dir: string, id: number, waitSec = 5) => parseShellLook(spawnSync('sh', ['-c', buildShellLookScript(dir, id, waitSec)]).stdout);

describe('looking at a dead shell loop', () => {
  it('a request the loop never started (run names an earlier one)', () => {
    const d = loopDir({ run: '6\n', done: '6 0\n', o: 'old', e: '' });
    expect(look(d, 7)).toEqual({ kind: 'not-started' });
    expect(existsSync(d)).toBe(false);
  });

  it('a request that ended with its status recorded: its own result', () => {
    const d = loopDir({ run: '7\n', done: '7 3\n', o: 'out ünïcode\n', e: 'err\n' });
    expect(look(d, 7)).toEqual({ kind: 'done', code: 3, stdout: 'out ünïcode\n', stderr: 'err\n' });
    expect(existsSync(d)).toBe(false);
  });

  it('a request that ended without a recorded status: ended, what it printed, no exit code', () => {
    const d = loopDir({ run: '7\n', done: '6 0\n', o: '@@rr swapped\n', e: '' });
    expect(look(d, 7)).toEqual({ kind: 'ended', stdout: '@@rr swapped\n', stderr: '' });
  });

  it('a script still running is waited for; past the wait it is unknown', async () => {
    const d = loopDir({ run: '7\n', o: '', e: '' });
    writeFileSync(join(d, 's'), 'sleep "$1"; echo slept\n');
    // as the loop runs it: `sh DIR/s`, output to the loop's files
    const short = spawn('sh', ['-c', `sh "$1/s" 1 >"$1/o"; echo "7 0" >"$1/done"`, 'sh', d], { stdio: 'ignore' });
    await started(`${d}/s 1`);
    expect(look(d, 7)).toEqual({ kind: 'done', code: 0, stdout: 'slept\n', stderr: '' });
    await new Promise((r) => short.on('exit', r));

    const d2 = loopDir({ run: '8\n', o: '', e: '' });
    writeFileSync(join(d2, 's'), 'sleep "$1"\n');
    const long = spawn('sh', [join(d2, 's'), '30'], { stdio: 'ignore' });
    await started(`${d2}/s 30`);
    try {
      expect(look(d2, 8, 1)).toEqual({ kind: 'unknown', why: 'it is still running on the node' });
      expect(existsSync(d2)).toBe(true);
    } finally {
      long.kill('SIGKILL');
    }
  });

  it('a folder that is gone, or output that is not a look: unknown', () => {
    expect(look(join(root, 'runc-rollout-sh.none'), 1).kind).toBe('unknown');
    expect(parseShellLook(Buffer.from('garbage\n'))).toEqual({ kind: 'unknown', why: 'the look at the node gave no answer' });
  });
});
