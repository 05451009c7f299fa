// The terminal side of encrypted keys: when to ask, reading with echo off,
// once per file, a wrong passphrase asked again a bounded number of times.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { askPassphrases, mayAskPassphrase, PASSPHRASE_TRIES, readSecret, type SecretIo } from '../../src/cli/passphrase-prompt.js';
import { InputError, InterruptedError } from '../../src/errors.js';

describe('mayAskPassphrase', () => {
  const base = { stdinTTY: true, stderrTTY: true, env: {}, unattended: false };
  it('asks only a person at a terminal, outside CI and --yes, without the env passphrase', () => {
    expect(mayAskPassphrase(base)).toBe(true);
    expect(mayAskPassphrase({ ...base, env: { CI: 'false' } })).toBe(true);
    expect(mayAskPassphrase({ ...base, stdinTTY: false })).toBe(false);
    expect(mayAskPassphrase({ ...base, stderrTTY: false })).toBe(false);
    expect(mayAskPassphrase({ ...base, env: { CI: 'true' } })).toBe(false);
    expect(mayAskPassphrase({ ...base, unattended: true })).toBe(false);
    expect(mayAskPassphrase({ ...base, env: { RUNC_ROLLOUT_KEY_PASSPHRASE: 'x' } })).toBe(false);
  });
});

/** A fake terminal: what the user types arrives as data; raw mode is recorded. */
function terminal() {
  const input = new PassThrough() as PassThrough & { isTTY: boolean; isRaw: boolean; setRawMode(raw: boolean): void; rawCalls: boolean[] };
  input.isTTY = true;
  input.isRaw = false;
  input.rawCalls = [];
  input.setRawMode = (raw: boolean) => {
    input.isRaw = raw;
    input.rawCalls.push(raw);
  };
  const output = new PassThrough();
  let shown = '';
  output.on('data', (d: Buffer) => (shown += d.toString()));
  const io: SecretIo = { input, output };
  return { io, input, shown: () => shown };
}

describe('readSecret', () => {
  it('reads a line with echo off, editing keys applied, and restores the terminal', async () => {
    const t = terminal();
    const answer = readSecret('Passphrase: ', t.io);
    expect(t.input.isRaw).toBe(true);
    t.input.write('secrex\u007ft');
    t.input.write('\r');
    await expect(answer).resolves.toBe('secret');
    expect(t.input.rawCalls).toEqual([true, false]);
    expect(t.shown()).toBe('Passphrase: \n');
  });

  it('Ctrl-U clears, Ctrl-D ends, Ctrl-C interrupts', async () => {
    const t = terminal();
    const cleared = readSecret('? ', t.io);
    t.input.write('oops\u0015ok\u0004');
    await expect(cleared).resolves.toBe('ok');
    const interrupted = readSecret('? ', t.io);
    t.input.write('ab\u0003');
    await expect(interrupted).rejects.toBeInstanceOf(InterruptedError);
    expect(t.input.isRaw).toBe(false);
  });

  it('a signal interrupts the prompt', async () => {
    const t = terminal();
    const ac = new AbortController();
    const p = readSecret('? ', { ...t.io, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toThrow(/interrupted at the passphrase prompt/);
  });
});

describe('askPassphrases', () => {
  /** Types each answer once the next prompt has shown. */
  const session = (answers: string[]) => {
    const t = terminal();
    let asked = 0;
    t.io.output.on('data', (d: Buffer) => {
      if (/Enter passphrase for key/.test(d.toString())) {
        asked++;
        const a = answers.shift();
        if (a !== undefined) setImmediate(() => t.input.write(`${a}\r`));
      }
    });
    return { ...t, asked: () => asked };
  };
  const opens = async (file: string, p: string) => p === `pw-${file}`;

  it('asks once per file and returns the passphrases by file', async () => {
    const s = session(['pw-/a', 'pw-/b']);
    const got = await askPassphrases(['/a', '/b'], s.io, opens);
    expect(Object.fromEntries(got)).toEqual({ '/a': 'pw-/a', '/b': 'pw-/b' });
    expect(s.asked()).toBe(2);
    expect(s.shown()).toContain('Enter passphrase for key /a');
    expect(s.shown()).not.toContain('pw-/a');
  });

  it('a wrong passphrase is asked again; an empty one skips the key', async () => {
    const s = session(['typo', 'pw-/a', '']);
    const got = await askPassphrases(['/a', '/b'], s.io, opens);
    expect(Object.fromEntries(got)).toEqual({ '/a': 'pw-/a' });
    expect(s.shown()).toContain('Wrong passphrase for /a, try again.');
    expect(s.asked()).toBe(3);
  });

  it(`refuses after ${PASSPHRASE_TRIES} wrong ones, naming the file`, async () => {
    const s = session(['x', 'y', 'z', 'never-asked']);
    const err = await askPassphrases(['/k'], s.io, opens).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(`identity file /k: wrong passphrase (${PASSPHRASE_TRIES} tries); nothing was done`);
    expect(s.asked()).toBe(PASSPHRASE_TRIES);
  });
});
