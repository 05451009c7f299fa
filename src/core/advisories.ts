// Known runc advisories. Used by `release list`, by plan warnings about the
// versions nodes run now, and to refuse a vulnerable rollout target.
// Ranges are semver ranges over toSemver() output (so rc93 is rc.93).
import semver from 'semver';
import { toSemver } from './version.js';

export interface Advisory {
  id: string;
  summary: string;
  /** Human-readable affected range. */
  affected: string;
  /** First fixed version on each affected release line. */
  fixed: string[];
}

interface Entry extends Advisory {
  range: string;
}

const CVE_2025 = {
  affected: 'all versions before 1.2.8, 1.3.3 and 1.4.0-rc.3',
  fixed: ['1.2.8', '1.3.3', '1.4.0-rc.3'],
  range: '<1.2.8 || >=1.3.0-0 <1.3.3 || >=1.4.0-0 <1.4.0-rc.3',
};

const TABLE: Entry[] = [
  { id: 'CVE-2019-5736', summary: 'container breakout by overwriting the host runc binary', affected: '<= 1.0.0-rc6', fixed: ['1.0.0-rc7'], range: '<1.0.0-rc.7' },
  {
    id: 'runc-rc93-pipe-hang',
    summary: 'runc init hangs forever exporting a large seccomp filter through a small pipe (nodes go NotReady)',
    affected: '1.0.0-rc93',
    fixed: ['1.0.0-rc94'],
    range: '1.0.0-rc.93',
  },
  { id: 'CVE-2021-30465', summary: 'symlink-exchange race in mount destinations (container breakout)', affected: '< 1.0.0-rc95', fixed: ['1.0.0-rc95'], range: '<1.0.0-rc.95' },
  { id: 'CVE-2022-29162', summary: 'inheritable capabilities not emptied on exec', affected: '< 1.1.2', fixed: ['1.1.2'], range: '<1.1.2' },
  { id: 'CVE-2023-25809', summary: 'rootless /sys/fs/cgroup writable', affected: '< 1.1.5', fixed: ['1.1.5'], range: '<1.1.5' },
  { id: 'CVE-2023-27561', summary: 'volume mount through /proc symlink (regression of CVE-2019-19921)', affected: '1.0.0-rc95 - 1.1.4', fixed: ['1.1.5'], range: '>=1.0.0-rc.95 <1.1.5' },
  { id: 'CVE-2023-28642', summary: 'AppArmor bypass via /proc symlink', affected: '1.0.0-rc95 - 1.1.4', fixed: ['1.1.5'], range: '>=1.0.0-rc.95 <1.1.5' },
  { id: 'CVE-2024-21626', summary: 'leaked file descriptor lets a container reach the host filesystem ("Leaky Vessels")', affected: '1.0.0-rc93 - 1.1.11', fixed: ['1.1.12'], range: '>=1.0.0-rc.93 <1.1.12' },
  { id: 'CVE-2024-45310', summary: 'host files can be created through a racing bind mount', affected: '< 1.1.14; 1.2.0-rc.1, 1.2.0-rc.2', fixed: ['1.1.14', '1.2.0-rc.3'], range: '<1.1.14 || >=1.2.0-rc.1 <1.2.0-rc.3' },
  { id: 'CVE-2025-31133', summary: 'masked-path bind mounts can be redirected (container breakout)', ...CVE_2025 },
  { id: 'CVE-2025-52565', summary: '/dev/console bind-mount race (container breakout)', ...CVE_2025 },
  { id: 'CVE-2025-52881', summary: 'LSM labels and procfs writes can be redirected (container breakout)', ...CVE_2025 },
];

/** Advisories affecting `version` (tag, `runc --version` or distro string). Unparseable versions match none. */
export function advisoriesFor(version: string): Advisory[] {
  const v = toSemver(version);
  if (v === null) return [];
  return TABLE.filter((e) => semver.satisfies(v, e.range, { includePrerelease: true })).map(
    ({ id, summary, affected, fixed }) => ({ id, summary, affected, fixed: [...fixed] }),
  );
}

export function isVulnerable(version: string): boolean {
  return advisoriesFor(version).length > 0;
}

/** The whole table, for documentation and `release list --json`. */
export function allAdvisories(): Advisory[] {
  return TABLE.map(({ id, summary, affected, fixed }) => ({ id, summary, affected, fixed: [...fixed] }));
}
