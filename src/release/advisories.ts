// Which advisories a run checks versions against: the built-in table merged
// with the repository's published GitHub security advisories. Those are cached
// next to the releases with their fetch time and used from there offline (with
// their age said). An endpoint that is missing (older GHES), forbidden (a
// proxy) or unreachable only means the built-in table (or the cached copy) is
// used, said in one line: advisories never fail a run.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { builtinAdvisories, mergeAdvisories, type AdvisoryTable } from '../core/advisories.js';
import { fromGitHubAdvisories } from '../core/github-advisories.js';
import { GitHubError, InterruptedError, errorMessage } from '../errors.js';
import { createGitHubClient, parseRepo, type AdvisoryApi } from '../github/client.js';
import { securityAdvisorySchema, type GitHubSecurityAdvisory } from '../github/schemas.js';
import type { Logger } from '../output/logger.js';
import { cacheRepoDir } from './cache.js';

export const ADVISORY_MODES = ['github', 'builtin'] as const;
export type AdvisoryMode = (typeof ADVISORY_MODES)[number];

/** A cached copy younger than this is used without asking GitHub (unauthenticated clients get 60 API calls an hour). */
export const ADVISORY_REFRESH_MS = 60 * 60 * 1000;
/** The advisory call is a side dish: a slow endpoint must not hold up the run for long. */
const ADVISORY_TIMEOUT_MS = 15_000;

export interface AdvisoryOptions {
  mode: AdvisoryMode;
  repo: string;
  githubApiUrl: string;
  token?: string;
  cacheDir: string;
  /** Ask GitHub even when the cached copy is fresh (`release list`). */
  refresh?: boolean;
  timeoutMs?: number;
  now?: () => Date;
  log: Logger;
  signal?: AbortSignal;
  /** Stands in for GitHub in tests. */
  api?: AdvisoryApi;
}

const cacheSchema = z.object({
  schema: z.literal(1),
  repo: z.string(),
  fetchedAt: z.iso.datetime(),
  advisories: z.array(securityAdvisorySchema),
});
type AdvisoryCache = z.infer<typeof cacheSchema>;

export function advisoryCachePath(cacheDir: string, repo: string): string {
  return join(cacheRepoDir(cacheDir, repo), 'advisories.json');
}

export async function loadAdvisories(o: AdvisoryOptions): Promise<AdvisoryTable> {
  const builtin = builtinAdvisories();
  if (o.mode === 'builtin') return builtin;
  const now = (o.now ?? (() => new Date()))();
  const path = advisoryCachePath(o.cacheDir, o.repo);
  const cached = await readCache(path, o.repo);
  const age = (c: AdvisoryCache) => formatAge(now.getTime() - Date.parse(c.fetchedAt));
  const use = (items: GitHubSecurityAdvisory[], how: string) => {
    const { entries, problems } = fromGitHubAdvisories(items);
    for (const p of problems) o.log.warn(`GitHub advisory ${p}`);
    return mergeAdvisories(builtin, entries, `built-in table + ${entries.length} GitHub advisor${entries.length === 1 ? 'y' : 'ies'} of ${o.repo} (${how})`);
  };
  const cachedAgo = cached ? now.getTime() - Date.parse(cached.fetchedAt) : -1;
  // (a copy "fetched" in the future, a clock set back, is not fresh)
  if (cached && !o.refresh && cachedAgo >= 0 && cachedAgo < ADVISORY_REFRESH_MS) {
    o.log.debug(`GitHub advisories of ${o.repo} from the cache, fetched ${age(cached)} ago`);
    return use(cached.advisories, `cached ${age(cached)} ago`);
  }
  let items: GitHubSecurityAdvisory[];
  try {
    const api = o.api ?? createGitHubClient({ baseUrl: o.githubApiUrl, token: o.token, timeoutMs: o.timeoutMs ?? ADVISORY_TIMEOUT_MS, retries: 1, maxRateLimitWaitS: 0, log: o.log, signal: o.signal });
    items = await api.securityAdvisories(parseRepo(o.repo));
  } catch (err) {
    if (o.signal?.aborted || err instanceof InterruptedError) throw err;
    const why = unavailable(err);
    if (cached) {
      o.log.warn(`GitHub security advisories of ${o.repo} unavailable (${why}); using the copy cached ${age(cached)} ago with the built-in table`);
      return use(cached.advisories, `cached ${age(cached)} ago; GitHub unavailable`);
    }
    o.log.warn(`GitHub security advisories of ${o.repo} unavailable (${why}); using the built-in advisory table only`);
    return { ...builtin, origin: `built-in table (GitHub advisories unavailable: ${why})` };
  }
  await writeCache(path, { schema: 1, repo: o.repo, fetchedAt: now.toISOString(), advisories: items }, o.log);
  return use(items, 'fetched now');
}

/** `40s`, `12m`, `5h`, `3d`: how old a cached copy is. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** The reason in a few words: "not found (404)", "HTTP 403: ...", "timed out". */
function unavailable(err: unknown): string {
  if (err instanceof GitHubError && err.status === 404) return 'the endpoint answered 404';
  return errorMessage(err).split('\n')[0]!.replace(/^GitHub API request for .*? failed: /, '').slice(0, 200);
}

async function readCache(path: string, repo: string): Promise<AdvisoryCache | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const r = cacheSchema.safeParse(JSON.parse(text));
    return r.success && r.data.repo === repo ? r.data : null;
  } catch {
    return null;
  }
}

/** Temp file and rename: a reader never sees half a cache. A failure to cache is only logged. */
async function writeCache(path: string, c: AdvisoryCache, log: Logger): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(tmp, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    log.warn(`could not cache the GitHub advisories at ${path}: ${errorMessage(err)}`);
  }
}
