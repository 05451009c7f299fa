// The bench's test bed: N fleet nodes that all start as the classic rc93
// host (an old runc stand-in, fs.pipe-user-pages-soft raised live and
// persisted), the GitHub stand-in serving the signed release, and the reset
// that puts every node back to that start between apply runs (through
// nsenter, outside the timed part: no SSH traffic).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { q } from '../src/core/shell.js';
import { startFleet, type Fleet, type FleetNodeSpec } from '../test/harness/fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../test/harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../test/harness/release-server.js';
import { buildStandIn } from '../test/harness/standin.js';

export const OLD_VERSION = '1.0.0-rc93';
export const RAISED_SYSCTL = 65536;
export const TARGET_SYSCTL = 16384;
export const RELEASE = { repo: 'test/runc', tag: 'v1.2.9', version: '1.2.9' };
const WORKAROUND_FILE = '/etc/sysctl.d/90-pipe.conf';
const WORKAROUND = `# workaround for the runc rc93 hang\nfs.pipe-user-pages-soft = ${RAISED_SYSCTL}\n`;

export interface Testbed {
  fleet: Fleet;
  server: ReleaseServer;
  fixtures: ReleaseFixtures;
  /** The verified release binary every tool installs. */
  binary: string;
  binarySha256: string;
  binarySize: number;
}

export function nodeSpecs(count: number, work: string): FleetNodeSpec[] {
  const old = buildStandIn(join(work, `runc-${OLD_VERSION}`), { version: OLD_VERSION });
  return Array.from({ length: count }, (_, i) => ({
    name: `node-${String(i + 1).padStart(3, '0')}`,
    runc: { binary: old },
    sysctl: { live: RAISED_SYSCTL, files: { [WORKAROUND_FILE]: WORKAROUND } },
  }));
}

export async function startTestbed(count: number, work: string, track: (t: Partial<Testbed>) => void): Promise<Testbed> {
  const fixtures = sharedReleaseFixtures();
  const server = await startReleaseServer(fixtures.dir);
  track({ server, fixtures });
  // Many nodes start at once on two cores: give each more than the default 20 s.
  const fleet = await startFleet({ nodes: nodeSpecs(count, work), startTimeoutMs: 60_000 + count * 500 });
  track({ fleet });
  const rel = fixtures.releases.find((r) => r.repo === RELEASE.repo && r.tag === RELEASE.tag);
  if (!rel) throw new Error(`release fixtures lack ${RELEASE.repo} ${RELEASE.tag}`);
  const binary = join(rel.dir, `runc.${fixtures.arch}`);
  const bytes = readFileSync(binary);
  return { fleet, server, fixtures, binary, binarySha256: createHash('sha256').update(bytes).digest('hex'), binarySize: bytes.length };
}

async function eachNode<T>(fleet: Fleet, limit: number, fn: (name: string, i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(fleet.nodes.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, fleet.nodes.length) }, async () => {
      while (next < fleet.nodes.length) {
        const i = next++;
        out[i] = await fn(fleet.nodes[i]!.name, i);
      }
    }),
  );
  return out;
}

/** Every node back to the old runc and the raised sysctl; everything any tool left behind removed. */
export async function resetFleet(fleet: Fleet): Promise<void> {
  await eachNode(fleet, 8, async (name) => {
    const n = fleet.node(name);
    const runc = n.runcPath as string;
    const script = [
      'set -eu',
      'rm -rf /var/lib/runc-rollout/* /var/lib/runc-rollout/.[!.]* 2>/dev/null || :',
      `rm -f ${q(runc)}.* /usr/local/sbin/.runc.* 2>/dev/null || :`,
      `install -m 0755 ${q(`${n.dir}/stage/runc`)} /usr/local/sbin/.runc.bench-reset`,
      `mv -f /usr/local/sbin/.runc.bench-reset ${q(runc)}`,
      'find /etc/sysctl.d -mindepth 1 -delete',
      `printf %s ${q(WORKAROUND)} > ${WORKAROUND_FILE}`,
      `echo ${RAISED_SYSCTL} > /proc/sys/fs/pipe-user-pages-soft`,
      'rm -rf /tmp/.ansible-bench /tmp/ansible-smoke /tmp/rrb-floor /run/ansible-smoke',
      `${q(runc)} --version | head -n 1`,
    ].join('\n');
    const r = await fleet.exec(name, script, { timeoutMs: 60_000 });
    if (r.code !== 0 || !r.stdout.includes(OLD_VERSION)) throw new Error(`reset of ${name} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  });
}

/** Nodes that do not hold the release binary with the sysctl at 16384 (empty: all done). */
export async function nodesNotUpgraded(fleet: Fleet, sha256: string): Promise<string[]> {
  const bad = await eachNode(fleet, 8, async (name) => {
    const n = fleet.node(name);
    const r = await fleet.exec(name, `sha256sum < ${q(n.runcPath as string)}; cat /proc/sys/fs/pipe-user-pages-soft`);
    const [sum, live] = r.stdout.trim().split('\n');
    const ok = sum?.split(' ')[0] === sha256 && Number(live) === TARGET_SYSCTL;
    return ok ? null : `${name} (sha256 ${sum?.slice(0, 12)}, sysctl ${live})`;
  });
  return bad.filter((b): b is string => b !== null);
}
