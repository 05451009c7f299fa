// The shell driver's node-side loop (DRIVER_SCRIPT), run here under the
// machine's sh with the tools a node may have: GNU head, BusyBox's head and dd
// (head -c reads past N from a pipe), a dd without iflag=count_bytes. Every
// userland gets the same answers; a frame cut short runs nothing; and the
// processes the loop starts per request are counted (strace -f -c).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DRIVER_SCRIPT, framedScript } from '../../src/ssh/shell-loop.js';
import { parseProcessCount, processCountCommand } from '../harness/process-count.js';

const BUSYBOX = '/usr/bin/busybox';
const dir = mkdtempSync(join(tmpdir(), 'rr-loop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const loopFile = join(dir, 'loop.sh');
writeFileSync(loopFile, DRIVER_SCRIPT);

type Req = { script: string; stdin?: string | Buffer; timeout?: number };

function frames(reqs: Req[]): Buffer {
  return Buffer.concat(
    reqs.flatMap((r, i) => {
      const body = framedScript(r.script);
      const stdin = Buffer.from(r.stdin ?? '');
      return [Buffer.from(`@@rrq ${i + 1} ${body.length} ${stdin.length} ${r.timeout ?? 30}\n`), body, stdin];
    }),
  );
}

/** A PATH folder whose `names` run BusyBox's applets, plus `extra` shell scripts, in front of the machine's PATH. */
function toolDir(name: string, names: string[], extra: Record<string, string> = {}): string {
  const d = join(dir, name);
  mkdirSync(d);
  for (const n of names) symlinkSync(BUSYBOX, join(d, n));
  for (const [n, text] of Object.entries(extra)) {
    writeFileSync(join(d, n), text);
    chmodSync(join(d, n), 0o755);
  }
  return `${d}:${process.env.PATH}`;
}

function runLoop(input: Buffer, path = process.env.PATH): { ready: string; answers: { id: number; code: number; out: string; err: string }[]; code: number | null; stderr: string } {
  const r = spawnSync('sh', [loopFile], { input, env: { ...process.env, PATH: path }, maxBuffer: 64 << 20 });
  let buf = r.stdout;
  const line = () => {
    const nl = buf.indexOf(10);
    const l = buf.subarray(0, nl).toString();
    buf = buf.subarray(nl + 1);
    return l;
  };
  const ready = buf.length ? line() : '';
  const answers = [];
  while (buf.length) {
    const m = /^@@rrr (\d+) (\d+) (\d+) (\d+)$/.exec(line());
    if (!m) throw new Error(`bad answer line in ${buf.toString().slice(0, 200)}`);
    const [o, e] = [Number(m[3]), Number(m[4])];
    answers.push({ id: Number(m[1]), code: Number(m[2]), out: buf.subarray(0, o).toString(), err: buf.subarray(o, o + e).toString() });
    buf = buf.subarray(o + e);
  }
  return { ready, answers, code: r.status, stderr: r.stderr.toString() };
}

const BIG = Buffer.alloc(200_000, 'x');
const REQS: Req[] = [
  { script: "printf '@@rrr 9 0 0 0\\nno newline'; echo err >&2; exit 7" },
  { script: 'cat', stdin: 'some stdin\n' },
  // reads 3 bytes of its stdin and leaves the rest: the next frame must not see it
  { script: 'head -c 3; echo', stdin: `abc@@rrq 99 1 1 0\n${'y'.repeat(5000)}` },
  { script: 'wc -c', stdin: BIG },
  { script: 'true', stdin: BIG },
  { script: 'echo last' },
];
const EXPECTED = [
  { id: 1, code: 7, out: '@@rrr 9 0 0 0\nno newline', err: 'err\n' },
  { id: 2, code: 0, out: 'some stdin\n', err: '' },
  { id: 3, code: 0, out: 'abc\n', err: '' },
  { id: 4, code: 0, out: '200000\n', err: '' },
  { id: 5, code: 0, out: '', err: '' },
  { id: 6, code: 0, out: 'last\n', err: '' },
];

describe.skipIf(!existsSync(BUSYBOX))('the shell driver loop on every userland', () => {
  it('GNU head -c: exact answers', () => {
    const r = runLoop(frames(REQS));
    expect(r.ready).toMatch(/^@@rrd ready head \/\S+runc-rollout-sh\.\w+$/);
    expect(r.answers).toEqual(EXPECTED);
    expect(r.code).toBe(0);
  });

  it("BusyBox's head and dd: head -c is refused (it reads ahead), dd counting bytes reads exactly", () => {
    const r = runLoop(frames(REQS), toolDir('bb', ['head', 'dd', 'tail']));
    expect(r.ready).toMatch(/^@@rrd ready dd /);
    expect(r.answers).toEqual(EXPECTED);
  });

  it('a dd without iflag=count_bytes: one byte per read, still exact', () => {
    const oldDd = '#!/bin/sh\nfor a; do case $a in iflag=*) echo "dd: unknown operand $a" >&2; exit 1 ;; esac; done\nexec /usr/bin/busybox dd "$@"\n';
    const r = runLoop(frames(REQS), toolDir('old', ['head'], { dd: oldDd }));
    expect(r.ready).toMatch(/^@@rrd ready dd1 /);
    expect(r.answers).toEqual(EXPECTED);
  });

  it('no exact reader at all: the loop refuses to start, saying why', () => {
    const r = runLoop(frames(REQS), toolDir('none', ['head'], { dd: '#!/bin/sh\nexit 1\n' }));
    expect(r.ready).toBe('');
    expect(r.code).toBe(98);
    expect(r.stderr).toMatch(/no exact byte reader/);
  });

  it('a frame cut short (the channel closed half-way) runs nothing of the script', () => {
    const marker = join(dir, 'ran-first-half');
    const body = framedScript(`touch '${marker}'\n${'# padding\n'.repeat(50)}echo second half`);
    const cut = Buffer.concat([Buffer.from(`@@rrq 1 ${body.length} 0 30\n`), body.subarray(0, body.length / 2)]);
    runLoop(cut);
    expect(existsSync(marker)).toBe(false);
  });
});

const strace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;

describe.skipIf(!strace || !existsSync(BUSYBOX))('processes the loop starts per request', () => {
  /** Forks per request: the loop with 11 requests minus the loop with 1, over 10. */
  const perRequest = (req: Req, path?: string) => {
    const count = (n: number) => {
      const stdinFile = join(dir, `frames-${n}`);
      writeFileSync(stdinFile, frames(Array.from({ length: n }, () => req)));
      const cmd = processCountCommand({ scriptFile: loopFile, stdinFile, summaryFile: join(dir, 'summary') });
      const r = spawnSync('sh', ['-c', cmd], { env: { ...process.env, ...(path ? { PATH: path } : {}) }, encoding: 'utf8' });
      return parseProcessCount(r.stdout);
    };
    const one = count(1);
    const many = count(11);
    return { forks: (many.forks - one.forks) / 10, execs: (many.execs - one.execs) / 10 };
  };

  it('five without stdin, six with (reader, timeout, sh, wc, cat; stdin reader)', () => {
    expect(perRequest({ script: ':' })).toEqual({ forks: 5, execs: 5 });
    expect(perRequest({ script: ':', stdin: 'x' })).toEqual({ forks: 6, execs: 6 });
    // no timeout: no timeout(1)
    expect(perRequest({ script: ':', timeout: 0 })).toEqual({ forks: 4, execs: 4 });
  });

  it('the same with BusyBox dd as the reader', () => {
    expect(perRequest({ script: ':', stdin: 'x' }, toolDir('bb-count', ['head', 'dd', 'tail']))).toEqual({ forks: 6, execs: 6 });
  });
});
