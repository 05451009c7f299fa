import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadInventory, MAX_INVENTORY_BYTES, parseInventory } from '../../src/inventory/load.js';
import { inventorySchema } from '../../src/inventory/schema.js';

const FILE = '/srv/fleet/inv.yaml';
const HOME = '/home/sre';

function problems(text: string): string[] {
  try {
    parseInventory(text, FILE, { home: HOME });
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).issues;
  }
  throw new Error('expected the inventory to be refused');
}

function message(text: string): string {
  try {
    parseInventory(text, FILE, { home: HOME });
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).message;
  }
  throw new Error('expected the inventory to be refused');
}

const one = (fields: string) => `nodes:\n  - name: n1\n    host: 10.0.0.1\n${fields}`;

describe('inventory: refused field values, each with its path and reason', () => {
  const table: [string, string, string][] = [
    ['host with ;', one('').replace('10.0.0.1', '"10.0.0.1;touch /tmp/pwned"'), 'nodes[0].host: "10.0.0.1;touch /tmp/pwned" contains ";", which is not allowed here'],
    ['host with $(', one('').replace('10.0.0.1', '"$(reboot)"'), 'nodes[0].host: "$(reboot)" contains "$(", which is not allowed here'],
    ['host with backtick', one('').replace('10.0.0.1', '"`id`"'), 'nodes[0].host: "`id`" contains a backtick, which is not allowed here'],
    ['host with newline', one('').replace('10.0.0.1', '"a\\nb"'), 'nodes[0].host: "a\\nb" contains a line break, which is not allowed here'],
    ['host with space', one('').replace('10.0.0.1', '"a b"'), 'nodes[0].host: "a b" contains a space, which is not allowed here'],
    ['bad IPv4', one('').replace('10.0.0.1', '10.0.0.300'), 'nodes[0].host: "10.0.0.300" is not a valid IPv4 address'],
    ['bad hostname', one('').replace('10.0.0.1', '-bad.example'), 'nodes[0].host: "-bad.example" is not a valid hostname or IP address'],
    ['bracketed IPv6', one('').replace('10.0.0.1', '"[::1]"'), 'nodes[0].host: "[::1]" is not a valid IPv6 address (write it without brackets)'],
    ['host as number', one('').replace('10.0.0.1', '42'), 'nodes[0].host: expected a string, got a number (42)'],
    ['missing host', 'nodes:\n  - name: n1\n', 'nodes[0].host: is required'],
    ['name with quote', one('').replace('n1', `"n'1"`), `nodes[0].name: "n'1" contains a quote, which is not allowed here`],
    ['name with slash', one('').replace('n1', 'a/b'), 'nodes[0].name: "a/b" is not a valid node name (letters, digits, ".", "_", "-"; at most 63; starting with a letter or digit)'],
    ['port 0', one('    ssh: { port: 0 }\n'), 'nodes[0].ssh.port: must be an integer from 1 to 65535, got 0'],
    ['port 65536', one('    ssh: { port: 65536 }\n'), 'nodes[0].ssh.port: must be an integer from 1 to 65535, got 65536'],
    ['port as string', one('    ssh: { port: "22" }\n'), 'nodes[0].ssh.port: expected a number, got a string ("22")'],
    ['user with $', one('    ssh: { user: "r$USER" }\n'), 'nodes[0].ssh.user: "r$USER" contains "$", which is not allowed here'],
    ['user with pipe', one('    ssh: { user: "a|b" }\n'), 'nodes[0].ssh.user: "a|b" contains "|", which is not allowed here'],
    ['policy typo', one('    ssh: { hostKeyPolicy: loose }\n'), 'nodes[0].ssh.hostKeyPolicy: must be one of strict, accept-new; got a string ("loose")'],
    ['policy boolean', one('    ssh: { hostKeyPolicy: true }\n'), 'nodes[0].ssh.hostKeyPolicy: must be one of strict, accept-new; got true'],
    ['sudo as string', one('    ssh: { sudo: "no way" }\n'), 'nodes[0].ssh.sudo: expected true or false, got a string ("no way")'],
    ['jumpHost port', one('    ssh: { jumpHost: "bastion:99999" }\n'), 'nodes[0].ssh.jumpHost: port must be from 1 to 65535, got 99999'],
    ['jumpHost injection', one('    ssh: { jumpHost: "b;id" }\n'), 'nodes[0].ssh.jumpHost: "b;id" contains ";", which is not allowed here'],
    ['identityFile ~user', one('    ssh: { identityFile: "~bob/.ssh/id" }\n'), 'nodes[0].ssh.identityFile: "~bob/.ssh/id": "~user" paths are not supported; write the path out'],
    ['identityFile with newline', one('    ssh: { identityFile: "/k\\ney" }\n'), 'nodes[0].ssh.identityFile: "/k\\ney" contains a line break, which is not allowed here'],
    ['relative runc.path', one('    runc: { path: usr/bin/runc }\n'), 'nodes[0].runc.path: "usr/bin/runc" must be an absolute path (starting with "/")'],
    ['runc.path with space', one('    runc: { path: "/opt/my bin/runc" }\n'), 'nodes[0].runc.path: "/opt/my bin/runc" contains a space, which is not allowed here'],
    ['runc.path with $(', one('    runc: { path: "/usr/bin/$(id)" }\n'), 'nodes[0].runc.path: "/usr/bin/$(id)" contains "$(", which is not allowed here'],
    ['runc.path with ..', one('    runc: { path: /usr/../bin/runc }\n'), 'nodes[0].runc.path: "/usr/../bin/runc" must be a normalised path (no "//", "." or ".." segments)'],
    ['runc.path directory', one('    runc: { path: /usr/bin/ }\n'), 'nodes[0].runc.path: "/usr/bin/" must name a file, not a directory'],
    ['runc.path odd char', one('    runc: { path: "/usr/bin/ru*nc" }\n'), 'nodes[0].runc.path: "/usr/bin/ru*nc" may only contain letters, digits and . _ + @ % , : = / -'],
    ['smoke with newline', one('    smoke: { command: "true\\nreboot" }\n'), 'nodes[0].smoke.command: must be one line without control characters'],
    ['label value', one('    labels: { pool: "a;b" }\n'), 'nodes[0].labels.pool: "a;b" is not a valid label value (letters, digits, . _ -; at most 63)'],
    ['label name', one('    labels: { "bad key": x }\n'), 'nodes[0].labels."bad key": "bad key" is not a valid label name (letters, digits, . _ / -; at most 63)'],
    ['labels as list', one('    labels: [a]\n'), 'nodes[0].labels: expected a mapping, got a list'],
    ['node as string', 'nodes:\n  - worker-1\n', 'nodes[0]: expected a mapping, got a string ("worker-1")'],
    ['nodes as mapping', 'nodes: { a: 1 }\n', 'nodes: expected a list, got a mapping'],
    ['no nodes', 'nodes: []\n', 'nodes: at least one node is required'],
    ['top-level runc.path relative', 'runc: { path: runc }\n' + one(''), 'runc.path: "runc" must be an absolute path (starting with "/")'],
    ['top-level ssh as list', 'ssh: [a]\n' + one(''), 'ssh: expected a mapping, got a list'],
  ];
  it.each(table)('%s', (_label, text, expected) => {
    expect(problems(text)).toEqual([expected]);
  });
});

describe('inventory: cross-field rules', () => {
  it('refuses duplicate names and host:port pairs, even next to other problems', () => {
    const text = [
      'ssh: { port: 2222 }',
      'nodes:',
      '  - { name: a, host: 10.0.0.1 }',
      '  - { name: a, host: 10.0.0.1, ssh: { port: 70000 } }',
      '  - { name: b, host: 10.0.0.1 }',
      '  - { name: c, host: 10.0.0.1, ssh: { port: 22 } }',
      '  - { name: d, host: HOST.example }',
      '  - { name: e, host: host.example. }',
    ].join('\n');
    expect(problems(text)).toEqual([
      'nodes[1].ssh.port: must be an integer from 1 to 65535, got 70000',
      'nodes[1].name: duplicate name "a" (also nodes[0])',
      'nodes[2].host: 10.0.0.1 port 2222 is already used by nodes[0]',
      'nodes[5].host: host.example. port 2222 is already used by nodes[4]',
    ]);
  });

  it('reports every problem at once, in node order, and names the file and the count', () => {
    const text = 'nodes:\n  - { name: a, host: "x;y" }\n  - { name: "b c", host: 10.0.0.2, runc: { path: rel } }\n';
    expect(problems(text)).toEqual([
      'nodes[0].host: "x;y" contains ";", which is not allowed here',
      'nodes[1].name: "b c" contains a space, which is not allowed here',
      'nodes[1].runc.path: "rel" must be an absolute path (starting with "/")',
    ]);
    expect(message(text)).toBe(`inventory ${FILE}: 3 problems: nodes[0].host: "x;y" contains ";", which is not allowed here ...`);
  });
});

describe('inventory: whole-file problems', () => {
  it.each([
    ['empty', '', `inventory ${FILE}: the file is empty; it needs at least a \`nodes:\` list`],
    ['whitespace only', '  \n\n', `inventory ${FILE}: the file is empty; it needs at least a \`nodes:\` list`],
    ['comments only', '# nothing\n', `inventory ${FILE}: the file is empty (only comments); it needs at least a \`nodes:\` list`],
    ['a list', '- a\n- b\n', `inventory ${FILE}: the top level must be a mapping with a \`nodes:\` list, got a list`],
    ['a scalar', 'hello\n', `inventory ${FILE}: the top level must be a mapping with a \`nodes:\` list, got a string`],
    ['syntax error', 'nodes:\n  - name: a\n    host: [1\n', `inventory ${FILE}: YAML syntax error at line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]`],
    ['duplicate key', 'nodes: []\nnodes: []\n', `inventory ${FILE}: YAML syntax error at line 2, column 1: Map keys must be unique`],
    ['no nodes key', 'ssh: { user: root }\n', `inventory ${FILE}: 1 problem: nodes: is required`],
  ])('%s', (_label, text, expected) => {
    expect(message(text)).toBe(expected);
  });

  it('refuses alias bombs without expanding them', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    lines.push('nodes: [{ name: a, host: h }]');
    expect(message(lines.join('\n'))).toMatch(new RegExp(`^inventory ${FILE}: YAML could not be read: .*alias`, 'i'));
  });
});

describe('inventory: valid files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rr-inv-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the shipped example with defaults, ~ expansion and per-node overrides', async () => {
    const inv = await loadInventory(join(import.meta.dirname, '../../inventories/example.yaml'), { home: HOME });
    expect(inv.warnings).toEqual([]);
    expect(inv.nodes).toEqual([
      {
        name: 'worker-1',
        ssh: {
          host: '10.0.0.11', port: 22, user: 'root', identityFile: `${HOME}/.ssh/id_ed25519`, knownHosts: `${HOME}/.ssh/known_hosts`,
          hostKeyPolicy: 'strict', sudo: false, jumpHost: { host: 'bastion.example.com', port: 22, user: 'root' },
        },
        runcPath: '/usr/local/sbin/runc',
        labels: {},
      },
      {
        name: 'worker-2',
        ssh: {
          host: '10.0.0.12', port: 22, user: 'ubuntu', identityFile: `${HOME}/.ssh/id_ed25519`, knownHosts: `${HOME}/.ssh/known_hosts`,
          hostKeyPolicy: 'strict', sudo: true, jumpHost: { host: 'bastion.example.com', port: 22, user: 'ubuntu' },
        },
        runcPath: '/usr/bin/runc',
        labels: { pool: 'gpu' },
      },
    ]);
  });

  it('applies built-in defaults, resolves relative paths from the file, warns on unknown keys', async () => {
    const path = join(dir, 'fleet.yaml');
    await writeFile(path, [
      'ssh: { identityFile: keys/id, jumpHost: "ops@[2001:db8::1]:2222", usr: x }',
      'smoke: { command: "crictl info >/dev/null && echo ok; true" }',
      'extra: true',
      'nodes:',
      '  - { name: a, host: "2001:db8::5", labels: { gen: 3, spot: false }, sudo: true }',
      '  - { name: b, host: b.example, ssh: { jumpHost: null, user: deploy, knownHosts: ../kh }, runc: {} }',
    ].join('\n'));
    const inv = await loadInventory(path, { home: HOME });
    expect(inv.path).toBe(path);
    expect(inv.warnings).toEqual([
      'extra: unknown key, ignored',
      'ssh.usr: unknown key, ignored (did you mean "user"?)',
      'nodes[0].sudo: unknown key, ignored',
      'nodes[1].ssh: user deploy is not root and sudo is false; commands that need root will fail',
    ]);
    expect(inv.nodes[0]).toEqual({
      name: 'a',
      ssh: {
        host: '2001:db8::5', port: 22, user: 'root', identityFile: join(dir, 'keys/id'), knownHosts: `${HOME}/.ssh/known_hosts`,
        hostKeyPolicy: 'strict', sudo: false, jumpHost: { user: 'ops', host: '2001:db8::1', port: 2222 },
      },
      smokeCommand: 'crictl info >/dev/null && echo ok; true',
      labels: { gen: '3', spot: 'false' },
    });
    expect(inv.nodes[1]!.ssh).toEqual({
      host: 'b.example', port: 22, user: 'deploy', identityFile: join(dir, 'keys/id'), knownHosts: join(dir, '../kh'),
      hostKeyPolicy: 'strict', sudo: false,
    });
  });

  it('exports a zod schema that accepts the raw example', () => {
    expect(inventorySchema.safeParse({ nodes: [{ name: 'a', host: 'h' }] }).success).toBe(true);
    expect(inventorySchema.safeParse({ nodes: [{ name: 'a', host: 'h;id' }] }).success).toBe(false);
  });

  it('refuses a missing file, a directory and a file over the size cap, naming the file', async () => {
    await expect(loadInventory(join(dir, 'nope.yaml'))).rejects.toThrow(`inventory ${join(dir, 'nope.yaml')}: cannot read it: no such file`);
    await expect(loadInventory(dir)).rejects.toThrow(`inventory ${dir}: is a directory, expected a YAML file`);
    const big = join(dir, 'big.yaml');
    await writeFile(big, `# ${'x'.repeat(MAX_INVENTORY_BYTES)}\nnodes: []\n`);
    await expect(loadInventory(big)).rejects.toThrow(`inventory ${big}: is too large (5.0 MiB); the limit is 5.0 MiB`);
    const bin = join(dir, 'bin.yaml');
    await writeFile(bin, Buffer.from([0x6e, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    await expect(loadInventory(bin)).rejects.toThrow(`inventory ${bin}: is not UTF-8 text`);
  });
});
