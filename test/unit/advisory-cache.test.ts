// When GitHub is asked for advisories and when the cached copy is used: a
// fresh copy (under an hour) saves the API call, `release list` always asks,
// a stale or future-dated copy is refreshed, and `builtin` never asks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GitHubError } from '../../src/errors.js';
import type { AdvisoryApi } from '../../src/github/client.js';
import { silentLogger } from '../../src/output/logger.js';
import { ADVISORY_REFRESH_MS, formatAge, loadAdvisories } from '../../src/release/advisories.js';

const dir = mkdtempSync(join(tmpdir(), 'rr-adv-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ADVISORY = { ghsa_id: 'GHSA-aaaa-bbbb-cccc', cve_id: 'CVE-2099-0007', summary: 's', state: 'published', vulnerabilities: [{ package: { ecosystem: 'go', name: 'github.com/opencontainers/runc' }, vulnerable_version_range: '< 1.2.9', patched_versions: '1.2.9' }] };

function api(answers: (() => unknown[])[]): AdvisoryApi & { calls: number } {
  const a = {
    calls: 0,
    async securityAdvisories() {
      const next = answers[a.calls++] ?? answers.at(-1)!;
      return next() as Awaited<ReturnType<AdvisoryApi['securityAdvisories']>>;
    },
  };
  return a;
}

const at = (ms: number) => () => new Date(Date.UTC(2026, 0, 1) + ms);
const ids = (t: Awaited<ReturnType<typeof loadAdvisories>>) => t.entries.filter((e) => e.sources.includes('github')).map((e) => e.ghsa);

describe('the advisory cache', () => {
  it('uses a copy younger than an hour without asking, refreshes an older one, and release list always asks', async () => {
    const cacheDir = join(dir, 'a');
    const gh = api([() => [ADVISORY]]);
    const base = { mode: 'github' as const, repo: 'test/runc', githubApiUrl: 'http://127.0.0.1:9', cacheDir, log: silentLogger, api: gh };
    expect(ids(await loadAdvisories({ ...base, now: at(0) }))).toEqual(['GHSA-aaaa-bbbb-cccc']);
    const fresh = await loadAdvisories({ ...base, now: at(ADVISORY_REFRESH_MS - 1000) });
    expect(gh.calls).toBe(1);
    expect(fresh.origin).toBe('built-in table + 1 GitHub advisory of test/runc (cached 59m ago)');
    await loadAdvisories({ ...base, now: at(ADVISORY_REFRESH_MS + 1000) });
    expect(gh.calls).toBe(2);
    await loadAdvisories({ ...base, now: at(ADVISORY_REFRESH_MS + 2000), refresh: true });
    expect(gh.calls).toBe(3);
    // a copy from the future (a clock set back) is not fresh
    await loadAdvisories({ ...base, now: at(-60_000) });
    expect(gh.calls).toBe(4);
  });

  it('builtin never asks; a failure without a cache is the built-in table, named as such', async () => {
    const gh = api([() => { throw new GitHubError('x: not found (404)', 404); }]);
    const base = { repo: 'test/runc', githubApiUrl: 'http://127.0.0.1:9', cacheDir: join(dir, 'b'), log: silentLogger, api: gh, now: at(0) };
    const b = await loadAdvisories({ ...base, mode: 'builtin' });
    expect(gh.calls).toBe(0);
    expect(b.origin).toBe('built-in table');
    const fallback = await loadAdvisories({ ...base, mode: 'github' });
    expect(gh.calls).toBe(1);
    expect(fallback.origin).toBe('built-in table (GitHub advisories unavailable: the endpoint answered 404)');
    expect(fallback.entries).toEqual(b.entries);
  });

  it('says ages in the largest whole unit', () => {
    expect([0, 59_999, 60_000, 3_599_999, 3_600_000, 86_399_999, 2 * 86_400_000].map(formatAge)).toEqual(['0s', '59s', '1m', '59m', '1h', '23h', '2d']);
  });
});
