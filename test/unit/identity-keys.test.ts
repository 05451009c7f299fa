// Which identity files need a passphrase before anything connects: the files
// the selected nodes and their jump hops load, encrypted, and not covered by
// an agent that holds the same key.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeSpec, SshTarget } from '../../src/core/types.js';
import { agentPublicKeys, encryptedIdentityFiles, filesNeedingPassphrase, identityUses, inspectKeyFile, opensshPublicKey, passphraseOpens } from '../../src/ssh/identity-keys.js';

const node = (name: string, ssh: Partial<SshTarget>): NodeSpec =>
  ({ name, ssh: { host: name, port: 22, user: 'root', knownHosts: '/kh', hostKeyPolicy: 'strict', sudo: false, ...ssh }, labels: {} }) as NodeSpec;

describe('identityUses', () => {
  it('lists every file of every node and hop with the agent each use falls back to', () => {
    const uses = identityUses(
      [
        node('a', { identityFile: '/k1' }),
        node('b', { identityFiles: ['/k1', '/k2'], identitiesOnly: true }),
        node('c', { identityFile: '/k3', agentSocket: null }),
        node('d', { identityFile: '/k4', agentSocket: '/other-agent', jumpHosts: [{ host: 'j1', port: 22, user: 'u', identityFiles: ['/kj'] }, { host: 'j2', port: 22, user: 'u' }] }),
      ],
      '/agent',
    );
    expect(Object.fromEntries(uses)).toEqual({
      '/k1': ['/agent', undefined],
      '/k2': [undefined],
      '/k3': [undefined],
      // j2 has neither files nor agent of its own: it reuses the node's auth, not listed twice
      '/k4': ['/other-agent'],
      '/kj': ['/other-agent'],
    });
  });

  it('a hop with only its own agent loads the node\'s files again, with that agent', () => {
    const uses = identityUses([node('a', { identityFile: '/k', jumpHost: { host: 'j', port: 22, user: 'u', agentSocket: null } })], '/agent');
    expect(uses.get('/k')).toEqual(['/agent', undefined]);
  });
});

describe('filesNeedingPassphrase', () => {
  const pub = Buffer.from('pub-a');
  const info = new Map([
    ['/enc', { encrypted: true, publicKey: pub }],
    ['/enc-nopub', { encrypted: true }],
    ['/plain', { encrypted: false }],
  ]);
  const agents = new Map([['/has', [Buffer.from('other'), Buffer.from('pub-a')]], ['/lacks', [Buffer.from('other')]]]);

  it('asks for an encrypted key unless every use has an agent holding it', () => {
    expect(filesNeedingPassphrase(new Map([['/enc', [undefined]]]), info, agents)).toEqual(['/enc']);
    expect(filesNeedingPassphrase(new Map([['/enc', ['/lacks']]]), info, agents)).toEqual(['/enc']);
    expect(filesNeedingPassphrase(new Map([['/enc', ['/has']]]), info, agents)).toEqual([]);
    expect(filesNeedingPassphrase(new Map([['/enc', ['/has', undefined]]]), info, agents)).toEqual(['/enc']);
    expect(filesNeedingPassphrase(new Map([['/enc-nopub', ['/has']]]), info, agents)).toEqual(['/enc-nopub']);
    expect(filesNeedingPassphrase(new Map([['/plain', [undefined]], ['/missing', [undefined]]]), info, agents)).toEqual([]);
  });
});

describe('key files', () => {
  let dir: string;
  const passphrase = 'correct horse battery staple';
  const pubOf = (text: string) => (ssh2.utils.parseKey(text) as ssh2.ParsedKey).getPublicSSH();
  let ed: { private: string; public: string };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rr-keys-'));
    ed = ssh2.utils.generateKeyPairSync('ed25519', { passphrase, cipher: 'aes256-ctr', rounds: 4 });
    writeFileSync(join(dir, 'ed'), ed.private, { mode: 0o600 });
    writeFileSync(join(dir, 'plain'), ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).private, { mode: 0o600 });
    // Old PEM format: no public key inside, so only a .pub next to it tells which key it is.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase }, publicKeyEncoding: { type: 'pkcs1', format: 'pem' } });
    writeFileSync(join(dir, 'rsa'), rsa.privateKey, { mode: 0o600 });
    writeFileSync(join(dir, 'rsa-with-pub'), rsa.privateKey, { mode: 0o600 });
    const rsaPub = ssh2.utils.parseKey(rsa.privateKey, passphrase) as ssh2.ParsedKey;
    writeFileSync(join(dir, 'rsa-with-pub.pub'), `ssh-rsa ${rsaPub.getPublicSSH().toString('base64')} test\n`);
  });

  it('reads the clear public part of an encrypted OpenSSH key', () => {
    expect(opensshPublicKey(ed.private)?.equals(pubOf(ed.public))).toBe(true);
    expect(opensshPublicKey('-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----')).toBeUndefined();
  });

  it('tells encrypted keys from plain, missing and PEM ones, with the public key when it can', async () => {
    const e = await inspectKeyFile(join(dir, 'ed'));
    expect(e.encrypted).toBe(true);
    expect(e.publicKey?.equals(pubOf(ed.public))).toBe(true);
    expect(await inspectKeyFile(join(dir, 'plain'))).toEqual({ encrypted: false });
    expect(await inspectKeyFile(join(dir, 'nope'))).toEqual({ encrypted: false });
    expect(await inspectKeyFile(join(dir, 'rsa'))).toEqual({ encrypted: true });
    const withPub = await inspectKeyFile(join(dir, 'rsa-with-pub'));
    expect(withPub.encrypted).toBe(true);
    expect(withPub.publicKey).toBeInstanceOf(Buffer);
  });

  it('checks a passphrase', async () => {
    expect(await passphraseOpens(join(dir, 'ed'), passphrase)).toBe(true);
    expect(await passphraseOpens(join(dir, 'ed'), 'wrong')).toBe(false);
    expect(await passphraseOpens(join(dir, 'rsa'), passphrase)).toBe(true);
  });

  describe.skipIf(!existsSync('/usr/bin/ssh-agent'))('with a real ssh-agent', () => {
    let agent: ChildProcess;
    let sock: string;
    beforeAll(async () => {
      sock = join(dir, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      // The agent gets the decrypted ed25519 key, as `ssh-add` would after asking once.
      const plain = join(dir, 'ed-plain');
      writeFileSync(plain, ed.private, { mode: 0o600 });
      execFileSync('ssh-keygen', ['-q', '-p', '-f', plain, '-P', passphrase, '-N', '']);
      execFileSync('ssh-add', ['-q', plain], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    });
    afterAll(() => {
      agent?.kill();
    });

    it('lists the agent\'s public keys; none from a socket that is not there', async () => {
      const keys = await agentPublicKeys(sock);
      expect(keys.some((k) => k.equals(pubOf(ed.public)))).toBe(true);
      expect(await agentPublicKeys(join(dir, 'no-agent.sock'))).toEqual([]);
    });

    it('does not ask for a key the agent holds; asks for one it lacks or without an agent', async () => {
      const edNode = node('a', { identityFile: join(dir, 'ed') });
      expect(await encryptedIdentityFiles([edNode], sock)).toEqual([]);
      expect(await encryptedIdentityFiles([edNode], undefined)).toEqual([join(dir, 'ed')]);
      expect(await encryptedIdentityFiles([node('b', { identityFiles: [join(dir, 'rsa'), join(dir, 'plain'), join(dir, 'ed')] })], sock)).toEqual([join(dir, 'rsa')]);
    });
  });
});
