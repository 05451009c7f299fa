// Stuck `runc init` processes: what counts, which may be ended, the container
// they belong to, and reading the scan and unstick scripts' output. The
// scripts themselves run on a real /proc in stuck-scan-proc.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { containerIdFrom, describeStuck, endable, unstickRefusal, type StuckRuncInit } from '../../src/core/stuck.js';
import { describeUnstuck, parseUnstick } from '../../src/apply/stuck-runc-init.js';
import { SCAN_BEGIN, SCAN_END, parseStuckScan, stuckShellFunctions } from '../../src/facts/stuck-scan.js';

const OLD = 'a'.repeat(64);
const CUR = 'c'.repeat(64);

function proc(over: Partial<StuckRuncInit>): StuckRuncInit {
  return { pid: 1, startTicks: 100, ageSeconds: 600, state: 'S', wchan: 'pipe_write', exe: '/usr/local/sbin/runc (deleted)', current: false, ppid: 0, parent: null, containerId: null, ...over };
}

describe('the container of a stuck init', () => {
  it('is the last argument of the parent runc create/run, or the shim -id', () => {
    expect(containerIdFrom(['runc', '--root', '/run/containerd/runc/k8s.io', '--log', '/x/log.json', 'create', '--bundle', '/b', '--pid-file', '/b/init.pid', 'abc123'])).toBe('abc123');
    expect(containerIdFrom(['/usr/local/sbin/runc', 'run', '-d', 'web-1'])).toBe('web-1');
    expect(containerIdFrom(['/usr/bin/containerd-shim-runc-v2', '-namespace', 'k8s.io', '-id', 'f00d', '-address', '/run/containerd/containerd.sock'])).toBe('f00d');
    expect(containerIdFrom(['containerd-shim-runc-v2', '--id=beef'])).toBe('beef');
  });

  it('is unknown for any other parent, or a create without an id', () => {
    expect(containerIdFrom(['/sbin/init'])).toBeNull();
    expect(containerIdFrom(['runc', 'create', '--bundle'])).toBeNull();
    expect(containerIdFrom(['runc', 'create'])).toBeNull();
    expect(containerIdFrom(['containerd-shim-runc-v2', '-namespace', 'k8s.io'])).toBeNull();
    expect(containerIdFrom(['bash', '-c', 'runc create x'])).toBeNull();
  });
});

describe('which stuck processes unstick may end, and on which nodes', () => {
  it('never one that runs the current runc', () => {
    expect(endable([proc({ pid: 1 }), proc({ pid: 2, current: true }), proc({ pid: 3 })]).map((p) => p.pid)).toEqual([1, 3]);
  });

  it('refuses nodes whose runc is not past the rc93 hang, or unknown', () => {
    expect(unstickRefusal('1.0.0-rc93')).toMatch(/still runs runc 1\.0\.0-rc93, which has not been upgraded past the rc93 hang/);
    expect(unstickRefusal('1.0.0-rc92')).toMatch(/not been upgraded past/);
    expect(unstickRefusal(null)).toMatch(/version is unknown/);
    expect(unstickRefusal('garbage')).toMatch(/cannot be read/);
    for (const v of ['1.0.0-rc94', '1.1.12', '1.2.9', '1.1.5+ds1']) expect(unstickRefusal(v), v).toBeNull();
  });

  it('describes them with pid, age, wchan, exe, parent and container', () => {
    const text = describeStuck([proc({ pid: 4242, ageSeconds: 3725, wchan: 'anon_pipe_write', ppid: 4200, parent: 'runc create --bundle /b ctr-1', containerId: 'ctr-1' }), proc({ pid: 7, current: true, exe: '/usr/local/sbin/runc' })], 300);
    expect(text).toMatch(/^2 `runc init` processes older than 5m blocked writing into a pipe \(the rc93 hang\), 1 from another runc than the current one: /);
    expect(text).toContain('pid 4242 (age 62m5s, anon_pipe_write, exe /usr/local/sbin/runc (deleted), parent 4200 runc create --bundle /b ctr-1, container ctr-1)');
    expect(text).toContain('exe /usr/local/sbin/runc = the current runc');
    expect(describeStuck([], 60)).toBe('no `runc init` process older than 1m blocked writing into a pipe');
  });
});

describe('reading the scan', () => {
  const out = [
    'noise before',
    SCAN_BEGIN,
    'stuck 4242 9000 700 4200 S pipe_write 4242',
    'stuck 4243 9001 690 4200 S anon_pipe_write 4242',
    'stuck 5000 9100 650 1 S syscall 5000',
    'stuck 6000 9200 640 6001 S stack current',
    'stuck 7000 9300 630 1 S pipe_write 7000',
    'stuck 8000 9400 620 1 S pipe_write 8000',
    '@@exe',
    'lrwxrwxrwx 1 root root 0 Dec  6 03:09 /proc/4242/exe -> /usr/local/sbin/runc (deleted)',
    'lrwxrwxrwx 1 root root 0 Dec  6 03:09 /proc/4243/exe -> /usr/local/sbin/runc (deleted)',
    'lrwxrwxrwx    1 root     root             0 Dec  6 02:41 /proc/5000/exe -> /memfd:runc_cloned:/proc/self/exe (deleted)',
    'lrwxrwxrwx 1 root root 0 Dec  6 03:09 /proc/6000/exe -> /usr/local/sbin/runc',
    '@@sha',
    `${OLD}  /proc/4242/exe`,
    `${CUR}  /proc/5000/exe`,
    '@@cmdline',
    '==> /dev/null <==',
    '',
    '==> /proc/4242/cmdline <==',
    'runc\x01init\x01',
    '==> /proc/4200/cmdline <==',
    '/usr/bin/containerd-shim-runc-v2\x01-namespace\x01k8s.io\x01-id\x01pod-a\x01-address\x01/run/c.sock\x01',
    '==> /proc/4243/cmdline <==',
    '/usr/local/sbin/runc\x01init\x01',
    '==> /proc/5000/cmdline <==',
    'runc\x01init\x01',
    '==> /proc/6000/cmdline <==',
    'runc\x01init\x01',
    '==> /proc/6001/cmdline <==',
    'runc\x01create\x01--bundle\x01/b\x01ctr-6\x01',
    '==> /proc/7000/cmdline <==',
    'runci\x01nit\x01',
    '',
    SCAN_END,
    '',
  ].join('\n');

  it('gives each stuck runc init with its exe, parent and container; current by inode or by content', () => {
    const list = parseStuckScan(out, CUR)!;
    expect(list.map((p) => [p.pid, p.current, p.containerId])).toEqual([
      [4242, false, 'pod-a'],
      [4243, false, 'pod-a'],
      [5000, true, null],
      [6000, true, 'ctr-6'],
    ]);
    expect(list[0]).toEqual({ pid: 4242, startTicks: 9000, ageSeconds: 700, state: 'S', wchan: 'pipe_write', exe: '/usr/local/sbin/runc (deleted)', current: false, ppid: 4200, parent: '/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id pod-a -address /run/c.sock', containerId: 'pod-a' });
    expect(list[2]!.exe).toBe('/memfd:runc_cloned:/proc/self/exe (deleted)');
    // 7000 read as `runcinit` with its NULs dropped but is `runci nit`; 8000 went away before its command line was read
    expect(list.map((p) => p.pid)).not.toContain(7000);
    expect(list.map((p) => p.pid)).not.toContain(8000);
  });

  it('the same clone is not current when the current runc has another digest', () => {
    expect(parseStuckScan(out, OLD)!.find((p) => p.pid === 5000)?.current).toBe(false);
    expect(parseStuckScan(out, OLD)!.find((p) => p.pid === 4242)?.current).toBe(true);
  });

  it('an empty scan is an empty list; a cut-off one is null', () => {
    expect(parseStuckScan(`${SCAN_BEGIN}\n${SCAN_END}\n`, CUR)).toEqual([]);
    expect(parseStuckScan(`${SCAN_BEGIN}\nstuck 1 2 3 4 S pipe_write 1\n`, CUR)).toBeNull();
    expect(parseStuckScan('', CUR)).toBeNull();
  });
});

describe('reading what unstick did', () => {
  it('takes each target outcome from the node, and never assumes one ended', () => {
    const targets = [proc({ pid: 1, containerId: 'a' }), proc({ pid: 2 }), proc({ pid: 3 }), proc({ pid: 4 }), proc({ pid: 5 })];
    const out = '@@rr gone 2\n@@rr changed 3 no-longer-blocked\n@@rr ended 1\n@@rr still-running 4\n';
    const r = parseUnstick(out, targets);
    expect(r.map((p) => [p.pid, p.outcome, p.detail ?? null])).toEqual([
      [1, 'ended', null],
      [2, 'gone', null],
      [3, 'changed', 'no longer blocked'],
      [4, 'still-running', null],
      [5, 'still-running', 'no answer from the node'],
    ]);
    expect(r[0]).toEqual({ pid: 1, ageSeconds: 600, containerId: 'a', exe: '/usr/local/sbin/runc (deleted)', outcome: 'ended' });
    expect(describeUnstuck(r)).toBe('1 ended (pid 1 container a); 1 already gone (pid 2); 1 left alone (changed since the scan) (pid 3: no longer blocked); 2 STILL RUNNING after SIGKILL (pid 4, pid 5: no answer from the node)');
    expect(describeUnstuck([])).toBe('no stuck `runc init` of another runc to end');
  });
});

describe('the pipe-write check where the kernel hides the wchan', () => {
  // A fake /proc entry: what a kernel without a readable wchan shows (`0`), with the stack or the syscall telling instead.
  const dir = mkdtempSync(join(tmpdir(), 'rr-fakeproc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fake = (pid: number, o: { stack?: string; syscall?: string; fifoFd?: number; state?: string; argv?: string }) => {
    const p = join(dir, String(pid));
    mkdirSync(join(p, 'fd'), { recursive: true });
    writeFileSync(join(p, 'cmdline'), o.argv ?? 'runc\0init\0');
    writeFileSync(join(p, 'stat'), `${pid} (runc:[2:INIT]) ${o.state ?? 'S'} 4200 ${'0 '.repeat(17)}9000 0 0\n`);
    writeFileSync(join(p, 'wchan'), '0');
    if (o.stack !== undefined) writeFileSync(join(p, 'stack'), o.stack);
    if (o.syscall !== undefined) writeFileSync(join(p, 'syscall'), o.syscall);
    if (o.fifoFd !== undefined) execFileSync('mkfifo', [join(p, 'fd', String(o.fifoFd))]);
  };
  fake(1, { stack: '[<0>] do_select+0x1\n[<0>] pipe_write+0x3e4/0x750\n[<0>] vfs_write+0x400/0x4c0\n' });
  fake(2, { stack: '', syscall: '1 0x3 0x55 0x2000 0x0 0x0 0x0 0x7ffd 0x7f3d\n', fifoFd: 3 });
  fake(3, { stack: '', syscall: '1 0x4 0x55 0x2000 0x0 0x0 0x0 0x7ffd 0x7f3d\n' });
  fake(4, { stack: '', syscall: '0 0x3 0x55 0x2000 0x0 0x0 0x0 0x7ffd 0x7f3d\n', fifoFd: 3 });
  fake(5, { stack: '', syscall: 'running\n', state: 'R' });
  fake(6, { argv: 'runc\0initialize\0', stack: '[<0>] pipe_write+0x3e4/0x750\n' });
  const how = (pid: number) =>
    execFileSync('dash', ['-c', `set -eu\nrr_proc=${dir}\nrr_ss_wr=1\n${stuckShellFunctions()}if rr_ss_proc ${pid} && rr_ss_blocked ${pid}; then echo "$rr_how $rr_state $rr_ppid $rr_start"; else echo no; fi`], { encoding: 'utf8' }).trim();

  it('sees the blocked write in the kernel stack, or as write(2) on a fd that is a pipe', () => {
    expect(how(1)).toBe('stack S 4200 9000');
    expect(how(2)).toBe('syscall S 4200 9000');
  });

  it('not a pipe, not write(2), running, or not `runc init`: not blocked', () => {
    expect([3, 4, 5, 6].map(how)).toEqual(['no', 'no', 'no', 'no']);
  });
});
