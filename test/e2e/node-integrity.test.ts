// What apply and rollback leave on nodes that are not the plain case, with
// the built CLI on the test fleet: a BusyBox userland (head, dd and tail are
// BusyBox's: its head -c reads past N), a runc with an unusual owner, group,
// mode and a file capability (with GNU cp, and with BusyBox's cp and stat),
// a node where an SELinux label cannot be set, and rollback on nodes where
// someone replaced runc or edited a sysctl file after the apply.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NodeOutcome } from '../../src/apply/types.js';
import { fleetUnsupportedReason, type FleetNodeSpec } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { buildStandIn } from '../harness/standin.js';
import { fileDigest, latestReport, releaseDigest, runCli, show, type CliEnv } from './apply-cli.js';
import { useCliFixtures } from './cli-fixtures.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the node integrity e2e test: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const DROPIN = '/etc/sysctl.d/99-runc-rollout.conf';
const OLD_CONF = '/etc/sysctl.d/90-pipe.conf';
const OLD_CONF_TEXT = '# old rc93 workaround\nfs.pipe-user-pages-soft = 65536\n';
const cli = useCliFixtures('rr-integrity', unsupported);
let rc93 = '';
let pkg = '';

beforeAll(() => {
  if (unsupported) return;
  const bins = cli.temp('bins');
  rc93 = buildStandIn(join(bins, 'runc-rc93'), { version: '1.0.0-rc93' });
  // what a distribution package upgrade would install over runc after the apply
  pkg = buildStandIn(join(bins, 'runc-pkg'), { version: '1.1.12' });
});

const node = (name: string, extra: Partial<FleetNodeSpec> = {}): FleetNodeSpec => ({
  name,
  runc: { binary: rc93 },
  sysctl: { live: 65536, files: { [OLD_CONF]: OLD_CONF_TEXT } },
  ...extra,
});

/** Splits a command line quoted with q() (single quotes) into words. */
function words(line: string): string[] {
  return [...line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : (m[2] as string)));
}

describe.skipIf(unsupported)('apply and rollback on nodes that are not the plain case', () => {
  const f = useFleet(() => ({
    nodes: [
      node('bb', { busybox: ['head', 'dd', 'tail'] }),
      node('meta'),
      node('meta-bb', { busybox: ['cp', 'stat'] }),
      node('selinux', { fakeSelinux: true }),
      node('foreign'),
      node('sysfor'),
    ],
  }));
  let e: CliEnv;
  let target = '';
  const apply = (name: string) => runCli(e, ['apply', '-i', f.fleet.inventoryPath, '--repo', 'test/runc', '--version', '1.2.9', '--limit', name, '--yes']);
  const rollback = (name: string, ...extra: string[]) => runCli(e, ['rollback', '-i', f.fleet.inventoryPath, '--limit', name, '--yes', ...extra]);
  const outcome = (name: string): NodeOutcome => latestReport(e.cwd).nodes.find((n) => n.name === name) as NodeOutcome;
  /** Owner:group, mode and file capabilities of a file on the node. */
  const meta = async (name: string, path = RUNC) => (await f.fleet.exec(name, `stat -c '%u:%g %a' ${path}; getcap ${path} | sed 's/^[^ ]* //'`)).stdout.trim();
  const channels = (name: string) => (f.fleet.sshdLog(name).match(/Starting session: command/g) ?? []).length;

  beforeAll(() => {
    if (unsupported) return;
    e = cli.env();
    target = releaseDigest(cli.fx, 'test/runc', 'v1.2.9');
  });

  it('a BusyBox userland (its head -c reads ahead): apply and rollback run through the node shell, every step', async () => {
    const before = channels('bb');
    const r = await apply('bb');
    expect(r.code, show(r)).toBe(0);
    expect(outcome('bb').status).toBe('upgraded');
    expect(await f.fleet.sha256('bb', RUNC)).toBe(target);
    expect(await f.fleet.liveSysctl('bb')).toBe(16384);
    // plan's facts, then one shell for every other command: exec per command would be a dozen channels
    expect(channels('bb') - before).toBeLessThanOrEqual(4);

    const rb = await rollback('bb');
    expect(rb.code, show(rb)).toBe(0);
    expect(outcome('bb').status).toBe('rolled-back');
    expect(await f.fleet.sha256('bb', RUNC)).toBe(fileDigest(rc93));
    expect(await f.fleet.liveSysctl('bb')).toBe(65536);
    expect(await f.fleet.readFile('bb', OLD_CONF)).toBe(OLD_CONF_TEXT);
  });

  it.each(['meta', 'meta-bb'])('%s: the owner, group, mode and file capability of runc are kept by apply, carried by the backup, and restored by rollback', async (name) => {
    await f.fleet.exec(name, `chown 0:4 ${RUNC} && chmod 0750 ${RUNC} && setcap cap_net_bind_service=ep ${RUNC}`);
    const before = await meta(name);
    expect(before).toMatch(/^0:4 750\ncap_net_bind_service[=+]ep$/);

    const r = await apply(name);
    expect(r.code, show(r)).toBe(0);
    expect(await f.fleet.sha256(name, RUNC)).toBe(target);
    expect(await meta(name)).toBe(before);
    const backup = outcome(name).backupPath as string;
    expect(await meta(name, backup)).toBe(before);

    const rb = await rollback(name);
    expect(rb.code, show(rb)).toBe(0);
    expect(await f.fleet.sha256(name, RUNC)).toBe(fileDigest(rc93));
    expect(await meta(name)).toBe(before);
  });

  it('an SELinux label that cannot be set fails the stage: the node is unchanged, nothing is left behind', async () => {
    const before = await f.fleet.snapshot('selinux');
    const r = await apply('selinux');
    expect(r.code, show(r)).toBe(1);
    const o = outcome('selinux');
    expect(o.status).toBe('failed');
    expect(o.failedStep).toBe('stage');
    expect(o.error).toMatch(/could not give \S+ the owner, mode, capabilities and label of \/usr\/local\/sbin\/runc/);
    expect(o.error).toMatch(/security context/);
    expect(o.error).toMatch(/Node unchanged/);
    const after = await f.fleet.snapshot('selinux');
    expect(Object.fromEntries(Object.entries(after).filter(([k]) => !k.startsWith('/var/lib')))).toEqual(Object.fromEntries(Object.entries(before).filter(([k]) => !k.startsWith('/var/lib'))));
    expect((await f.fleet.exec('selinux', 'ls -a /usr/local/sbin /var/lib/runc-rollout')).stdout).not.toMatch(/runc-rollout\.|^lock$/m);
  });

  it('rollback leaves a runc installed since the apply alone, says so with the exact command to force it; that command restores the original', async () => {
    expect((await apply('foreign')).code).toBe(0);
    // a package upgrade: a new file renamed over runc (the node sees the fleet's folder, not this machine's /tmp)
    const staged = join(f.fleet.dir, 'runc-pkg');
    copyFileSync(pkg, staged);
    const up = await f.fleet.exec('foreign', `cp ${staged} ${RUNC}.dpkg-new && mv ${RUNC}.dpkg-new ${RUNC}`);
    expect(up.code, up.stderr).toBe(0);
    const state = await f.fleet.readFile('foreign', '/var/lib/runc-rollout/state.json');

    const r = await rollback('foreign');
    expect(r.code, show(r)).toBe(1);
    const o = outcome('foreign');
    expect(o.status).toBe('failed');
    expect(o.error).toMatch(/left alone: runc at \/usr\/local\/sbin\/runc \(sha256 \w{12}: neither the release \w{12} run \S+ installed nor the original \w{12}/);
    expect(await f.fleet.sha256('foreign', RUNC)).toBe(fileDigest(pkg));
    expect(await f.fleet.liveSysctl('foreign')).toBe(16384);
    // the record stays: the forced rollback needs it
    expect(await f.fleet.readFile('foreign', '/var/lib/runc-rollout/state.json')).toBe(state);
    expect(await f.fleet.fileExists('foreign', '/var/lib/runc-rollout/lock')).toBe(false);

    const cmd = /To restore the original anyway: (runc-rollout rollback .*--overwrite-changed)/.exec(o.error ?? '')?.[1] ?? '';
    expect(cmd).toBe(`runc-rollout rollback -i ${f.fleet.inventoryPath} --limit foreign --overwrite-changed`);
    const forced = await runCli(e, [...words(cmd).slice(1), '--yes']);
    expect(forced.code, show(forced)).toBe(0);
    expect(outcome('foreign').status).toBe('rolled-back');
    expect(await f.fleet.sha256('foreign', RUNC)).toBe(fileDigest(rc93));
    expect(await f.fleet.liveSysctl('foreign')).toBe(65536);
  });

  it('a sysctl file edited since the apply is left alone and named; the rest is restored', async () => {
    expect((await apply('sysfor')).code).toBe(0);
    await f.fleet.exec('sysfor', `echo 'vm.swappiness = 5' >>${DROPIN}`);
    const edited = await f.fleet.readFile('sysfor', DROPIN);

    const r = await rollback('sysfor');
    expect(r.code, show(r)).toBe(1);
    const o = outcome('sysfor');
    expect(o.status).toBe('failed');
    expect(o.error).toMatch(new RegExp(`left alone: ${DROPIN} \\(changed since run \\S+ wrote it\\)`));
    expect(o.error).toContain('--overwrite-changed');
    expect(await f.fleet.sha256('sysfor', RUNC)).toBe(fileDigest(rc93));
    expect(await f.fleet.readFile('sysfor', DROPIN)).toBe(edited);
    expect(await f.fleet.readFile('sysfor', OLD_CONF)).toBe(OLD_CONF_TEXT);
  });
});
