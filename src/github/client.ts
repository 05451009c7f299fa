// GitHub release API access through octokit: retries with backoff on 5xx and
// 429, rate limits waited out when short and explained when long, a timeout on
// every call, and every answer validated before use.
import type { Octokit } from '@octokit/rest';
import { z } from 'zod';
import { GitHubError, InterruptedError, errorMessage } from '../errors.js';
import type { Logger } from '../output/logger.js';
import { releaseSchema, securityAdvisorySchema, zodIssues, type GitHubRelease, type GitHubSecurityAdvisory } from './schemas.js';
import { downloadToFile, type DownloadOptions } from './download.js';
import type { GitHubAsset } from './schemas.js';

export interface RepoRef {
  owner: string;
  repo: string;
}

/** What the release side needs from GitHub; a small interface so tests and mirrors can stand in. */
export interface ReleaseApi {
  /** Every published (non-draft) release. */
  list(repo: RepoRef): Promise<GitHubRelease[]>;
  /** null when the tag has no release. */
  byTag(repo: RepoRef, tag: string): Promise<GitHubRelease | null>;
  /** GitHub's "latest" release (newest non-prerelease, non-draft); null when there is none. */
  latest(repo: RepoRef): Promise<GitHubRelease | null>;
  download(asset: GitHubAsset, dest: string, opts: Pick<DownloadOptions, 'maxBytes'>): Promise<{ bytes: number }>;
}

/** What the advisory side needs from GitHub. */
export interface AdvisoryApi {
  /** The repository's published security advisories (a GitHubError with status 404 where the endpoint does not exist). */
  securityAdvisories(repo: RepoRef): Promise<GitHubSecurityAdvisory[]>;
}

export interface GitHubClientOptions {
  baseUrl: string;
  token?: string;
  /** Per API call, and the stall limit of downloads. */
  timeoutMs: number;
  log: Logger;
  signal?: AbortSignal;
  /** Multiplier of retry delays (ms); lower only in tests. */
  retryBaseMs?: number;
  /** Retries of a failed call (default 3). */
  retries?: number;
  /** Longest rate-limit wait taken automatically before giving up (s). */
  maxRateLimitWaitS?: number;
}

const MAX_PAGES = 30; // 3000 releases: far beyond runc's, a guard against a looping Link header

/**
 * Loaded on first use: a run whose release is already in the verified cache
 * never starts octokit, and every CLI start is ~40 ms shorter without it.
 * throttling innermost: it waits out GitHub's rate limits (honouring
 * retry-after) before the generic retry (5xx, other 429s) with its own backoff
 * sees the error.
 */
async function retryingOctokit(): Promise<typeof Octokit> {
  const [{ Octokit: Base }, { retry }, { throttling }] = await Promise.all([import('@octokit/rest'), import('@octokit/plugin-retry'), import('@octokit/plugin-throttling')]);
  return Base.plugin(throttling, retry);
}

export function parseRepo(repo: string): RepoRef {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repo);
  if (!m?.[1] || !m[2]) throw new GitHubError(`--repo must be owner/name, got ${JSON.stringify(repo)}`);
  return { owner: m[1], repo: m[2] };
}

export function createGitHubClient(opts: GitHubClientOptions): ReleaseApi & AdvisoryApi {
  const base = opts.retryBaseMs ?? 1000;
  const maxWait = opts.maxRateLimitWaitS ?? 60;
  const baseOrigin = new URL(opts.baseUrl).origin;
  if (opts.token && new URL(opts.baseUrl).protocol === 'http:' && !isLoopback(new URL(opts.baseUrl).hostname)) {
    throw new GitHubError(`refusing to send GITHUB_TOKEN in clear text to ${opts.baseUrl}; use an https:// API URL (or unset GITHUB_TOKEN)`);
  }
  const timedFetch: typeof fetch = (input, init) => {
    const signals = [AbortSignal.timeout(opts.timeoutMs)];
    if (init?.signal) signals.push(init.signal);
    if (opts.signal) signals.push(opts.signal);
    // The token is for the API's own origin: a Link header or redirect naming another host gets none.
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const headers = new Headers(init?.headers);
    if (url.origin !== baseOrigin) headers.delete('authorization');
    return fetch(input, { ...init, headers, signal: AbortSignal.any(signals) });
  };
  const onLimit = (kind: string) => (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
    if (retryCount < 2 && retryAfter <= maxWait) {
      opts.log.warn(`GitHub ${kind} hit on ${options.method} ${options.url}; waiting ${retryAfter} s before retrying`);
      return true;
    }
    opts.log.warn(`GitHub ${kind} hit on ${options.method} ${options.url}; it lifts in ${retryAfter} s, not waiting that long`);
    return false;
  };
  let made: Promise<Octokit> | undefined;
  const client = () => (made ??= retryingOctokit().then((RetryingOctokit) => new RetryingOctokit({
    baseUrl: opts.baseUrl,
    auth: opts.token,
    userAgent: 'runc-rollout',
    request: { fetch: timedFetch },
    retry: { retryAfterBaseValue: base, retries: opts.retries ?? 3 },
    throttle: { onRateLimit: onLimit('rate limit'), onSecondaryRateLimit: onLimit('secondary rate limit'), retryAfterBaseValue: base },
    log: { debug: () => {}, info: () => {}, warn: (m: string) => opts.log.debug(m), error: (m: string) => opts.log.debug(m) },
  })));

  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toGitHubError(what, err, opts.signal);
    }
  };
  const parseRelease = (what: string, data: unknown): GitHubRelease => {
    const r = releaseSchema.safeParse(data);
    if (!r.success) throw new GitHubError(`GitHub API answered ${what} with an unexpected shape`, undefined, zodIssues(r.error));
    return r.data;
  };
  const orNull = async <T>(p: Promise<T>): Promise<T | null> => {
    try {
      return await p;
    } catch (err) {
      if (err instanceof GitHubError && err.status === 404) return null;
      throw err;
    }
  };

  /** Every item of a paginated list, each validated; `keep` drops items (drafts). */
  const paged = async <T>(what: string, route: string, params: Record<string, string | number>, parse: (item: unknown) => T, keep: (item: T) => boolean = () => true): Promise<T[]> =>
    call(what, async () => {
      const out: T[] = [];
      let pages = 0;
      for await (const page of (await client()).paginate.iterator(route, { ...params, per_page: 100 })) {
        const parsed = z.array(z.unknown()).safeParse(page.data);
        if (!parsed.success) throw new GitHubError(`GitHub API answered ${what} with an unexpected shape`, undefined, zodIssues(parsed.error));
        for (const item of parsed.data) {
          const value = parse(item);
          if (keep(value)) out.push(value);
        }
        if (++pages >= MAX_PAGES) {
          opts.log.warn(`${what}: stopped after ${MAX_PAGES} pages`);
          break;
        }
      }
      return out;
    });

  return {
    async list(ref) {
      const what = `the release list of ${ref.owner}/${ref.repo}`;
      return paged(what, 'GET /repos/{owner}/{repo}/releases', { owner: ref.owner, repo: ref.repo }, (item) => parseRelease(what, item), (rel) => !rel.draft);
    },
    async securityAdvisories(ref) {
      const what = `the security advisories of ${ref.owner}/${ref.repo}`;
      return paged(what, 'GET /repos/{owner}/{repo}/security-advisories', { owner: ref.owner, repo: ref.repo, state: 'published' }, (item) => {
        const r = securityAdvisorySchema.safeParse(item);
        if (!r.success) throw new GitHubError(`GitHub API answered ${what} with an unexpected shape`, undefined, zodIssues(r.error));
        return r.data;
      });
    },
    async byTag(ref, tag) {
      const what = `release ${tag} of ${ref.owner}/${ref.repo}`;
      return orNull(
        call(what, async () => {
          const res = await (await client()).request('GET /repos/{owner}/{repo}/releases/tags/{tag}', { owner: ref.owner, repo: ref.repo, tag });
          return parseRelease(what, res.data);
        }),
      );
    },
    async latest(ref) {
      const what = `the latest release of ${ref.owner}/${ref.repo}`;
      return orNull(
        call(what, async () => {
          const res = await (await client()).request('GET /repos/{owner}/{repo}/releases/latest', { owner: ref.owner, repo: ref.repo });
          return parseRelease(what, res.data);
        }),
      );
    },
    async download(asset, dest, dl) {
      return downloadToFile(asset, dest, {
        maxBytes: dl.maxBytes,
        apiBaseUrl: opts.baseUrl,
        token: opts.token,
        stallTimeoutMs: opts.timeoutMs,
        totalTimeoutMs: Math.max(opts.timeoutMs * 10, 60_000),
        retryBaseMs: base,
        log: opts.log,
        signal: opts.signal,
      });
    },
  };
}

interface RequestErrorLike {
  status?: number;
  message: string;
  response?: { headers?: Record<string, string | undefined> };
}

function toGitHubError(what: string, err: unknown, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) return new InterruptedError(`interrupted while fetching ${what}`);
  if (err instanceof GitHubError) return err;
  const e = err as RequestErrorLike;
  const status = typeof e?.status === 'number' ? e.status : undefined;
  const headers = e?.response?.headers ?? {};
  if (status === 403 || status === 429) {
    const wait = rateLimitWait(headers);
    if (wait !== null || status === 429) {
      const when = wait === null ? 'later' : `in ${wait} s (at ${new Date(Date.now() + wait * 1000).toISOString()})`;
      return new GitHubError(`GitHub API rate limit reached fetching ${what}; try again ${when}`, status, [
        'Set GITHUB_TOKEN to a token for a higher limit, or use --release-dir with files fetched elsewhere.',
      ]);
    }
  }
  if (status === 404) return new GitHubError(`${what}: not found (404)`, 404);
  const msg = status !== undefined && status !== 500 ? `HTTP ${status}: ${firstLine(errorMessage(err))}` : firstLine(errorMessage(err));
  return new GitHubError(`GitHub API request for ${what} failed: ${msg}`, status, [], err);
}

/** Seconds until a rate limit lifts, from GitHub's headers; null when they do not say. */
export function rateLimitWait(headers: Record<string, string | undefined>, now = Date.now()): number | null {
  const after = Number(headers['retry-after']);
  if (Number.isFinite(after) && after >= 0 && headers['retry-after'] !== undefined) return Math.ceil(after);
  if (headers['x-ratelimit-remaining'] === '0') {
    const reset = Number(headers['x-ratelimit-reset']);
    if (Number.isFinite(reset)) return Math.max(0, Math.ceil(reset - now / 1000));
  }
  return null;
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').slice(0, 300);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
