// Signature and digest checks with openpgp.js, as runc's script/release_sign.sh
// expects them: a clear-signed runc.sha256sum and a detached armored signature
// per binary, both by a key of the trusted keyring that is valid now.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as openpgp from 'openpgp';

/** Loaded on first use: plan and apply from the verified cache never need it. */
const pgp = () => import('openpgp');
import { ReleaseError, errorMessage } from '../errors.js';
import { ELF_HEADER_BYTES, checkElf } from '../core/elf.js';
import { parseSha256sum } from '../core/sha256sum.js';
import type { Arch } from '../core/types.js';
import type { TrustedKeyring } from './keyring.js';

/** Verifies the clear-signed runc.sha256sum; returns its entries and the signer's fingerprint. */
export async function verifyChecksumFile(text: string, keyring: TrustedKeyring): Promise<{ checksums: Record<string, string>; signer: string }> {
  let message: openpgp.CleartextMessage;
  try {
    message = await (await pgp()).readCleartextMessage({ cleartextMessage: text });
  } catch (err) {
    throw new ReleaseError('runc.sha256sum is not a clear-signed message; refusing it', [errorMessage(err)]);
  }
  const result = await (await pgp()).verify({ message, verificationKeys: keyring.keys });
  const signer = await firstGoodSignature('runc.sha256sum', result.signatures, keyring);
  // Only the signed text counts, never what surrounds it.
  return { checksums: parseSha256sum(String(result.data)), signer };
}

/** Verifies a detached armored signature over a file, streaming the file. Returns the signer's fingerprint. */
export async function verifyDetached(file: string, name: string, armoredSignature: string, keyring: TrustedKeyring): Promise<string> {
  let signature: openpgp.Signature;
  try {
    signature = await (await pgp()).readSignature({ armoredSignature });
  } catch (err) {
    throw new ReleaseError(`${name}.asc is not an armored OpenPGP signature`, [errorMessage(err)]);
  }
  const stream = Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>;
  const message = await (await pgp()).createMessage({ binary: stream });
  const result = await (await pgp()).verify({ message, signature, verificationKeys: keyring.keys, format: 'binary' });
  // The signature is computed as the data streams through: read it to the end.
  const reader = (result.data as unknown as ReadableStream<Uint8Array>).getReader();
  while (!(await reader.read()).done) {
    /* drain */
  }
  return firstGoodSignature(name, result.signatures, keyring);
}

async function firstGoodSignature(
  what: string,
  signatures: openpgp.VerifyMessageResult["signatures"],
  keyring: TrustedKeyring,
): Promise<string> {
  if (signatures.length === 0) throw new ReleaseError(`${what}: no signature found`);
  const problems: string[] = [];
  for (const sig of signatures) {
    const keyId = sig.keyID.toHex().toUpperCase();
    const key = keyring.keys.find((k) => k.getKeys(sig.keyID).length > 0);
    if (!key) {
      problems.push(`signed by key ID ${keyId}, which is not in the trusted keyring ${keyring.path}`);
      continue;
    }
    const fpr = key.getFingerprint().toUpperCase();
    try {
      await sig.verified;
    } catch (err) {
      problems.push(`BAD signature by key ID ${keyId} (${fpr}): ${errorMessage(err)}`);
      continue;
    }
    try {
      // openpgp.js checks the key at signing time; a key expired or revoked since is refused too.
      await key.getSigningKey(sig.keyID, new Date());
    } catch (err) {
      problems.push(`signed by key ID ${keyId} (${fpr}), which is not valid now (expired or revoked): ${errorMessage(err)}`);
      continue;
    }
    return fpr;
  }
  throw new ReleaseError(`${what}: signature verification failed`, problems);
}

export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export async function checkElfFile(file: string, name: string, arch: Arch): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(ELF_HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, ELF_HEADER_BYTES, 0);
    const problem = checkElf(buf.subarray(0, bytesRead), arch);
    if (problem) throw new ReleaseError(`${name}: ${problem}`);
  } finally {
    await fh.close();
  }
}

/** The digest check every path goes through, signature or not. */
export function checkDigest(name: string, expected: string | undefined, actual: string): void {
  if (expected === undefined) throw new ReleaseError(`runc.sha256sum has no line for ${name}`);
  if (expected !== actual) {
    throw new ReleaseError(`${name}: SHA-256 mismatch`, [`expected ${expected} (runc.sha256sum)`, `actual   ${actual}`]);
  }
}
