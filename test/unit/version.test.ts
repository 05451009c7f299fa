import { describe, expect, it } from 'vitest';
import { compareRuncVersions, parseVersionLine, toSemver } from '../../src/core/version.js';

describe('parseVersionLine', () => {
  it.each([
    ['runc version 1.2.5', '1.2.5'],
    ['runc version 1.1.5+ds1', '1.1.5+ds1'],
    ['runc version 1.0.0-rc93', '1.0.0-rc93'],
    ['runc version 1.2.0-rc.3\ncommit: v1.2.0-rc.3-0-g1234', '1.2.0-rc.3'],
    ['  runc version 1.3.4  ', '1.3.4'],
  ])('%j -> %s', (line, want) => {
    expect(parseVersionLine(line)).toBe(want);
  });

  it.each(['', 'crun version 1.8', 'runc version', 'runc version unknown', 'commit: v1.2.5-0-g59923ef1', 'bash: runc: command not found'])('%j -> null', (line) => {
    expect(parseVersionLine(line)).toBeNull();
  });
});

describe('toSemver', () => {
  it.each([
    ['1.0.0-rc93', '1.0.0-rc.93'],
    ['v1.0.0-rc93', '1.0.0-rc.93'],
    ['1.0.0-rc6', '1.0.0-rc.6'],
    ['1.2.0-rc.3', '1.2.0-rc.3'],
    ['1.1.5+ds1', '1.1.5'],
    ['1.1.7-0ubuntu1~22.04.2', '1.1.7'],
    ['1.1.12-1.el9', '1.1.12'],
    ['1.1.12+dfsg-1~deb12u1', '1.1.12'],
    ['v1.2.9', '1.2.9'],
  ])('%s -> %s', (v, want) => {
    expect(toSemver(v)).toBe(want);
  });

  it.each(['', 'latest', '1.2', 'v', 'one.two.three', '1.2.3.4'])('%j is not a version', (v) => {
    expect(toSemver(v)).toBeNull();
  });
});

describe('compareRuncVersions', () => {
  it('orders rc numbers numerically, not lexically', () => {
    expect(compareRuncVersions('1.0.0-rc93', '1.0.0-rc7')).toBe(1);
    expect(compareRuncVersions('1.0.0-rc94', '1.0.0-rc93')).toBe(1);
    expect(compareRuncVersions('1.0.0-rc95', '1.0.0')).toBe(-1);
  });

  it('mixes both rc spellings and distro suffixes', () => {
    expect(compareRuncVersions('1.2.0-rc.3', '1.2.0-rc.2')).toBe(1);
    expect(compareRuncVersions('1.1.5+ds1', '1.1.5')).toBe(0);
    expect(compareRuncVersions('v1.2.9', '1.2.10')).toBe(-1);
    expect(compareRuncVersions('1.3.4', '1.2.9')).toBe(1);
  });

  it('sorts a mixed list', () => {
    const list = ['1.2.9', '1.0.0-rc93', '1.1.5+ds1', '1.0.0-rc7', '1.2.0-rc.3', '1.0.0'];
    expect([...list].sort(compareRuncVersions)).toEqual(['1.0.0-rc7', '1.0.0-rc93', '1.0.0', '1.1.5+ds1', '1.2.0-rc.3', '1.2.9']);
  });

  it('throws on non-versions rather than guessing', () => {
    expect(() => compareRuncVersions('garbage', '1.2.9')).toThrow(/not a runc version/);
  });
});
