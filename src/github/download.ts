// Streams one release asset to a file: never the whole binary in memory, a
// size cap, a stall timeout and an overall deadline, retries on 5xx/429 and
// broken transfers. The token goes only to the API's own origin, never to the
// storage host GitHub redirects to.
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GitHubError, InterruptedError, errorMessage } from '../errors.js';
import type { Logger } from '../output/logger.js';
import type { GitHubAsset } from './schemas.js';

export interface DownloadOptions {
  maxBytes: number;
  apiBaseUrl: string;
  token?: string;
  /** Abort when no byte arrives for this long. */
  stallTimeoutMs: number;
  totalTimeoutMs: number;
  retryBaseMs: number;
  attempts?: number;
  log: Logger;
  signal?: AbortSignal;
}

class Retryable extends Error {}

export async function downloadToFile(asset: GitHubAsset, dest: string, opts: DownloadOptions): Promise<{ bytes: number }> {
  if (asset.size > opts.maxBytes) {
    throw new GitHubError(`${asset.name}: the release lists it at ${asset.size} bytes, over the ${opts.maxBytes}-byte cap; refusing to download`);
  }
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await downloadOnce(asset, dest, opts);
    } catch (err) {
      await rm(dest, { force: true });
      if (opts.signal?.aborted) throw new InterruptedError(`interrupted while downloading ${asset.name}`);
      if (!(err instanceof Retryable) || attempt >= attempts) {
        if (err instanceof GitHubError) throw err;
        throw new GitHubError(`download of ${asset.name} failed after ${attempt} attempt(s): ${errorMessage(err)}`, undefined, [`from ${asset.url}`]);
      }
      const delay = attempt * attempt * opts.retryBaseMs;
      opts.log.warn(`download of ${asset.name} failed (${errorMessage(err)}); retrying in ${Math.round(delay / 100) / 10} s`);
      await sleep(delay, opts.signal);
    }
  }
}

async function downloadOnce(asset: GitHubAsset, dest: string, opts: DownloadOptions): Promise<{ bytes: number }> {
  const stall = new AbortController();
  const signals = [stall.signal, AbortSignal.timeout(opts.totalTimeoutMs)];
  if (opts.signal) signals.push(opts.signal);
  const signal = AbortSignal.any(signals);
  let timer: NodeJS.Timeout | undefined;
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(new Error(`no data for ${opts.stallTimeoutMs} ms`)), opts.stallTimeoutMs);
  };
  const headers: Record<string, string> = { accept: 'application/octet-stream', 'user-agent': 'runc-rollout' };
  if (opts.token && sameOrigin(asset.url, opts.apiBaseUrl)) headers.authorization = `Bearer ${opts.token}`;
  kick();
  try {
    let res: Response;
    try {
      res = await fetch(asset.url, { headers, redirect: 'follow', signal });
    } catch (err) {
      throw new Retryable(causeMessage(err, signal));
    }
    if (res.status >= 500 || res.status === 429) {
      await res.body?.cancel();
      throw new Retryable(`HTTP ${res.status}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new GitHubError(`download of ${asset.name} failed: HTTP ${res.status}`, res.status, [`from ${asset.url}`]);
    }
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      await res.body.cancel();
      throw new GitHubError(`${asset.name}: server sends ${declared} bytes, over the ${opts.maxBytes}-byte cap; refusing it`);
    }
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        kick();
        if (bytes > opts.maxBytes) cb(new GitHubError(`${asset.name}: more than ${opts.maxBytes} bytes received; refusing it`));
        else cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), counter, createWriteStream(dest, { mode: 0o600 }));
    } catch (err) {
      if (err instanceof GitHubError) throw err;
      throw new Retryable(`transfer broke after ${bytes} bytes: ${causeMessage(err, signal)}`);
    }
    if (bytes !== asset.size) throw new Retryable(`truncated: got ${bytes} of ${asset.size} bytes`);
    return { bytes };
  } finally {
    clearTimeout(timer);
  }
}

function causeMessage(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return `timed out (${errorMessage(signal.reason)})`;
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${errorMessage(err)}${cause}`;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
