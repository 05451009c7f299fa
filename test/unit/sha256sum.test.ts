import { describe, expect, it } from 'vitest';
import { ReleaseError } from '../../src/errors.js';
import { clearsignedBody, isPlainName, parseSha256sum } from '../../src/core/sha256sum.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'C'.repeat(64);
const PLAIN = `${A}  runc.amd64\n${B}  runc.arm64\n${C}  runc.tar.xz\n`;
const wrap = (body: string) =>
  `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${body}-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQ\n=n0X6\n-----END PGP SIGNATURE-----\n`;

function refusal(text: string): ReleaseError {
  try {
    parseSha256sum(text);
  } catch (err) {
    if (err instanceof ReleaseError) return err;
    throw err;
  }
  throw new Error('parseSha256sum accepted it');
}

describe('parseSha256sum', () => {
  it('parses plain sha256sum output, lower-casing digests', () => {
    expect(parseSha256sum(PLAIN)).toEqual({ 'runc.amd64': A, 'runc.arm64': B, 'runc.tar.xz': 'c'.repeat(64) });
  });

  it('parses the clear-signed form the same way', () => {
    expect(parseSha256sum(wrap(PLAIN))).toEqual(parseSha256sum(PLAIN));
  });

  it('accepts binary-mode markers and CRLF line ends', () => {
    expect(parseSha256sum(`${A} *runc.amd64\r\n`)).toEqual({ 'runc.amd64': A });
  });

  it('undoes dash-escaping inside the clear-signed text (the last newline belongs to the armor)', () => {
    expect(clearsignedBody(wrap(`- ${A}  runc.amd64\n`))).toBe(`${A}  runc.amd64`);
  });

  it('refuses a clear-signed file cut before its signature', () => {
    const cut = wrap(PLAIN).split('-----BEGIN PGP SIGNATURE-----')[0]!;
    expect(refusal(cut).message).toMatch(/incomplete/);
  });

  it('refuses the same name listed twice with different digests, naming both', () => {
    const err = refusal(`${A}  runc.amd64\n${B}  runc.amd64\n`);
    expect(err.details.join('\n')).toContain(A);
    expect(err.details.join('\n')).toContain(B);
  });

  it('tolerates an exact duplicate line', () => {
    expect(parseSha256sum(`${A}  runc.amd64\n${A}  runc.amd64\n`)).toEqual({ 'runc.amd64': A });
  });

  it.each(['../runc.amd64', 'sub/runc.amd64', '/usr/bin/runc', '..\\runc.amd64', '..'])('refuses asset name %j', (name) => {
    expect(refusal(`${A}  runc.amd64\n${B}  ${name}\n`).details.join('\n')).toContain('path components');
  });

  it.each([
    ['short digest', `${'a'.repeat(63)}  runc.amd64\n`],
    ['one space', `${A} runc.amd64\n`],
    ['escaped name', `\\${A}  runc\\namd64\n`],
    ['prose', 'this is not a checksum file\n'],
  ])('refuses a malformed line (%s)', (_what, text) => {
    expect(refusal(text).message).toMatch(/malformed/);
  });

  it('refuses an empty file', () => {
    expect(refusal('\n\n').message).toMatch(/lists no files/);
  });

  it('isPlainName', () => {
    expect(isPlainName('runc.amd64')).toBe(true);
    expect(isPlainName('runc.amd64\n')).toBe(false);
    expect(isPlainName(' runc')).toBe(false);
  });
});
