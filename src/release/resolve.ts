// Turns `--version` into one release: an exact tag (`v1.2.9` or `1.2.9`),
// `latest`, or a semver range over the repository's published releases.
// Prereleases take part only with --pre.
import semver from 'semver';
import { ReleaseError } from '../errors.js';
import { toSemver } from '../core/version.js';
import type { ReleaseApi, RepoRef } from '../github/client.js';
import type { GitHubRelease } from '../github/schemas.js';

export type VersionSpec =
  | { kind: 'exact'; version: string; /** tags to try, most likely first */ tags: string[] }
  | { kind: 'latest' }
  | { kind: 'range'; range: string };

export function parseVersionSpec(spec: string): VersionSpec {
  const s = spec.trim();
  if (s === '') throw new ReleaseError('--version is empty');
  if (s === 'latest') return { kind: 'latest' };
  const exact = /^v?\d+\.\d+\.\d+\S*$/.test(s) ? toSemver(s) : null;
  if (exact !== null) {
    const bare = s.replace(/^v/, '');
    return { kind: 'exact', version: bare, tags: s.startsWith('v') ? [s, bare] : [`v${s}`, s] };
  }
  const range = semver.validRange(s.replace(/(\d)-rc(\d)/g, '$1-rc.$2'));
  if (range === null) throw new ReleaseError(`--version ${JSON.stringify(spec)} is not a tag, "latest" or a semver range`);
  return { kind: 'range', range };
}

/** A release tag's version ("v1.2.9" -> "1.2.9"), or null for tags that are not versions. */
export function tagVersion(tag: string): string | null {
  return toSemver(tag) === null ? null : tag.replace(/^v/, '');
}

export function isPrerelease(rel: Pick<GitHubRelease, 'tag_name' | 'prerelease'>): boolean {
  const v = toSemver(rel.tag_name);
  return rel.prerelease || (v !== null && semver.prerelease(v) !== null);
}

/** The highest release matching a range (or any, for `latest --pre`); pure, for the list answer. */
export function pickFromList(releases: GitHubRelease[], spec: Exclude<VersionSpec, { kind: 'exact' }>, pre: boolean): GitHubRelease | null {
  let best: { rel: GitHubRelease; v: string } | null = null;
  for (const rel of releases) {
    if (rel.draft) continue;
    if (!pre && isPrerelease(rel)) continue;
    const v = toSemver(rel.tag_name);
    if (v === null) continue;
    if (spec.kind === 'range' && !semver.satisfies(v, spec.range, { includePrerelease: pre })) continue;
    if (best === null || semver.gt(v, best.v)) best = { rel, v };
  }
  return best?.rel ?? null;
}

export async function resolveRelease(api: ReleaseApi, repo: RepoRef, spec: VersionSpec, pre: boolean): Promise<GitHubRelease> {
  const name = `${repo.owner}/${repo.repo}`;
  let rel: GitHubRelease | null = null;
  if (spec.kind === 'exact') {
    for (const tag of spec.tags) {
      rel = await api.byTag(repo, tag);
      if (rel) break;
    }
    if (!rel || rel.draft) throw new ReleaseError(`release ${spec.tags[0]} not found in ${name}`, [`tried tags: ${spec.tags.join(', ')}`]);
    if (!pre && isPrerelease(rel)) throw new ReleaseError(`${rel.tag_name} is a prerelease; pass --pre to use it`);
  } else if (spec.kind === 'latest' && !pre) {
    rel = await api.latest(repo);
    if (rel && (rel.draft || isPrerelease(rel))) rel = pickFromList(await api.list(repo), spec, pre);
    if (!rel) throw new ReleaseError(`${name} has no published release`);
  } else {
    rel = pickFromList(await api.list(repo), spec, pre);
    if (!rel) {
      const what = spec.kind === 'range' ? `matching ${spec.range}` : '';
      throw new ReleaseError(`no release ${what} found in ${name}${pre ? '' : ' (prereleases excluded; --pre includes them)'}`.replace('  ', ' '));
    }
  }
  if (tagVersion(rel.tag_name) === null) throw new ReleaseError(`release tag ${JSON.stringify(rel.tag_name)} of ${name} is not a version`);
  return rel;
}
