// The shell driver (src/ssh/shell-driver.ts) on the real test fleet: from a
// session's second command on, one exec channel serves every command, with
// the same results exec gives (exit codes, both outputs, stdin, sudo), frames
// that no script output or stdin can break, and the same answers when a
// command times out, is aborted, or its connection is killed; on a node whose
// head, dd and tail are BusyBox's; and when the shell itself is killed while
// the connection lives (the command's outcome is looked at, then the session
// goes on).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeSpec } from '../../src/core/types.js';
import { RemoteCommandError, RemoteCommandInterruptedError, SshError } from '../../src/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { rejection } from '../harness/rejection.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the shell driver e2e test: ${unsupported}`);

describe.skipIf(unsupported)('the shell driver on the test fleet', () => {
  let fleet: Fleet;
  let tmp: string;
  let nodes: Map<string, NodeSpec>;
  const sessions: NodeSession[] = [];
  const transport = createSshTransport({ connectTimeoutMs: 10_000 });
  const open = async (name: string) => {
    const s = await transport.connect(nodes.get(name)!);
    sessions.push(s);
    return s;
  };
  /** Exec channels sshd started for this node (LogLevel VERBOSE logs each). */
  const channels = (name: string) => (fleet.sshdLog(name).match(/Starting session: command/g) ?? []).length;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rr-driver-e2e-'));
    fleet = await startFleet({ nodes: [{ name: 'd-root' }, { name: 'd-sudo', user: { name: 'deploy', sudo: 'nopasswd' } }, { name: 'd-pw', user: { name: 'alice', sudo: 'password' } }, { name: 'd-drop' }, { name: 'd-bb', busybox: ['head', 'dd', 'tail'] }, { name: 'd-kill' }] });
    const inv = await loadInventory(fleet.inventoryPath, { home: tmp });
    nodes = new Map(inv.nodes.map((n) => [n.name, n]));
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await fleet?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('after the first command, one channel serves all the others, with the results exec gives', async () => {
    // d-bb: BusyBox's head -c reads past N from a pipe; the loop reads frames with its dd instead.
    for (const name of ['d-root', 'd-sudo', 'd-bb']) {
      const before = channels(name);
      const s = await open(name);
      expect((await s.run('id -un')).stdout).toBe('root\n');
      // Frame-like output, no trailing newline, both streams, an exit code.
      const tricky = await s.run(`printf '@@rrr 1 0 0 0\\n@@rrd ready\\nno newline'; printf 'err\\n' >&2; exit 7`, { allowFailure: true });
      expect(tricky).toEqual({ code: 7, signal: null, stdout: '@@rrr 1 0 0 0\n@@rrd ready\nno newline', stderr: 'err\n' });
      // Binary stdin with frame-like bytes in it, then a script that reads none of its stdin: the next frame is intact.
      const data = Buffer.concat([Buffer.from('@@rrq 9 1 1 0\n'), randomBytes(300_000)]);
      expect((await s.run('sha256sum', { stdin: data })).stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      expect((await s.run('true', { stdin: data })).code).toBe(0);
      expect((await s.run('cat', { stdin: 'after\n' })).stdout).toBe('after\n');
      const big = await s.run('head -c 1000000 /dev/zero | tr "\\0" x');
      expect(big.stdout.length).toBe(1_000_000);
      const failed = await rejection(s.run('echo oops >&2; exit 3'));
      expect(failed).toBeInstanceOf(RemoteCommandError);
      expect((failed as RemoteCommandError).code).toBe(3);
      expect((failed as RemoteCommandError).stderrTail).toBe('oops');
      // Parallel commands: one takes the shell, the others their own channels, all answered.
      const many = await Promise.all(Array.from({ length: 6 }, (_, i) => s.run(`echo ${i}`)));
      expect(many.map((m) => m.stdout)).toEqual(Array.from({ length: 6 }, (_, i) => `${i}\n`));
      const serial = [];
      for (let i = 0; i < 20; i++) serial.push((await s.run(`echo $((${i} * 2))`)).stdout);
      expect(serial).toEqual(Array.from({ length: 20 }, (_, i) => `${i * 2}\n`));
      // 28 serial commands: the first exec, the shell, and at most the 5 parallel ones that found it busy.
      const used = channels(name) - before;
      expect(used).toBeGreaterThanOrEqual(2);
      expect(used).toBeLessThanOrEqual(7);
    }
  });

  it('a timeout is stopped on the node, an abort closes the shell; the next command gets a fresh one', async () => {
    const s = await open('d-root');
    await s.run('true');
    const timedOut = await rejection(s.run('sleep 700', { timeoutMs: 300 }));
    expect((timedOut as RemoteCommandInterruptedError).reason).toBe('timeout');
    expect(timedOut.message).toBe('d-root: timed out after 0.3s; stopped on the node (timeout(1) killed it): sleep 700');
    expect((await s.run('echo same shell')).stdout).toBe('same shell\n');
    const ac = new AbortController();
    const running = rejection(s.run('sleep 701', { signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    const aborted = await running;
    expect((aborted as RemoteCommandInterruptedError).reason).toBe('aborted');
    expect(aborted.message).toMatch(/^d-root: aborted; the channel was closed/);
    expect((await s.run('echo fresh shell')).stdout).toBe('fresh shell\n');
    await fleet.exec('d-root', 'pkill -f "slee[p] 701" || :');
  });

  it('where the shell cannot start (sudo wants a password), commands fall back to exec and say why they fail', async () => {
    const s = await open('d-pw');
    for (let i = 0; i < 2; i++) {
      const err = await rejection(s.run('true'));
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toMatch(/sudo: a password is required/);
    }
  });

  /** SIGKILLs the node's shell loop only (not the script it runs): its command line holds the loop's text. */
  const killLoop = (name: string, sig = 'KILL') => fleet.exec(name, `pkill -${sig} -f 'rr_exac[t]'`);
  const waitFor = async (name: string, pattern: string) => {
    for (let i = 0; i < 100 && (await fleet.exec(name, `pgrep -f ${JSON.stringify(pattern)}`)).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
  };
  const shellDirs = async (name: string) => (await fleet.exec(name, 'ls -d /tmp/runc-rollout-sh.* 2>/dev/null || :')).stdout.trim().split('\n').filter(Boolean);

  it('a shell killed under a command, on a live connection: the outcome is looked at, never guessed; the session goes on', async () => {
    const s = await open('d-kill');
    await s.run('true');
    expect((await s.run('echo via the shell')).stdout).toBe('via the shell\n');
    const before = channels('d-kill');

    // Killed while the command runs: the command ends on the node; its exit status died with the shell.
    const running = rejection(s.run('sleep 1.5; echo out; echo err >&2; exit 3', { timeoutMs: 30_000 }));
    await waitFor('d-kill', 'slee[p] 1.5');
    await killLoop('d-kill');
    const err = await running;
    expect(err).toBeInstanceOf(RemoteCommandInterruptedError);
    expect((err as RemoteCommandInterruptedError).reason).toBe('shell-lost');
    expect(err.message).toMatch(/the command has ended on the node, but its exit status was lost/);
    expect(err.message).toMatch(/err/);
    // The look waited for it to end and removed the dead shell's folder; the next command gets a new shell.
    expect((await fleet.exec('d-kill', 'pgrep -f "slee[p] 1.5" || echo none')).stdout.trim()).toBe('none');
    expect((await s.run('echo next')).stdout).toBe('next\n');
    expect(await shellDirs('d-kill')).toHaveLength(1);

    // Killed before it read the request (stopped, then killed): the command never started, so it runs over exec.
    await killLoop('d-kill', 'STOP');
    const rerun = s.run('echo ran once >>/tmp/ran-once; cat /tmp/ran-once; exit 4', { allowFailure: true });
    await new Promise((r) => setTimeout(r, 200));
    await killLoop('d-kill');
    expect(await rerun).toEqual({ code: 4, signal: null, stdout: 'ran once\n', stderr: '' });
    expect(await shellDirs('d-kill')).toHaveLength(0);

    // Two shells lost under a command: this session uses exec from now on, and still answers.
    const used = channels('d-kill');
    for (let i = 0; i < 3; i++) expect((await s.run(`echo ${i}`)).stdout).toBe(`${i}\n`);
    expect(channels('d-kill') - used).toBe(3);
    expect(used - before).toBeGreaterThanOrEqual(3);
    expect(await shellDirs('d-kill')).toHaveLength(0);
  });

  it('a killed connection rejects the running command as connection lost', async () => {
    const s = await open('d-drop');
    await s.run('true');
    const sleeping = rejection(s.run('sleep 702'));
    for (let i = 0; i < 100 && (await fleet.exec('d-drop', 'pgrep -f "slee[p] 702"')).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    await fleet.killSshd('d-drop');
    const err = await sleeping;
    expect(err).toBeInstanceOf(RemoteCommandInterruptedError);
    expect((err as RemoteCommandInterruptedError).reason).toBe('connection-lost');
    expect(err.message).toMatch(/its outcome on the node is unknown/);
    await fleet.exec('d-drop', 'pkill -f "slee[p] 702" || :');
    await fleet.restartSshd('d-drop');
  });
});
