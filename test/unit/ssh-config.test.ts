import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/inventory/load.js';
import { resolveInventory } from '../../src/inventory/resolve.js';
import { describeSshSources, expandPath, hostSettings, parseJumpSpec, parseSshConfig, resolveJumpChain } from '../../src/ssh/ssh-config.js';

const HOME = '/home/sre';
const ctx = { home: HOME, localUser: 'sre' };
const dflt = { user: 'root', port: 22 };
const cfg = (text: string) => parseSshConfig(text, '/cfg');

const CONFIG = `
Host bastion
  HostName 10.0.0.1
  User jump
  IdentityFile ~/.ssh/jump_key
  UserKnownHostsFile ~/.ssh/known_jump

Host inner
  HostName 10.0.1.1
  Port 2222
  ProxyJump bastion

Host web-* !web-legacy
  User deploy
  IdentityFile ~/.ssh/web_ed25519
  IdentityFile %d/.ssh/%r@%h
  IdentitiesOnly yes
  UserKnownHostsFile ~/.ssh/known_web /etc/fleet/known_hosts
  StrictHostKeyChecking accept-new
  ConnectTimeout 7
  ServerAliveInterval 5
  ServerAliveCountMax 2
  ProxyJump ops@bastion:22,inner

Match host 10.9.*
  IdentityAgent ~/agent.sock

Host *
  User fallback
  IdentityFile ~/.ssh/id_ed25519
`;

describe('ssh_config for one host', () => {
  it('first value wins, IdentityFile and UserKnownHostsFile accumulate, tokens and ~ expand', () => {
    const s = hostSettings(cfg(CONFIG), 'web-1', ctx, dflt);
    expect(s).toEqual({
      user: 'deploy',
      identityFiles: [`${HOME}/.ssh/web_ed25519`, `${HOME}/.ssh/deploy@web-1`, `${HOME}/.ssh/id_ed25519`],
      identitiesOnly: true,
      knownHostsFiles: [`${HOME}/.ssh/known_web`, '/etc/fleet/known_hosts'],
      hostKeyPolicy: 'accept-new',
      connectTimeoutMs: 7000,
      keepaliveIntervalMs: 5000,
      keepaliveCountMax: 2,
      proxyJump: 'ops@bastion:22,inner',
      warnings: [],
    });
  });

  it('a negated pattern excludes the host; Host * still applies', () => {
    expect(hostSettings(cfg(CONFIG), 'web-legacy', ctx, dflt)).toEqual({ user: 'fallback', identityFiles: [`${HOME}/.ssh/id_ed25519`], warnings: [] });
  });

  it('Match host matches the HostName, and IdentityAgent none/SSH_AUTH_SOCK', () => {
    const c = cfg(`Host db\n  HostName 10.9.0.5\n${CONFIG}`);
    expect(hostSettings(c, 'db', ctx, dflt).identityAgent).toBe(`${HOME}/agent.sock`);
    expect(hostSettings(cfg('Host *\n  IdentityAgent none\n'), 'x', ctx, dflt).identityAgent).toBeNull();
    expect(hostSettings(cfg('Host *\n  IdentityAgent SSH_AUTH_SOCK\n'), 'x', ctx, dflt)).not.toHaveProperty('identityAgent');
  });

  it('StrictHostKeyChecking: yes/ask strict, accept-new, and no is refused with a warning', () => {
    const policy = (v: string) => hostSettings(cfg(`Host *\n  StrictHostKeyChecking ${v}\n`), 'h', ctx, dflt);
    expect(policy('yes').hostKeyPolicy).toBe('strict');
    expect(policy('ask').hostKeyPolicy).toBe('strict');
    expect(policy('accept-new').hostKeyPolicy).toBe('accept-new');
    const no = policy('no');
    expect(no.hostKeyPolicy).toBe('strict');
    expect(no.warnings).toEqual(['/cfg: StrictHostKeyChecking no for h is not honoured: runc-rollout always checks host keys (strict); use accept-new to add unknown keys']);
  });

  it('names what it does not follow, and never runs Match exec', () => {
    const c = cfg('Include other\nMatch exec "touch /tmp/pwned"\n  User evil\nHost *\n  ProxyCommand nc %h %p\n  CertificateFile ~/.ssh/id-cert.pub\n');
    expect(c.warnings).toEqual([
      '/cfg: Include is not followed; put the settings in this file or pass it with --ssh-config',
      '/cfg: "Match exec" is never run by runc-rollout: such blocks do not apply',
      '/cfg: ProxyCommand is not supported (no local commands are run); use ProxyJump',
      '/cfg: CertificateFile is not used by the default SSH client (ssh2 cannot authenticate with OpenSSH user certificates); --ssh-client openssh uses it',
    ]);
    expect(hostSettings(c, 'h', ctx, dflt).user).toBeUndefined();
  });

  it('bad values are warnings, not crashes', () => {
    const s = hostSettings(cfg('Host *\n  Port nope\n  ConnectTimeout 5s\n  IdentityFile ~bob/key\n'), 'h', ctx, dflt);
    expect(s.port).toBeUndefined();
    expect(s.warnings).toEqual([
      '/cfg: Port nope: not a port number; ignored',
      '/cfg: IdentityFile ~bob/key: "~user" paths are not supported; ignored',
      '/cfg: ConnectTimeout 5s: expected whole seconds; ignored',
    ]);
  });

  it('expands tokens in paths', () => {
    const t = { home: HOME, host: '10.0.0.1', alias: 'web', port: 2222, user: 'deploy', localUser: 'sre' };
    expect(expandPath('~/.ssh/%r@%h:%p-%n-%u-%%', t)).toBe(`${HOME}/.ssh/deploy@10.0.0.1:2222-web-sre-%`);
    expect(expandPath('keys/k', t)).toBe(`${HOME}/keys/k`);
    expect(expandPath('%C', t)).toEqual({ error: 'token %C is not supported' });
  });
});

describe('ProxyJump chains', () => {
  it('parses hop specs', () => {
    expect(parseJumpSpec('ops@bastion:2200')).toEqual({ user: 'ops', host: 'bastion', port: 2200 });
    expect(parseJumpSpec('[::1]:22')).toEqual({ host: '::1', port: 22 });
    expect(parseJumpSpec('ssh://u@h')).toEqual({ user: 'u', host: 'h' });
    expect(parseJumpSpec('a b')).toHaveProperty('error');
  });

  it('resolves each hop with its own config, and follows the first hop\'s own ProxyJump', () => {
    const r = resolveJumpChain(cfg(CONFIG), 'ops@bastion:22,inner', ctx, dflt);
    expect(r).toEqual({
      hops: [
        { host: '10.0.0.1', port: 22, user: 'ops', identityFiles: [`${HOME}/.ssh/jump_key`, `${HOME}/.ssh/id_ed25519`], knownHostsFiles: [`${HOME}/.ssh/known_jump`] },
        { host: '10.0.1.1', port: 2222, user: 'fallback', identityFiles: [`${HOME}/.ssh/id_ed25519`] },
      ],
      warnings: [],
    });
    // "inner" alone: its own ProxyJump (bastion) comes first.
    const inner = resolveJumpChain(cfg(CONFIG), 'inner', ctx, dflt);
    expect('hops' in inner && inner.hops.map((h) => `${h.user}@${h.host}:${h.port}`)).toEqual(['jump@10.0.0.1:22', 'fallback@10.0.1.1:2222']);
    expect(resolveJumpChain(cfg('Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n'), 'a', ctx, dflt)).toEqual({ error: 'ProxyJump: the chain through a loops or is longer than 8 hops' });
    expect(resolveJumpChain(undefined, 'none', ctx, dflt)).toEqual({ hops: [], warnings: [] });
  });
});

describe('inventory + ssh_config', () => {
  const inventory = (ssh: Record<string, unknown> = {}, node: Record<string, unknown> = {}) => ({
    ssh,
    nodes: [{ name: 'web-1', host: 'web-1', ...node }, { name: 'other', host: 'other.example' }],
  });

  it('the config fills what the inventory leaves open, and the inventory beats it', () => {
    const r = resolveInventory(inventory(), { dir: '/inv', home: HOME, sshConfig: cfg(`Host web-1\n  HostName 10.0.0.9\n${CONFIG}`) });
    expect(r.issues).toEqual([]);
    const web = r.nodes[0]!.ssh;
    expect(web).toMatchObject({
      host: '10.0.0.9',
      user: 'deploy',
      port: 22,
      hostKeyPolicy: 'accept-new',
      identityFile: `${HOME}/.ssh/web_ed25519`,
      identityFiles: [`${HOME}/.ssh/web_ed25519`, `${HOME}/.ssh/deploy@10.0.0.9`, `${HOME}/.ssh/id_ed25519`],
      knownHosts: `${HOME}/.ssh/known_web`,
      knownHostsFiles: [`${HOME}/.ssh/known_web`, '/etc/fleet/known_hosts'],
      identitiesOnly: true,
      connectTimeoutMs: 7000,
      keepaliveIntervalMs: 5000,
    });
    expect(web.jumpHosts?.map((h) => `${h.user}@${h.host}:${h.port}`)).toEqual(['ops@10.0.0.1:22', 'fallback@10.0.1.1:2222']);
    expect(r.sshSources?.['web-1']).toMatchObject({ user: 'ssh_config /cfg', port: 'default', knownHosts: 'ssh_config /cfg' });
    expect(describeSshSources(web, r.sshSources!['web-1']!)).toContain('user=deploy (ssh_config /cfg)');

    const over = resolveInventory(inventory({ user: 'root', knownHosts: '/kh', identityFile: '/k', hostKeyPolicy: 'strict' }, { ssh: { jumpHost: null } }), {
      dir: '/inv',
      home: HOME,
      sshConfig: cfg(CONFIG),
    });
    const o = over.nodes[0]!.ssh;
    expect(o).toMatchObject({ user: 'root', knownHosts: '/kh', identityFile: '/k', hostKeyPolicy: 'strict' });
    expect(o.identityFiles).toBeUndefined();
    expect(o.knownHostsFiles).toBeUndefined();
    expect(o.jumpHosts).toBeUndefined();
    expect(o.jumpHost).toBeUndefined();
    expect(over.sshSources?.['web-1']).toMatchObject({ user: 'inventory', knownHosts: 'inventory', identityFile: 'inventory', hostKeyPolicy: 'inventory' });
  });

  it('the inventory\'s jumpHost gets its own config; ssh.config on a node is refused', () => {
    const r = resolveInventory(inventory({ jumpHost: 'bastion' }), { dir: '/inv', home: HOME, sshConfig: cfg(CONFIG) });
    expect(r.nodes[1]!.ssh.jumpHost).toEqual({ host: '10.0.0.1', port: 22, user: 'jump', identityFiles: [`${HOME}/.ssh/jump_key`, `${HOME}/.ssh/id_ed25519`], knownHostsFiles: [`${HOME}/.ssh/known_jump`] });
    const bad = resolveInventory(inventory({}, { ssh: { config: '/x' } }), { dir: '/inv', home: HOME });
    expect(bad.issues).toEqual(['nodes[0].ssh.config: ssh.config is only allowed at the top level (one ssh_config for the inventory)']);
  });

  it('without a config nothing changes (no sources, same fields)', () => {
    const r = resolveInventory(inventory(), { dir: '/inv', home: HOME });
    expect(r.sshSources).toBeUndefined();
    expect(r.nodes[0]!.ssh).toEqual({ host: 'web-1', port: 22, user: 'root', knownHosts: `${HOME}/.ssh/known_hosts`, hostKeyPolicy: 'strict', sudo: false });
  });

  it('the loader reads --ssh-config, then ssh.config, and a missing named file is an error', () => {
    const text = 'ssh:\n  config: ./my_ssh_config\nnodes:\n  - name: a\n    host: a\n';
    expect(() => parseInventory(text, '/nonexistent-dir/inv.yaml', { home: '/nonexistent-home' })).toThrow(
      'inventory /nonexistent-dir/inv.yaml: cannot read ssh_config /nonexistent-dir/my_ssh_config: no such file',
    );
    expect(parseInventory(text, '/nonexistent-dir/inv.yaml', { home: '/nonexistent-home', sshConfig: 'none' }).nodes[0]!.ssh.user).toBe('root');
    // The default ~/.ssh/config may be absent.
    expect(parseInventory('nodes:\n  - name: a\n    host: a\n', '/x/inv.yaml', { home: '/nonexistent-home' }).sshSources).toBeUndefined();
  });
});
