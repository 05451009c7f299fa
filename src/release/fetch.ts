// The release side's entry point: resolve the version, refuse a vulnerable
// target, and produce verified binaries per architecture, from the cache when
// possible (no network), else from GitHub or --release-dir through a staging
// directory that becomes a cache entry only once everything checked out.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ReleaseError, errorMessage } from '../errors.js';
import { advisoriesFor, advisoryIds, type AdvisoryTable } from '../core/advisories.js';
import { parseSha256sum } from '../core/sha256sum.js';
import { ARCHES, type Arch, type ReleaseAsset, type VerifiedRelease } from '../core/types.js';
import type { Logger } from '../output/logger.js';
import { createGitHubClient, parseRepo } from '../github/client.js';
import { loadAdvisories, type AdvisoryMode } from './advisories.js';
import { cacheArchDir, commitStagingDir, discard, makeStagingDir, readCacheMeta, type CacheMeta } from './cache.js';
import { defaultKeyringPath, loadKeyring, type TrustedKeyring } from './keyring.js';
import { isPrerelease, parseVersionSpec, resolveRelease, tagVersion, type VersionSpec } from './resolve.js';
import { directoryFiles, githubFiles, type ReleaseFiles } from './sources.js';
import { checkDigest, checkElfFile, sha256File, verifyChecksumFile, verifyDetached } from './verify.js';

export interface ReleaseOptions {
  repo: string /* owner/name */;
  version: string /* tag, 'latest' or range */;
  pre: boolean;
  githubApiUrl: string;
  token?: string;
  cacheDir: string;
  keyringPath?: string /* default: packaged keyring/runc.keyring resolved relative to the module */;
  releaseDir?: string;
  insecureSkipSignature: boolean;
  allowVulnerable: boolean;
  /** Where advisories come from: GitHub's published ones merged with the built-in table (default), or the built-in table only. */
  advisories?: AdvisoryMode;
  timeoutMs?: number;
  log: Logger;
  signal?: AbortSignal;
}

export const DEFAULT_REPO = 'opencontainers/runc';
const MAX_BINARY_BYTES = 128 * 1024 * 1024;
const MAX_TEXT_BYTES = 1024 * 1024;

export interface Target {
  tag: string;
  version: string;
  prerelease: boolean;
  /** Where missing files come from; resolved lazily so a fully cached release needs no network. */
  files: () => Promise<ReleaseFiles>;
}

interface Checked {
  sha256: string;
  size: number;
  checksums: Record<string, string>;
  signers: string[];
}

export async function fetchRelease(opts: ReleaseOptions, arches: Arch[]): Promise<VerifiedRelease> {
  const wanted = [...new Set(arches)];
  if (wanted.length === 0) throw new ReleaseError('no architecture requested');
  const opened = await openRelease(opts, wanted);
  const checked: Partial<Record<Arch, CheckedAsset>> = {};
  for (const arch of wanted) checked[arch] = await verifyArch(opened, arch);
  return assembleRelease(opened, checked);
}

/** The arch-independent half: keyring, the resolved tag, the advisory check. */
export interface OpenedRelease {
  opts: ReleaseOptions;
  keyring: TrustedKeyring | null;
  target: Target;
  /** What versions were checked against (plan warnings use the same). */
  advisories: AdvisoryTable;
}

export interface CheckedAsset extends Checked {
  asset: ReleaseAsset;
}

/**
 * Resolves the release and refuses a vulnerable target; `plan` runs this while
 * it gathers facts, and verifies each architecture as the first node of it
 * answers. `arches` (when known) lets a fully cached tag skip the network.
 */
export async function openRelease(opts: ReleaseOptions, arches?: Arch[]): Promise<OpenedRelease> {
  parseRepo(opts.repo);
  const keyring = opts.insecureSkipSignature ? null : await loadKeyring(opts.keyringPath ?? defaultKeyringPath());
  if (!keyring) {
    opts.log.warn('!!! --insecure-skip-signature: release SIGNATURES ARE NOT VERIFIED. Only the SHA-256 sums are checked, and those come from an unauthenticated file. Do not use this outside a lab. !!!');
  }
  const [target, table] = await Promise.all([
    resolveTarget(opts, arches),
    loadAdvisories({ mode: opts.advisories ?? 'github', repo: opts.repo, githubApiUrl: opts.githubApiUrl, token: opts.token, cacheDir: opts.cacheDir, log: opts.log, signal: opts.signal }),
  ]);
  const advisories = advisoriesFor(target.version, table);
  if (advisories.length > 0) {
    const ids = advisories.map(advisoryIds).join(', ');
    const details = advisories.map((a) => `${advisoryIds(a)}: ${a.summary} (affected: ${a.affected}; fixed in ${a.fixed.join(', ') || '?'}; source: ${a.sources.join(' + ')})`);
    if (!opts.allowVulnerable) throw new ReleaseError(`runc ${target.version} has known advisories: ${ids}; refusing it as a target (--allow-vulnerable overrides)`, [...details, `advisories checked: ${table.origin}`]);
    opts.log.warn(`runc ${target.version} has known advisories (allowed by --allow-vulnerable): ${ids}`);
  }
  return { opts, keyring, target, advisories: table };
}

/** One architecture's binary, verified in full: from the cache when it still checks out, else fetched. */
export async function verifyArch(r: OpenedRelease, arch: Arch): Promise<CheckedAsset> {
  const { opts, keyring, target } = r;
  const dir = cacheArchDir(opts.cacheDir, opts.repo, target.tag, arch);
  const name = `runc.${arch}`;
  const checked = (opts.releaseDir ? null : await reuseCached(dir, arch, keyring, opts.log)) ?? (await fetchVerified(target, arch, dir, keyring, opts));
  return { ...checked, asset: { arch, name, sha256: checked.sha256, size: checked.size, path: join(dir, name) } };
}

export function assembleRelease(r: OpenedRelease, checked: Partial<Record<Arch, CheckedAsset>>): VerifiedRelease {
  const assets: Partial<Record<Arch, ReleaseAsset>> = {};
  const signers = new Set<string>();
  let checksums: Record<string, string> = {};
  for (const c of Object.values(checked)) {
    assets[c.asset.arch] = c.asset;
    c.signers.forEach((s) => signers.add(s));
    checksums = c.checksums;
  }
  const { opts, target, keyring } = r;
  return { repo: opts.repo, tag: target.tag, version: target.version, prerelease: target.prerelease, checksums, assets, signers: [...signers], signatureVerified: keyring !== null };
}

async function resolveTarget(opts: ReleaseOptions, arches?: Arch[]): Promise<Target> {
  const spec = parseVersionSpec(opts.version);
  const checkPre = (tag: string, prerelease: boolean) => {
    if (prerelease && !opts.pre) throw new ReleaseError(`${tag} is a prerelease; pass --pre to use it`);
  };
  if (opts.releaseDir) {
    if (spec.kind !== 'exact') throw new ReleaseError('--release-dir needs an exact --version (the tag the files belong to), not a range or "latest"');
    const tag = spec.tags[0]!;
    const prerelease = isPrerelease({ tag_name: tag, prerelease: false });
    checkPre(tag, prerelease);
    const files = await directoryFiles(opts.releaseDir);
    return { tag, version: spec.version, prerelease, files: async () => files };
  }
  if (spec.kind === 'exact') {
    // A fully cached exact tag needs no network at all. With the arches not known yet
    // (plan resolves while it gathers facts), any cached arch names the tag; a missing
    // arch is fetched later through the same tag.
    for (const tag of spec.tags) {
      const metas = await Promise.all((arches ?? ARCHES).map((a) => readCacheMeta(cacheArchDir(opts.cacheDir, opts.repo, tag, a))));
      const cached = metas.filter((m): m is CacheMeta => m !== null);
      if (arches ? cached.length === metas.length : cached.length > 0) {
        checkPre(tag, cached[0]!.prerelease);
        opts.log.debug(`using cached ${opts.repo} ${tag} (${cached.map((m) => m.arch).join(', ')})`);
        let files: Promise<ReleaseFiles> | undefined;
        const exact = { ...spec, tags: [tag] };
        return { tag, version: spec.version, prerelease: metas[0]!.prerelease, files: () => (files ??= remote(opts, exact).then((r) => r.files())) };
      }
    }
  }
  return remote(opts, spec);
}

async function remote(opts: ReleaseOptions, spec: VersionSpec): Promise<Target> {
  const api = createGitHubClient({ baseUrl: opts.githubApiUrl, token: opts.token, timeoutMs: opts.timeoutMs ?? 30_000, log: opts.log, signal: opts.signal });
  const rel = await resolveRelease(api, parseRepo(opts.repo), spec, opts.pre);
  opts.log.info(`resolved ${opts.version} to ${opts.repo} ${rel.tag_name}${isPrerelease(rel) ? ' (prerelease)' : ''}`);
  const files = githubFiles(api, opts.repo, rel);
  return { tag: rel.tag_name, version: tagVersion(rel.tag_name)!, prerelease: isPrerelease(rel), files: async () => files };
}

/** Re-verifies a cache entry in full; null (and the entry dropped) when it is missing or no longer checks out. */
async function reuseCached(dir: string, arch: Arch, keyring: TrustedKeyring | null, log: Logger): Promise<Checked | null> {
  const meta = await readCacheMeta(dir);
  if (!meta) return null;
  try {
    const checked = await verifyDir(dir, arch, keyring);
    if (checked.sha256 !== meta.sha256) throw new ReleaseError(`cached runc.${arch} changed since it was verified (${meta.sha256} then, ${checked.sha256} now)`);
    log.debug(`cache hit: ${dir}`);
    return checked;
  } catch (err) {
    log.warn(`cached ${dir} failed re-verification (${errorMessage(err)}); fetching it again`);
    await discard(dir);
    return null;
  }
}

async function fetchVerified(target: Target, arch: Arch, finalDir: string, keyring: TrustedKeyring | null, opts: ReleaseOptions): Promise<Checked> {
  const files = await target.files();
  const name = `runc.${arch}`;
  const staging = await makeStagingDir(finalDir);
  try {
    opts.log.info(`fetching ${name} from ${files.describe}`);
    await files.fetch('runc.sha256sum', join(staging, 'runc.sha256sum'), MAX_TEXT_BYTES);
    await files.fetch(name, join(staging, name), MAX_BINARY_BYTES);
    if (keyring) await files.fetch(`${name}.asc`, join(staging, `${name}.asc`), MAX_TEXT_BYTES);
    const checked = await verifyDir(staging, arch, keyring);
    const meta: CacheMeta = {
      schema: 1,
      repo: opts.repo,
      tag: target.tag,
      version: target.version,
      prerelease: target.prerelease,
      arch,
      name,
      sha256: checked.sha256,
      size: checked.size,
      signatureVerified: keyring !== null,
      verifiedAt: new Date().toISOString(),
    };
    await commitStagingDir(staging, finalDir, meta);
    opts.log.info(`verified ${name} ${checked.sha256}${keyring ? ` (signed by ${checked.signers.join(', ')})` : ' (signature NOT checked)'}`);
    return checked;
  } catch (err) {
    await discard(staging);
    if (err instanceof ReleaseError) throw err;
    throw new ReleaseError(`${name} of ${files.describe}: ${errorMessage(err)}`, [], err);
  }
}

/** Every check, on files already on disk: signature of the sums, digest, signature of the binary, ELF target. */
async function verifyDir(dir: string, arch: Arch, keyring: TrustedKeyring | null): Promise<Checked> {
  const name = `runc.${arch}`;
  const bin = join(dir, name);
  const sumsText = await readSmall(join(dir, 'runc.sha256sum'));
  const signers: string[] = [];
  let checksums: Record<string, string>;
  if (keyring) {
    const v = await verifyChecksumFile(sumsText, keyring);
    checksums = v.checksums;
    signers.push(v.signer);
  } else {
    checksums = parseSha256sum(sumsText);
  }
  const { sha256, size } = await sha256File(bin);
  checkDigest(name, checksums[name], sha256);
  if (keyring) {
    const signer = await verifyDetached(bin, name, await readSmall(join(dir, `${name}.asc`)), keyring);
    if (!signers.includes(signer)) signers.push(signer);
  }
  await checkElfFile(bin, name, arch);
  return { sha256, size, checksums, signers };
}

async function readSmall(file: string): Promise<string> {
  const st = await stat(file).catch(() => null);
  if (!st) throw new ReleaseError(`${file.split('/').pop()} is missing`);
  if (st.size > MAX_TEXT_BYTES) throw new ReleaseError(`${file}: ${st.size} bytes is too large for a checksum or signature file`);
  return readFile(file, 'utf8');
}
