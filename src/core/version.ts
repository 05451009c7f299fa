// runc version strings as they appear in `runc --version`, release tags and
// distro packages, made comparable. runc used `1.0.0-rc93` (no dot) before
// switching to `1.2.0-rc.3`; semver orders `rc93` lexically against `rc7`, so
// both forms are normalised to numeric prerelease identifiers first.
import semver from 'semver';

/** "runc version 1.1.5+ds1" -> "1.1.5+ds1"; null when the line is not a runc version line. */
export function parseVersionLine(firstLine: string): string | null {
  const m = /^\s*runc\s+version\s+(v?\d+\.\d+\.\d+\S*)\s*$/i.exec(firstLine.split('\n')[0] ?? '');
  if (!m?.[1]) return null;
  return m[1].replace(/^v/, '');
}

/**
 * A semver string comparable with `semver`, or null. Accepts a leading `v`,
 * turns `-rc93` into `-rc.93` and drops build metadata (`+ds1`): distro
 * rebuilds of 1.1.5 carry 1.1.5's code and its fixes. A `-` suffix that is not
 * an upstream prerelease (`rc.3`, `rc93`, `beta.1`) is a distro revision
 * (`1.1.7-0ubuntu1~22.04.2`, `1.1.12-1.el9`) and is dropped the same way.
 */
export function toSemver(v: string): string | null {
  const trimmed = v.trim().replace(/^v/i, '');
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.~-]+))?(?:\+[0-9A-Za-z.~+-]*)?$/.exec(trimmed);
  if (!m) return null;
  const [, major, minor, patch, pre] = m;
  let out = `${major}.${minor}.${patch}`;
  if (pre && /^(rc|alpha|beta)\.?\d+(\.\d+)*$/i.test(pre)) out += `-${pre.replace(/^([A-Za-z]+)(\d+)/, '$1.$2')}`;
  return semver.valid(out);
}

/** Orders two runc versions; throws on strings that are not versions at all. */
export function compareRuncVersions(a: string, b: string): -1 | 0 | 1 {
  const sa = toSemver(a);
  const sb = toSemver(b);
  if (sa === null) throw new Error(`not a runc version: ${JSON.stringify(a)}`);
  if (sb === null) throw new Error(`not a runc version: ${JSON.stringify(b)}`);
  return semver.compare(sa, sb);
}
