// The OpenSSH transport (`--ssh-client openssh`) on the real test fleet: the
// system ssh as a ControlMaster per node with every command multiplexed over
// it. Host certificates (@cert-authority, @revoked), user certificates
// (TrustedUserCAKeys), sudo, streamed uploads, one connection per node, and no
// ssh process left behind: after close, after a killed node, after a timeout.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmd, q } from '../../src/core/shell.js';
import { STATE_DIR, type NodeSpec } from '../../src/core/types.js';
import { RemoteCommandError, RemoteCommandInterruptedError, SshError } from '../../src/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createOpensshTransport } from '../../src/ssh/openssh-transport.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { rejection } from '../harness/rejection.js';

const ROOT = resolve(import.meta.dirname, '../..');
const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the openssh transport e2e test: ${unsupported}`);

/** ssh processes this test process started and that still run (the transport's are its direct children). */
function sshChildren(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm === 'ssh') out.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 200)}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Processes whose command line mentions `dir` (a controller's TMPDIR holds its control sockets: its ssh processes name it). */
function processesUsing(dir: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return line.includes(dir) && !line.includes('--input-type') ? [`${pid} ${line.slice(0, 200)}`] : [];
      } catch {
        return [];
      }
    });
}

async function noSshChildren(): Promise<string[]> {
  for (let i = 0; i < 40 && sshChildren().length; i++) await new Promise((r) => setTimeout(r, 50));
  return sshChildren();
}

describe.skipIf(unsupported)('openssh transport on the test fleet', () => {
  let fleet: Fleet;
  let nodes: Map<string, NodeSpec>;
  let tmp: string;
  const sessions: NodeSession[] = [];
  // -F none: ssh reads no config file at all, so nothing on this machine changes what is tested.
  const transport = createOpensshTransport({ configFile: 'none', connectTimeoutMs: 10_000 });

  const spec = (name: string, ssh: Partial<NodeSpec['ssh']> = {}): NodeSpec => {
    const n = nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return { ...n, ssh: { ...n.ssh, ...ssh } };
  };
  const open = async (name: string, ssh: Partial<NodeSpec['ssh']> = {}) => {
    const s = await transport.connect(spec(name, ssh));
    sessions.push(s);
    return s;
  };
  const logins = (name: string) => (fleet.sshdLog(name).match(/Accepted publickey/g) ?? []).length;
  const waitFor = async (name: string, check: string) => {
    for (let i = 0; i < 200; i++) {
      if ((await fleet.exec(name, check)).code === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${name}: never saw ${check}`);
  };
  const pub = (file: string) => readFileSync(file, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const knownHostsFile = (name: string, lines: string[]) => {
    const file = join(tmp, name);
    writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
    return file;
  };
  const subnetPattern = () => `127.0.${fleet.subnet}.*`;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rr-openssh-e2e-'));
    fleet = await startFleet({
      nodes: [
        { name: 'o-root' },
        { name: 'o-sudo', user: { name: 'deploy', sudo: 'nopasswd' } },
        { name: 'o-cert', hostCertificate: true },
        { name: 'o-ucert', trustUserCa: true },
        { name: 'o-drop' },
        { name: 'o-hole', blackhole: true },
      ],
    });
    const inv = await loadInventory(fleet.inventoryPath, { home: tmp });
    nodes = new Map(inv.nodes.map((n) => [n.name, n]));
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await fleet?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('runs as root and through sudo -n over one connection; uploads stream through stdin', async () => {
    const before = { root: logins('o-root'), sudo: logins('o-sudo') };
    const s = await open('o-root');
    const hostile = `$(touch ${STATE_DIR}/injected); '"\`x\``;
    expect(await s.run(`id -un; ${cmd('printf', '[%s]', hostile)}`)).toEqual({ code: 0, signal: null, stdout: `root\n[${hostile}]`, stderr: '' });
    expect(await fleet.fileExists('o-root', `${STATE_DIR}/injected`)).toBe(false);
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => s.run(`echo ${i}`)));
    expect(many.map((m) => m.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));

    const data = randomBytes(5 * 1024 * 1024 + 777);
    const local = join(tmp, 'upload.bin');
    writeFileSync(local, data);
    const want = createHash('sha256').update(data).digest('hex');
    const u = await open('o-sudo');
    expect((await u.run('id -un; echo "$SUDO_USER"')).stdout).toBe('root\ndeploy\n');
    const target = `${STATE_DIR}/up load.bin`;
    await u.run(cmd('dd', `of=${target}`, 'bs=1M', 'conv=fsync', 'status=none'), { stdin: createReadStream(local), timeoutMs: 120_000 });
    expect(await fleet.sha256('o-sudo', target)).toBe(want);
    expect((await u.run(`sha256sum < ${q(target)}`)).stdout.split(' ')[0]).toBe(want);
    expect((await u.run('cat', { stdin: 'hello\n' })).stdout).toBe('hello\n');
    expect((await u.run('sha256sum', { stdin: data })).stdout.split(' ')[0]).toBe(want);
    // Every command above rode the one connection each session opened.
    expect([logins('o-root') - before.root, logins('o-sudo') - before.sudo]).toEqual([1, 1]);
    await Promise.all([s.close(), u.close()]);
    expect(await noSshChildren()).toEqual([]);
  });

  it('failures, timeouts and aborts say what happened; the session stays usable', async () => {
    const s = await open('o-sudo');
    const failed = await rejection(s.run('echo out; echo oops >&2; exit 3'));
    expect(failed).toBeInstanceOf(RemoteCommandError);
    expect(failed).toMatchObject({ node: 'o-sudo', code: 3, stderrTail: 'oops' });
    expect(await s.run('echo out; exit 4', { allowFailure: true })).toEqual({ code: 4, signal: null, stdout: 'out\n', stderr: '' });
    const timedOut = await rejection(s.run('sleep 600', { timeoutMs: 300 }));
    expect((timedOut as RemoteCommandInterruptedError).reason).toBe('timeout');
    expect(timedOut.message).toBe('o-sudo: timed out after 0.3s; stopped on the node (timeout(1) killed it): sleep 600');
    await waitFor('o-sudo', '! pgrep -f "slee[p] 600"');
    const ac = new AbortController();
    const running = rejection(s.run('sleep 601', { signal: ac.signal }));
    await waitFor('o-sudo', 'pgrep -f "slee[p] 601"');
    ac.abort();
    expect((await running as RemoteCommandInterruptedError).reason).toBe('aborted');
    await fleet.exec('o-sudo', 'pkill -f "slee[p] 601"');
    // 255 is what ssh exits with when it fails: with the master still up it is not mistaken for a lost connection.
    const ambiguous = await rejection(s.run('exit 255', { allowFailure: true }));
    expect(ambiguous).toBeInstanceOf(SshError);
    expect(ambiguous.message).toMatch(/^o-sudo: ssh exited 255 running a command over the open connection \(the remote command exited 255/);
    expect((await s.run('echo still here')).stdout).toBe('still here\n');
    // The killed clients are gone; only the master remains until close.
    for (let i = 0; i < 40 && sshChildren().length > 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect(sshChildren()).toHaveLength(1);
    await s.close();
    expect(await noSshChildren()).toEqual([]);
  });

  it('accepts a host certificate through @cert-authority alone, as ssh does', async () => {
    const caOnly = knownHostsFile('kh-ca-only', [`@cert-authority ${subnetPattern()} ${pub(`${fleet.hostCa}.pub`)}`]);
    const s = await open('o-cert', { knownHosts: caOnly });
    expect((await s.run('echo certified')).stdout).toBe('certified\n');
    await s.close();
    // Nothing was appended: the CA vouched for the key.
    expect(readFileSync(caOnly, 'utf8')).toBe(`@cert-authority ${subnetPattern()} ${pub(`${fleet.hostCa}.pub`)}\n`);
  });

  it('refuses the certified host without the CA line, and when its key is @revoked, naming the host', async () => {
    const host = fleet.node('o-cert').host;
    const ca = `@cert-authority ${subnetPattern()} ${pub(`${fleet.hostCa}.pub`)}`;
    // Another CA's line matches the host too, but did not sign its certificate.
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'other_ca')]);
    const noCa = knownHostsFile('kh-other-ca', [`@cert-authority ${subnetPattern()} ${pub(join(tmp, 'other_ca.pub'))}`]);
    const err = await rejection(transport.connect(spec('o-cert', { knownHosts: noCa })));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toBe(
      `o-cert: root@${host}:22: host key verification failed: the host key is not known and hostKeyPolicy is strict ` +
        `(ssh: No ED25519 host key is known for ${host} and you have requested strict checking.); list the host key, or the CA that signs its host certificate (@cert-authority), in ${noCa}, or set hostKeyPolicy: accept-new`,
    );
    const revoked = knownHostsFile('kh-revoked', [ca, `@revoked * ${pub(join(fleet.node('o-cert').dir, 'hostkey.pub'))}`]);
    const err2 = await rejection(transport.connect(spec('o-cert', { knownHosts: revoked })));
    expect(err2).toBeInstanceOf(SshError);
    expect(err2.message).toBe(`o-cert: root@${host}:22: host key verification failed: the host key is marked @revoked (ssh: The ED25519-CERT host key for ${host} is marked as revoked.)`);
    expect(await noSshChildren()).toEqual([]);
  });

  it('ssh2 mode says plainly that it cannot check host certificates', async () => {
    const caOnly = knownHostsFile('kh-ca-for-ssh2', [`@cert-authority ${subnetPattern()} ${pub(`${fleet.hostCa}.pub`)}`]);
    const err = await rejection(createSshTransport({ connectTimeoutMs: 10_000 }).connect(spec('o-cert', { knownHosts: caOnly })));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toMatch(new RegExp(`^o-cert: root@${fleet.node('o-cert').host.replace(/\./g, '\\.')}:22: host key ssh-ed25519 SHA256:\\S+ is not in ${caOnly}; ${caOnly}:1 trusts a host certificate authority \\(@cert-authority\\) for this host, but the ssh2 client cannot check host certificates .*: use --ssh-client openssh`));
  });

  it('logs in with a user certificate the node trusts, for a key that is not in authorized_keys', async () => {
    const key = join(tmp, 'cert_user_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cert-user', '-f', key]);
    expect(readFileSync(join(fleet.dir, 'authorized_keys'), 'utf8')).not.toContain(pub(`${key}.pub`).split(' ')[1]);
    // Without a certificate the key is refused: it is the certificate that logs in below.
    const plainKey = await rejection(transport.connect(spec('o-ucert', { identityFile: key, identitiesOnly: true })));
    expect(plainKey.message).toBe(`o-ucert: root@${fleet.node('o-ucert').host}:22: authentication failed for user root (ssh: root@${fleet.node('o-ucert').host}: Permission denied (publickey).)`);
    execFileSync('ssh-keygen', ['-q', '-s', fleet.userCa!, '-I', 'rr-e2e-user', '-n', 'root', '-V', '-5m:+1h', `${key}.pub`]);
    expect(existsSync(`${key}-cert.pub`)).toBe(true);
    const before = logins('o-ucert');
    const s = await open('o-ucert', { identityFile: key, identitiesOnly: true });
    expect((await s.run('id -un')).stdout).toBe('root\n');
    expect(logins('o-ucert') - before).toBe(1);
    expect(fleet.sshdLog('o-ucert')).toMatch(/Accepted publickey for root from \S+ port \d+ ssh2: ED25519-CERT SHA256:\S+ ID rr-e2e-user/);
    await s.close();
    // A node that does not trust the user CA refuses the same certificate.
    const untrusted = await rejection(transport.connect(spec('o-root', { identityFile: key, identitiesOnly: true })));
    expect(untrusted.message).toMatch(/authentication failed for user root \(ssh: .*Permission denied \(publickey\)/);
    // ssh2 mode cannot use the certificate at all.
    expect((await rejection(createSshTransport().connect(spec('o-ucert', { identityFile: key })))).message).toMatch(/authentication failed/);
  });

  it('reaches a node through two jump hosts (nested ProxyCommand), checking every hop against its known_hosts', async () => {
    const hop = (name: string) => ({ user: 'root', host: fleet.node(name).host, port: 22 });
    const chain = [hop('o-root'), hop('o-drop')];
    // A blank and a `%` in the path: every level of quoting and token escaping must hold.
    const dir = join(tmp, 'known hosts %h');
    mkdirSync(dir);
    const kh = join(dir, 'known_hosts');
    copyFileSync(fleet.knownHosts, kh);
    const s = await open('o-sudo', { knownHosts: kh, jumpHosts: chain });
    expect((await s.run('id -un')).stdout).toBe('root\n');
    // The TCP connection to o-sudo belongs to the last hop's sshd (each node sees only its own processes).
    expect((await fleet.exec('o-drop', `ss -Htnp state established dst ${fleet.node('o-sudo').host}:22`)).stdout).toMatch(/"sshd/);
    expect((await fleet.exec('o-root', `ss -Htnp state established dst ${fleet.node('o-sudo').host}:22`)).stdout).not.toMatch(/"sshd/);
    await s.close();
    expect(await noSshChildren()).toEqual([]);
    const dropHost = fleet.node('o-drop').host;
    const withoutHop = knownHostsFile('kh-no-hop', readFileSync(fleet.knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith(`${dropHost} `)));
    const err = await rejection(transport.connect(spec('o-sudo', { knownHosts: withoutHop, jumpHosts: chain })));
    expect(err.message).toContain(`host key verification failed: the host key is not known and hostKeyPolicy is strict (ssh: No ED25519 host key is known for ${dropHost} and`);
    expect(await noSshChildren()).toEqual([]);
  });

  it('a killed node rejects the running commands as connection lost, and leaves no ssh process', async () => {
    const debug: string[] = [];
    const logged = createOpensshTransport({ configFile: 'none', log: { info() {}, warn() {}, error() {}, debug: (m) => debug.push(m), colour: false } });
    const s = await logged.connect(spec('o-drop'));
    sessions.push(s);
    const controlDir = /ControlPath=(\S+)\/m /.exec(debug.join('\n'))?.[1];
    expect(controlDir && existsSync(join(controlDir, 'm'))).toBe(true);
    const sleeping = rejection(s.run('sleep 602'));
    const upload = new PassThrough();
    const uploading = rejection(s.run(`dd of=${STATE_DIR}/partial bs=1M status=none`, { stdin: upload }));
    upload.write(randomBytes(256 * 1024));
    await waitFor('o-drop', 'pgrep -f "slee[p] 602" && pgrep -x dd');
    expect(sshChildren()).toHaveLength(3); // the master and two clients
    await fleet.killSshd('o-drop');
    for (const err of await Promise.all([sleeping, uploading])) {
      expect(err).toBeInstanceOf(RemoteCommandInterruptedError);
      expect((err as RemoteCommandInterruptedError).reason).toBe('connection-lost');
      expect(err.message).toMatch(/^o-drop: connection lost while a command ran \(the connection closed \(ssh exited 255\).*\); its outcome on the node is unknown: /);
    }
    expect(upload.destroyed).toBe(true);
    expect(s.isOpen?.()).toBe(false);
    const after = await rejection(s.run('true'));
    expect(after.message).toMatch(/^o-drop: not run: the connection is gone/);
    // The master went with the connection, the clients with it: nothing to wait for.
    expect(await noSshChildren()).toEqual([]);
    await s.close();
    expect(existsSync(controlDir!)).toBe(false);
    await fleet.restartSshd('o-drop');
    const again = await open('o-drop');
    expect((await again.run('echo back')).stdout).toBe('back\n');
    await again.close();
  });

  it('a server that never speaks SSH hits the connect timeout, and its ssh is killed', async () => {
    const quick = createOpensshTransport({ configFile: 'none', connectTimeoutMs: 1_000 });
    const started = Date.now();
    const err = await rejection(quick.connect(spec('o-hole')));
    expect(err).toBeInstanceOf(SshError);
    // Our deadline or ssh's ConnectTimeout (TCP and banner), whichever fires first.
    expect(err.message).toMatch(new RegExp(`^o-hole: root@${fleet.node('o-hole').host.replace(/\./g, '\\.')}:22: connect timed out after 1s \\((TCP, SSH handshake and authentication did not all finish|ssh: Connection timed out during banner exchange)\\)$`));
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(await noSshChildren()).toEqual([]);
    // Under a second only our own deadline can fire (ssh's ConnectTimeout is whole seconds): the master is killed.
    const quicker = await rejection(createOpensshTransport({ configFile: 'none', connectTimeoutMs: 400 }).connect(spec('o-hole')));
    expect(quicker.message).toBe(`o-hole: root@${fleet.node('o-hole').host}:22: connect timed out after 0.4s (TCP, SSH handshake and authentication did not all finish)`);
    expect(await noSshChildren()).toEqual([]);
  });

  it('a controller killed with SIGKILL takes its ssh processes with it, even while a command runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rr-openssh-killed-'));
    const script = [
      `import { createOpensshTransport } from ${JSON.stringify(join(ROOT, 'dist/ssh/openssh-transport.js'))};`,
      `const s = await createOpensshTransport({ configFile: 'none' }).connect(${JSON.stringify(spec('o-root'))});`,
      `s.run('sleep 604').catch(() => {});`,
      `setTimeout(() => console.log('running'), 500);`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('running') && resolve());
        child.once('exit', (code) => reject(new Error(`the controller exited ${code} early`)));
      });
      await waitFor('o-root', 'pgrep -f "slee[p] 604"');
      expect(processesUsing(dir).length).toBe(2); // master and client
      child.kill('SIGKILL');
      for (let i = 0; i < 60 && processesUsing(dir).length; i++) await new Promise((r) => setTimeout(r, 50));
      expect(processesUsing(dir)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await fleet.exec('o-root', 'pkill -f "slee[p] 604"');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every session closed: no ssh process and no control socket is left', async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    expect(await noSshChildren()).toEqual([]);
  });
});
