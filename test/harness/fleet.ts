// The real test fleet: N fake hosts on loopback, each a private mount+pid
// namespace running the machine's real sshd, with its own /usr/local/sbin,
// /etc (copy-on-write), /run, /tmp, /var/lib/runc-rollout and
// fs.pipe-user-pages-soft. Tests run the real tool against it over SSH.
//
//   let fleet: Fleet;
//   beforeAll(async () => { fleet = await startFleet({ nodes: [{ name: 'node-1', runc: { binary } }] }); });
//   afterAll(() => fleet?.stop());
//
// Requires root (namespaces, port 22, sshd). Nothing on the machine changes
// except an empty mount point /var/lib/runc-rollout and the lock folder.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { q } from '../../src/core/shell.js';
import { claimSubnet, type AddressLock } from './fleet/address-lock.js';
import { baseInventory, variantDoc, writeInventoryFile } from './fleet/inventory.js';
import { BlackholeNode, NamespaceNode } from './fleet/node-runtime.js';
import { STATE_DIR, checkSpec, prepareNode, runcPathOf } from './fleet/node-script.js';
import { parseSnapshot, snapshotScript } from './fleet/node-snapshot.js';
import { isListening, runOk } from './fleet/proc.js';
import type { Fleet, FleetNode, FleetNodeSpec, FleetOptions } from './fleet/types.js';

export * from './fleet/types.js';

const PORT = 22;
const live = new Set<{ nodes: NamespaceNode[]; dir: string; lock: AddressLock }>();
let safetyNet = false;

/** Why the fleet cannot run here, or null when it can (tests skip with this message). */
export function fleetUnsupportedReason(): string | null {
  if (process.platform !== 'linux') return 'the test fleet needs Linux namespaces';
  if (process.getuid?.() !== 0) return 'the test fleet needs root (mount namespaces, sshd on port 22); run the suite as root, as .ci/run does';
  return null;
}

function installSafetyNet(): void {
  if (safetyNet) return;
  safetyNet = true;
  // A crashed test never reaches afterAll: kill what is left and free the subnet.
  process.on('exit', () => {
    for (const f of live) {
      for (const n of f.nodes) n.killNow();
      rmSync(f.dir, { recursive: true, force: true });
      f.lock.release();
    }
  });
}

function freeUids(count: number): number[] {
  const used = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => Number(l.split(':')[2])));
  const out: number[] = [];
  for (let uid = 20000; out.length < count; uid++) if (!used.has(uid)) out.push(uid);
  return out;
}

async function keygen(file: string, comment: string): Promise<string> {
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], 'ssh-keygen');
  return readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

function checkSpecs(specs: FleetNodeSpec[]): void {
  if (specs.length === 0 || specs.length > 240) throw new Error('startFleet: want 1..240 nodes');
  const names = new Set<string>();
  for (const s of specs) {
    checkSpec(s);
    if (names.has(s.name)) throw new Error(`startFleet: duplicate node name ${s.name}`);
    names.add(s.name);
    if (s.down && s.blackhole) throw new Error(`fleet node ${s.name}: down and blackhole exclude each other`);
  }
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const unsupported = fleetUnsupportedReason();
  if (unsupported) throw new Error(unsupported);
  checkSpecs(opts.nodes);
  installSafetyNet();
  const hostOf = (subnet: number, i: number) => `127.0.${subnet}.${11 + i}`;
  // A stranger (a leftover sshd, another tool) on one of our addresses would answer in our place.
  const lock = await claimSubnet(async (subnet) => !(await Promise.all(opts.nodes.map((_, i) => isListening(hostOf(subnet, i), PORT)))).some(Boolean));
  const dir = mkdtempSync(join(tmpdir(), 'runc-rollout-fleet-'));
  lock.recordFleetDir(dir);
  // Non-root SSH users must reach authorized_keys and their homes below here.
  chmodSync(dir, 0o711);
  const runtimes: NamespaceNode[] = [];
  const blackholes: BlackholeNode[] = [];
  const entry = { nodes: runtimes, dir, lock };
  live.add(entry);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.allSettled([...runtimes.map((n) => n.stop()), ...blackholes.map((b) => b.stop())]);
      rmSync(dir, { recursive: true, force: true });
      lock.release();
      live.delete(entry);
    })());

  try {
    const identityFile = join(dir, 'client_key');
    await keygen(identityFile, 'runc-rollout-fleet');
    const authorizedKeys = join(dir, 'authorized_keys');
    copyFileSync(`${identityFile}.pub`, authorizedKeys);
    chmodSync(authorizedKeys, 0o644);
    mkdirSync(STATE_DIR, { recursive: true }); // only a mount point: every node binds its own over it
    mkdirSync(join(dir, 'nodes'), { mode: 0o711 });
    const uids = freeUids(opts.nodes.length);
    // Certificate authorities only when a node asks for them (ssh-keygen -s signs with these).
    const hostCa = opts.nodes.some((s) => s.hostCertificate) ? join(dir, 'host_ca') : undefined;
    const userCa = opts.nodes.some((s) => s.trustUserCa) ? join(dir, 'user_ca') : undefined;
    if (hostCa) await keygen(hostCa, 'runc-rollout-fleet-host-ca');
    if (userCa) await keygen(userCa, 'runc-rollout-fleet-user-ca');
    const timeoutMs = opts.startTimeoutMs ?? 20_000;

    const nodes: FleetNode[] = opts.nodes.map((spec, i) => ({
      name: spec.name,
      host: hostOf(lock.subnet, i),
      port: PORT,
      dir: join(dir, 'nodes', spec.name),
      user: typeof spec.user === 'object' ? spec.user.name : 'root',
      sudo: typeof spec.user === 'object' && spec.user.sudo !== 'none',
      runcPath: runcPathOf(spec),
      kind: spec.down ? 'down' : spec.blackhole ? 'blackhole' : 'sshd',
      spec,
    }));
    const knownHosts: string[] = [];
    const results = await Promise.allSettled(
      nodes.map(async (n, i) => {
        mkdirSync(n.dir, { mode: 0o711 });
        if (n.kind === 'down') return;
        if (n.kind === 'blackhole') {
          const b = new BlackholeNode(n.name, n.host, n.port);
          blackholes.push(b);
          return b.start();
        }
        const served = await keygen(join(n.dir, 'hostkey'), n.name);
        const listed = n.spec.hostKeyChanged ? await keygen(join(n.dir, 'hostkey-known'), `${n.name}-changed`) : served;
        knownHosts.push(`${n.port === 22 ? n.host : `[${n.host}]:${n.port}`} ${listed}`);
        const certs: { hostCertificate?: string; trustedUserCaKeys?: string } = {};
        if (n.spec.hostCertificate && hostCa) {
          await runOk('ssh-keygen', ['-q', '-s', hostCa, '-I', `${n.name}-host`, '-h', '-n', n.host, join(n.dir, 'hostkey.pub')], 'ssh-keygen -s');
          certs.hostCertificate = join(n.dir, 'hostkey-cert.pub');
        }
        if (n.spec.trustUserCa && userCa) certs.trustedUserCaKeys = `${userCa}.pub`;
        const script = prepareNode(n.spec, { dir: n.dir, fleetDir: dir, host: n.host, port: n.port, authorizedKeys, uid: uids[i]!, ...certs, ...(opts.hostRcFiles ? { hostRcFiles: true } : {}) });
        const rt = new NamespaceNode(n.name, n.dir, n.host, n.port);
        runtimes.push(rt);
        await rt.start(script, timeoutMs);
      }),
    );
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`fleet node ${nodes[i]!.name} (${nodes[i]!.host}): ${(r.reason as Error).message ?? r.reason}`] : []));
    if (failures.length) throw new Error(failures.join('\n'));

    const knownHostsPath = join(dir, 'known_hosts');
    writeFileSync(knownHostsPath, knownHosts.sort().join('\n') + '\n');
    const base = baseInventory(nodes, { port: PORT, identityFile, knownHosts: knownHostsPath });
    const inventoryPath = writeInventoryFile(dir, base, 'inventory.yaml');

    const byName = new Map(nodes.map((n) => [n.name, n]));
    const node = (name: string): FleetNode => {
      const n = byName.get(name);
      if (!n) throw new Error(`no fleet node ${name}`);
      return n;
    };
    const runtime = (name: string): NamespaceNode => {
      const rt = runtimes.find((r) => r.name === node(name).name);
      if (!rt) throw new Error(`fleet node ${name} is ${node(name).kind}: it has no sshd or namespace`);
      return rt;
    };
    const execOk = async (name: string, command: string): Promise<string> => {
      const r = await runtime(name).exec(command);
      if (r.code !== 0) throw new Error(`fleet node ${name}: \`${command}\` exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    };

    const fleet: Fleet = {
      dir,
      subnet: lock.subnet,
      nodes,
      identityFile,
      knownHosts: knownHostsPath,
      ...(hostCa ? { hostCa } : {}),
      ...(userCa ? { userCa } : {}),
      inventoryPath,
      node,
      inventory: () => structuredClone(base),
      writeInventory: (extra, variant) => writeInventoryFile(dir, variantDoc(base, extra, variant), variant?.file),
      exec: (name, command, o) => runtime(name).exec(command, o),
      background: (name, command) => runtime(name).background(command),
      readFile: (name, path) => execOk(name, `cat -- ${q(path)}`),
      fileExists: async (name, path) => (await runtime(name).exec(`test -e ${q(path)} || test -L ${q(path)}`)).code === 0,
      sha256: async (name, path) => (await execOk(name, `sha256sum < ${q(path)}`)).split(' ')[0]!,
      liveSysctl: async (name) => Number((await execOk(name, 'cat /proc/sys/fs/pipe-user-pages-soft')).trim()),
      snapshot: async (name) => parseSnapshot(await execOk(name, snapshotScript(node(name).runcPath))),
      killSshd: (name) => runtime(name).killSshd(),
      restartSshd: (name) => runtime(name).restartSshd(),
      sshdLog: (name) => runtime(name).log.toString(),
      stop,
    };
    return fleet;
  } catch (e) {
    await stop();
    throw e;
  }
}
