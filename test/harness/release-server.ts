// A loopback stand-in for GitHub's REST release endpoints, serving fixture
// releases (see release-fixtures.ts) with GitHub's JSON shape, pagination Link
// headers and the asset download redirect, and each repository's published
// security advisories (none unless a test sets them). Faults can be injected
// per path for retry and truncation tests.
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadReleaseFixtures, type FixtureRelease } from './release-fixtures.js';

export interface ServerFault {
  /** Matched against the request's path and query. */
  path: RegExp;
  /** Answer with this status (and headers/body) instead of the real answer. */
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Send the real headers and half the body, then drop the connection. */
  truncate?: boolean;
  /** Never answer (the connection stays open until stop()). */
  hang?: boolean;
  /** How many matching requests it affects (default 1; Infinity for all). */
  times?: number;
}

export interface ReleaseServer {
  /** API base URL, e.g. http://127.0.0.1:PORT (plus the prefix, if any). */
  url: string;
  /** `METHOD path?query` of every request, in order. */
  requests: string[];
  inject(fault: ServerFault): void;
  /** What `GET /repos/{repo}/security-advisories` answers for `repo` from now on (GitHub's advisory JSON). */
  setAdvisories(repo: string, advisories: unknown[]): void;
  stop(): Promise<void>;
}

export interface ReleaseServerOptions {
  /** Largest page the server hands out (GitHub: 100); lower it to force pagination. */
  maxPerPage?: number;
  /** API path prefix, e.g. `/api/v3` as on GitHub Enterprise. */
  prefix?: string;
}

interface Served {
  rel: FixtureRelease;
  id: number;
  assets: { id: number; name: string; path: string; size: number }[];
}

export async function startReleaseServer(source: string | FixtureRelease[], opts: ReleaseServerOptions = {}): Promise<ReleaseServer> {
  const releases = typeof source === 'string' ? loadReleaseFixtures(source).releases : source;
  let nextId = 1000;
  const served: Served[] = releases.map((rel) => ({
    rel,
    id: nextId++,
    assets: readdirSync(rel.dir)
      .sort()
      .map((name) => ({ id: nextId++, name, path: join(rel.dir, name), size: statSync(join(rel.dir, name)).size })),
  }));
  const prefix = opts.prefix ?? '';
  const maxPerPage = opts.maxPerPage ?? 100;
  const faults: (ServerFault & { left: number })[] = [];
  const requests: string[] = [];
  const advisories = new Map<string, unknown[]>();
  let origin = '';

  const releaseJson = (s: Served) => {
    const [owner, repo] = s.rel.repo.split('/');
    return {
      url: `${origin}${prefix}/repos/${s.rel.repo}/releases/${s.id}`,
      html_url: `${origin}/${s.rel.repo}/releases/tag/${s.rel.tag}`,
      id: s.id,
      tag_name: s.rel.tag,
      name: s.rel.tag,
      draft: s.rel.draft,
      prerelease: s.rel.prerelease,
      created_at: s.rel.publishedAt,
      published_at: s.rel.draft ? null : s.rel.publishedAt,
      author: { login: owner },
      assets: s.assets.map((a) => ({
        id: a.id,
        name: a.name,
        size: a.size,
        content_type: 'application/octet-stream',
        state: 'uploaded',
        url: `${origin}${prefix}/repos/${owner}/${repo}/releases/assets/${a.id}`,
        browser_download_url: `${origin}/${owner}/${repo}/releases/download/${s.rel.tag}/${a.name}`,
      })),
    };
  };
  const newestFirst = (list: Served[]) => [...list].sort((a, b) => b.rel.publishedAt.localeCompare(a.rel.publishedAt));

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', origin);
    const pathQuery = `${u.pathname}${u.search}`;
    requests.push(`${req.method} ${pathQuery}`);
    const fault = faults.find((f) => f.left > 0 && f.path.test(pathQuery));
    if (fault) fault.left -= 1;
    if (fault?.hang) return;
    if (fault?.status !== undefined) {
      return json(res, fault.status, fault.body ?? { message: `injected ${fault.status}` }, fault.headers);
    }
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      fault?.truncate ? sendTruncated(res, status, Buffer.from(JSON.stringify(body)), headers) : json(res, status, body, headers);

    let m: RegExpExecArray | null;
    const api = u.pathname.startsWith(`${prefix}/repos/`) ? u.pathname.slice(prefix.length) : null;
    if (api && (m = /^\/repos\/([^/]+)\/([^/]+)\/releases$/.exec(api))) {
      const repo = `${m[1]}/${m[2]}`;
      const all = newestFirst(served.filter((s) => s.rel.repo === repo));
      const perPage = Math.min(Math.max(1, Number(u.searchParams.get('per_page') ?? 30) || 30), maxPerPage);
      const page = Math.max(1, Number(u.searchParams.get('page') ?? 1) || 1);
      const last = Math.max(1, Math.ceil(all.length / perPage));
      const link = (p: number) => {
        const l = new URL(u.href);
        l.searchParams.set('per_page', String(perPage));
        l.searchParams.set('page', String(p));
        return l.href;
      };
      const links: string[] = [];
      if (page < last) links.push(`<${link(page + 1)}>; rel="next"`, `<${link(last)}>; rel="last"`);
      if (page > 1) links.push(`<${link(1)}>; rel="first"`, `<${link(page - 1)}>; rel="prev"`);
      return send(200, all.slice((page - 1) * perPage, page * perPage).map(releaseJson), links.length ? { link: links.join(', ') } : {});
    }
    if (api && (m = /^\/repos\/([^/]+)\/([^/]+)\/security-advisories$/.exec(api))) {
      return send(200, advisories.get(`${m[1]}/${m[2]}`) ?? []);
    }
    if (api && (m = /^\/repos\/([^/]+)\/([^/]+)\/releases\/latest$/.exec(api))) {
      const repo = `${m[1]}/${m[2]}`;
      const latest = newestFirst(served.filter((s) => s.rel.repo === repo && !s.rel.draft && !s.rel.prerelease))[0];
      return latest ? send(200, releaseJson(latest)) : notFound(res);
    }
    if (api && (m = /^\/repos\/([^/]+)\/([^/]+)\/releases\/tags\/(.+)$/.exec(api))) {
      const tag = decodeURIComponent(m[3]!);
      const found = served.find((s) => s.rel.repo === `${m![1]}/${m![2]}` && s.rel.tag === tag && !s.rel.draft);
      return found ? send(200, releaseJson(found)) : notFound(res);
    }
    if (api && (m = /^\/repos\/([^/]+)\/([^/]+)\/releases\/assets\/(\d+)$/.exec(api))) {
      const id = Number(m[3]);
      const s = served.find((x) => x.rel.repo === `${m![1]}/${m![2]}` && x.assets.some((a) => a.id === id));
      const asset = s && releaseJson(s).assets.find((a) => a.id === id);
      if (!asset) return notFound(res);
      if (!(req.headers.accept ?? '').includes('application/octet-stream')) return send(200, asset);
      res.writeHead(302, { location: asset.browser_download_url, 'content-length': '0' });
      return res.end();
    }
    if ((m = /^\/([^/]+)\/([^/]+)\/releases\/download\/([^/]+)\/([^/]+)$/.exec(u.pathname))) {
      const [repo, tag, name] = [`${m[1]}/${m[2]}`, decodeURIComponent(m[3]!), decodeURIComponent(m[4]!)];
      const asset = served.find((s) => s.rel.repo === repo && s.rel.tag === tag)?.assets.find((a) => a.name === name);
      if (!asset) return notFound(res);
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(asset.size) };
      if (fault?.truncate) {
        res.writeHead(200, headers);
        const half = Math.floor(asset.size / 2);
        createReadStream(asset.path, { end: Math.max(0, half - 1) })
          .on('end', () => res.destroy())
          .pipe(res, { end: false });
        return;
      }
      res.writeHead(200, headers);
      createReadStream(asset.path).pipe(res);
      return;
    }
    notFound(res);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      json(res, 500, { message: String(err) });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}${prefix}`,
    requests,
    inject(f) {
      faults.push({ ...f, left: f.times ?? 1 });
    },
    setAdvisories(repo, list) {
      advisories.set(repo, list);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(data.length), ...headers });
  res.end(data);
}

function notFound(res: ServerResponse) {
  json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/releases/releases', status: '404' });
}

function sendTruncated(res: ServerResponse, status: number, data: Buffer, headers: Record<string, string>) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(data.length), ...headers });
  res.write(data.subarray(0, Math.floor(data.length / 2)), () => res.destroy());
}
