// The passphrase of an encrypted identity file, asked on a real terminal: the
// built CLI under a pseudo-terminal (util-linux `script`), CI unset, against
// the test fleet. Asked once for two nodes that share the key, with echo off,
// before anything connects; a wrong one is refused naming the file; without a
// terminal nothing is asked and the connect error names the key.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetUnsupportedReason, startFleet, type Fleet } from '../harness/fleet.js';
import { assertBuilt, ROOT } from './apply-cli.js';

const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the passphrase prompt e2e test: ${unsupported}`);

const PASSPHRASE = 'correct horse battery staple';

describe.skipIf(unsupported)('passphrase prompt on a terminal', () => {
  let fleet: Fleet;
  let tmp: string;
  let key: string;
  let inventory: string;

  beforeAll(async () => {
    assertBuilt();
    tmp = mkdtempSync(join(tmpdir(), 'rr-passphrase-tty-'));
    fleet = await startFleet({ nodes: [{ name: 'n1' }, { name: 'n2' }] });
    key = join(tmp, 'encrypted_key');
    writeFileSync(key, readFileSync(fleet.identityFile), { mode: 0o600 });
    execFileSync('ssh-keygen', ['-q', '-p', '-f', key, '-N', PASSPHRASE]);
    inventory = fleet.writeInventory({ ssh: { identityFile: key } });
    mkdirSync(join(tmp, 'releases'));
  });

  afterAll(async () => {
    await fleet?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  // plan gets as far as connecting (--verbose logs each connection), then stops at the empty release dir.
  const args = () => ['--verbose', '--cache-dir', join(tmp, 'cache'), 'plan', '-i', inventory, '--version', '1.2.9', '--release-dir', join(tmp, 'releases')];
  const childEnv = (extra: Record<string, string> = {}) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: tmp, NO_COLOR: '1', ...extra };
    for (const k of ['CI', 'SSH_AUTH_SOCK', 'RUNC_ROLLOUT_KEY_PASSPHRASE']) if (!(k in extra)) delete env[k];
    return env;
  };

  /** The CLI on a pty; each answer is typed when the next passphrase prompt shows. */
  const onTty = (answers: string[]): Promise<{ code: number | null; out: string; prompts: number }> => {
    const words = [process.execPath, join(ROOT, 'bin/runc-rollout'), ...args()];
    const command = `stty cols 200 rows 40; exec ${words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ')}`;
    const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: tmp, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let prompts = 0;
    const onData = (d: Buffer) => {
      out += d.toString();
      const seen = out.match(/Enter passphrase for key/g)?.length ?? 0;
      while (prompts < seen) {
        prompts++;
        const a = answers.shift();
        if (a !== undefined) child.stdin.write(`${a}\r`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    return new Promise((res) =>
      child.on('close', (code) => {
        clearTimeout(killer);
        res({ code, out, prompts });
      }),
    );
  };

  it('asks once for a key two nodes share, with echo off, before connecting; both nodes connect', async () => {
    const r = await onTty([PASSPHRASE]);
    const show = `exit ${r.code}\n${r.out}`;
    expect(r.prompts, show).toBe(1);
    expect(r.out, show).toContain(`Enter passphrase for key ${key}`);
    expect(r.out, show).not.toContain(PASSPHRASE);
    // Asked before the run started: the prompt comes before the first line of the plan itself.
    expect(r.out.indexOf('Enter passphrase'), show).toBeLessThan(r.out.indexOf('gathering facts'));
    for (const n of ['n1', 'n2']) expect(r.out, show).toContain(`${n}: connected to root@${fleet.node(n).host}:`);
    expect(r.out, show).not.toMatch(/is encrypted and no passphrase was given/);
  });

  it('refuses a wrong passphrase after three tries, naming the file, before connecting', async () => {
    const r = await onTty(['wrong-1', 'wrong-2', 'wrong-3']);
    const show = `exit ${r.code}\n${r.out}`;
    expect(r.code, show).toBe(3);
    expect(r.prompts, show).toBe(3);
    expect(r.out, show).toContain(`identity file ${key}: wrong passphrase (3 tries); nothing was done`);
    expect(r.out, show).not.toContain('gathering facts');
  });

  it('without a terminal nothing is asked: the connect error names the key and how to give the passphrase', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/runc-rollout'), ...args()], { cwd: tmp, env: childEnv({ CI: 'true' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((res) => child.on('close', res));
    expect(code, out).toBe(3);
    expect(out).not.toContain('Enter passphrase');
    expect(out).toContain(`identity file ${key} is encrypted and no passphrase was given (set RUNC_ROLLOUT_KEY_PASSPHRASE, or load the key into the SSH agent)`);
  });
});
