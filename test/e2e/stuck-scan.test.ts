// The stuck `runc init` scan and the unstick script on a real /proc: a fleet
// node (its own pid namespace) with 1,200 other processes, a `runc init` of
// the old binary blocked for ever writing into a full pipe (started before the
// swap, so its exe is the replaced inode), a copy of the current binary and
// the current binary itself blocked the same way (both must count as current),
// and a `runc init` that sleeps, blocked on nothing. Run under dash, bash,
// BusyBox alone (chroot), and under strace to count the processes it starts.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStuckRuncInitScript, buildUnstickScript, parseUnstick } from '../../src/apply/stuck-runc-init.js';
import type { StuckRuncInit } from '../../src/core/stuck.js';
import { parseStuckScan } from '../../src/facts/stuck-scan.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { parseProcessCount, processCountCommand } from '../harness/process-count.js';
import { buildStandIn } from '../harness/standin.js';
import { aliveInNode, startInNode } from '../harness/stuck-processes.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the stuck runc init scan test: ${unsupported}`);
const RUNC = '/usr/local/sbin/runc';
const OTHERS = 1200;
const busybox = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
})();

describe.skipIf(unsupported)('the stuck runc init scan on a node with many processes', () => {
  const bins = mkdtempSync(join(tmpdir(), 'rr-stuck-scan-'));
  const oldBin = join(bins, 'old');
  const newBin = join(bins, 'new');
  const f = useFleet(() => {
    buildStandIn(oldBin, { version: '1.0.0-rc93' });
    buildStandIn(newBin, { version: '1.2.9' });
    return { nodes: [{ name: 'busy', runc: { binary: oldBin } }] };
  });
  const pids = { old: 0, copy: 0, current: 0, sleeping: 0 };
  afterAll(() => rmSync(bins, { recursive: true, force: true }));
  let newSha = '';
  let d = '';

  const exec = async (cmd: string) => {
    const r = await f.fleet.exec('busy', cmd, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${cmd.slice(0, 200)}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const start = (cmd: string, want: string) => startInNode(f.fleet, 'busy', cmd, want, Object.values(pids));
  const scan = async (shell: string) => parseStuckScan(await exec(`${shell} ${d}/scan.sh`), newSha);

  beforeAll(async () => {
    const fleet = f.fleet;
    d = join(fleet.dir, 'stuck-scan');
    mkdirSync(join(d, 'copy'), { recursive: true });
    copyFileSync(newBin, join(d, 'new'));
    copyFileSync(newBin, join(d, 'copy', 'runc'));
    newSha = (await exec(`sha256sum < ${d}/new`)).split(' ')[0]!;
    // The old binary's init, with the `runc create ID` that waits for it, then the swap.
    pids.old = await start(`env STANDIN_CREATE=stuck-init ${RUNC} create --bundle /nonexistent ctr-old`, `${RUNC} init`);
    await exec(`cp ${d}/new ${RUNC}.tmp && mv -f ${RUNC}.tmp ${RUNC}`);
    pids.copy = await start(`bash -c 'exec -a runc ${d}/copy/runc init'`, 'runc init');
    pids.current = await start(`bash -c 'exec -a ${RUNC} ${RUNC} init'`, `${RUNC} init`);
    pids.sleeping = await start(`env STANDIN_INIT=pause bash -c 'exec -a runc ${d}/copy/runc init'`, 'runc init');
    await exec(`i=0; while [ $i -lt ${OTHERS} ]; do setsid sleep 3600 </dev/null >/dev/null 2>&1 & i=$((i+1)); done`);
    await exec(`cat > ${d}/scan.sh <<'EOF'\n${buildStuckRuncInitScript(RUNC, 0)}EOF`);
  });

  const expectFound = (list: StuckRuncInit[] | null) => {
    expect(list).not.toBeNull();
    const byPid = new Map(list!.map((p) => [p.pid, p]));
    expect([...byPid.keys()].sort()).toEqual([pids.old, pids.copy, pids.current].sort());
    expect(byPid.get(pids.old)).toMatchObject({ current: false, exe: `${RUNC} (deleted)`, containerId: 'ctr-old', parent: `${RUNC} create --bundle /nonexistent ctr-old`, wchan: expect.stringMatching(/^(anon_)?pipe_write$/) });
    expect(byPid.get(pids.copy)).toMatchObject({ current: true, exe: `${d}/copy/runc` });
    expect(byPid.get(pids.current)).toMatchObject({ current: true, exe: RUNC });
  };

  it('finds exactly the blocked ones under dash and bash, and tells the old binary from the current one', async () => {
    expect(Number(await exec('ls -d /proc/[0-9]* | wc -l'))).toBeGreaterThan(OTHERS);
    expectFound(await scan('dash'));
    expectFound(await scan('bash'));
  });

  it.skipIf(!busybox)('finds the same with BusyBox alone (no procps)', async () => {
    const root = join(d, 'bb');
    await exec(
      [
        `mkdir -p ${root}/bin ${root}/proc ${root}/usr/local/sbin ${root}/dev ${root}${d}/copy`,
        `cp ${busybox} ${root}/bin/busybox && chroot ${root} /bin/busybox --install -s`,
        `mount -t proc proc ${root}/proc && mount --bind /usr/local/sbin ${root}/usr/local/sbin && mount --bind ${d}/copy ${root}${d}/copy`,
        `cp ${d}/scan.sh ${root}/scan.sh`,
      ].join(' && '),
    );
    expect(await exec(`chroot ${root} /bin/sh -c 'ps -o etimes= 2>/dev/null || echo no-procps'`)).toBe('no-procps\n');
    expectFound(parseStuckScan(await exec(`chroot ${root} /bin/sh /scan.sh`), newSha));
  });

  it('starts a handful of processes whatever the number of processes on the node (strace)', async () => {
    const count = parseProcessCount(await exec(processCountCommand({ scriptFile: `${d}/scan.sh`, summaryFile: `${d}/strace.out`, shell: 'dash' })));
    expect(count.exitCode).toBe(0);
    // ls, sha256sum (the executables that are not the current inode), head | tr (and uname where the kernel hides wchan): not one per process
    expect(count.forks).toBeLessThanOrEqual(6);
    expect(count.execs).toBeLessThanOrEqual(6);
    // with nothing stuck (an age limit no process reaches), none at all: the shell alone
    await exec(`cat > ${d}/scan-none.sh <<'EOF'\n${buildStuckRuncInitScript(RUNC, 86_400 * 365)}EOF`);
    const none = parseProcessCount(await exec(processCountCommand({ scriptFile: `${d}/scan-none.sh`, summaryFile: `${d}/strace.out`, shell: 'dash' })));
    expect(none).toEqual({ forks: 0, execs: 1, exitCode: 0 });
  });

  it('unstick ends only the old binary’s stuck init; the current binary, its copy and the sleeping one survive', async () => {
    const list = (await scan('dash'))!;
    const old = list.filter((p) => p.pid === pids.old);
    // Hand it every process, as if the controller got it wrong: the script re-checks each.
    const sleeping: StuckRuncInit = { ...old[0]!, pid: pids.sleeping, startTicks: Number((await exec(`cut -d' ' -f22 /proc/${pids.sleeping}/stat`)).trim()) };
    const targets = [...list, sleeping];
    const r = parseUnstick(await exec(buildUnstickScript({ runcPath: RUNC, currentSha256: newSha, targets })), targets);
    const outcome = (pid: number) => r.filter((p) => p.pid === pid).map((p) => `${p.outcome}${p.detail ? `: ${p.detail}` : ''}`);
    expect(outcome(pids.old)).toEqual(['ended']);
    expect(outcome(pids.current)).toEqual(['changed: runs the current runc']);
    // the copy of the current binary: another inode, the same content
    expect(outcome(pids.copy)).toEqual(['changed: runs the current runc']);
    expect(outcome(pids.sleeping)).toEqual(['changed: no longer blocked']);
    // a pid whose process has another start time than the one scanned: not that process, not touched
    const reused = [{ ...old[0]!, pid: pids.copy, startTicks: 1 }];
    expect(parseUnstick(await exec(buildUnstickScript({ runcPath: RUNC, currentSha256: 'f'.repeat(64), targets: reused })), reused).map((p) => p.outcome)).toEqual(['gone']);
    const alive = (pid: number) => aliveInNode(f.fleet, 'busy', pid);
    expect(await alive(pids.old)).toBe(false);
    for (const p of [pids.current, pids.copy, pids.sleeping]) expect(await alive(p), String(p)).toBe(true);
    // the copy of the current binary is never even offered: it counts as current
    expect(list.find((p) => p.pid === pids.copy)?.current).toBe(true);
  });
});
