import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyHostKey } from '../../src/ssh/host-key-file.js';
import { checkHostKey, entryMatchesHost, fingerprint, knownHostLine, knownKeyTypes, parseKnownHosts } from '../../src/ssh/known-hosts.js';

let dir: string;
interface Key { type: string; b64: string; blob: Buffer; fp: string }
const keys: Record<string, Key> = {};

function keygen(name: string, type: string): Key {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', file]);
  const pub = execFileSync('cat', [`${file}.pub`]).toString().trim().split(' ');
  // ssh-keygen's own fingerprint, to compare ours with.
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`]).toString().split(' ')[1]!;
  return { type: pub[0]!, b64: pub[1]!, blob: Buffer.from(pub[1]!, 'base64'), fp };
}

const line = (hosts: string, k: Key, marker = '') => `${marker ? `${marker} ` : ''}${hosts} ${k.type} ${k.b64}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rr-kh-'));
  keys.ed = keygen('ed', 'ed25519');
  keys.rsa = keygen('rsa', 'rsa');
  keys.ecdsa = keygen('ecdsa', 'ecdsa');
  keys.other = keygen('other', 'ed25519');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fingerprint', () => {
  it('matches ssh-keygen -l for each key type', () => {
    for (const k of Object.values(keys)) expect(fingerprint(k.blob)).toBe(k.fp);
    expect(keys.ed!.fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('known_hosts matching, plain and hashed by ssh-keygen -H', () => {
  const plain = () =>
    [
      '# comment',
      '',
      line('node1.example,10.0.0.1', keys.ed!),
      line('[node2.example]:2222', keys.ed!),
      line('node2.example', keys.rsa!),
      line('Node3.Example', keys.ecdsa!),
    ].join('\n') + '\n';

  let hashed: string;
  beforeAll(async () => {
    const file = join(dir, 'to-hash');
    await writeFile(file, plain());
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    hashed = await readFile(file, 'utf8');
  });

  it('ssh-keygen really hashed every host name', () => {
    expect(hashed).not.toMatch(/node|10\.0\.0\.1/);
    expect(hashed.match(/^\|1\|/gm)).toHaveLength(5);
  });

  for (const variant of ['plain', 'hashed'] as const) {
    it(`${variant}: ok, unknown, changed, ports and case`, () => {
      const { entries, skipped } = parseKnownHosts(variant === 'plain' ? plain() : hashed);
      expect(skipped).toEqual([]);
      const check = (host: string, port: number, k: Key) => checkHostKey(entries, host, port, k.blob).status;
      expect(check('node1.example', 22, keys.ed!)).toBe('ok');
      expect(check('10.0.0.1', 22, keys.ed!)).toBe('ok');
      expect(check('NODE1.example', 22, keys.ed!)).toBe('ok');
      expect(check('node3.example', 22, keys.ecdsa!)).toBe('ok');
      expect(check('node2.example', 2222, keys.ed!)).toBe('ok');
      expect(check('node2.example', 22, keys.rsa!)).toBe('ok');
      // The key known for port 22 says nothing about port 2222, and vice versa: each is "changed" only for its own port.
      expect(check('node2.example', 2222, keys.rsa!)).toBe('changed');
      expect(check('node2.example', 22, keys.ed!)).toBe('changed');
      expect(check('node1.example', 2222, keys.ed!)).toBe('unknown');
      expect(check('node9.example', 22, keys.ed!)).toBe('unknown');
      expect(check('node1.example', 22, keys.other!)).toBe('changed');
      const r = checkHostKey(entries, 'node1.example', 22, keys.other!.blob);
      expect(r).toEqual({ status: 'changed', fingerprint: keys.other!.fp, keyType: 'ssh-ed25519', line: 3 });
      expect(knownKeyTypes(entries, 'node2.example', 22)).toEqual(['ssh-rsa']);
    });
  }

  it('wildcards, negation and comma lists', () => {
    expect(entryMatchesHost('*.example,!bad.example', 'good.example', 22)).toBe(true);
    expect(entryMatchesHost('*.example,!bad.example', 'bad.example', 22)).toBe(false);
    expect(entryMatchesHost('!bad.example,*.example', 'bad.example', 22)).toBe(false);
    expect(entryMatchesHost('node?', 'node7', 22)).toBe(true);
    expect(entryMatchesHost('node?', 'node77', 22)).toBe(false);
    expect(entryMatchesHost('[10.0.0.*]:2222', '10.0.0.9', 2222)).toBe(true);
    expect(entryMatchesHost('[10.0.0.*]:2222', '10.0.0.9', 22)).toBe(false);
    expect(entryMatchesHost('10.0.0.9', '10.0.0.9', 2222)).toBe(false);
    expect(entryMatchesHost('a.b', 'aXb', 22)).toBe(false);
  });

  it('@revoked refuses a key even when another line accepts it; @cert-authority is ignored', () => {
    const { entries } = parseKnownHosts([line('node1', keys.ed!), line('*', keys.ed!, '@revoked'), line('*.example', keys.rsa!, '@cert-authority')].join('\n'));
    expect(checkHostKey(entries, 'node1', 22, keys.ed!.blob)).toMatchObject({ status: 'revoked', line: 2 });
    expect(checkHostKey(entries, 'x.example', 22, keys.rsa!.blob).status).toBe('unknown');
  });

  it('skips malformed lines instead of failing, as ssh does', () => {
    const { entries, skipped } = parseKnownHosts(
      ['onlyhost', `h ssh-rsa ${keys.ed!.b64}`, 'h ssh-ed25519 !!!notbase64', '@weird h ssh-ed25519 AAAA', line('ok', keys.ed!)].join('\n'),
    );
    expect(entries.map((e) => e.hosts)).toEqual(['ok']);
    expect(skipped).toEqual([
      'line 1: expected "hosts keytype key"',
      'line 2: key type ssh-rsa does not match the key',
      'line 3: key is not valid base64',
      'line 4: unknown marker @weird',
    ]);
  });
});

describe('verifyHostKey on a file', () => {
  it('strict never writes; accept-new appends one line, once, that ssh-keygen -F finds', async () => {
    const file = join(dir, 'accept', 'known_hosts');
    const strict = await verifyHostKey({ knownHostsPath: file, host: '127.0.0.5', port: 2201, key: keys.ed!.blob, policy: 'strict' });
    expect(strict).toMatchObject({ status: 'unknown', added: false, fingerprint: keys.ed!.fp });
    await expect(readFile(file, 'utf8')).rejects.toThrow(/ENOENT/);

    // Parallel connections to the same host must add it once.
    const results = await Promise.all(
      [1, 2, 3].map(() => verifyHostKey({ knownHostsPath: file, host: '127.0.0.5', port: 2201, key: keys.ed!.blob, policy: 'accept-new' })),
    );
    expect(results.map((r) => r.added).sort()).toEqual([false, false, true]);
    expect(results.every((r) => r.status === 'ok')).toBe(true);
    expect(await readFile(file, 'utf8')).toBe(`${knownHostLine('127.0.0.5', 2201, keys.ed!.blob)}\n`);
    expect(await readFile(file, 'utf8')).toBe(`[127.0.0.5]:2201 ssh-ed25519 ${keys.ed!.b64}\n`);
    expect(execFileSync('ssh-keygen', ['-F', '[127.0.0.5]:2201', '-f', file]).toString()).toContain(keys.ed!.b64);

    const again = await verifyHostKey({ knownHostsPath: file, host: '127.0.0.5', port: 2201, key: keys.ed!.blob, policy: 'accept-new' });
    expect(again).toMatchObject({ status: 'ok', added: false });
  });

  it('accept-new still refuses a changed key and leaves the file alone; appends after a missing final newline', async () => {
    const file = join(dir, 'changed_hosts');
    const original = line('node1', keys.ed!); // no trailing newline
    await writeFile(file, original);
    const changed = await verifyHostKey({ knownHostsPath: file, host: 'node1', port: 22, key: keys.other!.blob, policy: 'accept-new' });
    expect(changed).toMatchObject({ status: 'changed', added: false, line: 1, fingerprint: keys.other!.fp });
    expect(await readFile(file, 'utf8')).toBe(original);

    const added = await verifyHostKey({ knownHostsPath: file, host: 'node2', port: 22, key: keys.rsa!.blob, policy: 'accept-new' });
    expect(added).toMatchObject({ status: 'ok', added: true });
    expect(await readFile(file, 'utf8')).toBe(`${original}\nnode2 ssh-rsa ${keys.rsa!.b64}\n`);
  });
});
