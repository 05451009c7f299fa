// Proves the test fleet (issue 2): real sshd per node, reached with only the
// fleet's key and known_hosts; each node sees its own runc, sysctl, users and
// files; the machine itself is left exactly as it was, with no process behind.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { fleetUnsupportedReason, startFleet, type Fleet, type FleetNode } from '../harness/fleet.js';
import { LOCK_ROOT } from '../harness/fleet/address-lock.js';
import { descendants, isListening, run } from '../harness/fleet/proc.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { buildStandIn } from '../harness/standin.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the fleet harness test: ${unsupported}`);

function digest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** What the fleet must never change on the machine. */
function machineState(): Record<string, string> {
  const state: Record<string, string> = {};
  state.sysctl = readFileSync('/proc/sys/fs/pipe-user-pages-soft', 'utf8');
  for (const f of ['/etc/passwd', '/etc/shadow', '/etc/group', '/etc/sudoers', '/etc/sysctl.conf']) state[f] = existsSync(f) ? digest(f) : 'absent';
  const listing = (dir: string, withDigests: boolean) => {
    if (!existsSync(dir)) return 'absent';
    return readdirSync(dir).sort().map((e) => {
      const p = join(dir, e);
      return withDigests && statSync(p).isFile() ? `${e}:${digest(p)}` : e;
    }).join(',');
  };
  for (const d of ['/usr/local/sbin', '/etc/sysctl.d', '/etc/sudoers.d', join(homedir(), '.ssh')]) state[d] = listing(d, true);
  // The fleet may create this as an empty mount point, nothing more.
  state['/var/lib/runc-rollout'] = existsSync('/var/lib/runc-rollout') ? readdirSync('/var/lib/runc-rollout').join(',') : '';
  return state;
}

function sshArgs(fleet: Fleet, node: FleetNode, command: string, opts: { knownHosts?: string; connectTimeout?: number } = {}): string[] {
  return [
    '-F', '/dev/null',
    '-i', fleet.identityFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${opts.knownHosts ?? fleet.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', `ConnectTimeout=${opts.connectTimeout ?? 10}`,
    '-p', String(node.port),
    '-l', node.user,
    node.host,
    command,
  ];
}

function ssh(fleet: Fleet, node: FleetNode, command: string, opts: { knownHosts?: string; connectTimeout?: number; input?: string } = {}) {
  return run('ssh', sshArgs(fleet, node, command, opts), { input: opts.input });
}

/** Host pids whose command line mentions the fleet's folder (its sshd's, its namespace holders). */
function processesOf(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(dir)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe.skipIf(unsupported)('test fleet: two nodes over real SSH', () => {
  let fleet: Fleet;
  let before: Record<string, string>;
  let bins: string;

  beforeAll(async () => {
    before = machineState();
    bins = mkdtempSync(join(tmpdir(), 'runc-rollout-harness-bins-'));
    fleet = await startFleet({
      nodes: [
        { name: 'node-1', runc: { binary: buildStandIn(join(bins, 'old'), { version: '1.1.11' }) }, sysctl: { live: 65536 } },
        {
          name: 'node-2',
          runc: { binary: buildStandIn(join(bins, 'new'), { version: '1.2.9' }), path: '/usr/bin/runc' },
          sysctl: { live: 1024 },
          user: { name: 'deploy', sudo: 'nopasswd' },
          labels: { pool: 'gpu' },
        },
      ],
    });
  });

  afterAll(async () => {
    await fleet?.stop();
    rmSync(bins, { recursive: true, force: true });
  });

  it('writes a key, a known_hosts and an inventory in the documented format', () => {
    const inv = parse(readFileSync(fleet.inventoryPath, 'utf8'));
    expect(inv.ssh).toEqual({ user: 'root', port: 22, identityFile: fleet.identityFile, knownHosts: fleet.knownHosts, hostKeyPolicy: 'strict' });
    expect(inv.nodes).toEqual([
      { name: 'node-1', host: fleet.nodes[0]!.host },
      { name: 'node-2', host: fleet.nodes[1]!.host, ssh: { user: 'deploy', sudo: true }, runc: { path: '/usr/bin/runc' }, labels: { pool: 'gpu' } },
    ]);
    expect(fleet.nodes.map((n) => n.host)).toEqual([`127.0.${fleet.subnet}.11`, `127.0.${fleet.subnet}.12`]);
    expect(readFileSync(fleet.knownHosts, 'utf8')).toMatch(new RegExp(`^127\\.0\\.${fleet.subnet}\\.11 ssh-ed25519 `, 'm'));
    expect(statSync(fleet.identityFile).mode & 0o077).toBe(0);
  });

  it('serves each node its own runc and sysctl over SSH', async () => {
    const seen = await Promise.all(
      fleet.nodes.map(async (n) => {
        const r = await ssh(fleet, n, `${n.runcPath} --version | head -1; cat /proc/sys/fs/pipe-user-pages-soft; id -un`);
        expect(r.stderr).not.toMatch(/warning|error/i);
        expect(r.code).toBe(0);
        return r.stdout.trim().split('\n');
      }),
    );
    expect(seen).toEqual([
      ['runc version 1.1.11', '65536', 'root'],
      ['runc version 1.2.9', '1024', 'deploy'],
    ]);
  });

  it('gives root a stock .bashrc, not this machine’s (no pyenv or cargo set-up per SSH command)', async () => {
    const r = await ssh(fleet, fleet.node('node-1'), 'echo "PYENV_ROOT=${PYENV_ROOT:-unset}"; cat ~/.bashrc');
    expect(r.code).toBe(0);
    const [env, ...rc] = r.stdout.split('\n');
    expect(env).toBe('PYENV_ROOT=unset');
    expect(rc.join('\n')).toContain('stock Debian root');
    expect(rc.join('\n')).not.toMatch(/pyenv|cargo/);
  });

  it('runs a real container through each node’s runc over SSH (as root, and through sudo)', async () => {
    execFileSync('/usr/sbin/runc', ['spec', '--bundle', bins]);
    const config = JSON.parse(readFileSync(join(bins, 'config.json'), 'utf8'));
    config.process.terminal = false;
    config.process.args = ['/bin/sh', '-c', 'echo container-says-$(hostname)'];
    for (const dir of ['/bin', '/lib', '/lib64', '/usr', '/sbin'].filter((d) => existsSync(d))) {
      config.mounts.push({ destination: dir, type: 'bind', source: dir, options: ['rbind', 'ro'] });
    }
    const results = await Promise.all(
      fleet.nodes.map((n) => {
        // Random ids: every node shares the machine's cgroup tree, and $$ repeats across pid namespaces.
        const id = `harness-${randomBytes(4).toString('hex')}`;
        const script = `set -e; B=/var/lib/runc-rollout/${id}; mkdir -p $B/rootfs; cat > $B/config.json; ${n.runcPath} run --bundle $B ${id} </dev/null; rm -rf $B`;
        return ssh(fleet, n, n.user === 'root' ? script : `sudo -n sh -c '${script}'`, { input: JSON.stringify(config) });
      }),
    );
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'container-says-runc\n' });
  });

  it('checks host keys: the same node is refused with a known_hosts that lacks its key', async () => {
    const r = await ssh(fleet, fleet.nodes[0]!, 'true', { knownHosts: '/dev/null' });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/Host key verification failed/);
  });

  it('gives the non-root user passwordless sudo, and only through sudo is it root', async () => {
    const r = await ssh(fleet, fleet.node('node-2'), 'id -u; sudo -n id -u; test -w /usr/local/sbin && echo writable || echo not-writable');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([expect.not.stringMatching(/^0$/), '0', 'not-writable']);
  });

  it('keeps sysctl writes and file changes on the node that made them', async () => {
    const [one, two] = fleet.nodes as [FleetNode, FleetNode];
    const hostTmp = `/tmp/runc-rollout-harness-marker-${process.pid}`;
    const r = await ssh(fleet, one, `sysctl -w fs.pipe-user-pages-soft=4096 && touch /usr/local/sbin/marker /etc/sysctl.d/50-marker.conf ${hostTmp}`);
    expect(r.code, r.stderr).toBe(0);
    expect(await fleet.liveSysctl('node-1')).toBe(4096);
    expect(await fleet.liveSysctl('node-2')).toBe(1024);
    expect(await fleet.fileExists('node-1', '/usr/local/sbin/marker')).toBe(true);
    expect(await fleet.fileExists('node-2', '/usr/local/sbin/marker')).toBe(false);
    expect(await fleet.fileExists('node-1', hostTmp)).toBe(true);
    expect(existsSync(hostTmp)).toBe(false);
    const other = await ssh(fleet, two, 'cat /proc/sys/fs/pipe-user-pages-soft; ls /usr/local/sbin /etc/sysctl.d');
    expect(other.stdout.trim()).toBe('1024\n/etc/sysctl.d:\n\n/usr/local/sbin:');
    expect(machineState()).toEqual(before);
  });

  it('drops open sessions when it kills a node’s sshd, and restores sshd on demand', async () => {
    const one = fleet.nodes[0]!;
    const session = spawn('ssh', sshArgs(fleet, one, 'echo up; sleep 600'), { stdio: ['ignore', 'pipe', 'pipe'] });
    const sessionEnd = new Promise<number | null>((resolve) => session.once('close', (code) => resolve(code)));
    await Promise.race([sessionEnd, new Promise<void>((resolve) => session.stdout.on('data', (c: Buffer) => c.toString().includes('up') && resolve()))]);
    expect(session.exitCode).toBe(null);
    await fleet.killSshd('node-1');
    expect(await sessionEnd).toBe(255);
    expect(await isListening(one.host, one.port)).toBe(false);
    expect((await ssh(fleet, one, 'true')).code).toBe(255);
    await fleet.restartSshd('node-1');
    expect(await ssh(fleet, one, 'runc --version | head -1')).toMatchObject({ code: 0, stdout: 'runc version 1.1.11\n' });
  });

  it('stops every process it started and leaves the machine as it found it', async () => {
    const { dir, subnet } = fleet;
    expect(processesOf(dir).length).toBeGreaterThan(0);
    await fleet.stop();
    await fleet.stop(); // idempotent
    expect(processesOf(dir)).toEqual([]);
    for (const n of fleet.nodes) expect(await isListening(n.host, n.port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    // Another fleet may claim the subnet at once; it just must not be ours any more.
    const lock = `${LOCK_ROOT}/${subnet}.lock/owner`;
    expect(existsSync(lock) && readFileSync(lock, 'utf8').startsWith(`${process.pid} `)).toBe(false);
    expect(machineState()).toEqual(before);
  });
});

describe.skipIf(unsupported)('test fleet: per-node options for later fault tests', () => {
  const oldConf = 'fs.pipe-user-pages-soft = 0\n';
  let before: Record<string, string>;
  let bins: string;
  // Registered before useFleet's hook, so it runs first.
  beforeAll(() => {
    before = machineState();
    bins = mkdtempSync(join(tmpdir(), 'runc-rollout-harness-bins-'));
  });
  const handle = useFleet(() => {
    const standIn = buildStandIn(join(bins, 'runc'), { version: '1.0.0-rc93' });
    return {
      nodes: [
        { name: 'small', runc: { binary: standIn }, diskSize: '1m' },
        {
          name: 'bare',
          runc: null,
          user: { name: 'ops', sudo: 'password' },
          sysctl: { readOnly: true, live: 0, files: { '/etc/sysctl.d/90-rc93.conf': oldConf, '/etc/sysctl.conf': `# site\n${oldConf}`, '/run/sysctl.d/10-x.conf': '' } },
          containerdConfig: 'version = 2\n',
        },
        { name: 'gone', down: true },
        { name: 'mute', blackhole: true },
        { name: 'moved', runc: { binary: standIn }, hostKeyChanged: true },
      ],
    };
  });
  afterAll(() => rmSync(bins, { recursive: true, force: true }));
  // Read per test: the fleet exists only once beforeAll has run.
  let fleet: Fleet;
  beforeEach(() => {
    fleet = handle.fleet;
  });

  it('a small disk fills up', async () => {
    const r = await ssh(fleet, fleet.node('small'), 'runc --version | head -1; dd if=/dev/zero of=/var/lib/runc-rollout/fill bs=64k count=32 2>&1');
    expect(r.stdout).toMatch(/^runc version 1\.0\.0-rc93\n/);
    expect(r.stdout).toMatch(/No space left on device/);
    expect(r.code).not.toBe(0);
  });

  it('a bare node has no runc, a read-only sysctl, its own config files, and sudo that wants a password', async () => {
    const r = await ssh(fleet, fleet.node('bare'), [
      'command -v runc || echo no-runc',
      'sysctl -w fs.pipe-user-pages-soft=16384 >/dev/null 2>&1 && echo written || echo refused',
      'cat /proc/sys/fs/pipe-user-pages-soft /etc/sysctl.d/90-rc93.conf /etc/sysctl.conf /etc/containerd/config.toml',
      'ls /run/sysctl.d',
      'sudo -n true 2>&1 || echo sudo-refused',
    ].join('; '));
    expect(r.stdout.split('\n')).toEqual(['no-runc', 'refused', '0', oldConf.trim(), '# site', oldConf.trim(), 'version = 2', '10-x.conf', expect.stringMatching(/password is required/), 'sudo-refused', '']);
    expect(machineState()).toEqual(before);
  });

  it('an unreachable node refuses, a black hole never speaks, a moved node shows another key', async () => {
    const gone = await ssh(fleet, fleet.node('gone'), 'true');
    expect(gone.stderr).toMatch(/Connection refused/);
    const mute = fleet.node('mute');
    expect(await isListening(mute.host, mute.port)).toBe(true);
    const silent = await ssh(fleet, mute, 'true', { connectTimeout: 1 });
    expect(silent.stderr).toMatch(/timed out/);
    const moved = await ssh(fleet, fleet.node('moved'), 'true');
    expect(moved.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED/);
    for (const r of [gone, silent, moved]) expect(r.code).toBe(255);
  });

  it('writes inventory variants', () => {
    const path = fleet.writeInventory({ ssh: { hostKeyPolicy: 'accept-new' }, runc: { path: '/usr/local/sbin/runc' } }, { nodes: { gone: null, small: { labels: { disk: 'tiny' } } } });
    const inv = parse(readFileSync(path, 'utf8'));
    expect(inv.ssh).toMatchObject({ user: 'root', hostKeyPolicy: 'accept-new', identityFile: fleet.identityFile });
    expect(inv.runc).toEqual({ path: '/usr/local/sbin/runc' });
    expect(inv.nodes.map((n: { name: string }) => n.name)).toEqual(['small', 'bare', 'mute', 'moved']);
    expect(inv.nodes[0]).toEqual({ name: 'small', host: fleet.node('small').host, labels: { disk: 'tiny' } });
    expect(inv.nodes[1].ssh).toEqual({ user: 'ops', sudo: true });
    expect(parse(readFileSync(fleet.inventoryPath, 'utf8')).ssh.hostKeyPolicy).toBe('strict');
  });

  it('snapshots what the tool may touch, so tests can prove nothing changed', async () => {
    const first = await fleet.snapshot('small');
    expect(first['/usr/local/sbin/runc']).toMatch(/^file 755 [0-9a-f]{64}$/);
    expect(first['sysctl:live']).toBe('16384');
    expect(await fleet.snapshot('small')).toEqual(first);
    await fleet.exec('small', 'echo 8192 > /proc/sys/fs/pipe-user-pages-soft; touch /usr/local/sbin/.runc-staged');
    const after = await fleet.snapshot('small');
    expect(after['sysctl:live']).toBe('8192');
    expect(after['/usr/local/sbin/.runc-staged']).toBeDefined();
  });

  it('runs probes in the background and stops commands without leaving processes in the node', async () => {
    const probe = fleet.background('small', 'while :; do runc --version >/dev/null || echo PROBE-MISSING; sleep 0.05; done');
    const slow = await fleet.exec('small', 'echo begun; sleep 600; echo SLOW-END', { timeoutMs: 500 });
    expect(slow.stdout).toBe('begun\n');
    const running = (await fleet.exec('small', 'ps -eo args')).stdout;
    expect(running).toMatch(/PROBE-MISSING/);
    const result = await probe.stop();
    expect(result.stdout).toBe('');
    const left = (await fleet.exec('small', 'ps -eo args')).stdout;
    expect(left).not.toMatch(/PROBE-MISSING|sleep 600/);
  });

  it('a failed start says which node and why, and leaves nothing running', async () => {
    const ours = () => descendants(process.pid).filter((p) => ['unshare', 'nsenter', 'sshd'].includes(p.comm)).length;
    const locks = () => readdirSync(LOCK_ROOT).filter((l) => readFileSync(join(LOCK_ROOT, l, 'owner'), 'utf8').startsWith(`${process.pid} `)).length;
    const [procsBefore, locksBefore] = [ours(), locks()];
    const big = buildStandIn(join(bins, 'big'), { version: '1.2.9' });
    await expect(
      startFleet({ nodes: [{ name: 'fine', runc: null }, { name: 'cramped', runc: { binary: big }, diskSize: '64k' }] }),
    ).rejects.toThrow(/fleet node cramped \(127\.0\.\d+\.12\): namespace setup failed[^]*No space left on device/);
    expect([ours(), locks()]).toEqual([procsBefore, locksBefore]);
  });

  it('a second fleet started meanwhile gets its own addresses', async () => {
    const other = await startFleet({ nodes: [{ name: 'small', runc: null }] });
    try {
      expect(other.subnet).not.toBe(fleet.subnet);
      expect(await ssh(other, other.nodes[0]!, 'command -v runc || echo none')).toMatchObject({ code: 0, stdout: 'none\n' });
    } finally {
      await other.stop();
    }
  });
});
