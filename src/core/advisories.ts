// runc advisories: the built-in table (fixed when this tool was built), merged
// with the repository's published GitHub security advisories when they could
// be fetched (src/core/github-advisories.ts turns those into entries). Used by
// `release list`, by plan warnings about the versions nodes run now, and to
// refuse a vulnerable rollout target.
// Ranges are semver ranges over toSemver() output (so rc93 is rc.93).
import semver from 'semver';
import { toSemver } from './version.js';

export type AdvisorySource = 'built-in' | 'github';

export interface Advisory {
  /** The CVE id when there is one, else the GHSA id (or our own name for the rc93 hang). */
  id: string;
  cve: string | null;
  ghsa: string | null;
  summary: string;
  /** Human-readable affected range. */
  affected: string;
  /** First fixed version on each affected release line. */
  fixed: string[];
  /** Where it came from: the built-in table, GitHub, or both (deduplicated by CVE/GHSA id). */
  sources: AdvisorySource[];
}

/** An advisory with the semver ranges it matches (any of them). */
export interface AdvisoryEntry extends Advisory {
  ranges: string[];
}

/** What versions are checked against: the built-in table, possibly merged with GitHub's. */
export interface AdvisoryTable {
  entries: AdvisoryEntry[];
  /** One line on where the entries came from (`built-in table`, `built-in table + 14 from GitHub, fetched 3m ago`). */
  origin: string;
}

const CVE_2025 = {
  affected: 'all versions before 1.2.8, 1.3.3 and 1.4.0-rc.3',
  fixed: ['1.2.8', '1.3.3', '1.4.0-rc.3'],
  ranges: ['<1.2.8 || >=1.3.0-0 <1.3.3 || >=1.4.0-0 <1.4.0-rc.3'],
};

type BuiltIn = Omit<AdvisoryEntry, 'cve' | 'ghsa' | 'sources'>;

const TABLE: BuiltIn[] = [
  { id: 'CVE-2019-5736', summary: 'container breakout by overwriting the host runc binary', affected: '<= 1.0.0-rc6', fixed: ['1.0.0-rc7'], ranges: ['<1.0.0-rc.7'] },
  {
    id: 'runc-rc93-pipe-hang',
    summary: 'runc init hangs forever exporting a large seccomp filter through a small pipe (nodes go NotReady)',
    affected: '1.0.0-rc93',
    fixed: ['1.0.0-rc94'],
    ranges: ['1.0.0-rc.93'],
  },
  { id: 'CVE-2021-30465', summary: 'symlink-exchange race in mount destinations (container breakout)', affected: '< 1.0.0-rc95', fixed: ['1.0.0-rc95'], ranges: ['<1.0.0-rc.95'] },
  { id: 'CVE-2022-29162', summary: 'inheritable capabilities not emptied on exec', affected: '< 1.1.2', fixed: ['1.1.2'], ranges: ['<1.1.2'] },
  { id: 'CVE-2023-25809', summary: 'rootless /sys/fs/cgroup writable', affected: '< 1.1.5', fixed: ['1.1.5'], ranges: ['<1.1.5'] },
  { id: 'CVE-2023-27561', summary: 'volume mount through /proc symlink (regression of CVE-2019-19921)', affected: '1.0.0-rc95 - 1.1.4', fixed: ['1.1.5'], ranges: ['>=1.0.0-rc.95 <1.1.5'] },
  { id: 'CVE-2023-28642', summary: 'AppArmor bypass via /proc symlink', affected: '1.0.0-rc95 - 1.1.4', fixed: ['1.1.5'], ranges: ['>=1.0.0-rc.95 <1.1.5'] },
  { id: 'CVE-2024-21626', summary: 'leaked file descriptor lets a container reach the host filesystem ("Leaky Vessels")', affected: '1.0.0-rc93 - 1.1.11', fixed: ['1.1.12'], ranges: ['>=1.0.0-rc.93 <1.1.12'] },
  { id: 'CVE-2024-45310', summary: 'host files can be created through a racing bind mount', affected: '< 1.1.14; 1.2.0-rc.1, 1.2.0-rc.2', fixed: ['1.1.14', '1.2.0-rc.3'], ranges: ['<1.1.14 || >=1.2.0-rc.1 <1.2.0-rc.3'] },
  { id: 'CVE-2025-31133', summary: 'masked-path bind mounts can be redirected (container breakout)', ...CVE_2025 },
  { id: 'CVE-2025-52565', summary: '/dev/console bind-mount race (container breakout)', ...CVE_2025 },
  { id: 'CVE-2025-52881', summary: 'LSM labels and procfs writes can be redirected (container breakout)', ...CVE_2025 },
];

/** The id of the rc93 hang in the table: `unstick` refuses nodes whose runc it still affects. */
export const RC93_HANG_ID = 'runc-rc93-pipe-hang';

/** The built-in table alone (no network): `--advisories builtin`, and the fallback. */
export function builtinAdvisories(): AdvisoryTable {
  const entries = TABLE.map((e) => ({ ...e, cve: e.id.startsWith('CVE-') ? e.id : null, ghsa: null, fixed: [...e.fixed], ranges: [...e.ranges], sources: ['built-in' as const] }));
  return { entries, origin: 'built-in table' };
}

const idsOf = (a: Pick<Advisory, 'id' | 'cve' | 'ghsa'>) => [a.id, a.cve, a.ghsa].filter((x): x is string => Boolean(x)).map((x) => x.toUpperCase());

/**
 * One entry per advisory: an entry of `extra` that shares a CVE or GHSA id
 * with one already in `base` is folded into it (ids, sources, fixed versions;
 * ranges unioned, so either source's range refuses a version).
 */
export function mergeAdvisories(base: AdvisoryTable, extra: AdvisoryEntry[], origin: string): AdvisoryTable {
  const entries = base.entries.map((e) => ({ ...e, fixed: [...e.fixed], ranges: [...e.ranges], sources: [...e.sources] }));
  for (const x of extra) {
    const ids = new Set(idsOf(x));
    const same = entries.find((e) => idsOf(e).some((id) => ids.has(id)));
    if (!same) {
      entries.push({ ...x, fixed: [...x.fixed], ranges: [...x.ranges], sources: [...x.sources] });
      continue;
    }
    same.cve ??= x.cve;
    same.ghsa ??= x.ghsa;
    for (const s of x.sources) if (!same.sources.includes(s)) same.sources.push(s);
    for (const f of x.fixed) if (!same.fixed.includes(f)) same.fixed.push(f);
    for (const r of x.ranges) if (!same.ranges.includes(r)) same.ranges.push(r);
  }
  return { entries, origin };
}

/** Advisories affecting `version` (tag, `runc --version` or distro string). Unparseable versions match none. */
export function advisoriesFor(version: string, table: AdvisoryTable = builtinAdvisories()): Advisory[] {
  const v = toSemver(version);
  if (v === null) return [];
  return table.entries
    .filter((e) => e.ranges.some((r) => semver.satisfies(v, r, { includePrerelease: true })))
    .map(({ ranges: _r, ...a }) => ({ ...a, fixed: [...a.fixed], sources: [...a.sources] }));
}

export function isVulnerable(version: string, table?: AdvisoryTable): boolean {
  return advisoriesFor(version, table).length > 0;
}

/** The whole table, for documentation and `release list --json`. */
export function allAdvisories(table: AdvisoryTable = builtinAdvisories()): Advisory[] {
  return table.entries.map(({ ranges: _r, ...a }) => ({ ...a, fixed: [...a.fixed], sources: [...a.sources] }));
}

/** `GHSA-xxxx-xxxx-xxxx (CVE-2025-1234)`: every id people search for, once. */
export function advisoryIds(a: Pick<Advisory, 'id' | 'cve' | 'ghsa'>): string {
  const ids = [...new Set([a.ghsa, a.cve, a.id].filter((x): x is string => Boolean(x)))];
  return ids.length > 1 ? `${ids[0]} (${ids.slice(1).join(', ')})` : (ids[0] ?? '?');
}
