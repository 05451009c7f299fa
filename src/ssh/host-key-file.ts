// The known_hosts file itself: read it, and append newly accepted keys
// (accept-new) as single lines. The file is never rewritten, so concurrent
// edits by ssh(1) or an operator are not lost.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HostKeyPolicy } from '../core/types.js';
import { checkHostKey, knownHostLine, knownKeyTypes, parseKnownHosts, type HostKeyCheck, type ParsedKnownHosts } from './known-hosts.js';

/** A missing file reads as empty: every host is unknown (accept-new then creates it). */
export async function readKnownHosts(path: string): Promise<ParsedKnownHosts> {
  try {
    return parseKnownHosts(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], skipped: [] };
    throw err;
  }
}

export async function knownKeyTypesFor(path: string, host: string, port: number): Promise<string[]> {
  return knownKeyTypes((await readKnownHosts(path)).entries, host, port);
}

export interface VerifyResult extends HostKeyCheck {
  /** True when accept-new appended the key just now. */
  added: boolean;
}

// Appends to one file are serialised within this process, and each re-reads
// the file first, so parallel connections to one host add a single line.
const appendChains = new Map<string, Promise<unknown>>();

function serialised<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const prev = appendChains.get(path) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const settled = next.catch(() => undefined);
  appendChains.set(path, settled);
  void settled.then(() => {
    if (appendChains.get(path) === settled) appendChains.delete(path);
  });
  return next;
}

/**
 * Check a presented host key against the file; under accept-new an unknown
 * key is appended (a changed or revoked key never is).
 */
export async function verifyHostKey(opts: {
  knownHostsPath: string;
  host: string;
  port: number;
  key: Buffer;
  policy: HostKeyPolicy;
}): Promise<VerifyResult> {
  const { knownHostsPath: path, host, port, key, policy } = opts;
  const first = checkHostKey((await readKnownHosts(path)).entries, host, port, key);
  if (first.status !== 'unknown' || policy !== 'accept-new') return { ...first, added: false };
  return serialised(path, async () => {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const again = checkHostKey(parseKnownHosts(text).entries, host, port, key);
    if (again.status !== 'unknown') return { ...again, added: false };
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const sep = text === '' || text.endsWith('\n') ? '' : '\n';
    await appendFile(path, `${sep}${knownHostLine(host, port, key)}\n`, { mode: 0o600 });
    return { ...again, status: 'ok', added: true };
  });
}

export interface MultiVerifyResult extends VerifyResult {
  /** The file whose line decided (ok, changed, revoked), or where an accepted key was appended. */
  file?: string;
  /** For unknown: the file of `certAuthorityLine`. */
  certAuthorityFile?: string;
}

/**
 * Check a presented host key against several known_hosts files, as ssh does
 * with several UserKnownHostsFile: a @revoked line in any file refuses, a
 * matching line in any file accepts, else a line for the host under another
 * key means "changed". Under accept-new an unknown key is appended to the
 * first file only.
 */
export async function verifyHostKeyInFiles(opts: { files: string[]; host: string; port: number; key: Buffer; policy: HostKeyPolicy }): Promise<MultiVerifyResult> {
  const { files, host, port, key, policy } = opts;
  if (files.length === 0) throw new Error('no known_hosts file to check against');
  if (files.length === 1) {
    const r = await verifyHostKey({ knownHostsPath: files[0]!, host, port, key, policy });
    return { ...r, file: files[0]!, ...(r.certAuthorityLine !== undefined ? { certAuthorityFile: files[0]! } : {}) };
  }
  const checks = await Promise.all(files.map(async (file) => ({ file, r: checkHostKey((await readKnownHosts(file)).entries, host, port, key) })));
  const pick = (status: HostKeyCheck['status']) => checks.find((c) => c.r.status === status);
  const decided = pick('revoked') ?? pick('ok') ?? pick('changed');
  if (decided) return { ...decided.r, added: false, file: decided.file };
  const r = await verifyHostKey({ knownHostsPath: files[0]!, host, port, key, policy });
  const ca = checks.find((c) => c.r.certAuthorityLine !== undefined);
  return { ...r, file: files[0]!, ...(r.status === 'unknown' && ca ? { certAuthorityLine: ca.r.certAuthorityLine!, certAuthorityFile: ca.file } : {}) };
}

export async function knownKeyTypesInFiles(files: string[], host: string, port: number): Promise<string[]> {
  const all = await Promise.all(files.map((f) => knownKeyTypesFor(f, host, port)));
  return [...new Set(all.flat())];
}
