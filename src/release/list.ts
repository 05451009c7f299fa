// `release list`: published versions of the repository, newest first, each
// with the advisories that affect it (built-in and GitHub's, each saying where
// it came from).
import semver from 'semver';
import { advisoriesFor, type Advisory, type AdvisoryTable } from '../core/advisories.js';
import { toSemver } from '../core/version.js';
import type { Logger } from '../output/logger.js';
import { createGitHubClient, parseRepo } from '../github/client.js';
import type { GitHubRelease } from '../github/schemas.js';
import { loadAdvisories, type AdvisoryMode } from './advisories.js';
import { isPrerelease } from './resolve.js';

export interface ListOptions {
  repo: string;
  pre: boolean;
  githubApiUrl: string;
  token?: string;
  /** Where GitHub's advisories are cached (refreshed on every listing). */
  cacheDir: string;
  /** Default github (with the built-in table as fallback). */
  advisories?: AdvisoryMode;
  timeoutMs?: number;
  log: Logger;
  signal?: AbortSignal;
}

export interface ReleaseSummary {
  tag: string;
  version: string;
  prerelease: boolean;
  publishedAt: string | null;
  assets: string[];
  advisories: Advisory[];
}

export interface ReleaseListing {
  releases: ReleaseSummary[];
  /** Where the advisories came from, in one line. */
  advisories: string;
}

export async function listReleases(opts: ListOptions): Promise<ReleaseListing> {
  const api = createGitHubClient({ baseUrl: opts.githubApiUrl, token: opts.token, timeoutMs: opts.timeoutMs ?? 30_000, log: opts.log, signal: opts.signal });
  const [releases, table] = await Promise.all([
    api.list(parseRepo(opts.repo)),
    loadAdvisories({ mode: opts.advisories ?? 'github', repo: opts.repo, githubApiUrl: opts.githubApiUrl, token: opts.token, cacheDir: opts.cacheDir, refresh: true, log: opts.log, signal: opts.signal }),
  ]);
  return { releases: summarize(releases, table, opts), advisories: table.origin };
}

function summarize(releases: GitHubRelease[], table: AdvisoryTable, opts: ListOptions): ReleaseSummary[] {
  const out: (ReleaseSummary & { sv: string })[] = [];
  for (const rel of releases) {
    const sv = toSemver(rel.tag_name);
    if (sv === null) {
      opts.log.debug(`skipping release ${rel.tag_name}: tag is not a version`);
      continue;
    }
    if (!opts.pre && isPrerelease(rel)) continue;
    const version = rel.tag_name.replace(/^v/, '');
    out.push({ tag: rel.tag_name, version, prerelease: isPrerelease(rel), publishedAt: rel.published_at ?? null, assets: rel.assets.map((a) => a.name), advisories: advisoriesFor(version, table), sv });
  }
  return out.sort((a, b) => semver.rcompare(a.sv, b.sv)).map(({ sv: _sv, ...r }) => r);
}
