// The invariants of issue 6, checked after every fault case by one helper:
// the runc path holds exactly the original or exactly the verified release
// (executable), no staged temp file is left next to it, the live and persisted
// fs.pipe-user-pages-soft match the binary's state, state.json and the run
// report agree with the node, and a probe exec-ing runc in a loop never failed.
import { posix } from 'node:path';
import { expect } from 'vitest';
import type { RunReport } from '../../src/apply/report.js';
import { SYSCTL_DROPIN } from '../../src/core/types.js';
import type { BackgroundCommand, Fleet } from '../harness/fleet.js';

export const STATE = '/var/lib/runc-rollout';

export interface NodeTruth {
  /** Digest of the binary the node started with. */
  original: string;
  /** Live fs.pipe-user-pages-soft the node started with. */
  originalLive: number;
}

export interface InvariantOptions {
  /** The verified release digest the run installs. */
  release: string;
  /** The run report of the case, checked against each node it names. */
  report?: RunReport;
  /** The CLI's exit code, checked against the report. */
  exitCode?: number | null;
  /**
   * The node was cut off mid-change and not yet repaired: the binary must
   * still be one of the two, but leftovers (the next run's to clean) and a
   * sysctl not yet matching are tolerated.
   */
  midChange?: string[];
}

/** What is on one node, read as root inside its namespace. */
export async function readNode(fleet: Fleet, name: string) {
  const runc = fleet.node(name).runcPath as string;
  const dir = posix.dirname(runc);
  const r = await fleet.exec(
    name,
    [
      `printf 'sha=%s\\n' "$(sha256sum < ${runc} | cut -d' ' -f1)"`,
      `[ -x ${runc} ] && echo exec=yes`,
      `printf 'live=%s\\n' "$(cat /proc/sys/fs/pipe-user-pages-soft)"`,
      `ls -a ${dir} | grep -F '.runc.runc-rollout.' | sed 's/^/temp=/' || :`,
      `[ -f ${SYSCTL_DROPIN} ] && sed -n 's/^fs.pipe-user-pages-soft *= *\\([0-9]*\\).*/dropin=\\1/p' ${SYSCTL_DROPIN} || :`,
      `[ -f ${STATE}/state.json ] && printf 'state=%s\\n' "$(tr -d '\\n' < ${STATE}/state.json)" || :`,
      `ls ${STATE}/backups 2>/dev/null | sed 's/^/backup=/' || :`,
    ].join('\n'),
  );
  const get = (k: string) => r.stdout.split('\n').filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
  const stateText = get('state')[0];
  return {
    sha: get('sha')[0] ?? '',
    executable: get('exec')[0] === 'yes',
    live: Number(get('live')[0]),
    temps: get('temp'),
    dropin: get('dropin')[0] === undefined ? null : Number(get('dropin')[0]),
    state: stateText ? (JSON.parse(stateText) as { phase: string; original: { sha256: string; backupPath: string }; target: { sha256: string } }) : null,
    backups: get('backup'),
  };
}

const OK_STATUSES = ['upgraded', 'unchanged'];

/** Checks every invariant on `names`; fails the test naming the node and the broken rule. */
export async function checkInvariants(fleet: Fleet, truth: Record<string, NodeTruth>, names: string[], o: InvariantOptions): Promise<void> {
  for (const name of names) {
    const t = truth[name] as NodeTruth;
    const n = await readNode(fleet, name);
    const where = `${name}: ${JSON.stringify(n)}`;
    const atRelease = n.sha === o.release;
    expect([t.original, o.release], `${where}: runc is neither the original nor the release`).toContain(n.sha);
    expect(n.executable, `${where}: runc not executable`).toBe(true);
    const mid = o.midChange?.includes(name) ?? false;
    if (!mid) {
      expect(n.temps, `${where}: staged temp file left`).toEqual([]);
      if (atRelease) {
        expect(n.live, `${where}: release installed but live sysctl not 16384`).toBe(16384);
        expect(n.dropin, `${where}: release installed but not persisted`).toBe(16384);
      } else {
        expect(n.live, `${where}: original binary but live sysctl changed`).toBe(t.originalLive);
        expect(n.dropin, `${where}: original binary but a drop-in persists 16384`).toBeNull();
      }
      if (n.state) {
        // state.json agrees with the node: done means at the release; the original is recorded as the original.
        if (atRelease) expect(n.state.phase, where).toBe('done');
        else expect(['rolled-back', 'backed-up', 'staged'], where).toContain(n.state.phase);
        if (n.state.original.backupPath) {
          expect(n.state.original.sha256, `${where}: state.json's original is not the original binary`).toBe(t.original);
          expect(await fleet.sha256(name, n.state.original.backupPath), `${where}: backup does not hold the original`).toBe(t.original);
        }
      } else {
        expect(atRelease, `${where}: at the release but no state.json`).toBe(false);
      }
    }
    const rn = o.report?.nodes.find((x) => x.name === name);
    if (rn) {
      const w = `${where}; report: ${JSON.stringify({ status: rn.status, failedStep: rn.failedStep, error: rn.error })}`;
      if (OK_STATUSES.includes(rn.status)) {
        expect(atRelease, `${w}: report says ${rn.status} but the release is not installed`).toBe(true);
        expect(rn.to?.sha256, w).toBe(o.release);
      } else if (rn.status === 'rolled-back') {
        if (o.report?.command === 'rollback') expect(n.sha, w).toBe(t.original);
        else expect(rn.to?.sha256, w).toBe(n.sha);
      } else if (rn.status === 'not-attempted' || rn.status === 'unreachable') {
        // not touched by this run: whatever it held before (checked by the caller against its snapshot)
      } else if (rn.status === 'failed') {
        if (/Node unchanged/.test(rn.error ?? '')) expect(n.sha, `${w}: report says the node is unchanged`).toBe(rn.from?.sha256);
      }
      if (rn.status !== 'unknown' && rn.to?.sha256) expect(rn.to.sha256, `${w}: report's "to" is not what the node holds`).toBe(n.sha);
    }
  }
  if (o.report && o.exitCode !== undefined) {
    expect(o.report.exitCode, 'report exit code').toBe(o.exitCode);
    const statuses = o.report.nodes.map((x) => x.status);
    // a rollback run succeeds by rolling back
    const ok = o.report.command === 'rollback' ? [...OK_STATUSES, 'rolled-back'] : OK_STATUSES;
    if (o.exitCode === 0) expect(statuses.every((s) => ok.includes(s)), `exit 0 with ${statuses}`).toBe(true);
    if (o.exitCode === 1) expect(statuses.some((s) => !ok.includes(s)), `exit 1 with ${statuses}`).toBe(true);
    if (o.exitCode === 130) expect(o.report.interrupted).toBe(true);
  }
}

/** A loop on the node exec-ing its runc, as kubelet/containerd would (a short nap keeps two cores usable). */
export function startProbe(fleet: Fleet, name: string): BackgroundCommand {
  const runc = fleet.node(name).runcPath as string;
  return fleet.background(name, `n=0; while :; do n=$((n+1)); ${runc} --version >/dev/null 2>&1 || echo "EXEC FAILED at $n"; [ $((n % 20)) = 0 ] && echo "ran $n"; sleep 0.01; done`);
}

/** Runs `fn` with a probe on each of `names`; afterwards every probe must have run and never failed. */
export async function probing<T>(fleet: Fleet, names: string[], fn: () => Promise<T>): Promise<T> {
  const probes = Object.fromEntries(names.map((n) => [n, startProbe(fleet, n)]));
  let value: T;
  try {
    value = await fn();
  } catch (err) {
    await Promise.allSettled(Object.values(probes).map((p) => p.stop()));
    throw err;
  }
  await checkProbes(probes);
  return value;
}

/** Stops the probes; each must have run and never failed to exec runc. */
export async function checkProbes(probes: Record<string, BackgroundCommand>): Promise<void> {
  for (const [name, p] of Object.entries(probes)) {
    const out = (await p.stop()).stdout;
    expect(out.split('\n').filter((l) => l.startsWith('EXEC FAILED')), `${name}: probe failed to exec runc`).toEqual([]);
    expect(out, `${name}: probe never ran`).toMatch(/ran \d+/);
  }
}
