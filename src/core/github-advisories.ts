// GitHub's repository security advisories as advisory entries: only the
// vulnerabilities of the Go package github.com/opencontainers/runc, with
// GitHub's version-range form (`>= 1.2.0, < 1.2.8`: comma means AND) turned
// into semver ranges over toSemver() output.
import semver from 'semver';
import type { AdvisoryEntry } from './advisories.js';
import { toSemver } from './version.js';

export const RUNC_GO_PACKAGE = 'github.com/opencontainers/runc';

/** The fields of one advisory this tool reads (validated at the edge, src/github/schemas.ts). */
export interface GitHubAdvisoryItem {
  ghsa_id: string;
  cve_id?: string | null;
  summary: string;
  severity?: string | null;
  state?: string | null;
  withdrawn_at?: string | null;
  vulnerabilities?:
    | {
        package?: { ecosystem?: string | null; name?: string | null } | null;
        vulnerable_version_range?: string | null;
        patched_versions?: string | null;
      }[]
    | null;
}

const COMPARATOR = /^(>=|<=|>|<|=)?v?(\d\S*)$/;

/**
 * `>= 1.2.0, < 1.2.8` -> `>=1.2.0 <1.2.8`; `= 1.0.0-rc93` -> `1.0.0-rc.93`;
 * `||` separates alternatives (commas and spaces both mean AND). null when
 * any part is not a comparator over a runc version: an advisory that cannot
 * be read must never silently match nothing without the caller knowing.
 */
export function parseGitHubRange(text: string): string | null {
  const alternatives: string[] = [];
  for (const alt of text.split('||')) {
    const groups = alt.split(',').map((g) => g.trim());
    if (groups.some((g) => g === '')) return null;
    const tokens = groups.flatMap((g) => g.replace(/(>=|<=|>|<|=)\s+/g, '$1').split(/\s+/));
    const parts: string[] = [];
    for (const t of tokens) {
      const m = COMPARATOR.exec(t);
      const v = m?.[2] ? toSemver(m[2]) : null;
      if (!m || v === null) return null;
      parts.push(`${m[1] && m[1] !== '=' ? m[1] : ''}${v}`);
    }
    alternatives.push(parts.join(' '));
  }
  const range = alternatives.join(' || ');
  return semver.validRange(range, { includePrerelease: true }) ? range : null;
}

const isRunc = (p: { ecosystem?: string | null; name?: string | null } | null | undefined) =>
  (p?.ecosystem ?? '').toLowerCase() === 'go' && (p?.name ?? '').toLowerCase() === RUNC_GO_PACKAGE;

/**
 * Entries for the published, not withdrawn advisories that name the runc Go
 * package, plus one line per range that could not be read.
 */
export function fromGitHubAdvisories(items: readonly GitHubAdvisoryItem[]): { entries: AdvisoryEntry[]; problems: string[] } {
  const entries: AdvisoryEntry[] = [];
  const problems: string[] = [];
  for (const item of items) {
    if ((item.state && item.state !== 'published') || item.withdrawn_at) continue;
    const vulns = (item.vulnerabilities ?? []).filter((v) => isRunc(v.package));
    if (vulns.length === 0) continue;
    const ranges: string[] = [];
    const affected: string[] = [];
    const fixed: string[] = [];
    for (const v of vulns) {
      const text = (v.vulnerable_version_range ?? '').trim();
      const range = text ? parseGitHubRange(text) : null;
      if (range === null) problems.push(`${item.ghsa_id}: version range ${JSON.stringify(text)} not understood; this advisory cannot refuse a version`);
      else {
        ranges.push(range);
        affected.push(text);
      }
      for (const p of (v.patched_versions ?? '').split(',').map((s) => s.trim().replace(/^v/, ''))) {
        if (p && !fixed.includes(p)) fixed.push(p);
      }
    }
    const cve = item.cve_id?.trim() || null;
    entries.push({
      id: cve ?? item.ghsa_id,
      cve,
      ghsa: item.ghsa_id,
      summary: item.summary.trim(),
      affected: affected.join(' or ') || '(range not understood)',
      fixed,
      sources: ['github'],
      ranges,
    });
  }
  return { entries, problems };
}
