import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TailBuffer } from '../../src/ssh/run-command.js';
import { remoteCommandLine } from '../../src/ssh/ssh2-transport.js';

describe('remoteCommandLine', () => {
  const script = `printf '%s\\n' "it's" $(echo a); echo "$HOME" \`echo b\``;

  it('wraps the script in sh -c, through sudo -n when asked, with timeout(1) when a timeout is given', () => {
    expect(remoteCommandLine('id -un', false)).toBe(`env LC_ALL=C sh -c 'id -un'`);
    expect(remoteCommandLine('id -un', true)).toBe(`env LC_ALL=C sudo -n -- sh -c 'id -un'`);
    expect(remoteCommandLine('id -un', true, 1500)).toBe(`env LC_ALL=C sudo -n -- timeout -k 5 1.5 sh -c 'id -un'`);
    expect(remoteCommandLine('true', false, 120_000 + 5_000_000 / 50 + 0.25)).toBe(`env LC_ALL=C timeout -k 5 220.001 sh -c true`);
  });

  it('hands the script to the remote sh byte for byte (checked with a local sh as the login shell)', () => {
    const line = remoteCommandLine(`printf '%s' ${JSON.stringify(script).replace(/[$`]/g, '\\$&')}`, false);
    // sshd runs the line with the user's shell; /bin/sh stands in for it here.
    expect(execFileSync('/bin/sh', ['-c', line]).toString()).toBe(script);
  });
});

describe('TailBuffer', () => {
  it('keeps the last bytes up to the cap and counts what it dropped', () => {
    const t = new TailBuffer(10);
    for (const s of ['hello ', 'wide ', 'world']) t.push(Buffer.from(s));
    expect(t.text()).toBe('wide world');
    expect(t.dropped).toBe(6);
  });
});
