// The ssh2 transport against the real test fleet: real sshd, real sudo, real
// host keys. Covers running as root and via sudo, streamed uploads, failures,
// timeouts, host key policies, the connect timeout, sudo wanting a password,
// jump hosts and connections dropped mid-command.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cmd, q } from '../../src/core/shell.js';
import { STATE_DIR, type NodeSpec } from '../../src/core/types.js';
import { RemoteCommandError, RemoteCommandInterruptedError, SshError } from '../../src/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { rejection } from '../harness/rejection.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the ssh transport e2e test: ${unsupported}`);

describe.skipIf(unsupported)('ssh2 transport on the test fleet', () => {
  let fleet: Fleet;
  let nodes: Map<string, NodeSpec>;
  let tmp: string;
  const sessions: NodeSession[] = [];
  const transport = createSshTransport({ connectTimeoutMs: 10_000 });

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
  /** The node's real host key fingerprint, from ssh-keygen, to compare messages with. */
  const servedFingerprint = (name: string) =>
    execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(fleet.node(name).dir, 'hostkey.pub')]).toString().split(' ')[1]!;
  const waitFor = async (name: string, check: string) => {
    for (let i = 0; i < 200; i++) {
      if ((await fleet.exec(name, check)).code === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${name}: never saw ${check}`);
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rr-ssh-e2e-'));
    fleet = await startFleet({
      nodes: [
        { name: 'root-1' },
        { name: 'sudo-1', user: { name: 'deploy', sudo: 'nopasswd' } },
        { name: 'pw-1', user: { name: 'alice', sudo: 'password' } },
        { name: 'moved', hostKeyChanged: true },
        { name: 'hole', blackhole: true },
        { name: 'gone', down: true },
        { name: 'drop-1' },
      ],
    });
    // The fleet's inventory goes through the real loader, as the CLI would read it.
    const inv = await loadInventory(fleet.inventoryPath, { home: tmp });
    nodes = new Map(inv.nodes.map((n) => [n.name, n]));
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await fleet?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('runs scripts as root, with sh semantics, and quoted arguments stay literal', async () => {
    const s = await open('root-1');
    const marker = `${STATE_DIR}/injected`;
    const hostile = `$(touch ${marker}); touch ${marker} \`touch ${marker}\` '"`;
    const r = await s.run(`id -un; printf '%s\\n' "it's" $(echo two words); ${cmd('printf', '[%s]', hostile)}`);
    expect(r).toEqual({ code: 0, signal: null, stdout: `root\nit's\ntwo\nwords\n[${hostile}]`, stderr: '' });
    expect(await fleet.fileExists('root-1', marker)).toBe(false);
    // The connection is reused: several commands, also in parallel, on one session.
    const many = await Promise.all(Array.from({ length: 12 }, (_, i) => s.run(`echo ${i}`)));
    expect(many.map((m) => m.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `${i}\n`));
  });

  it('runs as root through sudo -n for a non-root user', async () => {
    const s = await open('sudo-1');
    expect(spec('sudo-1').ssh).toMatchObject({ user: 'deploy', sudo: true });
    const r = await s.run('id -un; echo "$SUDO_USER"; cat /dev/null');
    expect(r.stdout).toBe('root\ndeploy\n');
  });

  it('uploads 5 MB through stdin with dd, as root and through sudo, and the digest matches', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 12345);
    const local = join(tmp, 'upload.bin');
    writeFileSync(local, data);
    const want = createHash('sha256').update(data).digest('hex');
    for (const name of ['root-1', 'sudo-1']) {
      const s = await open(name);
      const target = `${STATE_DIR}/upload ${name}.bin`; // a space, to prove the quoting
      // With a timeout too: timeout(1) in the command line must pass stdin through.
      await s.run(cmd('dd', `of=${target}`, 'bs=1M', 'conv=fsync', 'status=none'), { stdin: createReadStream(local), timeoutMs: 120_000 + 0.5 });
      const r = await s.run(`sha256sum < ${q(target)}`);
      expect(r.stdout.split(' ')[0]).toBe(want);
      expect(await fleet.sha256(name, target)).toBe(want);
    }
    // Buffers and strings go in whole.
    const s = await open('root-1');
    expect((await s.run('sha256sum', { stdin: data })).stdout.split(' ')[0]).toBe(want);
    expect((await s.run('cat', { stdin: 'hello\n' })).stdout).toBe('hello\n');
  });

  it('a failing command carries node, command, exit code and the stderr tail', async () => {
    const s = await open('sudo-1');
    const script = 'echo partial; for i in $(seq 1 30); do echo "line $i" >&2; done; exit 3';
    const err = await rejection(s.run(script));
    expect(err).toBeInstanceOf(RemoteCommandError);
    const e = err as RemoteCommandError;
    expect([e.node, e.command, e.code, e.signal]).toEqual(['sudo-1', script, 3, null]);
    expect(e.stderrTail.split('\n')).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 11}`));
    expect(e.message).toMatch(/^sudo-1: remote command failed \(exit code 3\): echo partial; /);

    const allowed = await s.run(script, { allowFailure: true });
    expect(allowed.code).toBe(3);
    expect(allowed.stdout).toBe('partial\n');
  });

  it('a timeout or an abort closes the channel, says so, and the session stays usable', async () => {
    const s = await open('root-1');
    const timedOut = await rejection(s.run('sleep 600', { timeoutMs: 300 }));
    expect(timedOut).toBeInstanceOf(RemoteCommandInterruptedError);
    expect((timedOut as RemoteCommandInterruptedError).reason).toBe('timeout');
    expect(timedOut.message).toBe('root-1: timed out after 0.3s; stopped on the node (timeout(1) killed it): sleep 600');
    // The node stops the command itself: closing a channel would leave it running.
    await waitFor('root-1', '! pgrep -f "slee[p] 600"');

    const ac = new AbortController();
    const running = rejection(s.run('sleep 601', { signal: ac.signal }));
    await waitFor('root-1', 'pgrep -f "slee[p] 601"');
    ac.abort();
    const aborted = await running;
    expect((aborted as RemoteCommandInterruptedError).reason).toBe('aborted');
    expect(aborted.message).toMatch(/^root-1: aborted; the channel was closed/);
    // An abort cannot reach the process (sshd refuses signals in root sessions): the message says it may still run.
    await fleet.exec('root-1', 'pkill -f "slee[p] 601"');
    // Through sudo too, and allowFailure does not turn a timeout into a result.
    const viaSudo = await rejection((await open('sudo-1')).run('sleep 603; echo never', { timeoutMs: 300, allowFailure: true }));
    expect((viaSudo as RemoteCommandInterruptedError).reason).toBe('timeout');
    await waitFor('sudo-1', '! pgrep -f "slee[p] 603"');

    expect((await s.run('echo still here')).stdout).toBe('still here\n');
  });

  it('refuses an unknown host key under strict, showing the fingerprint, and writes nothing', async () => {
    const kh = join(tmp, 'empty_known_hosts');
    writeFileSync(kh, '');
    const err = await rejection(open('root-1', { knownHosts: kh }));
    expect(err).toBeInstanceOf(SshError);
    const fp = servedFingerprint('root-1');
    expect(err.message).toContain(`host key ssh-ed25519 ${fp} is not in ${kh} and hostKeyPolicy is strict`);
    expect(readFileSync(kh, 'utf8')).toBe('');
  });

  it('refuses a changed host key, under strict and under accept-new, leaving known_hosts alone', async () => {
    const before = readFileSync(fleet.knownHosts, 'utf8');
    for (const hostKeyPolicy of ['strict', 'accept-new'] as const) {
      const err = await rejection(open('moved', { hostKeyPolicy }));
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toContain(`HOST KEY CHANGED: the server presents ssh-ed25519 ${servedFingerprint('moved')}, which does not match ${fleet.knownHosts}:`);
    }
    expect(readFileSync(fleet.knownHosts, 'utf8')).toBe(before);
  });

  it('accept-new adds an unknown key once, and strict then trusts it', async () => {
    const kh = join(tmp, 'accept', 'known_hosts');
    const n = fleet.node('root-1');
    await Promise.all([open('root-1', { knownHosts: kh, hostKeyPolicy: 'accept-new' }), open('root-1', { knownHosts: kh, hostKeyPolicy: 'accept-new' })]);
    await open('root-1', { knownHosts: kh, hostKeyPolicy: 'accept-new' });
    const pub = readFileSync(join(n.dir, 'hostkey.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    expect(readFileSync(kh, 'utf8')).toBe(`${n.host} ${pub}\n`);
    const s = await open('root-1', { knownHosts: kh, hostKeyPolicy: 'strict' });
    expect((await s.run('echo ok')).stdout).toBe('ok\n');
  });

  it('a server that accepts TCP but never speaks SSH hits the connect timeout', async () => {
    const quick = createSshTransport({ connectTimeoutMs: 1_000 });
    const err = await rejection(quick.connect(spec('hole')));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toBe(`hole: root@${fleet.node('hole').host}:22: connect timed out after 1s (TCP connected, but the server did not complete the SSH handshake)`);
  });

  it('a node with nothing listening is refused with the reason', async () => {
    const err = await rejection(transport.connect(spec('gone')));
    expect(err).toBeInstanceOf(SshError);
    expect(err.message).toBe(`gone: root@${fleet.node('gone').host}:22: connection refused (is sshd running on that port?)`);
  });

  it('sudo wanting a password gives the clear message, even with allowFailure', async () => {
    const s = await open('pw-1');
    for (const allowFailure of [false, true]) {
      const err = await rejection(s.run('id -un', { allowFailure }));
      expect(err).toBeInstanceOf(SshError);
      expect(err.message).toMatch(/^pw-1: sudo: a password is required\. runc-rollout runs commands with "sudo -n" and never types a password: allow alice to use sudo without one \(e\.g\. "alice ALL=\(root\) NOPASSWD: ALL"/);
    }
  });

  it('connects through a jump host, checking both host keys', async () => {
    const jump = fleet.node('root-1');
    const s = await open('sudo-1', { jumpHost: { user: 'root', host: jump.host, port: jump.port } });
    expect((await s.run('id -un')).stdout).toBe('root\n');
    // The TCP connection to the target belongs to the jump node's sshd (each node sees only its own processes).
    const target = fleet.node('sudo-1').host;
    const owned = (name: string) => fleet.exec(name, `ss -Htnp state established dst ${target}:22`).then((r) => r.stdout);
    expect(await owned('root-1')).toMatch(/"sshd/);
    expect(await owned('drop-1')).not.toMatch(/"sshd/);
    const kh = join(tmp, 'only-target');
    writeFileSync(kh, readFileSync(fleet.knownHosts, 'utf8').split('\n').filter((l) => !l.startsWith(`${jump.host} `)).join('\n'));
    const err = await rejection(open('sudo-1', { knownHosts: kh, jumpHost: { user: 'root', host: jump.host, port: jump.port } }));
    expect(err.message).toContain(`sudo-1: jump host root@${jump.host}:22: host key ssh-ed25519 ${servedFingerprint('root-1')} is not in ${kh}`);
  });

  it('decrypts a key file with the passphrase option, and never shows the passphrase', async () => {
    const key = join(tmp, 'encrypted_key');
    writeFileSync(key, readFileSync(fleet.identityFile), { mode: 0o600 });
    const passphrase = 'correct horse battery staple';
    execFileSync('ssh-keygen', ['-q', '-p', '-f', key, '-N', passphrase]);
    const withKey = spec('root-1', { identityFile: key });

    // Decrypted once per transport (bcrypt is slow), however many nodes use it.
    const parse = vi.spyOn(ssh2.utils, 'parseKey');
    const shared = createSshTransport({ keyPassphrase: passphrase });
    const [ok, ok2] = await Promise.all([shared.connect(withKey), shared.connect(spec('sudo-1', { identityFile: key }))]);
    sessions.push(ok, ok2);
    expect((await ok.run('echo ok')).stdout).toBe('ok\n');
    expect((await ok2.run('echo ok')).stdout).toBe('ok\n');
    expect(parse.mock.calls.filter(([, pass]) => pass === passphrase)).toHaveLength(1);
    parse.mockRestore();

    const missing = await rejection(createSshTransport().connect(withKey));
    expect(missing.message).toBe(`root-1: identity file ${key} is encrypted and no passphrase was given (set RUNC_ROLLOUT_KEY_PASSPHRASE, or load the key into the SSH agent)`);
    const wrong = await rejection(createSshTransport({ keyPassphrase: 'not it' }).connect(withKey));
    expect(wrong).toBeInstanceOf(SshError);
    expect(wrong.message).toMatch(new RegExp(`^root-1: identity file ${key} cannot be used \\(wrong passphrase\\?\\)`));
    expect(wrong.message).not.toContain('not it');
  });

  it('authenticates with an SSH agent when no key file is named', async () => {
    const sock = join(tmp, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', ['-q', fleet.identityFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const noKey = { ...spec('root-1'), ssh: { ...spec('root-1').ssh, identityFile: undefined } };
      const s = await createSshTransport({ agentSocket: sock }).connect(noKey);
      expect((await s.run('echo via agent')).stdout).toBe('via agent\n');
      await s.close();
      const none = await rejection(createSshTransport().connect(noKey));
      expect(none.message).toBe('root-1: no way to authenticate: the inventory names no identityFile and no SSH agent is available (SSH_AUTH_SOCK)');
    } finally {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill();
      await exited;
    }
  });

  it('a killed sshd rejects the running command and the upload as connection lost, with no unhandled error', async () => {
    const s = await open('drop-1');
    // Handlers attached at once: the rejections arrive while the test is still busy killing sshd.
    const sleeping = rejection(s.run('sleep 602'));
    const upload = new PassThrough();
    const uploading = rejection(s.run(`dd of=${STATE_DIR}/partial bs=1M status=none`, { stdin: upload }));
    upload.write(randomBytes(256 * 1024));
    await waitFor('drop-1', 'pgrep -f "slee[p] 602" && pgrep -x dd');
    await fleet.killSshd('drop-1');
    for (const err of await Promise.all([sleeping, uploading])) {
      expect(err).toBeInstanceOf(RemoteCommandInterruptedError);
      expect((err as RemoteCommandInterruptedError).reason).toBe('connection-lost');
      expect(err.message).toMatch(/^drop-1: connection lost while a command ran \(.*\); its outcome on the node is unknown: /);
    }
    expect(upload.destroyed).toBe(true); // the unfinished upload source is not left open
    const after = await rejection(s.run('true'));
    expect((after as RemoteCommandInterruptedError).reason).toBe('connection-lost');
    expect(after.message).toMatch(/^drop-1: not run: the connection is gone/);
    await s.close();
    await fleet.restartSshd('drop-1');
    const again = await open('drop-1');
    expect((await again.run('echo back')).stdout).toBe('back\n');
  });
});
