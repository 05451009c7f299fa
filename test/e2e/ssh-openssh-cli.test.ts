// `--ssh-client openssh` end to end: the built CLI plans and applies over the
// system ssh, one connection per node for the whole command, to a fleet where
// one node is known only through the CA that signed its host certificate.
// ssh2 mode refuses that node and says why; openssh mode refuses it too once
// the CA line is gone or its key is @revoked. No ssh process outlives the CLI.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlanFile } from '../../src/core/plan-schema.js';
import type { Plan } from '../../src/core/types.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { assertBuilt, latestReport, releaseDigest, runCli, show, type CliEnv, type CliResult } from './apply-cli.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the openssh CLI e2e test: ${unsupported}`);

const RUNC = '/usr/local/sbin/runc';
const NAMES = ['c-root', 'c-sudo', 'c-cert'];

/** Processes whose command line mentions `dir` (the CLI's TMPDIR holds its control sockets, so every ssh master and client names it). */
function processesUsing(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (line.includes(dir)) out.push(`${pid} ${line.slice(0, 200)}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe.skipIf(unsupported)('--ssh-client openssh end to end', () => {
  const temps: string[] = [];
  const temp = (p: string) => {
    const d = mkdtempSync(join(tmpdir(), p));
    temps.push(d);
    return d;
  };
  let fx: ReleaseFixtures;
  let server: ReleaseServer;
  let env: CliEnv;
  let cliTmp: string;
  let caOnly: string;

  const f = useFleet(() => {
    const bins = temp('rr-openssh-bins-');
    const start = buildStandIn(join(bins, 'runc-1.1.12'), { version: '1.1.12' });
    return {
      nodes: [
        { name: 'c-root', runc: { binary: start } },
        { name: 'c-sudo', runc: { binary: start }, user: { name: 'deploy', sudo: 'nopasswd' } },
        { name: 'c-cert', runc: { binary: start }, hostCertificate: true },
      ],
    };
  });

  const pub = (file: string) => readFileSync(file, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const caLine = () => `@cert-authority 127.0.${f.fleet.subnet}.* ${pub(`${f.fleet.hostCa}.pub`)}`;
  /** The fleet's inventory, with c-cert checked against `knownHosts` only. */
  const inventory = (knownHosts: string) => f.fleet.writeInventory({}, { nodes: { 'c-cert': { ssh: { knownHosts } } } });
  const logins = () => NAMES.map((n) => (f.fleet.sshdLog(n).match(/Accepted publickey/g) ?? []).length);
  const cli = (args: string[]): Promise<CliResult> => runCli(env, args);
  const planOf = (r: CliResult): Plan => parsePlanFile(r.stdout, 'stdout');
  const nodeError = (plan: Plan, name: string) => plan.nodes.find((n) => n.name === name)?.error ?? null;

  beforeAll(async () => {
    if (unsupported) return;
    assertBuilt();
    fx = sharedReleaseFixtures();
    server = await startReleaseServer(fx.dir);
    cliTmp = temp('rr-openssh-clitmp-');
    env = { apiUrl: server.url, fixtures: fx, cacheDir: temp('rr-openssh-cache-'), cwd: temp('rr-openssh-cwd-'), env: { TMPDIR: cliTmp, SSH_AUTH_SOCK: '' } };
    caOnly = join(f.fleet.dir, 'known_hosts-ca-only');
    writeFileSync(caOnly, `${caLine()}\n`);
  });

  afterAll(async () => {
    await server?.stop();
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });

  const plan = (inv: string, ...extra: string[]) => cli(['plan', '-i', inv, '--repo', 'test/runc', '--version', '1.2.9', '--json', ...extra]);

  it('plan: one connection per node for the whole command; the certified host is accepted through @cert-authority alone', async () => {
    const before = logins();
    const r = await plan(inventory(caOnly), '--ssh-client', 'openssh', '--ssh-config', 'none');
    expect(r.code, show(r)).toBe(0);
    const p = planOf(r);
    expect(p.nodes.map((n) => [n.name, n.action, n.error])).toEqual(NAMES.map((n) => [n, 'upgrade', null]));
    expect(p.nodes.find((n) => n.name === 'c-sudo')?.current?.version).toBe('1.1.12');
    expect(logins().map((n, i) => n - before[i]!)).toEqual([1, 1, 1]);
    expect(processesUsing(cliTmp)).toEqual([]);
    expect(readdirSync(cliTmp)).toEqual([]); // control socket folders removed
  });

  it('ssh2 mode refuses the certified host and points to --ssh-client openssh', async () => {
    const r = await plan(inventory(caOnly));
    expect(r.code, show(r)).toBe(3);
    const p = planOf(r);
    expect(p.nodes.find((n) => n.name === 'c-cert')?.action).toBe('unreachable');
    expect(nodeError(p, 'c-cert')).toMatch(/ssh2 client cannot check host certificates .*: use --ssh-client openssh/);
  });

  it('openssh mode refuses the certified host without its CA line, or with its key @revoked: exit 3, the host named', async () => {
    const host = f.fleet.node('c-cert').host;
    const hostKey = pub(join(f.fleet.node('c-cert').dir, 'hostkey.pub'));
    const cases: [string, string[], RegExp][] = [
      // The other nodes' plain keys, but nothing that vouches for c-cert.
      ['known_hosts-no-ca', readFileSync(f.fleet.knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith(`${host} `)), /host key verification failed: the host key is not known and hostKeyPolicy is strict \(ssh: No ED25519 host key is known for /],
      ['known_hosts-revoked', [caLine(), `@revoked ${host} ${hostKey}`], /host key verification failed: the host key is marked @revoked \(ssh: The ED25519-CERT host key for /],
    ];
    for (const [file, lines, why] of cases) {
      const kh = join(f.fleet.dir, file);
      writeFileSync(kh, `${lines.join('\n')}\n`);
      const r = await plan(inventory(kh), '--ssh-client', 'openssh', '--ssh-config', 'none');
      expect(r.code, show(r)).toBe(3);
      const p = planOf(r);
      expect(p.nodes.map((n) => [n.name, n.action])).toEqual([['c-root', 'upgrade'], ['c-sudo', 'upgrade'], ['c-cert', 'unreachable']]);
      expect(nodeError(p, 'c-cert')).toMatch(new RegExp(`^root@${host.replace(/\./g, '\\.')}:22: ${why.source}`));
      expect(r.stderr).toMatch(/c-cert: unreachable/);
      expect(processesUsing(cliTmp)).toEqual([]);
    }
  });

  it('apply: upgrades every node (streamed upload, sudo for c-sudo) over one connection per node', async () => {
    const want = releaseDigest(fx, 'test/runc', 'v1.2.9');
    const before = logins();
    const r = await cli(['apply', '-i', inventory(caOnly), '--repo', 'test/runc', '--version', '1.2.9', '--ssh-client', 'openssh', '--ssh-config', 'none', '--yes']);
    expect(r.code, show(r)).toBe(0);
    expect(logins().map((n, i) => n - before[i]!)).toEqual([1, 1, 1]);
    for (const n of NAMES) expect(await f.fleet.sha256(n, RUNC), n).toBe(want);
    expect(latestReport(env.cwd).summary).toMatchObject({ total: 3, upgraded: 3 });
    expect(processesUsing(cliTmp)).toEqual([]);
    expect(readdirSync(cliTmp)).toEqual([]);
  });
});
