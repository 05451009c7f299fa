import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { ansibleToNative, detectInventoryFormat, parseAnsibleInventory, withOrigins, type AnsibleConversion, type AnsibleOptions } from '../../src/inventory/ansible.js';
import { parseAnsibleIni, parseIniValue, shellWords } from '../../src/inventory/ansible-ini.js';
import { expandHostRange, parseHostEntry } from '../../src/inventory/ansible-model.js';
import { parseSshArgs } from '../../src/inventory/ansible-vars.js';
import { resolveInventory } from '../../src/inventory/resolve.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/ansible/${name}`, import.meta.url), 'utf8');
const ini = (text: string, opts?: AnsibleOptions) => parseAnsibleInventory(text, '/inv/hosts.ini', 'ansible-ini', opts);
const yml = (text: string, opts?: AnsibleOptions) => parseAnsibleInventory(text, '/inv/hosts.yml', 'ansible-yaml', opts);
const byName = (c: AnsibleConversion) => Object.fromEntries(c.raw.nodes.map((n) => [n.name, n]));

/** Every problem of a refused inventory (the InputError's issues). */
function problems(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).issues;
  }
  throw new Error('expected the inventory to be refused');
}

describe('a realistic INI inventory (prod.ini)', () => {
  const conv = parseAnsibleInventory(fixture('prod.ini'), '/inv/prod.ini', 'ansible-ini');
  const nodes = byName(conv);

  it('lists every host once, ranges expanded, in file order', () => {
    expect(conv.raw.nodes.map((n) => n.name)).toEqual([
      'bastion.example.com',
      'cp-1.k8s.example.com', 'cp-2.k8s.example.com', 'cp-3.k8s.example.com',
      'worker-01', 'worker-02', 'worker-03', 'worker-04',
      'worker-gpu-a', 'worker-gpu-b',
      'edge-01', 'edge-02',
    ]);
    expect(conv.origins[0]).toBe('/inv/prod.ini:2');
    expect(conv.origins[4]).toBe('/inv/prod.ini:8');
  });

  it('applies all < parent group < child group < host', () => {
    // cp-*: all:vars port 22; k8s:vars user deploy, become yes, ProxyJump; host line user ubuntu.
    expect(nodes['cp-2.k8s.example.com']).toEqual({
      name: 'cp-2.k8s.example.com',
      host: 'cp-2.k8s.example.com',
      ssh: { user: 'ubuntu', port: 22, sudo: true, jumpHost: 'jump@bastion.example.com:22' },
      groups: ['control_plane', 'k8s'],
    });
    // workers:vars (child of k8s) overrides the port of all:vars; the smoke command loses its quotes.
    expect(nodes['worker-03']).toEqual({
      name: 'worker-03',
      host: 'worker-03',
      ssh: { user: 'deploy', port: 2222, sudo: true, jumpHost: 'jump@bastion.example.com:22' },
      smoke: { command: 'crictl info >/dev/null' },
      groups: ['k8s', 'workers'],
    });
    expect(nodes['worker-gpu-b']).toMatchObject({ runc: { path: '/usr/bin/runc' }, ssh: { identityFile: '~/.ssh/gpu_ed25519', port: 2222 } });
  });

  it('maps ansible_host, ansible_port and host:port, and keeps ungrouped hosts', () => {
    expect(nodes['edge-01']).toEqual({ name: 'edge-01', host: '203.0.113.10', ssh: { user: 'root', port: 22 }, groups: ['edge'] });
    expect(nodes['edge-02']).toEqual({ name: 'edge-02', host: '203.0.113.11', ssh: { port: 2200 }, groups: ['edge'] });
    expect(nodes['bastion.example.com']).toEqual({ name: 'bastion.example.com', host: 'bastion.example.com', ssh: { user: 'ops', port: 22 }, groups: ['ungrouped'] });
  });

  it('warns about what it ignores, naming host and line, once per line', () => {
    expect(conv.warnings).toEqual([
      '/inv/prod.ini:26: hosts cp-1.k8s.example.com, cp-2.k8s.example.com, cp-3.k8s.example.com and 6 more: ansible_ssh_common_args: "-o StrictHostKeyChecking=no" ignored (only ProxyJump / -J is understood)',
      '/inv/prod.ini:8: hosts worker-01, worker-02, worker-03 and 1 more: ansible_host_prefix is not supported by runc-rollout and is ignored',
    ]);
  });

  it('passes the native validation', () => {
    const r = resolveInventory(conv.raw, { dir: '/inv', home: '/home/sre' });
    expect(r.issues).toEqual([]);
    expect(r.nodes.map((n) => n.name)).toEqual(conv.raw.nodes.map((n) => n.name));
    const gpu = r.nodes.find((n) => n.name === 'worker-gpu-a')!;
    expect(gpu.ssh).toMatchObject({ host: 'worker-gpu-a', port: 2222, user: 'deploy', sudo: true, identityFile: '/home/sre/.ssh/gpu_ed25519', jumpHost: { host: 'bastion.example.com', port: 22, user: 'jump' } });
    expect(gpu.runcPath).toBe('/usr/bin/runc');
    expect(r.warnings.filter((w) => !/is not root and sudo is false/.test(w))).toEqual([]);
  });
});

describe('a realistic YAML inventory (staging.yml)', () => {
  const conv = parseAnsibleInventory(fixture('staging.yml'), '/inv/staging.yml', 'ansible-yaml');
  const nodes = byName(conv);

  it('walks nested children and expands letter and stepped ranges', () => {
    expect(conv.raw.nodes.map((n) => n.name)).toEqual([
      'monitor.staging.example.com',
      'master-a.staging.example.com', 'master-b.staging.example.com', 'master-c.staging.example.com',
      'node-001', 'node-003', 'node-special',
    ]);
    expect(nodes['master-b.staging.example.com']!.groups).toEqual(['k8s', 'masters']);
    expect(nodes['monitor.staging.example.com']!.groups).toEqual(['ungrouped']);
    expect(nodes['node-special']!.groups).toEqual(['gpu', 'k8s', 'nodes']);
  });

  it('resolves precedence like Ansible, including siblings at the same depth by name', () => {
    expect(nodes['master-a.staging.example.com']).toEqual({
      name: 'master-a.staging.example.com',
      host: 'master-a.staging.example.com',
      ssh: { user: 'admin', port: 2222, sudo: true },
      runc: { path: '/usr/local/sbin/runc' },
      smoke: { command: 'ctr version' },
      groups: ['k8s', 'masters'],
    });
    // nodes: ansible_user root, so become needs no sudo.
    expect(nodes['node-001']!.ssh).toEqual({ user: 'root', sudo: false });
    // gpu and k8s are both children of all: k8s sorts after gpu and wins; host vars win over both.
    expect(nodes['node-special']).toEqual({
      name: 'node-special',
      host: '10.20.0.99',
      ssh: { user: 'ec2-user', sudo: true },
      runc: { path: '/opt/runc/bin/runc' },
      smoke: { command: 'ctr version' },
      groups: ['gpu', 'k8s', 'nodes'],
    });
    expect(conv.origins[6]).toBe('/inv/staging.yml:23');
  });

  it('passes the native validation', () => {
    const r = resolveInventory(conv.raw, { dir: '/inv', home: '/home/sre' });
    expect(r.issues).toEqual([]);
    expect(r.nodes).toHaveLength(7);
  });
});

describe('native validation of the result', () => {
  it('refuses what the native schema refuses, and the issues can be pointed at the Ansible line', () => {
    const conv = ini('[web]\nok1\nbad1 ansible_host=not_a_host! runc_path=relative/runc\nbad2 ansible_user="$(reboot)"\n');
    const r = resolveInventory(conv.raw, { dir: '/inv', home: '/home/sre' });
    expect(withOrigins(r.issues, conv.origins)).toEqual([
      'nodes[1].host (/inv/hosts.ini:3): "not_a_host!" is not a valid hostname or IP address',
      'nodes[1].runc.path (/inv/hosts.ini:3): "relative/runc" must be an absolute path (starting with "/")',
      'nodes[2].ssh.user (/inv/hosts.ini:4): "$(reboot)" contains "$(", which is not allowed here',
    ]);
    expect(withOrigins(['nodes: at least one node', 'ssh.port: bad'], conv.origins)).toEqual(['nodes: at least one node', 'ssh.port: bad']);
  });
});

describe('variable precedence details', () => {
  it('lets ansible_group_priority reorder groups of the same depth (higher merges later and wins)', () => {
    const text = '[a]\nh1\n[b]\nh1\n[a:vars]\nrunc_path=/a/runc\n[b:vars]\nrunc_path=/b/runc\n';
    expect(ini(text).raw.nodes[0]!.runc).toEqual({ path: '/b/runc' });
    expect(ini(`${text}ansible_group_priority=0\n`).raw.nodes[0]!.runc).toEqual({ path: '/a/runc' });
    expect(yml('all:\n  children:\n    a: {hosts: {h1: }, vars: {runc_path: /a/runc}}\n    b: {hosts: {h1: }, vars: {runc_path: /b/runc, ansible_group_priority: "0"}}\n').raw.nodes[0]!.runc).toEqual({ path: '/a/runc' });
  });

  it('merges a host listed twice, the later line winning', () => {
    const conv = ini('[a]\nh1 ansible_port=2201 ansible_user=x\n[b]\nh1 ansible_port=2202\n');
    expect(conv.raw.nodes).toEqual([{ name: 'h1', host: 'h1', ssh: { user: 'x', port: 2202 }, groups: ['a', 'b'] }]);
  });

  it('computes sudo from become and the user, also the --ssh-user override', () => {
    const text = '[web]\nw1 ansible_become=true\nw2 ansible_become=true ansible_user=root\nw3 ansible_become=no ansible_user=ubuntu\n';
    const plain = ini(text);
    expect(plain.raw.nodes.map((n) => n.ssh)).toEqual([{ sudo: false }, { user: 'root', sudo: false }, { user: 'ubuntu', sudo: false }]);
    expect(plain.warnings).toContain('/inv/hosts.ini: 1 host has ansible_become but no ansible_user: they are reached as root (the runc-rollout default) without sudo; set ansible_user or --ssh-user to connect as another user with sudo');
    const overridden = ini(text, { sshUser: 'ubuntu' });
    expect(overridden.raw.nodes.map((n) => n.ssh)).toEqual([{ user: 'ubuntu', sudo: true }, { user: 'ubuntu', sudo: true }, { user: 'ubuntu', sudo: false }]);
  });
});

describe('unsupported features', () => {
  it.each([
    ['[db]\ndb1 ansible_connection=local\n', '/inv/hosts.ini:2: host db1: ansible_connection=local is not supported: runc-rollout reaches nodes over SSH only'],
    ['[win]\nw[1:5]\n[win:vars]\nansible_connection=winrm\n', '/inv/hosts.ini:4: hosts w1, w2, w3 and 2 more: ansible_connection=winrm is not supported'],
    ['[web]\nweb-*\n', '/inv/hosts.ini:2: "web-*": host patterns other than ranges are not supported (found "*")'],
    ['[web]\nweb[3:1]\n', 'a host range must have begin <= end'],
    ['[web]\nweb[01:9]\n', 'a zero-padded host range needs begin and end of equal length'],
    ['[web]\nh1 ansible_host="{{ inventory_hostname }}.internal"\n', '/inv/hosts.ini:2: host h1: ansible_host is a Jinja template'],
    ["[web]\nh1 ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p bastion\"'\n", 'host h1: ansible_ssh_common_args: ProxyCommand is not supported'],
    ['[web]\nh1 ansible_ssh_common_args="-J a@b:22,c@d:22"\n', 'ProxyJump with several hops'],
    ['[web]\nh1 ansible_become=true ansible_become_method=su ansible_user=u\n', 'host h1: ansible_become_method=su is not supported'],
    ['[web]\nh1 ansible_become=true ansible_become_user=postgres ansible_user=u\n', 'ansible_become_user=postgres is not supported: runc-rollout needs root'],
    ['[web]\nh1 ansible_become=maybe\n', 'ansible_become="maybe" is not a boolean'],
    ['[web]\nh1 ansible_port=ssh\n', 'ansible_port="ssh" is not a port number'],
    ['[web]\nh1 stray\n', '/inv/hosts.ini:2: expected key=value host variable after "h1", got "stray"'],
    ['[web:hosts]\nh1\n[web:foo]\nx=1\n', '/inv/hosts.ini:3: section [web:foo] has an unknown type "foo"'],
    ['[web]\nh1\n[db:vars]\nx=1\n', '/inv/hosts.ini:3: section [db:vars] is for a group that is never declared'],
    ['[all:children]\nweb\n[x]\nh1\n', '/inv/hosts.ini:2: section [all:children] names group "web", which is never declared'],
    ['[a:children]\nb\n[b:children]\na\n[a]\nh1\n', 'is its own ancestor'],
    ['[web]\nh1 ansible_host="unterminated\n', 'unterminated double quote'],
    ['# nothing here\n', '/inv/hosts.ini: the inventory lists no hosts'],
  ])('INI %j is refused: %s', (text, message) => {
    expect(problems(() => ini(text)).join('\n')).toContain(message);
  });

  it('reports every problem at once', () => {
    const issues = problems(() => ini('[web]\nweb-*\nh1 ansible_connection=local\nh2 ansible_port=x\n'));
    expect(issues).toHaveLength(3);
    expect(issues.map((i) => i.split(': ')[0])).toEqual(['/inv/hosts.ini:2', '/inv/hosts.ini:3', '/inv/hosts.ini:4']);
  });

  it('warns (does not refuse) for passwords, extra ssh args and host key checking', () => {
    const conv = ini('[web]\nh1 ansible_password=secret ansible_user=u ansible_become=true ansible_become_pass=x ansible_host_key_checking=false ansible_ssh_extra_args="-o ServerAliveInterval=5"\n');
    expect(conv.warnings).toEqual([
      '/inv/hosts.ini:2: host h1: ansible_become_pass is not used: runc-rollout runs sudo -n, which needs passwordless sudo for u',
      '/inv/hosts.ini:2: host h1: ansible_password is not used: password authentication is not supported; the key file, --identity or the SSH agent is used',
      '/inv/hosts.ini:2: host h1: ansible_ssh_extra_args: "-o ServerAliveInterval=5" ignored (only ProxyJump / -J is understood)',
      '/inv/hosts.ini:2: host h1: ansible_host_key_checking is ignored: host keys are always checked against known_hosts (use --known-hosts)',
    ]);
    expect(conv.raw.nodes[0]!.ssh).toEqual({ user: 'u', sudo: true });
  });

  it('refuses a !vault value runc-rollout needs, naming host and line, and ignores one it does not', () => {
    const text = [
      'all:',
      '  hosts:',
      '    h1:',
      '      ansible_become_password: !vault |',
      '        $ANSIBLE_VAULT;1.1;AES256',
      '        6231',
      '    h2:',
      '      ansible_user: !vault |',
      '        $ANSIBLE_VAULT;1.1;AES256',
      '        3938',
      '',
    ].join('\n');
    expect(problems(() => yml(text))).toEqual([
      '/inv/hosts.yml:8: host h2: ansible_user is encrypted with ansible-vault, which runc-rollout cannot decrypt; write the value in clear (it is not a secret) or pass it as a flag',
    ]);
    expect(yml(text.split('    h2:')[0]!).raw.nodes).toEqual([{ name: 'h1', host: 'h1', groups: ['ungrouped'] }]);
  });

  it.each([
    ['plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n', '/inv/hosts.yml:1: inventory plugins (plugin: amazon.aws.aws_ec2) are dynamic inventories and are not supported'],
    ['all:\n  hosts:\n    - h1\n    - h2\n', '/inv/hosts.yml:3: hosts of group "all" must be a mapping of host names'],
    ['all:\n  children:\n    web:\n      hosts:\n        "web*":\n', '/inv/hosts.yml:5: "web*": host patterns other than ranges are not supported'],
    ['all:\n  hosts:\n    h1: {ansible_port: [1]}\n', 'ansible_port must be a single value, not a list'],
    ['all:\n  hosts: {h1: }\n  hosts: {h2: }\n', 'YAML syntax error'],
    ['- h1\n', 'an Ansible YAML inventory must be a mapping of groups'],
  ])('YAML %j is refused: %s', (text, message) => {
    expect(problems(() => yml(text)).join('\n')).toContain(message);
  });

  it('warns about unknown keys in a YAML group, as Ansible does', () => {
    const conv = yml('all:\n  hots:\n    h1:\n  hosts:\n    h2:\n');
    expect(conv.warnings).toEqual(['/inv/hosts.yml:2: group "all": key "hots" is not hosts, children or vars; ignored (as Ansible does)']);
  });
});

describe('detectInventoryFormat', () => {
  it.each([
    ['native', 'inv.yaml', 'ssh:\n  user: root\nnodes:\n  - name: a\n    host: 10.0.0.1\n'],
    ['native', 'inv.yaml', '{"nodes": [{"name": "a", "host": "h"}]}'],
    ['native', 'inv.yaml', 'ssh:\n  user: root\n'],
    ['native', 'inv.yaml', ''],
    ['native', 'inv.yaml', 'a: [unclosed\n'],
    ['ansible-yaml', 'hosts', 'all:\n  hosts:\n    h1:\n'],
    ['ansible-yaml', 'hosts.yml', 'web:\n  hosts:\n    h1:\n'],
    ['ansible-yaml', 'hosts.yml', 'plugin: aws_ec2\n'],
    ['ansible-ini', 'hosts.yaml', '[web]\nweb1 ansible_host=10.0.0.1\n'],
    ['ansible-ini', 'hosts', 'web1 ansible_host=10.0.0.1\nweb2\n'],
    ['ansible-ini', 'inventory.ini', 'web1\n'],
    ['ansible-ini', 'hosts', '# fleet\n[all:vars]\nansible_user=ubuntu\n[web]\nw1\n'],
  ])('%s: %s %j', (expected, path, text) => {
    expect(detectInventoryFormat(path, text)).toBe(expected);
  });

  it('refuses dynamic inventory scripts and vault-encrypted files with a way out', () => {
    expect(() => detectInventoryFormat('/inv/ec2.py', '#!/usr/bin/env python3\nprint("{}")\n')).toThrow(/dynamic inventory.*ansible-inventory -i \/inv\/ec2.py --list --yaml/);
    expect(() => detectInventoryFormat('/inv/hosts', '$ANSIBLE_VAULT;1.1;AES256\n3631\n')).toThrow(/encrypted with ansible-vault/);
    expect(() => detectInventoryFormat('/inv/hosts', '#!/bin/sh\n')).toThrow(InputError);
  });

  it('detects the fixtures', () => {
    expect(detectInventoryFormat('prod.ini', fixture('prod.ini'))).toBe('ansible-ini');
    expect(detectInventoryFormat('staging.yml', fixture('staging.yml'))).toBe('ansible-yaml');
  });
});

describe('host ranges and entries', () => {
  it.each([
    ['worker-[01:04]', ['worker-01', 'worker-02', 'worker-03', 'worker-04']],
    ['db-[a:c].example.com', ['db-a.example.com', 'db-b.example.com', 'db-c.example.com']],
    ['n[1:10:3]', ['n1', 'n4', 'n7', 'n10']],
    ['n[8:10]', ['n8', 'n9', 'n10']],
    ['r[1:2]-s[a:b]', ['r1-sa', 'r1-sb', 'r2-sa', 'r2-sb']],
    ['[:2]x', ['0x', '1x', '2x']],
    ['plain', ['plain']],
  ])('%s', (pattern, expected) => {
    expect(expandHostRange(pattern)).toEqual(expected);
  });

  it.each(['n[1:]', 'n[1]', 'n[1:2:0]', 'n[a:3]', 'n[1:2', 'n[0:99999]'])('%s is refused', (pattern) => {
    expect(typeof expandHostRange(pattern)).toBe('string');
  });

  it('reads a port suffix but not inside a range or an IPv6 address', () => {
    expect(parseHostEntry('db.example.com:2222')).toEqual({ names: ['db.example.com'], port: 2222 });
    expect(parseHostEntry('web[1:2]:2200')).toEqual({ names: ['web1', 'web2'], port: 2200 });
    expect(parseHostEntry('web[1:2]')).toEqual({ names: ['web1', 'web2'] });
    expect(parseHostEntry('fe80::1')).toEqual({ names: ['fe80::1'] });
  });
});

describe('INI reading details', () => {
  it.each([
    ['22', 22],
    ['-1', -1],
    ['1.5', 1.5],
    ['022', '022'],
    ['True', true],
    ['true', 'true'],
    ['None', null],
    ["'quoted value'", 'quoted value'],
    ['"a \\"b\\""', 'a "b"'],
    ['  spaced  ', 'spaced'],
  ])('value %j -> %j', (text, value) => {
    expect(parseIniValue(text)).toEqual(value);
  });

  it('splits host lines like shlex, with comments', () => {
    expect(shellWords(`h1 a='x y' b="p \\"q\\"" c=d\\ e # comment f=g`)).toEqual(['h1', 'a=x y', 'b=p "q"', 'c=d e']);
    expect(shellWords('h1 a=b#c')).toEqual(['h1', 'a=b']);
    expect(shellWords("h1 a='open")).toBe('unterminated single quote');
  });

  it('reads ProxyJump from ssh args in all spellings', () => {
    expect(parseSshArgs('-J ops@jump:2222')).toEqual({ jumpHost: 'ops@jump:2222', ignored: [] });
    expect(parseSshArgs('-oProxyJump=jump')).toEqual({ jumpHost: 'jump', ignored: [] });
    expect(parseSshArgs('-o "ProxyJump jump" -v')).toEqual({ jumpHost: 'jump', ignored: ['-v'] });
  });

  it('keeps the model for callers that want groups and vars as Ansible sees them', () => {
    const model = parseAnsibleIni('[web]\nw1\n[web:vars]\nx=1\n', '/inv/h.ini');
    expect(model.groups.get('web')).toMatchObject({ hosts: ['w1'], vars: { x: { value: 1, where: '/inv/h.ini:4' } } });
    expect(ansibleToNative(model).raw.nodes).toEqual([{ name: 'w1', host: 'w1', groups: ['web'] }]);
  });
});
