// ssh_config on the real test fleet: a node behind a two-hop ProxyJump chain
// (every hop a real sshd whose host key is checked), hop connections shared by
// the nodes behind them, a pattern that sets user, identity and known_hosts,
// an agent reached only through IdentityAgent, and a passphrase-protected key.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { NodeSpec } from '../../src/core/types.js';
import { SshError } from '../../src/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';
import type { NodeSession } from '../../src/ssh/transport.js';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { rejection } from '../harness/rejection.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the ssh_config e2e test: ${unsupported}`);

describe.skipIf(unsupported)('ssh_config on the test fleet', () => {
  let fleet: Fleet;
  let tmp: string;
  const sessions: NodeSession[] = [];

  const fingerprint = (name: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(fleet.node(name).dir, 'hostkey.pub')]).toString().split(' ')[1]!;
  /** Writes an ssh_config and an inventory that names it (ssh.config), loads it as the CLI would. */
  let files = 0;
  const load = async (config: string, nodes: { name: string; host: string; ssh?: Record<string, unknown> }[]): Promise<Map<string, NodeSpec>> => {
    const n = ++files;
    writeFileSync(join(tmp, `ssh_config-${n}`), config);
    const inv = join(tmp, `inventory-${n}.yaml`);
    writeFileSync(inv, stringify({ ssh: { config: `./ssh_config-${n}` }, nodes }));
    const loaded = await loadInventory(inv, { home: tmp });
    return new Map(loaded.nodes.map((x) => [x.name, x]));
  };
  /** TCP connections from this test process to host:22 (the nodes share the machine's network namespace, so filter by pid). */
  const connectionsTo = (host: string) =>
    execFileSync('ss', ['-Htnp', 'state', 'established', 'dst', `${host}:22`]).toString().split('\n').filter((l) => l.includes(`pid=${process.pid},`)).length;
  const hostBlock = (alias: string, node: string) => `Host ${alias}\n  HostName ${fleet.node(node).host}\n`;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rr-ssh-config-e2e-'));
    fleet = await startFleet({
      nodes: [{ name: 'hop-a' }, { name: 'hop-b' }, { name: 'inner-1' }, { name: 'inner-2' }, { name: 'web-1', user: { name: 'deploy', sudo: 'nopasswd' } }],
    });
  });

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => s.close()));
    await fleet?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const chainConfig = (knownHosts: string) =>
    [
      hostBlock('hop-a', 'hop-a'),
      hostBlock('hop-b', 'hop-b'),
      hostBlock('inner-1', 'inner-1'),
      hostBlock('inner-2', 'inner-2'),
      'Host inner-*\n  ProxyJump hop-a,hop-b\n',
      `Host *\n  User root\n  IdentityFile ${fleet.identityFile}\n  UserKnownHostsFile ${knownHosts}\n`,
    ].join('\n');

  it('reaches a node through a two-hop ProxyJump chain, one shared connection per hop', async () => {
    const nodes = await load(chainConfig(fleet.knownHosts), [
      { name: 'inner-1', host: 'inner-1' },
      { name: 'inner-2', host: 'inner-2' },
    ]);
    const spec = nodes.get('inner-1')!;
    expect(spec.ssh.host).toBe(fleet.node('inner-1').host);
    expect(spec.ssh.jumpHosts?.map((j) => `${j.user}@${j.host}:${j.port}`)).toEqual([`root@${fleet.node('hop-a').host}:22`, `root@${fleet.node('hop-b').host}:22`]);

    const transport = createSshTransport({ connectTimeoutMs: 20_000 });
    const [s1, s2] = await Promise.all([transport.connect(spec), transport.connect(nodes.get('inner-2')!)]);
    sessions.push(s1, s2);
    expect((await s1.run('echo one')).stdout).toBe('one\n');
    expect((await s2.run('echo two')).stdout).toBe('two\n');
    // Only hop-a is reached from here, once for both nodes; hop-b and the nodes are reached from the hop before them.
    expect(connectionsTo(fleet.node('hop-a').host)).toBe(1);
    expect(connectionsTo(fleet.node('hop-b').host)).toBe(0);
    expect(connectionsTo(fleet.node('inner-1').host)).toBe(0);
    const sshdOwns = (on: string, dst: string) => fleet.exec(on, `ss -Htnp state established dst ${fleet.node(dst).host}:22`).then((r) => r.stdout);
    expect(await sshdOwns('hop-a', 'hop-b')).toMatch(/"sshd/);
    expect(await sshdOwns('hop-b', 'inner-1')).toMatch(/"sshd/);

    // The hops stay up while one node still uses them, and go when the last one closes.
    await s1.close();
    expect((await s2.run('echo still')).stdout).toBe('still\n');
    await s2.close();
    for (let i = 0; i < 100 && connectionsTo(fleet.node('hop-a').host) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(connectionsTo(fleet.node('hop-a').host)).toBe(0);
  });

  it('checks the host key of every hop: a missing hop key refuses the node', async () => {
    const lines = readFileSync(fleet.knownHosts, 'utf8').split('\n');
    for (const [missing, label] of [
      ['hop-a', 'jump host 1 of 2'],
      ['hop-b', 'jump host 2 of 2'],
      ['inner-1', null],
    ] as const) {
      const kh = join(tmp, `known_hosts-without-${missing}`);
      writeFileSync(kh, lines.filter((l) => !l.startsWith(`${fleet.node(missing).host} `)).join('\n'));
      const nodes = await load(chainConfig(kh), [{ name: 'inner-1', host: 'inner-1' }]);
      const err = await rejection(createSshTransport({ connectTimeoutMs: 20_000 }).connect(nodes.get('inner-1')!));
      expect(err).toBeInstanceOf(SshError);
      const who = label ? `${label} root@${fleet.node(missing).host}:22` : `root@${fleet.node(missing).host}:22`;
      expect(err.message).toContain(`inner-1: ${who}: host key ssh-ed25519 ${fingerprint(missing)} is not in ${kh} and hostKeyPolicy is strict`);
    }
  });

  it('a Host pattern sets user, identity files (tried in order) and several known_hosts files', async () => {
    const strayKey = join(tmp, 'stray_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strayKey]);
    const config = [
      hostBlock('web-1', 'web-1'),
      // A key the node does not accept, a missing one, then the right one; two known_hosts files, the first empty.
      `Host web-*\n  User deploy\n  IdentityFile ${strayKey}\n  IdentityFile ${join(tmp, 'no-such-key')}\n  IdentityFile ${fleet.identityFile}\n  UserKnownHostsFile ${join(tmp, 'empty_known_hosts')} ${fleet.knownHosts}\n`,
      'Host *\n  User nobody-at-all\n',
    ].join('\n');
    writeFileSync(join(tmp, 'empty_known_hosts'), '');
    const nodes = await load(config, [{ name: 'web-1', host: 'web-1', ssh: { sudo: true } }]);
    const spec = nodes.get('web-1')!;
    expect(spec.ssh).toMatchObject({ user: 'deploy', identityFiles: [strayKey, join(tmp, 'no-such-key'), fleet.identityFile], knownHostsFiles: [join(tmp, 'empty_known_hosts'), fleet.knownHosts] });
    const s = await createSshTransport().connect(spec);
    sessions.push(s);
    expect((await s.run('id -un; echo "$SUDO_USER"')).stdout).toBe('root\ndeploy\n');
    await s.close();
  });

  it('authenticates with the agent named by IdentityAgent, holding the only usable key', async () => {
    const sock = join(tmp, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync('ssh-add', ['-q', fleet.identityFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const config = `${hostBlock('hop-a', 'hop-a')}  IdentityAgent ${sock}\n  IdentityFile ${join(tmp, 'no-such-key')}\n  UserKnownHostsFile ${fleet.knownHosts}\n`;
      const nodes = await load(config, [{ name: 'hop-a', host: 'hop-a' }]);
      expect(nodes.get('hop-a')!.ssh.agentSocket).toBe(sock);
      // The transport itself has no agent (no SSH_AUTH_SOCK): only IdentityAgent can supply one.
      const s = await createSshTransport().connect(nodes.get('hop-a')!);
      expect((await s.run('echo via agent')).stdout).toBe('via agent\n');
      await s.close();
      const none = await load(config.replace(`IdentityAgent ${sock}`, 'IdentityAgent none'), [{ name: 'hop-a', host: 'hop-a' }]);
      const err = await rejection(createSshTransport({ agentSocket: sock }).connect(none.get('hop-a')!));
      expect(err.message).toBe(`hop-a: cannot read identity file ${join(tmp, 'no-such-key')}: no such file`);
    } finally {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill();
      await exited;
    }
  });

  it('a host trusted only through @cert-authority is refused: ssh2 cannot negotiate host certificates', async () => {
    const ca = join(tmp, 'host_ca');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ca]);
    const kh = join(tmp, 'known_hosts-ca-only');
    writeFileSync(kh, `@cert-authority * ${readFileSync(`${ca}.pub`, 'utf8').trim()}\n`);
    const nodes = await load(`${hostBlock('hop-a', 'hop-a')}  IdentityFile ${fleet.identityFile}\n  UserKnownHostsFile ${kh}\n`, [{ name: 'hop-a', host: 'hop-a' }]);
    const err = await rejection(createSshTransport().connect(nodes.get('hop-a')!));
    expect(err.message).toContain(`hop-a: root@${fleet.node('hop-a').host}:22: host key ssh-ed25519 ${fingerprint('hop-a')} is not in ${kh}`);
  });

  it('uses a passphrase-protected identity file from the config', async () => {
    const key = join(tmp, 'encrypted_key');
    writeFileSync(key, readFileSync(fleet.identityFile), { mode: 0o600 });
    const passphrase = 'correct horse battery staple';
    execFileSync('ssh-keygen', ['-q', '-p', '-f', key, '-N', passphrase]);
    const config = `${hostBlock('hop-b', 'hop-b')}  IdentityFile ${key}\n  UserKnownHostsFile ${fleet.knownHosts}\n`;
    const nodes = await load(config, [{ name: 'hop-b', host: 'hop-b' }]);
    const s = await createSshTransport({ keyPassphrase: passphrase }).connect(nodes.get('hop-b')!);
    expect((await s.run('echo decrypted')).stdout).toBe('decrypted\n');
    await s.close();
    const missing = await rejection(createSshTransport().connect(nodes.get('hop-b')!));
    expect(missing.message).toBe(`hop-b: identity file ${key} is encrypted and no passphrase was given (set RUNC_ROLLOUT_KEY_PASSPHRASE, or load the key into the SSH agent)`);
  });
});
