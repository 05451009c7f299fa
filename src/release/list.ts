// `release list`: published versions of the repository, newest first, each
// with the advisories that affect it.
import semver from 'semver';
import { advisoriesFor, type Advisory } from '../core/advisories.js';
import { toSemver } from '../core/version.js';
import type { Logger } from '../output/logger.js';
import { createGitHubClient, parseRepo } from '../github/client.js';
import { isPrerelease } from './resolve.js';

export interface ListOptions {
  repo: string;
  pre: boolean;
  githubApiUrl: string;
  token?: string;
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

export async function listReleases(opts: ListOptions): Promise<ReleaseSummary[]> {
  const api = createGitHubClient({ baseUrl: opts.githubApiUrl, token: opts.token, timeoutMs: opts.timeoutMs ?? 30_000, log: opts.log, signal: opts.signal });
  const releases = await api.list(parseRepo(opts.repo));
  const out: (ReleaseSummary & { sv: string })[] = [];
  for (const rel of releases) {
    const sv = toSemver(rel.tag_name);
    if (sv === null) {
      opts.log.debug(`skipping release ${rel.tag_name}: tag is not a version`);
      continue;
    }
    if (!opts.pre && isPrerelease(rel)) continue;
    const version = rel.tag_name.replace(/^v/, '');
    out.push({ tag: rel.tag_name, version, prerelease: isPrerelease(rel), publishedAt: rel.published_at ?? null, assets: rel.assets.map((a) => a.name), advisories: advisoriesFor(version), sv });
  }
  return out.sort((a, b) => semver.rcompare(a.sv, b.sv)).map(({ sv: _sv, ...r }) => r);
}
