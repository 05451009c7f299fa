// OpenSSH known_hosts, parsed and matched the way ssh(1) does: plain and
// hashed (`|1|salt|hmac`) host fields, `[host]:port` for non-22 ports, comma
// lists, `!` negation, `*`/`?` wildcards, `@revoked`. Pure: no file access.
//
// `@cert-authority` lines never accept a key here (ssh2 cannot negotiate host
// certificates), so a host known only through a CA is "unknown"; the check
// says so (`certAuthorityLine`), for an error that points to `--ssh-client openssh`.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type KnownHostMarker = 'revoked' | 'cert-authority' | null;

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker: KnownHostMarker;
  /** The host field as written (comma list, or one hashed `|1|...` item). */
  hosts: string;
  keyType: string;
  /** The public key blob (SSH wire format). */
  key: Buffer;
}

export interface ParsedKnownHosts {
  entries: KnownHostEntry[];
  /** Lines skipped as malformed, `line N: why` (ssh skips them too). */
  skipped: string[];
}

export type HostKeyStatus = 'ok' | 'unknown' | 'changed' | 'revoked';

export interface HostKeyCheck {
  status: HostKeyStatus;
  /** `SHA256:...` of the presented key, as ssh-keygen -l shows it. */
  fingerprint: string;
  keyType: string;
  /** For ok/changed/revoked: the line that matched (or the first one that disagrees). */
  line?: number;
  /** For unknown: a `@cert-authority` line for this host (ssh(1) would check the host certificate against it). */
  certAuthorityLine?: number;
}

export function parseKnownHosts(text: string): ParsedKnownHosts {
  const entries: KnownHostEntry[] = [];
  const skipped: string[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostMarker = null;
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return void skipped.push(`line ${i + 1}: unknown marker ${m}`);
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) return void skipped.push(`line ${i + 1}: expected "hosts keytype key"`);
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0 || key.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) {
      return void skipped.push(`line ${i + 1}: key is not valid base64`);
    }
    if (blobKeyType(key) !== keyType) return void skipped.push(`line ${i + 1}: key type ${keyType} does not match the key`);
    entries.push({ line: i + 1, marker, hosts, keyType, key });
  });
  return { entries, skipped };
}

/** The name ssh looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** `SHA256:<unpadded base64>` of a key blob. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name at the start of a key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function blobKeyType(key: Buffer): string | null {
  if (key.length < 4) return null;
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || key.length < 4 + len) return null;
  return key.subarray(4, 4 + len).toString('latin1');
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hashedMatches(item: string, name: string): boolean {
  const parts = item.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const want = Buffer.from(parts[3]!, 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Whether an entry's host field names this host:port. A matching negation wins. */
export function entryMatchesHost(hosts: string, host: string, port: number): boolean {
  const name = hostLookupName(host, port);
  if (hosts.startsWith('|')) return hashedMatches(hosts, name);
  let matched = false;
  for (const item of hosts.split(',')) {
    if (item === '') continue;
    const negated = item.startsWith('!');
    const pattern = negated ? item.slice(1) : item;
    if (globToRegExp(pattern).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * Check a presented host key. A key listed as revoked for the host is refused
 * even when another line accepts it. A host that is known under any key, but
 * not under the presented one, is "changed": the transport asks for the known
 * key types first, so a server presenting another type has lost the known key.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyCheck {
  const base = { fingerprint: fingerprint(key), keyType: blobKeyType(key) ?? 'unknown' };
  let ok: KnownHostEntry | undefined;
  let other: KnownHostEntry | undefined;
  for (const e of entries) {
    if (e.marker === 'cert-authority' || !entryMatchesHost(e.hosts, host, port)) continue;
    const same = e.key.equals(key);
    if (e.marker === 'revoked') {
      if (same) return { ...base, status: 'revoked', line: e.line };
      continue;
    }
    if (same) ok ??= e;
    else other ??= e;
  }
  if (ok) return { ...base, status: 'ok', line: ok.line };
  if (other) return { ...base, status: 'changed', line: other.line };
  const ca = entries.find((e) => e.marker === 'cert-authority' && entryMatchesHost(e.hosts, host, port));
  return { ...base, status: 'unknown', ...(ca ? { certAuthorityLine: ca.line } : {}) };
}

/** Key types known for this host, in file order, for ordering the host key algorithms offered. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const types: string[] = [];
  for (const e of entries) {
    if (e.marker !== null || !entryMatchesHost(e.hosts, host, port)) continue;
    if (!types.includes(e.keyType)) types.push(e.keyType);
  }
  return types;
}

/** One known_hosts line for a newly accepted key (plain host field, as ssh writes without HashKnownHosts). */
export function knownHostLine(host: string, port: number, key: Buffer): string {
  const type = blobKeyType(key);
  if (!type) throw new Error('not an SSH public key blob');
  return `${hostLookupName(host, port)} ${type} ${key.toString('base64')}`;
}
