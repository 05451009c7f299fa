// The per-node pipeline (upgradeNode, rollbackNode) on the real test fleet:
// real sshd, the real ssh2 transport, real runc containers through stand-in
// release binaries. Plans and release assets are built by hand from the
// stand-ins and their digests; the sysctl part of the plan comes from the
// node's real facts.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollbackNode } from '../../src/apply/node-rollback.js';
import { upgradeNode } from '../../src/apply/node-upgrade.js';
import { buildLockScript } from '../../src/apply/node-lock.js';
import type { NodeEvent, NodeJob, NodeOutcome } from '../../src/apply/types.js';
import { planSysctl } from '../../src/core/sysctl.js';
import { SYSCTL_DROPIN, type NodeSpec } from '../../src/core/types.js';
import { gatherFacts } from '../../src/facts/gather.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { buildStandIn, type StandInMode } from '../harness/standin.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the node pipeline e2e test: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const STATE = '/var/lib/runc-rollout';
const ORIG_VERSION = '1.0.0-rc93';
const NEW_VERSION = '1.2.9';
const CONF_OVERRIDE = '# site settings\nfs.pipe-user-pages-soft = 2\nvm.swappiness = 10\n';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(unsupported)('upgradeNode and rollbackNode on the test fleet', () => {
  let fleet: Fleet;
  let tmp: string;
  let specs: Map<string, NodeSpec>;
  const bins = {} as Record<'orig' | 'wrong' | StandInMode, string>;
  const transport = createSshTransport({ connectTimeoutMs: 10_000 });
  const sessions: NodeSession[] = [];
  let runs = 0;

  const open = async (name: string) => {
    const s = await transport.connect(specs.get(name) as NodeSpec);
    sessions.push(s);
    return s;
  };

  /** A job as the executor would build it; `release` null means the node is planned as already at the target. */
  const jobFor = async (name: string, release: StandInMode | 'wrong' | null, extra: Partial<NodeJob> = {}): Promise<NodeJob> => {
    const node = specs.get(name) as NodeSpec;
    const s = await open(name);
    const facts = await gatherFacts(s, node);
    const bin = release ? bins[release] : null;
    const targetSha = bin ? sha(bin) : (facts.runc.sha256 as string);
    return {
      node,
      plan: {
        name,
        host: node.ssh.host,
        port: node.ssh.port,
        arch: 'amd64',
        runcPath: RUNC,
        action: bin ? 'upgrade' : 'none',
        current: { version: facts.runc.version, sha256: facts.runc.sha256 },
        target: { version: NEW_VERSION, sha256: targetSha },
        sysctl: planSysctl(facts.sysctl),
        warnings: [],
        error: null,
      },
      asset: bin ? { arch: 'amd64', name: 'runc.amd64', sha256: targetSha, size: statSync(bin).size, path: bin } : null,
      runId: `e2e-${process.pid}-${++runs}`,
      smokeTimeoutMs: 20_000,
      lockOwner: `tester@controller pid ${process.pid}`,
      forceUnlock: false,
      ...extra,
    };
  };

  const upgrade = async (name: string, release: StandInMode | 'wrong' | null, extra: Partial<NodeJob> = {}, signal?: AbortSignal) => {
    const job = await jobFor(name, release, extra);
    const events: NodeEvent[] = [];
    const outcome = await upgradeNode(await open(name), job, (e) => events.push(e), signal);
    show(outcome);
    return { outcome, events, job };
  };

  /** Runs `fn` while the node execs its runc in a loop; returns fn's result and the exec failures seen. */
  const probing = async <T>(name: string, fn: () => Promise<T>): Promise<{ value: T; failures: string[]; runs: number }> => {
    await fleet.exec(name, 'rm -f /tmp/stop-probe');
    const probe = fleet.exec(name, `n=0; while [ ! -e /tmp/stop-probe ]; do ${RUNC} --version >/dev/null 2>&1 || echo "EXEC FAILED at $n"; n=$((n+1)); done; echo "probe ran $n times"`, { timeoutMs: 300_000 });
    let value: T;
    try {
      value = await fn();
    } finally {
      await fleet.exec(name, 'touch /tmp/stop-probe');
    }
    const out = (await probe).stdout;
    return { value, failures: out.split('\n').filter((l) => l.startsWith('EXEC FAILED')), runs: Number(/probe ran (\d+) times/.exec(out)?.[1] ?? 0) };
  };

  const leftovers = async (name: string) => (await fleet.exec(name, `ls -a /usr/local/sbin | grep -F .runc-rollout || :; ls ${STATE}/smoke 2>/dev/null || :; ls ${STATE}/lock 2>/dev/null || :`)).stdout.trim();
  const stateJson = async (name: string) => JSON.parse(await fleet.readFile(name, `${STATE}/state.json`));
  const backups = async (name: string) => (await fleet.exec(name, `ls ${STATE}/backups 2>/dev/null || :`)).stdout.trim().split('\n').filter(Boolean);
  const why = (o: NodeOutcome) => JSON.stringify({ status: o.status, failedStep: o.failedStep, error: o.error, steps: o.steps }, null, 1);
  const show = (o: NodeOutcome) => { if (process.env.RR_SHOW) console.log(JSON.stringify(o, null, 1)); };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rr-node-e2e-'));
    bins.orig = buildStandIn(join(tmp, 'orig'), { version: ORIG_VERSION, mode: 'exec' });
    for (const mode of ['exec', 'hang', 'fail', 'fail-installed'] as const) bins[mode] = buildStandIn(join(tmp, mode), { version: NEW_VERSION, mode });
    bins.wrong = buildStandIn(join(tmp, 'wrong'), { version: '1.2.8', mode: 'exec' });
    const orig = { binary: bins.orig };
    const sysctl = { live: 2, files: { '/etc/sysctl.conf': CONF_OVERRIDE, '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 2\n' } };
    fleet = await startFleet({
      nodes: [
        { name: 'good', runc: orig, sysctl },
        { name: 'hang', runc: orig, sysctl },
        { name: 'fail', runc: orig, sysctl },
        { name: 'failinst', runc: orig, sysctl },
        { name: 'rosysctl', runc: orig, sysctl: { live: 2, readOnly: true } },
        { name: 'fullup', runc: orig, diskSize: '1m' },
        // Room for the original, the staged release and the smoke bundle, not for a backup too.
        { name: 'fullbk', runc: orig, diskSize: '1900k' },
        { name: 'locked', runc: orig },
        { name: 'drop', runc: orig, sysctl },
        { name: 'abort', runc: orig, sysctl },
        { name: 'rbfail', runc: orig, sysctl },
        { name: 'sudo', runc: orig, sysctl, user: { name: 'deploy', sudo: 'nopasswd' } },
        { name: 'moved', runc: orig, sysctl },
      ],
    });
    const inv = await loadInventory(fleet.inventoryPath, { home: tmp });
    specs = new Map(inv.nodes.map((n) => [n.name, n]));
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await fleet?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('upgrades a node, while a probe exec-ing runc in a loop never fails; a rerun is unchanged; rollback restores it all', async () => {
    const origSha = sha(bins.orig);
    expect(await fleet.sha256('good', RUNC)).toBe(origSha);
    const probed = await probing('good', () => upgrade('good', 'exec'));
    const { outcome, events } = probed.value;
    expect(outcome.status, why(outcome)).toBe('upgraded');
    expect(probed.failures).toEqual([]);
    expect(probed.runs).toBeGreaterThan(0);

    // Every step, in order, started and ended ok.
    const ends = events.filter((e) => e.status !== 'start').map((e) => `${e.step}:${e.status}`);
    expect(ends).toEqual(['lock', 'stage', 'staged-smoke', 'backup', 'swap', 'verify', 'smoke', 'sysctl', 'smoke-after-sysctl', 'runc-init-check', 'unlock'].map((s) => `${s}:ok`));

    expect(await fleet.sha256('good', RUNC)).toBe(sha(bins.exec));
    expect((await fleet.exec('good', `${RUNC} --version`)).stdout).toMatch(/^runc version 1\.2\.9$/m);
    expect(await fleet.liveSysctl('good')).toBe(16384);
    expect(await fleet.readFile('good', SYSCTL_DROPIN)).toMatch(/^fs\.pipe-user-pages-soft = 16384$/m);
    const conf = await fleet.readFile('good', '/etc/sysctl.conf');
    expect(conf).toMatch(/^# runc-rollout: .*fs\.pipe-user-pages-soft = 2$/m);
    expect(conf).toContain('vm.swappiness = 10');
    const bk = await backups('good');
    expect(bk).toHaveLength(1);
    expect(await fleet.sha256('good', `${STATE}/backups/${bk[0]}`)).toBe(origSha);
    expect(outcome.backupPath).toBe(`${STATE}/backups/${bk[0]}`);
    const st = await stateJson('good');
    expect(st).toMatchObject({ phase: 'done', runcPath: RUNC, original: { sha256: origSha, backupPath: outcome.backupPath }, sysctl: { liveBefore: 2 } });
    expect(outcome.from?.sha256).toBe(origSha);
    expect(outcome.to?.sha256).toBe(sha(bins.exec));
    expect(outcome.sysctl.after).toEqual({ live: 16384, persisted: 16384 });
    expect(await leftovers('good')).toBe('');

    // Rerun: nothing to upgrade, no second backup, the record of the original kept.
    const again = await upgrade('good', null);
    expect(again.outcome.status, why(again.outcome)).toBe('unchanged');
    expect(await backups('good')).toEqual(bk);
    expect(await stateJson('good')).toMatchObject({ phase: 'done', original: { sha256: origSha, backupPath: outcome.backupPath }, sysctl: { liveBefore: 2 } });
    // A rerun of the same upgrade job (a stale plan) finds the node at the target and does no harm either.
    const stale = await upgrade('good', 'exec');
    expect(stale.outcome.status, why(stale.outcome)).toBe('unchanged');
    expect(await backups('good')).toEqual(bk);

    const events2: NodeEvent[] = [];
    const session = await open('good');
    const rbProbed = await probing('good', () => rollbackNode(session, specs.get('good') as NodeSpec, (e) => events2.push(e), { runId: `e2e-rb-${process.pid}`, smokeTimeoutMs: 20_000, lockOwner: 'tester', forceUnlock: false }));
    const rb = rbProbed.value;
    expect(rb.status, why(rb)).toBe('rolled-back');
    expect(rbProbed.failures).toEqual([]);
    expect(events2.filter((e) => e.status !== 'start').map((e) => `${e.step}:${e.status}`)).toEqual(['lock:ok', 'rollback:ok', 'unlock:ok']);
    expect(rb.rollback).toMatchObject({ ok: true, smokeOk: true });
    expect(await fleet.sha256('good', RUNC)).toBe(origSha);
    expect(await fleet.liveSysctl('good')).toBe(2);
    expect(await fleet.readFile('good', '/etc/sysctl.conf')).toBe(CONF_OVERRIDE);
    expect(await fleet.fileExists('good', SYSCTL_DROPIN)).toBe(false);
    expect((await stateJson('good')).phase).toBe('rolled-back');
    expect(await leftovers('good')).toBe('');
    // Nothing left to roll back the second time.
    const rb2 = await rollbackNode(await open('good'), specs.get('good') as NodeSpec, () => {}, { runId: `e2e-rb2-${process.pid}`, smokeTimeoutMs: 20_000, lockOwner: 'tester', forceUnlock: false });
    expect(rb2.status).toBe('unchanged');
  });

  it('works the same through sudo: upgrade, a holder seen through sudo keeps the lock, rollback', async () => {
    const origSha = await fleet.sha256('sudo', RUNC);
    const holder = await open('sudo');
    await holder.run(buildLockScript({ runId: 'sudo-holder', lockOwner: 'deploy@elsewhere', forceUnlock: true, runcPath: RUNC }));
    const refused = await upgrade('sudo', 'exec', { forceUnlock: true });
    expect(refused.outcome.error, why(refused.outcome)).toMatch(/locked by another run that is still connected/);
    await holder.close();
    const { outcome } = await upgrade('sudo', 'exec', { forceUnlock: true });
    expect(outcome.status, why(outcome)).toBe('upgraded');
    expect(await fleet.sha256('sudo', RUNC)).toBe(sha(bins.exec));
    expect(await fleet.liveSysctl('sudo')).toBe(16384);
    const rb = await rollbackNode(await open('sudo'), specs.get('sudo') as NodeSpec, () => {}, { runId: `e2e-rb-sudo-${process.pid}`, smokeTimeoutMs: 20_000, lockOwner: 'tester', forceUnlock: false });
    expect(rb.status, why(rb)).toBe('rolled-back');
    expect(await fleet.sha256('sudo', RUNC)).toBe(origSha);
    expect(await fleet.liveSysctl('sudo')).toBe(2);
    expect(await leftovers('sudo')).toBe('');
  });

  it.each([
    ['hang', 'hang' as const, /did not finish within the 8s smoke deadline/],
    ['fail', 'fail' as const, /failed at `create`.*simulated failure/s],
  ])('a release that %ss is stopped at the staged smoke and leaves the node byte-for-byte unchanged', async (name, mode, detail) => {
    const before = await fleet.snapshot(name);
    const { outcome } = await upgrade(name, mode, { smokeTimeoutMs: 8_000 });
    expect(outcome.status, why(outcome)).toBe('failed');
    expect(outcome.failedStep).toBe('staged-smoke');
    expect(outcome.error).toMatch(detail);
    expect(outcome.error).toMatch(/Node unchanged/);
    expect(await fleet.snapshot(name)).toEqual(before);
    expect(await leftovers(name)).toBe('');
  });

  it('a release binary that reports another version is refused at the stage, before it ever runs a container', async () => {
    const before = await fleet.snapshot('fail');
    const { outcome } = await upgrade('fail', 'wrong');
    expect(outcome.status, why(outcome)).toBe('failed');
    expect(outcome.failedStep).toBe('stage');
    expect(outcome.error).toMatch(/reports "runc version 1\.2\.8", expected runc version 1\.2\.9.*Node unchanged/s);
    expect(outcome.steps.map((s) => s.name)).toEqual(['lock', 'stage', 'unlock']);
    expect(await fleet.snapshot('fail')).toEqual(before);
    expect(await leftovers('fail')).toBe('');
  });

  it('a release that fails once installed is rolled back to the original binary and sysctl', async () => {
    const before = await fleet.snapshot('failinst');
    const { outcome } = await upgrade('failinst', 'fail-installed');
    expect(outcome.status, why(outcome)).toBe('rolled-back');
    expect(outcome.failedStep).toBe('smoke');
    expect(outcome.error).toMatch(/simulated failure/);
    expect(outcome.rollback).toMatchObject({ ok: true, smokeOk: true, manualCommands: [] });
    const after = await fleet.snapshot('failinst');
    expect(after[RUNC]).toBe(before[RUNC]);
    expect(after['sysctl:live']).toBe(before['sysctl:live']);
    expect(after['/etc/sysctl.conf']).toBe(before['/etc/sysctl.conf']);
    expect(await fleet.fileExists('failinst', SYSCTL_DROPIN)).toBe(false);
    expect((await stateJson('failinst')).phase).toBe('rolled-back');
    expect(await leftovers('failinst')).toBe('');
  });

  it('a sysctl that cannot be written rolls the binary back', async () => {
    const origSha = await fleet.sha256('rosysctl', RUNC);
    const { outcome } = await upgrade('rosysctl', 'exec');
    expect(outcome.status, why(outcome)).toBe('rolled-back');
    expect(outcome.failedStep).toBe('sysctl');
    expect(outcome.error).toMatch(/cannot write fs\.pipe-user-pages-soft live/);
    expect(await fleet.sha256('rosysctl', RUNC)).toBe(origSha);
    expect(await fleet.liveSysctl('rosysctl')).toBe(2);
    expect(await fleet.fileExists('rosysctl', SYSCTL_DROPIN)).toBe(false);
    expect(await leftovers('rosysctl')).toBe('');
  });

  it('a full disk fails the upload cleanly: no half-written binary, runc untouched', async () => {
    const before = await fleet.snapshot('fullup');
    const { outcome } = await upgrade('fullup', 'exec');
    expect(outcome.status, why(outcome)).toBe('failed');
    expect(outcome.failedStep).toBe('stage');
    expect(outcome.error).toMatch(/disk full|No space/i);
    expect(outcome.error).toMatch(/Node unchanged/);
    expect(await fleet.snapshot('fullup')).toEqual(before);
    expect(await leftovers('fullup')).toBe('');
  });

  it('a full disk at the backup fails cleanly before the swap: no partial backup, staged file removed', async () => {
    const before = await fleet.snapshot('fullbk');
    const { outcome } = await upgrade('fullbk', 'exec');
    expect(outcome.status, why(outcome)).toBe('failed');
    expect(outcome.failedStep).toBe('backup');
    expect(outcome.error).toMatch(/disk full|No space/i);
    expect(outcome.error).toMatch(/Node unchanged/);
    expect(await fleet.snapshot('fullbk')).toEqual(before);
    expect(await leftovers('fullbk')).toBe('');
  });

  it('a second run is refused by the lock while the first is connected; a stale lock is broken only when forced', async () => {
    const holder = await open('locked');
    const lock = await holder.run(buildLockScript({ runId: 'holder-run', lockOwner: 'alice@elsewhere pid 42', forceUnlock: false, runcPath: RUNC }));
    expect(lock.stdout).toContain('@@rr lock acquired');
    const before = await fleet.sha256('locked', RUNC);

    const refused = await upgrade('locked', 'exec');
    expect(refused.outcome.status, why(refused.outcome)).toBe('failed');
    expect(refused.outcome.failedStep).toBe('lock');
    expect(refused.outcome.error).toMatch(/locked by another run that is still connected \(owner alice@elsewhere pid 42, run holder-run/);
    expect(await fleet.sha256('locked', RUNC)).toBe(before);

    // The holder's connection goes away: the lock is stale now.
    await holder.close();
    const stale = await upgrade('locked', 'exec');
    expect(stale.outcome.failedStep).toBe('lock');
    expect(stale.outcome.error).toMatch(/stale lock .*--force-unlock/);
    expect(await fleet.sha256('locked', RUNC)).toBe(before);

    const forced = await upgrade('locked', 'exec', { forceUnlock: true });
    expect(forced.outcome.status, why(forced.outcome)).toBe('upgraded');
    expect(forced.outcome.steps[0]?.message).toMatch(/broke stale lock \(owner alice@elsewhere/);
    expect(await leftovers('locked')).toBe('');
  });

  it('two upgrades started at once: exactly one runs, the other is refused by the lock', async () => {
    await rollbackNode(await open('locked'), specs.get('locked') as NodeSpec, () => {}, { runId: `e2e-rb3-${process.pid}`, smokeTimeoutMs: 20_000, lockOwner: 'tester', forceUnlock: false });
    const [a, b] = await Promise.all([jobFor('locked', 'exec'), jobFor('locked', 'exec')]);
    const [sa, sb] = await Promise.all([open('locked'), open('locked')]);
    const outs = await Promise.all([upgradeNode(sa, a as NodeJob, () => {}), upgradeNode(sb, b as NodeJob, () => {})]);
    const statuses = outs.map((o) => o.status).sort();
    expect(statuses, outs.map(why).join('\n')).toEqual(['failed', 'upgraded']);
    const loser = outs.find((o) => o.status === 'failed') as NodeOutcome;
    expect(loser.failedStep).toBe('lock');
    expect(loser.error).toMatch(/locked by another run/);
    expect(await fleet.sha256('locked', RUNC)).toBe(sha(bins.exec));
  });

  it('a connection lost right after the swap is reported unknown; a forced rerun completes the change, rollback undoes it', async () => {
    const origSha = await fleet.sha256('drop', RUNC);
    const before = await fleet.snapshot('drop');
    // The inventory smoke command (run with the installed runc, after the swap) kills this connection's sshd.
    const killer = `p=$$; while [ "$p" -gt 1 ]; do case $(cat /proc/$p/comm) in sshd|sshd-session) kill -9 "$p"; exit 0 ;; esac; p=$(sed 's/^.*) //' /proc/$p/stat | cut -d' ' -f2); done; exit 1`;
    const node = { ...(specs.get('drop') as NodeSpec), smokeCommand: killer };
    const { outcome } = await upgrade('drop', 'exec', { node });
    expect(outcome.status, why(outcome)).toBe('unknown');
    expect(outcome.failedStep).toBe('smoke');
    expect(outcome.error).toMatch(/connection was lost while the node was being changed/);
    expect(outcome.rollback?.ok).toBe(false);
    expect(outcome.rollback?.manualCommands.join('\n')).toContain(`mv -f /usr/local/sbin/.runc.runc-rollout.`);
    // What the node holds: the verified release, recorded as swapped; never anything half-written.
    expect(await fleet.sha256('drop', RUNC)).toBe(sha(bins.exec));
    expect((await stateJson('drop')).phase).toBe('swapped');

    const opts = { runId: `e2e-rb-drop-${process.pid}`, smokeTimeoutMs: 20_000, lockOwner: 'tester', forceUnlock: false };
    const refused = await rollbackNode(await open('drop'), specs.get('drop') as NodeSpec, () => {}, opts);
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatch(/stale lock .*--force-unlock/);
    // Re-running apply (past the stale lock) finishes the interrupted change without a second backup.
    const rerun = await upgrade('drop', 'exec', { forceUnlock: true });
    expect(rerun.outcome.status, why(rerun.outcome)).toBe('unchanged');
    expect(await fleet.liveSysctl('drop')).toBe(16384);
    expect(await fleet.readFile('drop', '/etc/sysctl.conf')).toMatch(/^# runc-rollout: /m);
    expect(await backups('drop')).toHaveLength(1);
    expect(await stateJson('drop')).toMatchObject({ phase: 'done', original: { sha256: origSha }, sysctl: { liveBefore: 2 } });
    expect(rerun.outcome.backupPath).toBe((await stateJson('drop')).original.backupPath);

    // And `rollback` takes it all back to the original.
    const rb = await rollbackNode(await open('drop'), specs.get('drop') as NodeSpec, () => {}, opts);
    expect(rb.status, why(rb)).toBe('rolled-back');
    expect(await fleet.sha256('drop', RUNC)).toBe(origSha);
    const after = await fleet.snapshot('drop');
    for (const k of [RUNC, 'sysctl:live', '/etc/sysctl.conf', SYSCTL_DROPIN]) expect(after[k], k).toBe(before[k]);
    expect(await leftovers('drop')).toBe('');
  });

  it('an interrupt before the swap stops the node cleanly: not attempted, nothing changed', async () => {
    const before = await fleet.snapshot('abort');
    const ac = new AbortController();
    const job = await jobFor('abort', 'exec');
    const outcome = await upgradeNode(await open('abort'), job, (e) => {
      if (e.step === 'staged-smoke' && e.status === 'start') ac.abort();
    }, ac.signal);
    expect(outcome.status, why(outcome)).toBe('not-attempted');
    expect(outcome.error).toMatch(/interrupted\. Node unchanged/);
    expect(await fleet.snapshot('abort')).toEqual(before);
    expect(await leftovers('abort')).toBe('');
  });

  it('a runc replaced between the backup and the swap is not swapped over: the node is left as it is, reported failed', async () => {
    const s = await open('moved');
    const job = await jobFor('moved', 'exec');
    copyFileSync(bins.wrong, join(fleet.dir, 'runc-meanwhile'));
    // someone (a package upgrade) renames another runc into place just before our swap runs
    const hooked: NodeSession = {
      node: s.node,
      run: async (script, opts) => {
        if (script.includes('not swapped')) await fleet.exec('moved', `cp ${join(fleet.dir, 'runc-meanwhile')} ${RUNC}.new && mv ${RUNC}.new ${RUNC}`);
        return s.run(script, opts);
      },
      close: () => s.close(),
    };
    const outcome = await upgradeNode(hooked, job, () => {});
    expect(outcome.status, why(outcome)).toBe('failed');
    expect(outcome.failedStep).toBe('swap');
    expect(outcome.error).toMatch(/runc at \/usr\/local\/sbin\/runc changed since the backup: sha256 \w{64}, expected \w{64}; not swapped.*Node unchanged/s);
    expect(outcome.rollback).toBeNull();
    expect(await fleet.sha256('moved', RUNC)).toBe(sha(bins.wrong));
    expect(await leftovers('moved')).toBe('');
  });

  it('a rollback that cannot restore says so loudly, leaves the verified release in place and lists the manual commands', async () => {
    const origSha = await fleet.sha256('rbfail', RUNC);
    // The installed smoke fails after making the backup disappear: the automatic rollback has nothing to restore.
    const node = { ...(specs.get('rbfail') as NodeSpec), smokeCommand: `rm -f ${STATE}/backups/*; echo 'site check failed' >&2; exit 1` };
    const { outcome } = await upgrade('rbfail', 'exec', { node });
    expect(outcome.status, why(outcome)).toBe('failed');
    expect(outcome.failedStep).toBe('smoke');
    expect(outcome.error).toMatch(/site check failed.*ROLLBACK FAILED.*no backup to restore/s);
    expect(outcome.rollback?.ok).toBe(false);
    const cmds = outcome.rollback?.manualCommands.join('\n') ?? '';
    expect(cmds).toMatch(new RegExp(`${origSha}  \\S+\\.restore' \\| sha256sum -c - && mv -f `));
    // the original's owner, mode and capabilities from the backup, after the data
    expect(cmds).toMatch(/cp --attributes-only --preserve=mode,ownership,xattr \/var\/lib\/runc-rollout\/backups\/\S+ \/usr\/local\/sbin\/\.runc\.runc-rollout\.\S+\.restore/);
    expect(cmds).toMatch(/mv -f \/usr\/local\/sbin\/\.runc\.runc-rollout\.\S+\.restore \/usr\/local\/sbin\/runc/);
    // Never a half-written binary: the runc path holds the verified release, and no temp file.
    expect(await fleet.sha256('rbfail', RUNC)).toBe(sha(bins.exec));
    expect(await leftovers('rbfail')).toBe('');
  });
});
