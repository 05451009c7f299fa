// The release side against a real loopback GitHub stand-in, real gpg-signed
// fixtures and real openpgp.js verification.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, GitHubError, ReleaseError } from '../../src/errors.js';
import type { Logger } from '../../src/output/logger.js';
import { assembleRelease, fetchRelease, openRelease, verifyArch, type ReleaseOptions } from '../../src/release/fetch.js';
import { defaultKeyringPath, loadKeyring, parseKeyring } from '../../src/release/keyring.js';
import { listReleases } from '../../src/release/list.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';

const ROOT = resolve(import.meta.dirname, '../..');
let fx: ReleaseFixtures;
let server: ReleaseServer;
const temps: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rr-release-e2e-'));
  temps.push(d);
  return d;
};

function captureLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { colour: false, lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`), debug: (m) => lines.push(`debug ${m}`) };
}

function options(over: Partial<ReleaseOptions> = {}): ReleaseOptions {
  return {
    repo: 'test/runc',
    version: 'v1.2.9',
    pre: false,
    githubApiUrl: server.url,
    cacheDir: tempDir(),
    keyringPath: fx.keyringPath,
    insecureSkipSignature: false,
    allowVulnerable: false,
    timeoutMs: 10_000,
    log: captureLog(),
    ...over,
  };
}

async function refusal(p: Promise<unknown>): Promise<ReleaseError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof ReleaseError)) throw new Error(`expected a ReleaseError, got ${String(err)}`);
  expect(err.exitCode).toBe(ExitCode.refused);
  return err;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sumsLine = (dir: string, name: string) => new RegExp(`^([0-9a-f]{64})  ${name.replace('.', '\\.')}$`, 'm').exec(readFileSync(join(dir, 'runc.sha256sum'), 'utf8'))?.[1];
/** Every file under a cache dir, relative. */
function cacheFiles(dir: string): string[] {
  return existsSync(dir) ? (readdirSync(dir, { recursive: true }) as string[]).sort() : [];
}

beforeAll(async () => {
  fx = sharedReleaseFixtures();
  // Two releases per page: every listing walks the Link headers.
  server = await startReleaseServer(fx.releases, { maxPerPage: 2 });
});

afterAll(async () => {
  await server?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('resolve against the release server', () => {
  it('latest: the newest non-prerelease, verified and cached', async () => {
    const opts = options({ version: 'latest' });
    const rel = await fetchRelease(opts, [fx.arch]);
    const asset = rel.assets[fx.arch]!;
    const src = fx.releaseDir('test/runc', 'v1.3.4');
    expect(rel).toMatchObject({ tag: 'v1.3.4', version: '1.3.4', prerelease: false, signatureVerified: true, signers: [fx.fingerprints.release] });
    expect(asset.path.startsWith(opts.cacheDir)).toBe(true);
    expect(sha256(asset.path)).toBe(asset.sha256);
    expect(asset.sha256).toBe(sumsLine(src, `runc.${fx.arch}`));
    expect(readFileSync(asset.path).equals(readFileSync(join(src, `runc.${fx.arch}`)))).toBe(true);
    expect(rel.checksums['runc.tar.xz']).toBe(sumsLine(src, 'runc.tar.xz'));
  });

  it('ranges pick the highest match across pages and never the draft', async () => {
    const before = server.requests.length;
    expect((await fetchRelease(options({ version: '>=1.2.8 <1.3' }), [fx.arch])).tag).toBe('v1.2.9');
    expect((await fetchRelease(options({ version: '^1.2' }), [fx.arch])).tag).toBe('v1.3.4');
    // v1.5.0 is a draft, newer than everything: it must not win even with --pre
    expect((await fetchRelease(options({ version: '>=1.3', pre: true }), [fx.arch])).tag).toBe('v1.4.0-rc.3');
    expect(server.requests.slice(before).some((r) => /\/releases\?.*page=2/.test(r))).toBe(true);
  });

  it('prereleases only with --pre', async () => {
    const err = await refusal(fetchRelease(options({ version: 'v1.4.0-rc.3' }), [fx.arch]));
    expect(err.message).toMatch(/v1\.4\.0-rc\.3 is a prerelease; pass --pre/);
    const rel = await fetchRelease(options({ version: 'v1.4.0-rc.3', pre: true }), [fx.arch]);
    expect(rel).toMatchObject({ tag: 'v1.4.0-rc.3', prerelease: true });
    await expect(fetchRelease(options({ version: '>=1.4.0-0' }), [fx.arch])).rejects.toThrow(/no release matching/);
  });

  it('accepts the tag without its v', async () => {
    expect((await fetchRelease(options({ version: '1.2.9' }), [fx.arch])).tag).toBe('v1.2.9');
  });

  it('tag not found', async () => {
    const err = await refusal(fetchRelease(options({ version: 'v9.9.9' }), [fx.arch]));
    expect(err.message).toBe('release v9.9.9 not found in test/runc');
  });

  it('an architecture the release lacks is named', async () => {
    const other = fx.arch === 'amd64' ? 's390x' : 'amd64';
    const err = await refusal(fetchRelease(options(), [other]));
    expect(err.message).toBe(`test/runc v1.2.9: has no asset runc.${other}`);
  });

  it('refuses a vulnerable target unless allowed', async () => {
    const err = await refusal(fetchRelease(options({ version: 'v1.1.12' }), [fx.arch]));
    expect(err.message).toMatch(/1\.1\.12 has known advisories/);
    expect(err.details.join('\n')).toContain('CVE-2025-31133');
    const rc93 = await refusal(fetchRelease(options({ version: 'v1.0.0-rc93', pre: true }), [fx.arch]));
    expect(rc93.details.join('\n')).toContain('runc-rc93-pipe-hang');
    const log = captureLog();
    const rel = await fetchRelease(options({ version: 'v1.1.12', allowVulnerable: true, log }), [fx.arch]);
    expect(rel.tag).toBe('v1.1.12');
    expect(log.lines.some((l) => l.startsWith('warn') && l.includes('CVE-2024-45310'))).toBe(true);
  });

  it('release list shows versions newest first with advisories, no drafts', async () => {
    const { releases: list } = await listReleases({ repo: 'test/runc', pre: true, githubApiUrl: server.url, cacheDir: tempDir(), log: captureLog() });
    expect(list.map((r) => r.tag)).toEqual(['v1.4.0-rc.3', 'v1.3.4', 'v1.2.9', 'v1.2.8', 'v1.1.12', 'v1.0.0-rc93']);
    expect(list.find((r) => r.tag === 'v1.2.9')?.advisories).toEqual([]);
    expect(list.find((r) => r.tag === 'v1.0.0-rc93')?.advisories.map((a) => a.id)).toContain('runc-rc93-pipe-hang');
    const { releases: stable } = await listReleases({ repo: 'test/runc', pre: false, githubApiUrl: server.url, cacheDir: tempDir(), log: captureLog() });
    expect(stable.map((r) => r.tag)).toEqual(['v1.3.4', 'v1.2.9', 'v1.2.8', 'v1.1.12']);
  });
});

describe('verification failures stop everything and leave no cache entry', () => {
  const failing = async (repo: string, arches = [fx.arch], over: Partial<ReleaseOptions> = {}) => {
    const opts = options({ repo, ...over });
    const err = await refusal(fetchRelease(opts, arches));
    expect(cacheFiles(opts.cacheDir).filter((f) => f.endsWith(`runc.${arches.at(-1)}`) || f.includes('.staging-'))).toEqual([]);
    return err;
  };

  it('checksum mismatch names the asset and both digests', async () => {
    const err = await failing('test/bad-checksum');
    const dir = fx.releaseDir('test/bad-checksum', 'v1.2.9');
    expect(err.message).toBe(`runc.${fx.arch}: SHA-256 mismatch`);
    expect(err.details).toEqual([`expected ${sumsLine(dir, `runc.${fx.arch}`)} (runc.sha256sum)`, `actual   ${sha256(join(dir, `runc.${fx.arch}`))}`]);
  });

  it('untrusted signer names the key id', async () => {
    const err = await failing('test/untrusted');
    expect(err.message).toBe('runc.sha256sum: signature verification failed');
    expect(err.details.join('\n')).toContain(`key ID ${fx.fingerprints.untrusted.slice(-16)}, which is not in the trusted keyring`);
  });

  it('a key that has expired since signing is refused', async () => {
    const err = await failing('test/expired-key');
    expect(err.details.join('\n')).toMatch(new RegExp(`${fx.fingerprints.expired}.*expired`));
  });

  it('the right key is not enough when the keyring is another one', async () => {
    const err = await failing('test/runc', [fx.arch], { keyringPath: fx.untrustedKeyringPath });
    expect(err.details.join('\n')).toContain('not in the trusted keyring');
  });

  it('a truncated asset fails the digest check', async () => {
    const err = await failing('test/truncated');
    expect(err.message).toBe(`runc.${fx.arch}: SHA-256 mismatch`);
  });

  it('an edited line inside the clear-signed sums is a BAD signature, even when the binary matches it', async () => {
    const err = await failing('test/altered-sums');
    expect(err.details.join('\n')).toMatch(/BAD signature by key ID [0-9A-F]{16}/);
  });

  it('a sums file without its PGP wrapper is refused', async () => {
    expect((await failing('test/unsigned-sums')).message).toMatch(/not a clear-signed message/);
  });

  it('a validly signed sums file listing the asset twice or with ../ is refused', async () => {
    expect((await failing('test/duplicate-sums')).details.join('\n')).toMatch(/listed twice with different digests/);
    expect((await failing('test/path-sums')).details.join('\n')).toMatch(/"\.\.\/runc\.\w+" has path components/);
  });

  it('a binary for another architecture is refused by its ELF header', async () => {
    const other = fx.arch === 'amd64' ? 'arm64' : 'amd64';
    const err = await failing('test/wrong-arch', [fx.arch, other]);
    expect(err.message).toMatch(new RegExp(`^runc\\.${other}: ELF binary for the wrong target`));
  });

  it('--insecure-skip-signature warns loudly, skips signatures, still checks digests', async () => {
    const log = captureLog();
    const rel = await fetchRelease(options({ repo: 'test/untrusted', insecureSkipSignature: true, log }), [fx.arch]);
    expect(rel.signatureVerified).toBe(false);
    expect(rel.signers).toEqual([]);
    expect(log.lines.some((l) => l.startsWith('warn') && l.includes('NOT VERIFIED'))).toBe(true);
    const err = await failing('test/bad-checksum', [fx.arch], { insecureSkipSignature: true });
    expect(err.message).toMatch(/SHA-256 mismatch/);
  });
});

describe('network faults', () => {
  it('retries a 500 and a secondary-rate-limit 429 (with retry-after), then succeeds', async () => {
    server.inject({ path: /\/repos\/test\/runc\/releases\/latest$/, status: 500 });
    server.inject({ path: /\/repos\/test\/runc\/releases\/latest$/, status: 429, headers: { 'retry-after': '1' }, body: { message: 'You have exceeded a secondary rate limit' } });
    const before = server.requests.length;
    const log = captureLog();
    const rel = await fetchRelease(options({ version: 'latest', log }), [fx.arch]);
    expect(rel.tag).toBe('v1.3.4');
    expect(server.requests.slice(before).filter((r) => r.endsWith('/releases/latest'))).toHaveLength(3);
    expect(log.lines.some((l) => l.includes('secondary rate limit') && l.includes('waiting 1 s'))).toBe(true);
  });

  it('an exhausted rate limit says how long to wait', async () => {
    const reset = Math.floor(Date.now() / 1000) + 3600;
    server.inject({
      path: /\/repos\/test\/runc\/releases\/latest$/,
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '60', 'x-ratelimit-reset': String(reset) },
      body: { message: 'API rate limit exceeded for 127.0.0.1.' },
    });
    const err = await refusal(fetchRelease(options({ version: 'latest' }), [fx.arch]));
    expect(err).toBeInstanceOf(GitHubError);
    expect(err.message).toMatch(/rate limit reached .*; try again in (359\d|3600|3601) s \(at 20\d\d-/);
    expect(err.details.join('\n')).toContain('GITHUB_TOKEN');
  });

  it('a transfer cut once is retried; cut every time it fails naming the asset', async () => {
    const name = `runc.${fx.arch}`;
    server.inject({ path: new RegExp(`/test/runc/releases/download/v1\\.2\\.8/${name.replace('.', '\\.')}$`), truncate: true });
    const rel = await fetchRelease(options({ version: 'v1.2.8' }), [fx.arch]);
    expect(sha256(rel.assets[fx.arch]!.path)).toBe(sumsLine(fx.releaseDir('test/runc', 'v1.2.8'), name));

    server.inject({ path: new RegExp(`/test/fail/releases/download/v1\\.2\\.9/${name.replace('.', '\\.')}$`), truncate: true, times: 3 });
    const opts = options({ repo: 'test/fail' });
    const err = await refusal(fetchRelease(opts, [fx.arch]));
    expect(err).toBeInstanceOf(GitHubError);
    expect(err.message).toMatch(new RegExp(`download of ${name.replace('.', '\\.')} failed after 3 attempt\\(s\\)`));
    expect(cacheFiles(opts.cacheDir).filter((f) => f.endsWith(name) || f.includes('.staging-'))).toEqual([]);
  });

  it('a download that stalls times out and is retried, then fails naming the asset', async () => {
    const name = `runc.${fx.arch}`;
    server.inject({ path: new RegExp(`/test/hang/releases/download/v1\\.2\\.9/${name.replace('.', '\\.')}$`), hang: true, times: 3 });
    const err = await refusal(fetchRelease(options({ repo: 'test/hang', timeoutMs: 300 }), [fx.arch]));
    expect(err).toBeInstanceOf(GitHubError);
    expect(err.message).toMatch(new RegExp(`download of ${name.replace('.', '\\.')} failed after 3 attempt\\(s\\): timed out \\(no data for 300 ms\\)`));
  });

  it('an API answer of the wrong shape is refused', async () => {
    server.inject({ path: /\/repos\/test\/runc\/releases\/tags\/v1\.2\.9$/, status: 200, body: { tag_name: 'v1.2.9', assets: 'none' } });
    const err = await refusal(fetchRelease(options(), [fx.arch]));
    expect(err.message).toMatch(/unexpected shape/);
    expect(err.details.join('\n')).toMatch(/assets|draft/);
  });
});

/** A published advisory in GitHub's shape, for the runc Go package. */
function servedAdvisory(ghsa: string, cve: string | null, range: string, patched: string) {
  return {
    ghsa_id: ghsa,
    cve_id: cve,
    html_url: `https://github.com/test/runc/security/advisories/${ghsa}`,
    summary: `test advisory ${ghsa}`,
    severity: 'high',
    state: 'published',
    published_at: '2026-01-02T03:04:05Z',
    withdrawn_at: null,
    vulnerabilities: [{ package: { ecosystem: 'go', name: 'github.com/opencontainers/runc' }, vulnerable_version_range: range, patched_versions: patched, vulnerable_functions: [] }],
  };
}
const ONLY_API = servedAdvisory('GHSA-2222-3333-4444', 'CVE-2099-0001', '>= 1.2.0, < 1.2.9', '1.2.9');

describe('advisories from GitHub', () => {
  it('a served advisory refuses a release no built-in entry covers, naming its GHSA and CVE ids; --advisories builtin does not see it', async () => {
    const own = await startReleaseServer(fx.releases);
    try {
      own.setAdvisories('test/runc', [ONLY_API]);
      const cacheDir = tempDir();
      const err = await refusal(fetchRelease(options({ githubApiUrl: own.url, cacheDir, version: 'v1.2.8' }), [fx.arch]));
      expect(err.message).toBe('runc 1.2.8 has known advisories: GHSA-2222-3333-4444 (CVE-2099-0001); refusing it as a target (--allow-vulnerable overrides)');
      expect(err.details.join('\n')).toContain('source: github');
      expect(own.requests).toContain('GET /repos/test/runc/security-advisories?state=published&per_page=100');
      // cached next to the releases, with the fetch time
      const cached = JSON.parse(readFileSync(join(cacheDir, 'releases/test/runc/advisories.json'), 'utf8')) as { fetchedAt: string; advisories: { ghsa_id: string }[] };
      expect(cached.advisories.map((a) => a.ghsa_id)).toEqual(['GHSA-2222-3333-4444']);
      expect(Date.now() - Date.parse(cached.fetchedAt)).toBeLessThan(60_000);
      const rel = await fetchRelease(options({ githubApiUrl: own.url, cacheDir: tempDir(), version: 'v1.2.8', advisories: 'builtin' }), [fx.arch]);
      expect(rel.tag).toBe('v1.2.8');
      // 1.2.9 is the patched version: not refused
      expect((await fetchRelease(options({ githubApiUrl: own.url, cacheDir }), [fx.arch])).tag).toBe('v1.2.9');
    } finally {
      await own.stop();
    }
  });

  it('an endpoint that answers 404 (older GHES) falls back to the built-in table in one line, and never fails the run', async () => {
    const own = await startReleaseServer(fx.releases);
    try {
      own.inject({ path: /security-advisories/, status: 404, times: 2 });
      const log = captureLog();
      const rel = await fetchRelease(options({ githubApiUrl: own.url, version: 'v1.2.8', log }), [fx.arch]);
      expect(rel.tag).toBe('v1.2.8');
      const warnings = log.lines.filter((l) => l.startsWith('warn'));
      expect(warnings).toEqual(['warn GitHub security advisories of test/runc unavailable (the endpoint answered 404); using the built-in advisory table only']);
      // the built-in table still refuses what it knows
      const err = await refusal(fetchRelease(options({ githubApiUrl: own.url, version: 'v1.1.12' }), [fx.arch]));
      expect(err.message).toContain('CVE-2024-45310');
      // forbidden (a proxy) is the same
      own.inject({ path: /security-advisories/, status: 403, body: { message: 'Forbidden by proxy' }, times: Infinity });
      const log403 = captureLog();
      await fetchRelease(options({ githubApiUrl: own.url, version: 'v1.2.8', log: log403 }), [fx.arch]);
      expect(log403.lines.filter((l) => l.startsWith('warn'))).toEqual([expect.stringMatching(/^warn GitHub security advisories of test\/runc unavailable \(HTTP 403.*\); using the built-in advisory table only$/)]);
    } finally {
      await own.stop();
    }
  });

  it('offline, the cached advisories still refuse, and their age is said', async () => {
    const own = await startReleaseServer(fx.releases);
    const cacheDir = tempDir();
    own.setAdvisories('test/runc', [ONLY_API]);
    await fetchRelease(options({ githubApiUrl: own.url, cacheDir, version: 'v1.2.8', allowVulnerable: true }), [fx.arch]);
    await own.stop();
    // two days old: past the refresh age, so GitHub is asked first, and cannot answer
    const file = join(cacheDir, 'releases/test/runc/advisories.json');
    const cached = JSON.parse(readFileSync(file, 'utf8')) as { fetchedAt: string };
    writeFileSync(file, JSON.stringify({ ...cached, fetchedAt: new Date(Date.now() - 2 * 86_400_000 - 60_000).toISOString() }));
    const log = captureLog();
    const err = await refusal(fetchRelease(options({ githubApiUrl: own.url, cacheDir, version: 'v1.2.8', log }), [fx.arch]));
    expect(err.message).toContain('GHSA-2222-3333-4444 (CVE-2099-0001)');
    expect(log.lines.filter((l) => l.startsWith('warn'))).toEqual([expect.stringMatching(/^warn GitHub security advisories of test\/runc unavailable \(.+\); using the copy cached 2d ago with the built-in table$/)]);
    expect(err.details.at(-1)).toBe('advisories checked: built-in table + 1 GitHub advisory of test/runc (cached 2d ago; GitHub unavailable)');
  });

  it('release list asks GitHub every time and says where each advisory came from, once per CVE', async () => {
    const own = await startReleaseServer(fx.releases);
    try {
      own.setAdvisories('test/runc', [ONLY_API, servedAdvisory('GHSA-xr7r-f8xq-vfvv', 'CVE-2024-21626', '>= 1.0.0-rc93, <= 1.1.11', '1.1.12')]);
      const cacheDir = tempDir();
      const first = await listReleases({ repo: 'test/runc', pre: true, githubApiUrl: own.url, cacheDir, log: captureLog() });
      const second = await listReleases({ repo: 'test/runc', pre: true, githubApiUrl: own.url, cacheDir, log: captureLog() });
      expect(own.requests.filter((r) => r.includes('security-advisories'))).toHaveLength(2);
      expect(second).toEqual(first);
      const byTag = (tag: string) => first.releases.find((r) => r.tag === tag)!.advisories;
      expect(byTag('v1.2.8').map((a) => [a.ghsa, a.cve, a.sources])).toEqual([['GHSA-2222-3333-4444', 'CVE-2099-0001', ['github']]]);
      const leaky = byTag('v1.0.0-rc93').filter((a) => a.id === 'CVE-2024-21626');
      expect(leaky).toEqual([expect.objectContaining({ ghsa: 'GHSA-xr7r-f8xq-vfvv', sources: ['built-in', 'github'] })]);
      expect(first.advisories).toBe('built-in table + 2 GitHub advisories of test/runc (fetched now)');
    } finally {
      await own.stop();
    }
  });
});

describe('cache and offline', () => {
  it('reuses a cached release with the server stopped, and re-checks its digest', async () => {
    const own = await startReleaseServer(fx.releases);
    const cacheDir = tempDir();
    const first = await fetchRelease(options({ githubApiUrl: own.url, cacheDir }), [fx.arch]);
    await own.stop();
    const log = captureLog();
    const again = await fetchRelease(options({ githubApiUrl: own.url, cacheDir, log }), [fx.arch]);
    expect(again).toEqual(first);
    expect(log.lines.some((l) => l.includes('cache hit'))).toBe(true);

    // A changed cached binary is not used: it is dropped and fetched again.
    const path = first.assets[fx.arch]!.path;
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('x')]));
    const log2 = captureLog();
    const third = await fetchRelease(options({ cacheDir, log: log2 }), [fx.arch]);
    expect(log2.lines.some((l) => l.startsWith('warn') && l.includes('failed re-verification') && l.includes('SHA-256 mismatch'))).toBe(true);
    expect(third.assets[fx.arch]!.path).toBe(path);
    expect(sha256(path)).toBe(first.assets[fx.arch]!.sha256);
  });

  it('resolves a cached exact tag offline before the arches are known (as plan does while it gathers facts)', async () => {
    const own = await startReleaseServer(fx.releases);
    const cacheDir = tempDir();
    const first = await fetchRelease(options({ githubApiUrl: own.url, cacheDir }), [fx.arch]);
    await own.stop();
    const opened = await openRelease(options({ githubApiUrl: own.url, cacheDir }));
    expect(opened.target.tag).toBe('v1.2.9');
    const checked = await verifyArch(opened, fx.arch);
    expect(assembleRelease(opened, { [fx.arch]: checked })).toEqual(first);
  });

  it('a cache entry is re-verified against the keyring in use', async () => {
    const cacheDir = tempDir();
    await fetchRelease(options({ cacheDir }), [fx.arch]);
    const log = captureLog();
    const err = await refusal(fetchRelease(options({ cacheDir, keyringPath: fx.untrustedKeyringPath, log }), [fx.arch]));
    expect(err.details.join('\n')).toContain('not in the trusted keyring');
    expect(log.lines.some((l) => l.includes('failed re-verification'))).toBe(true);
  });

  it('--release-dir verifies local files without any network', async () => {
    const offline = 'http://127.0.0.1:9'; // nothing listens on the discard port
    const rel = await fetchRelease(options({ githubApiUrl: offline, releaseDir: fx.releaseDir('test/runc', 'v1.2.9') }), [fx.arch]);
    expect(rel).toMatchObject({ tag: 'v1.2.9', signatureVerified: true, signers: [fx.fingerprints.release] });
    expect(sha256(rel.assets[fx.arch]!.path)).toBe(sumsLine(fx.releaseDir('test/runc', 'v1.2.9'), `runc.${fx.arch}`));

    const bad = await refusal(fetchRelease(options({ githubApiUrl: offline, releaseDir: fx.releaseDir('test/bad-checksum', 'v1.2.9') }), [fx.arch]));
    expect(bad.message).toMatch(/SHA-256 mismatch/);
    const untrusted = await refusal(fetchRelease(options({ githubApiUrl: offline, releaseDir: fx.releaseDir('test/untrusted', 'v1.2.9') }), [fx.arch]));
    expect(untrusted.details.join('\n')).toContain('not in the trusted keyring');
    await expect(fetchRelease(options({ githubApiUrl: offline, version: 'latest', releaseDir: fx.releaseDir('test/runc', 'v1.2.9') }), [fx.arch])).rejects.toThrow(/needs an exact --version/);
    const missing = await refusal(fetchRelease(options({ githubApiUrl: offline, releaseDir: tempDir() }), [fx.arch]));
    expect(missing.message).toMatch(/has no file runc.sha256sum/);
  });
});

describe('keyrings', () => {
  const UPSTREAM = ['C9C370B246B09F6DBCFC744C34401015D1D2D386', 'C2428CD75720FACDCF76B6EA17DE5ECB75A1100E', 'C020EA876CE4E06C7AB95AEF49524C6F9F638F1A'];

  it('the packaged upstream keyring loads all three fingerprints (a naive read gets only one)', async () => {
    expect(defaultKeyringPath()).toBe(join(ROOT, 'keyring', 'runc.keyring'));
    const kr = await loadKeyring();
    expect(kr.fingerprints.sort()).toEqual([...UPSTREAM].sort());
    const naive = await openpgp.readKeys({ armoredKeys: readFileSync(defaultKeyringPath(), 'utf8') });
    expect(naive.length).toBe(1);
  });

  it('a keyring whose listed key block is missing is refused', async () => {
    const text = readFileSync(defaultKeyringPath(), 'utf8');
    const blocks = text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g)!;
    const err = await parseKeyring(text.replace(blocks[1]!, ''), 'cut.keyring').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReleaseError);
    expect((err as ReleaseError).details).toEqual(['missing fingerprint C2428CD75720FACDCF76B6EA17DE5ECB75A1100E']);
    await expect(parseKeyring('no keys here', 'empty.keyring')).rejects.toThrow(/no armored public key block/);
  });

  it('the fixture keyring is in upstream format and loads both keys', async () => {
    const kr = await loadKeyring(fx.keyringPath);
    expect(kr.fingerprints).toEqual([fx.fingerprints.release, fx.fingerprints.expired]);
  });
});

describe('CLI: node bin/runc-rollout release ...', () => {
  const SECRET = 'ghp_releaseTestSecretToken0123456789';
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(process.execPath, [join(ROOT, 'bin/runc-rollout'), ...args], { env: { ...process.env, GITHUB_TOKEN: SECRET, CI: '1' }, timeout: 60_000 }, (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
    });

  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist/cli/release.js'))) throw new Error('dist/ is not built: run `npm run build` (npm test does)');
  });

  it('release fetch --json prints path and digest per arch; exit 0', async () => {
    const cacheDir = tempDir();
    const r = await cli(['--github-api-url', server.url, '--cache-dir', cacheDir, '--keyring', fx.keyringPath, '--json', 'release', 'fetch', '--repo', 'test/runc', '--version', '^1.2', '--arch', fx.arch === 'amd64' ? 'x86_64' : 'aarch64']);
    expect(r.stderr).not.toContain(SECRET);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { tag: string; signatureVerified: boolean; assets: { arch: string; path: string; sha256: string }[] };
    expect(out).toMatchObject({ tag: 'v1.3.4', signatureVerified: true });
    expect(out.assets).toHaveLength(1);
    expect(out.assets[0]).toMatchObject({ arch: fx.arch, sha256: sumsLine(fx.releaseDir('test/runc', 'v1.3.4'), `runc.${fx.arch}`) });
    expect(out.assets[0]!.path.startsWith(cacheDir)).toBe(true);
    expect(sha256(out.assets[0]!.path)).toBe(out.assets[0]!.sha256);
  });

  it('a failed verification exits 3 with the reason on stderr, nothing on stdout', async () => {
    const r = await cli(['--github-api-url', server.url, '--cache-dir', tempDir(), '--keyring', fx.keyringPath, '--json', 'release', 'fetch', '--repo', 'test/bad-checksum', '--version', 'v1.2.9', '--arch', fx.arch]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/SHA-256 mismatch/);
    expect(r.stderr).not.toContain(SECRET);
  });

  it('release list prints versions with advisories', async () => {
    const r = await cli(['--github-api-url', server.url, '--cache-dir', tempDir(), 'release', 'list', '--repo', 'test/runc']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['v1.3.4', 'v1.2.9', 'v1.2.8', 'v1.1.12']);
    expect(lines.find((l) => l.startsWith('v1.1.12'))).toContain('CVE-2024-45310');
    expect(lines.find((l) => l.startsWith('v1.2.9'))).toContain('no known advisories');
    expect(lines.find((l) => l.startsWith('v1.1.12'))).toContain('CVE-2024-45310 [built-in]');
  });

  it('release list shows a GitHub advisory with its source, and --advisories builtin leaves it out', async () => {
    const own = await startReleaseServer(fx.releases);
    try {
      own.setAdvisories('test/runc', [ONLY_API]);
      const cacheDir = tempDir();
      const r = await cli(['--github-api-url', own.url, '--cache-dir', cacheDir, 'release', 'list', '--repo', 'test/runc']);
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n').find((l) => l.startsWith('v1.2.8'))).toContain('advisories: GHSA-2222-3333-4444 (CVE-2099-0001) [github]');
      expect(r.stderr).toContain('advisories: built-in table + 1 GitHub advisory of test/runc (fetched now)');
      const b = await cli(['--github-api-url', own.url, '--cache-dir', cacheDir, 'release', 'list', '--repo', 'test/runc', '--advisories', 'builtin']);
      expect(b.stdout.split('\n').find((l) => l.startsWith('v1.2.8'))).toContain('no known advisories');
      const bad = await cli(['--github-api-url', own.url, 'release', 'list', '--advisories', 'osv']);
      expect(bad.code).toBe(3);
      expect(bad.stderr).toMatch(/--advisories.*osv.*github, builtin/);
    } finally {
      await own.stop();
    }
  });

  it('an unknown --arch is refused with exit 3', async () => {
    const r = await cli(['--github-api-url', server.url, 'release', 'fetch', '--version', 'v1.2.9', '--arch', 'mips']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--arch "mips": unknown architecture/);
  });
});
