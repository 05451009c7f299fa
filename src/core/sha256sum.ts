// Parses runc's `runc.sha256sum`: plain `sha256sum` output, normally wrapped
// by `gpg --clear-sign`. The caller verifies the wrapper's signature and passes
// the signed text; this module only understands the format, strictly, because
// the file is attacker-reachable until verified.
import { ReleaseError } from '../errors.js';

const CLEARSIGN_BEGIN = '-----BEGIN PGP SIGNED MESSAGE-----';
const SIGNATURE_BEGIN = '-----BEGIN PGP SIGNATURE-----';

export function isClearsigned(text: string): boolean {
  return text.replace(/^\uFEFF/, '').trimStart().startsWith(CLEARSIGN_BEGIN);
}

/**
 * The body of a clear-signed message (armor headers dropped, dash-escaping
 * undone), or null when `text` is not clear-signed. Does not check the signature.
 */
export function clearsignedBody(text: string): string | null {
  if (!isClearsigned(text)) return null;
  const lines = text.replace(/\r\n/g, '\n').trimStart().split('\n');
  let i = 1;
  while (i < lines.length && lines[i] !== '') i++; // armor headers (Hash: ...) end at the first blank line
  const body: string[] = [];
  for (i += 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === SIGNATURE_BEGIN) return body.join('\n');
    body.push(line.startsWith('- ') ? line.slice(2) : line);
  }
  return null; // no signature block: truncated or altered
}

/**
 * name -> lowercase hex digest. Accepts the bare file or the clear-signed one.
 * Refuses malformed lines, names with path components and names listed twice
 * with different digests.
 */
export function parseSha256sum(text: string): Record<string, string> {
  let body = text.replace(/^\uFEFF/, '');
  if (isClearsigned(body)) {
    const inner = clearsignedBody(body);
    if (inner === null) throw new ReleaseError('runc.sha256sum: clear-signed wrapper is incomplete (no signature block)');
    body = inner;
  }
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const problems: string[] = [];
  body.replace(/\r\n/g, '\n').split('\n').forEach((raw, idx) => {
    const line = raw.trimEnd();
    if (line === '') return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m?.[1] || !m[2]) {
      problems.push(`line ${idx + 1}: not a sha256sum line: ${JSON.stringify(line.slice(0, 120))}`);
      return;
    }
    const digest = m[1].toLowerCase();
    const name = m[2];
    if (!isPlainName(name)) {
      problems.push(`line ${idx + 1}: asset name ${JSON.stringify(name)} has path components or control characters`);
      return;
    }
    const prev = out[name];
    if (prev !== undefined && prev !== digest) {
      problems.push(`line ${idx + 1}: ${name} listed twice with different digests (${prev} and ${digest})`);
      return;
    }
    out[name] = digest;
  });
  if (problems.length > 0) throw new ReleaseError('runc.sha256sum is malformed; refusing it', problems);
  if (Object.keys(out).length === 0) throw new ReleaseError('runc.sha256sum lists no files');
  return { ...out };
}

/** A bare file name: what release assets are. */
export function isPlainName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f\u007f]/.test(name)) return false;
  return name !== '.' && name !== '..' && name.trim() === name && name.length > 0;
}
