// Faults in the middle of a change, on the real fleet: the node's sshd killed
// mid-upload, between backup and swap and right after the swap; the controller
// SIGKILLed mid-batch; SIGINT during a batch; two applies at once. After each,
// the invariants (invariants.ts) hold, and the next run repairs the node.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeNode } from '../../src/apply/node-upgrade.js';
import { newRunId } from '../../src/apply/report.js';
import type { NodeJob, NodeOutcome } from '../../src/apply/types.js';
import { planSysctl } from '../../src/core/sysctl.js';
import type { NodeSpec } from '../../src/core/types.js';
import { gatherFacts } from '../../src/facts/gather.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { assertBuilt, type CliEnv } from '../e2e/apply-cli.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { latestReport, runCli, show, startCli } from './cli.js';
import { STATE, checkInvariants, probing, readNode, type NodeTruth } from './invariants.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the fault suite: ${unsupported}`);

const NAMES = ['k1', 'k2', 'k3', 'k4', 's1', 's2', 's3', 'i1', 'i2', 'l1'];
/** Kills the sshd serving the script's own connection, then ends the script: the controller sees the connection drop. */
const KILL_OWN_SSHD = `p=$$; while [ "$p" -gt 1 ]; do case $(cat /proc/$p/comm) in sshd|sshd-session) kill -9 "$p"; exit 0 ;; esac; p=$(sed 's/^.*) //' /proc/$p/stat | cut -d' ' -f2); done; exit 1`;

const temps: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  temps.push(d);
  return d;
};
let fx: ReleaseFixtures;
let server: ReleaseServer;
let origBin: string;
let releaseBin: string;
let release: string;
const truth: Record<string, NodeTruth> = {};

describe.skipIf(unsupported)('faults mid-change', () => {
  const f = useFleet(() => {
    fx = sharedReleaseFixtures();
    origBin = buildStandIn(join(temp('rr-faults-bins-'), 'runc-1.1.12'), { version: '1.1.12' });
    return {
      nodes: NAMES.map((name) => ({
        name,
        runc: { binary: origBin },
        sysctl: { live: 65536, files: { '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 65536\n' } },
      })),
    };
  });
  let specs: Map<string, NodeSpec>;
  const transport = createSshTransport({ connectTimeoutMs: 10_000 });
  const sessions: NodeSession[] = [];
  const env = (): CliEnv => ({ apiUrl: server.url, fixtures: fx, cacheDir: temp('rr-faults-cache-'), cwd: temp('rr-faults-cwd-') });
  const apply = (e: CliEnv, extra: string[]) => ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--smoke-timeout', '20s', '--yes', ...extra];

  beforeAll(async () => {
    if (unsupported) return;
    assertBuilt();
    server = await startReleaseServer(fx.dir);
    releaseBin = join(fx.releaseDir('test/runc', 'v1.2.9'), `runc.${fx.arch}`);
    release = createHash('sha256').update(readFileSync(releaseBin)).digest('hex');
    const original = createHash('sha256').update(readFileSync(origBin)).digest('hex');
    for (const n of NAMES) {
      truth[n] = { original, originalLive: 65536 };
    }
    const inv = await loadInventory(f.fleet.inventoryPath, { home: temp('rr-faults-home-') });
    specs = new Map(inv.nodes.map((n) => [n.name, n]));
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await server?.stop();
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });

  /** upgradeNode on a session whose scripts `rewrite` may change (to kill the connection at a chosen point). */
  const sabotagedUpgrade = async (name: string, rewrite: (script: string) => string): Promise<NodeOutcome> => {
    const node = specs.get(name) as NodeSpec;
    const open = async () => {
      const s = await transport.connect(node);
      sessions.push(s);
      return s;
    };
    const facts = await gatherFacts(await open(), node);
    const job: NodeJob = {
      node,
      plan: {
        name,
        host: node.ssh.host,
        port: node.ssh.port,
        arch: fx.arch,
        runcPath: '/usr/local/sbin/runc',
        action: 'upgrade',
        current: { version: facts.runc.version, sha256: facts.runc.sha256 },
        target: { version: '1.2.9', sha256: release },
        sysctl: planSysctl(facts.sysctl),
        warnings: [],
        error: null,
      },
      asset: { arch: fx.arch, name: `runc.${fx.arch}`, sha256: release, size: statSync(releaseBin).size, path: releaseBin },
      runId: newRunId(),
      smokeTimeoutMs: 20_000,
      lockOwner: `fault-suite pid ${process.pid}`,
      forceUnlock: false,
    };
    const real = await open();
    const session: NodeSession = { node: real.node, run: (script, o) => real.run(rewrite(script), o), close: () => real.close() };
    return upgradeNode(session, job, () => {});
  };

  it.each([
    {
      node: 'k1',
      when: 'mid-upload (a partial staged file is left behind)',
      rewrite: (s: string) => (s.includes('rr_put uploaded') ? s.replace('if ! dd of="$RR_S"', () => `head -c 100000 >"$RR_S"\n${KILL_OWN_SSHD}\nif ! dd of="$RR_S"`) : s),
      statuses: ['failed', 'unknown'],
    },
    {
      node: 'k2',
      when: 'between backup and swap',
      rewrite: (s: string) => (s.includes('rr_put swapped') ? `${KILL_OWN_SSHD}\n` : s),
      statuses: ['unknown'],
    },
    {
      node: 'k3',
      when: 'right after the rename, before state.json says so',
      rewrite: (s: string) => (s.includes('rr_put swapped') ? s.replace('rr_put swapped\n', () => `rr_put swapped\n${KILL_OWN_SSHD}\n`) : s),
      statuses: ['unknown'],
    },
  ])('sshd killed $when: never a broken runc; the next `apply --force-unlock` completes the node', async ({ node, rewrite, statuses }) => probing(f.fleet, [node], async () => {
    const outcome = await sabotagedUpgrade(node, rewrite);
    expect(statuses, JSON.stringify(outcome, null, 1)).toContain(outcome.status);
    if (outcome.status === 'failed') expect(outcome.error).toMatch(/Node unchanged/);
    else expect(outcome.error).toMatch(/connection was lost while the node was being changed|outcome on the node unknown/);
    await checkInvariants(f.fleet, truth, [node], { release, midChange: [node] });

    // Without --force-unlock the dead run's lock is reported stale and nothing changes.
    const e = env();
    const refused = await runCli(e, apply(e, ['--limit', node]));
    expect(refused.code, show(refused)).toBe(1);
    expect(latestReport(e.cwd).nodes[0]?.error).toMatch(/stale lock .*--force-unlock/);

    const r = await runCli(e, apply(e, ['--limit', node, '--force-unlock']));
    expect(r.code, show(r)).toBe(0);
    const report = latestReport(e.cwd);
    await checkInvariants(f.fleet, truth, [node], { release, report, exitCode: r.code });
    const st = await readNode(f.fleet, node);
    expect(st.sha).toBe(release);
    // one backup, of the original: never a backup of the release over it
    expect(st.backups).toHaveLength(1);
  }), 300_000);

  it('sshd killed right after the swap (CLI, the site smoke command kills it): the report says unknown; `rollback --force-unlock` restores the original', async () => probing(f.fleet, ['k4'], async () => {
    const e = env();
    const inv = f.fleet.writeInventory({}, { nodes: { k4: { smoke: { command: KILL_OWN_SSHD } } } });
    const r = await runCli(e, ['apply', '-i', inv, '--repo', 'test/runc', '--version', '1.2.9', '--limit', 'k4', '--smoke-timeout', '20s', '--yes']);
    expect(r.code, show(r)).toBe(1);
    const report = latestReport(e.cwd);
    expect(report.nodes.map((n) => [n.name, n.status, n.failedStep])).toEqual([['k4', 'unknown', 'smoke']]);
    await checkInvariants(f.fleet, truth, ['k4'], { release, report, exitCode: r.code, midChange: ['k4'] });

    const rb = await runCli(e, ['rollback', '-i', f.fleet.inventoryPath, '--limit', 'k4', '--force-unlock', '--smoke-timeout', '20s', '--yes']);
    expect(rb.code, show(rb)).toBe(0);
    const rbReport = latestReport(e.cwd);
    expect(rbReport.nodes.map((n) => n.status)).toEqual(['rolled-back']);
    await checkInvariants(f.fleet, truth, ['k4'], { release, report: rbReport, exitCode: rb.code });
    expect((await readNode(f.fleet, 'k4')).sha).toBe(truth.k4?.original);
  }), 300_000);

  it('the controller SIGKILLed mid-batch: the rerun finishes without redoing finished nodes or backing up the release over the original', async () => probing(f.fleet, ['s1', 's2', 's3'], async () => {
    const e = env();
    let killed = false;
    const first = startCli(e, apply(e, ['--limit', 's*', '--batch', '1']), (out, child) => {
      if (!killed && /s2 swap ok/.test(out)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    const r1 = await first.done;
    expect(killed, show(r1)).toBe(true);
    expect(r1.signal).toBe('SIGKILL');
    await checkInvariants(f.fleet, truth, ['s1', 's3'], { release });
    await checkInvariants(f.fleet, truth, ['s2'], { release, midChange: ['s2'] });
    expect((await readNode(f.fleet, 's3')).sha, 's3 must not have been started').toBe(truth.s3?.original);

    // The dead controller's connection may take a moment to end on the node; until then its lock is (rightly) held.
    for (let i = 0; i < 300; i++) {
      const held = await f.fleet.exec('s2', `p=$(sed -n 's/^pid=//p' ${STATE}/lock 2>/dev/null); [ -n "$p" ] && [ -e /proc/$p ]`);
      if (held.code !== 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const r2 = await runCli(e, apply(e, ['--limit', 's*', '--batch', '1', '--force-unlock']));
    expect(r2.code, show(r2)).toBe(0);
    const report = latestReport(e.cwd);
    expect(report.nodes.map((n) => [n.name, n.status])).toEqual([
      ['s1', 'unchanged'],
      ['s2', 'unchanged'],
      ['s3', 'upgraded'],
    ]);
    await checkInvariants(f.fleet, truth, ['s1', 's2', 's3'], { release, report, exitCode: r2.code });
    for (const n of ['s1', 's2', 's3']) {
      const st = await readNode(f.fleet, n);
      expect(st.backups, n).toHaveLength(1);
      expect(st.state?.original.sha256, n).toBe(truth[n]?.original);
    }
  }), 300_000);

  it('SIGINT during a batch: nodes past the swap finish, none is left half-way; exit 130 with a truthful report', async () => probing(f.fleet, ['i1', 'i2'], async () => {
    const e = env();
    let sent = false;
    const { done } = startCli(e, apply(e, ['--limit', 'i*', '--batch', '2']), (out, child) => {
      if (!sent && /i[12] staged-smoke ok/.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(sent).toBe(true);
    expect(r.code, show(r)).toBe(130);
    const report = latestReport(e.cwd);
    expect(report).toMatchObject({ interrupted: true, stoppedReason: 'interrupted', exitCode: 130 });
    for (const n of report.nodes) expect(['upgraded', 'not-attempted'], JSON.stringify(n)).toContain(n.status);
    await checkInvariants(f.fleet, truth, ['i1', 'i2'], { release, report, exitCode: r.code });
    for (const n of report.nodes.filter((x) => x.status === 'not-attempted')) {
      expect((await readNode(f.fleet, n.name)).sha).toBe(truth[n.name]?.original);
    }
  }), 300_000);

  it('two applies at once on one node: the second is refused by the node lock, the first completes', async () => probing(f.fleet, ['l1'], async () => {
    const e1 = env();
    const e2 = env();
    // The first run's site smoke (after the swap) holds the lock until the second run has been refused:
    // a gate file the test creates, not a guess at how long the second run needs.
    const gate = '/tmp/rr-lock-gate';
    await f.fleet.exec('l1', `rm -f ${gate}`);
    const slow = f.fleet.writeInventory({}, { nodes: { l1: { smoke: { command: `until [ -e ${gate} ]; do sleep 0.2; done` } } } });
    let second: Promise<Awaited<ReturnType<typeof runCli>>> | undefined;
    const first = startCli(e1, ['apply', '-i', slow, '--repo', 'test/runc', '--version', '1.2.9', '--limit', 'l1', '--smoke-timeout', '240s', '--yes'], (out) => {
      if (!second && /l1 swap ok/.test(out)) second = runCli(e2, apply(e2, ['--limit', 'l1']));
    });
    let firstDone = false;
    void first.done.then(() => (firstDone = true));
    const opened = (async () => {
      while (!second && !firstDone) await new Promise((r) => setTimeout(r, 100));
      const r = second ? await second : undefined;
      await f.fleet.exec('l1', `touch ${gate}`);
      return r;
    })();
    const r1 = await first.done;
    expect(second, show(r1)).toBeDefined();
    const r2 = (await opened) as Awaited<ReturnType<typeof runCli>>;
    await f.fleet.exec('l1', `rm -f ${gate}`);
    expect(r1.code, show(r1)).toBe(0);
    expect(r2.code, show(r2)).toBe(1);
    const refused = latestReport(e2.cwd);
    expect(refused.nodes[0]).toMatchObject({ status: 'failed', failedStep: 'lock' });
    expect(refused.nodes[0]?.error).toMatch(/locked by another run that is still connected \(owner .*pid \d+/);
    await checkInvariants(f.fleet, truth, ['l1'], { release, report: latestReport(e1.cwd), exitCode: r1.code });
    await checkInvariants(f.fleet, truth, ['l1'], { release, report: refused, exitCode: r2.code });
    expect(await f.fleet.fileExists('l1', `${STATE}/lock`)).toBe(false);
  }), 300_000);
});
