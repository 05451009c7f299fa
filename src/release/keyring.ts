// Loads the trusted keyring. runc's runc.keyring is several armored key blocks
// separated by `gpg --show-keys` text; openpgp.js reads only the first block of
// such a file, so the blocks are split out and read one by one, and every
// fingerprint the text announces must have loaded.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type * as openpgp from 'openpgp';

/** Loaded on first use: plan and apply from the verified cache never need it. */
const pgp = () => import('openpgp');
import { ReleaseError, errorMessage } from '../errors.js';

export interface TrustedKeyring {
  path: string;
  keys: openpgp.PublicKey[];
  /** Primary key fingerprints, upper-case hex. */
  fingerprints: string[];
}

/** The upstream keyring shipped in the package. */
export function defaultKeyringPath(): string {
  return fileURLToPath(new URL('../../keyring/runc.keyring', import.meta.url));
}

const BLOCK = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

export async function loadKeyring(path: string = defaultKeyringPath()): Promise<TrustedKeyring> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ReleaseError(`cannot read keyring ${path}: ${errorMessage(err)}`);
  }
  return parseKeyring(text, path);
}

export async function parseKeyring(text: string, path: string): Promise<TrustedKeyring> {
  const blocks = text.match(BLOCK) ?? [];
  if (blocks.length === 0) throw new ReleaseError(`keyring ${path} holds no armored public key block`);
  const keys: openpgp.PublicKey[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      const read = await (await pgp()).readKeys({ armoredKeys: block });
      if (read.length === 0) throw new Error('no key in block');
      for (const k of read) keys.push(k.isPrivate() ? k.toPublic() : k);
    } catch (err) {
      throw new ReleaseError(`keyring ${path}: key block ${i + 1} of ${blocks.length} cannot be read: ${errorMessage(err)}`);
    }
  }
  const fingerprints = keys.map((k) => k.getFingerprint().toUpperCase());
  const announced = announcedFingerprints(text.replace(BLOCK, ''));
  // subkey fingerprints may be listed too (--with-subkey-fingerprint)
  const loaded = new Set(keys.flatMap((k) => k.getKeys().map((sk) => sk.getFingerprint().toUpperCase())));
  const missing = announced.filter((fp) => !loaded.has(fp));
  if (missing.length > 0) {
    throw new ReleaseError(`keyring ${path}: listed keys did not load`, missing.map((fp) => `missing fingerprint ${fp}`));
  }
  return { path, keys, fingerprints };
}

/**
 * Fingerprints in the keyring's text: `gpg --show-keys` prints each primary
 * one on its own indented line (grouped in fours with --with-fingerprint).
 */
function announcedFingerprints(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const compact = line.replace(/^\s*Key fingerprint =/, '').replace(/\s+/g, '');
    if (/^[0-9A-Fa-f]{40}$/.test(compact) && /^\s/.test(line)) out.push(compact.toUpperCase());
  }
  return out;
}
