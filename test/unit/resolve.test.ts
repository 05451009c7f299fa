import { describe, expect, it } from 'vitest';
import { ReleaseError } from '../../src/errors.js';
import type { ReleaseApi, RepoRef } from '../../src/github/client.js';
import type { GitHubRelease } from '../../src/github/schemas.js';
import { isPrerelease, parseVersionSpec, pickFromList, resolveRelease } from '../../src/release/resolve.js';

let id = 1;
const rel = (tag: string, o: Partial<GitHubRelease> = {}): GitHubRelease => ({ id: id++, tag_name: tag, name: tag, draft: false, prerelease: false, published_at: null, assets: [], ...o });

const RELEASES = [
  rel('v1.5.0', { draft: true }),
  rel('v1.4.0-rc.3', { prerelease: true }),
  rel('v1.3.4'),
  rel('v1.3.3'),
  rel('v1.2.9'),
  rel('v1.2.8'),
  rel('v1.1.12'),
  rel('v1.0.0-rc93', { prerelease: true }),
  rel('v1.0.0-rc7'),
  rel('nightly-2024'),
];

/** An in-memory ReleaseApi over a fixed list, answering as GitHub does (drafts hidden from tag and latest). */
function memoryApi(list: GitHubRelease[], latestTag?: string): ReleaseApi & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async list() {
      calls.push('list');
      return list.filter((r) => !r.draft);
    },
    async byTag(_repo: RepoRef, tag: string) {
      calls.push(`tag ${tag}`);
      return list.find((r) => r.tag_name === tag && !r.draft) ?? null;
    },
    async latest() {
      calls.push('latest');
      return list.find((r) => r.tag_name === latestTag) ?? null;
    },
    async download() {
      throw new Error('not used');
    },
  };
}
const repo = { owner: 'o', repo: 'r' };

describe('parseVersionSpec', () => {
  it('recognises exact versions with and without v, trying the given spelling first', () => {
    expect(parseVersionSpec('v1.2.9')).toEqual({ kind: 'exact', version: '1.2.9', tags: ['v1.2.9', '1.2.9'] });
    expect(parseVersionSpec('1.2.9')).toEqual({ kind: 'exact', version: '1.2.9', tags: ['v1.2.9', '1.2.9'] });
    expect(parseVersionSpec('1.0.0-rc93')).toMatchObject({ kind: 'exact', version: '1.0.0-rc93' });
  });

  it('recognises latest and ranges', () => {
    expect(parseVersionSpec('latest')).toEqual({ kind: 'latest' });
    expect(parseVersionSpec('^1.2')).toMatchObject({ kind: 'range' });
    expect(parseVersionSpec('>=1.2.8 <1.4')).toMatchObject({ kind: 'range' });
    expect(parseVersionSpec('1.2.x')).toMatchObject({ kind: 'range' });
  });

  it('refuses nonsense with exit-3 ReleaseError', () => {
    expect(() => parseVersionSpec('newest please')).toThrow(ReleaseError);
    expect(() => parseVersionSpec('')).toThrow(ReleaseError);
  });
});

describe('pickFromList', () => {
  it('takes the highest match, skipping drafts and prereleases', () => {
    expect(pickFromList(RELEASES, { kind: 'range', range: '>=1.2.8 <1.4' }, false)?.tag_name).toBe('v1.3.4');
    expect(pickFromList(RELEASES, { kind: 'range', range: '^1.2' }, false)?.tag_name).toBe('v1.3.4');
    expect(pickFromList(RELEASES, { kind: 'range', range: '~1.2' }, false)?.tag_name).toBe('v1.2.9');
    expect(pickFromList(RELEASES, { kind: 'range', range: '>=1.3' }, false)?.tag_name).toBe('v1.3.4');
  });

  it('includes prereleases only with pre', () => {
    expect(pickFromList(RELEASES, { kind: 'range', range: '>=1.3' }, true)?.tag_name).toBe('v1.4.0-rc.3');
    expect(pickFromList(RELEASES, { kind: 'latest' }, true)?.tag_name).toBe('v1.4.0-rc.3');
    expect(pickFromList(RELEASES, { kind: 'latest' }, false)?.tag_name).toBe('v1.3.4');
  });

  it('never picks a draft even when it is the highest', () => {
    expect(pickFromList(RELEASES, { kind: 'range', range: '>=1.0.0' }, true)?.tag_name).not.toBe('v1.5.0');
  });

  it('returns null when nothing matches', () => {
    expect(pickFromList(RELEASES, { kind: 'range', range: '^2' }, true)).toBeNull();
  });

  it('treats a semver prerelease tag as a prerelease even without the GitHub flag', () => {
    expect(isPrerelease(rel('v1.4.0-rc.1'))).toBe(true);
    expect(isPrerelease(rel('v1.3.4'))).toBe(false);
  });
});

describe('resolveRelease', () => {
  it('asks for one tag for an exact version, falling back to the other spelling', async () => {
    const api = memoryApi([rel('1.2.9')]);
    expect((await resolveRelease(api, repo, parseVersionSpec('1.2.9'), false)).tag_name).toBe('1.2.9');
    expect(api.calls).toEqual(['tag v1.2.9', 'tag 1.2.9']);
  });

  it('reports a missing tag with the tags it tried', async () => {
    const err = await resolveRelease(memoryApi(RELEASES), repo, parseVersionSpec('v9.9.9'), false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReleaseError);
    expect((err as ReleaseError).message).toBe('release v9.9.9 not found in o/r');
  });

  it('refuses an exact prerelease without pre, accepts it with', async () => {
    await expect(resolveRelease(memoryApi(RELEASES), repo, parseVersionSpec('v1.4.0-rc.3'), false)).rejects.toThrow(/prerelease; pass --pre/);
    expect((await resolveRelease(memoryApi(RELEASES), repo, parseVersionSpec('v1.4.0-rc.3'), true)).tag_name).toBe('v1.4.0-rc.3');
  });

  it('does not resolve a draft by tag', async () => {
    await expect(resolveRelease(memoryApi(RELEASES), repo, parseVersionSpec('v1.5.0'), true)).rejects.toThrow(/not found/);
  });

  it('uses GitHub latest for latest', async () => {
    const api = memoryApi(RELEASES, 'v1.3.4');
    expect((await resolveRelease(api, repo, { kind: 'latest' }, false)).tag_name).toBe('v1.3.4');
    expect(api.calls).toEqual(['latest']);
  });

  it('falls back to the list when GitHub latest is a prerelease', async () => {
    const api = memoryApi(RELEASES, 'v1.4.0-rc.3');
    expect((await resolveRelease(api, repo, { kind: 'latest' }, false)).tag_name).toBe('v1.3.4');
  });

  it('says when a range matches nothing and that prereleases were excluded', async () => {
    await expect(resolveRelease(memoryApi(RELEASES), repo, parseVersionSpec('>=1.4.0-0'), false)).rejects.toThrow(/no release matching .* --pre includes them/);
  });
});
