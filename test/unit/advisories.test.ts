import { describe, expect, it } from 'vitest';
import { advisoriesFor, advisoryIds, allAdvisories, builtinAdvisories, isVulnerable, mergeAdvisories } from '../../src/core/advisories.js';
import { fromGitHubAdvisories, parseGitHubRange, type GitHubAdvisoryItem } from '../../src/core/github-advisories.js';

const ids = (v: string) => advisoriesFor(v).map((a) => a.id);
const CVE_2025 = ['CVE-2025-31133', 'CVE-2025-52565', 'CVE-2025-52881'];

describe('advisories', () => {
  it('flags the rc93 pipe hang on exactly 1.0.0-rc93', () => {
    expect(ids('1.0.0-rc93')).toContain('runc-rc93-pipe-hang');
    expect(ids('v1.0.0-rc93')).toContain('runc-rc93-pipe-hang');
    expect(ids('1.0.0-rc92')).not.toContain('runc-rc93-pipe-hang');
    expect(ids('1.0.0-rc94')).not.toContain('runc-rc93-pipe-hang');
  });

  it('knows CVE-2019-5736 is fixed in rc7 (rc numbers compared numerically)', () => {
    expect(ids('1.0.0-rc6')).toContain('CVE-2019-5736');
    expect(ids('1.0.0-rc7')).not.toContain('CVE-2019-5736');
    expect(ids('1.0.0-rc10')).not.toContain('CVE-2019-5736');
  });

  it('applies start-bounded ranges', () => {
    expect(ids('1.0.0-rc92')).not.toContain('CVE-2024-21626');
    expect(ids('1.0.0-rc93')).toContain('CVE-2024-21626');
    expect(ids('1.1.11')).toContain('CVE-2024-21626');
    expect(ids('1.1.12')).not.toContain('CVE-2024-21626');
    expect(ids('1.0.0-rc94')).not.toContain('CVE-2023-27561');
    expect(ids('1.0.0-rc95')).toEqual(expect.arrayContaining(['CVE-2023-27561', 'CVE-2023-28642']));
  });

  it('handles the 1.2.0-rc.N spelling for CVE-2024-45310', () => {
    expect(ids('1.2.0-rc.2')).toContain('CVE-2024-45310');
    expect(ids('1.2.0-rc.3')).not.toContain('CVE-2024-45310');
    expect(ids('1.1.13')).toContain('CVE-2024-45310');
    expect(ids('1.1.14')).not.toContain('CVE-2024-45310');
  });

  it('applies the 2025 fixes per release line', () => {
    for (const v of ['1.1.14', '1.2.7', '1.3.0', '1.3.2', '1.4.0-rc.2', '1.2.0-rc.3']) expect(ids(v), v).toEqual(expect.arrayContaining(CVE_2025));
    for (const v of ['1.2.8', '1.2.9', '1.3.3', '1.3.4', '1.4.0-rc.3', '1.4.0', '1.5.0']) expect(ids(v), v).toEqual([]);
  });

  it('reads distro versions by their upstream version', () => {
    expect(ids('1.1.5+ds1')).not.toContain('CVE-2023-25809');
    expect(ids('1.1.5+ds1')).toContain('CVE-2024-21626');
    expect(ids('1.1.4+ds1')).toContain('CVE-2023-25809');
  });

  it('isVulnerable matches the table', () => {
    expect(isVulnerable('1.0.0-rc93')).toBe(true);
    expect(isVulnerable('1.1.12')).toBe(true);
    expect(isVulnerable('1.2.9')).toBe(false);
    expect(isVulnerable('not a version')).toBe(false);
  });

  it('has every advisory of the issue, each with a fixed version', () => {
    const all = allAdvisories().map((a) => a.id);
    for (const id of ['CVE-2019-5736', 'CVE-2021-30465', 'CVE-2022-29162', 'CVE-2023-25809', 'CVE-2023-27561', 'CVE-2023-28642', 'CVE-2024-21626', 'CVE-2024-45310', ...CVE_2025, 'runc-rc93-pipe-hang']) {
      expect(all).toContain(id);
    }
    for (const a of allAdvisories()) expect(a.fixed.length).toBeGreaterThan(0);
  });
});

describe("GitHub's version ranges", () => {
  it('reads the comma (AND) form, single comparators, exact versions and || alternatives', () => {
    expect(parseGitHubRange('>= 1.2.0, < 1.2.8')).toBe('>=1.2.0 <1.2.8');
    expect(parseGitHubRange('< 1.1.12')).toBe('<1.1.12');
    expect(parseGitHubRange('<= 1.0.0-rc6')).toBe('<=1.0.0-rc.6');
    expect(parseGitHubRange('= 1.0.0-rc93')).toBe('1.0.0-rc.93');
    expect(parseGitHubRange('1.0.0-rc93')).toBe('1.0.0-rc.93');
    expect(parseGitHubRange('>=v1.3.0,<1.3.3')).toBe('>=1.3.0 <1.3.3');
    expect(parseGitHubRange('< 1.2.8 || >= 1.3.0, < 1.3.3')).toBe('<1.2.8 || >=1.3.0 <1.3.3');
  });

  it('refuses what is not a comparator over a version', () => {
    for (const bad of ['', 'all versions', '>= 1.2', '~> 1.2.0', '>= 1.2.0, ', '< 1.2.8 ||']) expect(parseGitHubRange(bad), bad).toBeNull();
  });

  it('the parsed range matches the versions GitHub means (rc numbers numerically)', () => {
    const t = fromGitHubAdvisories([item('GHSA-aaaa-bbbb-cccc', 'CVE-2099-0001', '>= 1.2.0, < 1.2.9')]);
    const table = mergeAdvisories({ entries: [], origin: '' }, t.entries, 'test');
    const hit = (v: string) => advisoriesFor(v, table).length > 0;
    expect(['1.2.0', '1.2.8', '1.2.8+ds1'].map(hit)).toEqual([true, true, true]);
    expect(['1.1.14', '1.2.9', '1.3.0', '1.2.0-rc.3'].map(hit)).toEqual([false, false, false, false]);
    const rc = mergeAdvisories({ entries: [], origin: '' }, fromGitHubAdvisories([item('GHSA-rc93-rc93-rc93', null, '>= 1.0.0-rc93, < 1.0.0-rc95')]).entries, 'test');
    expect(['1.0.0-rc92', '1.0.0-rc93', '1.0.0-rc94', '1.0.0-rc95', '1.0.0-rc100'].map((v) => advisoriesFor(v, rc).length)).toEqual([0, 1, 1, 0, 0]);
  });
});

function item(ghsa: string, cve: string | null, range: string, over: Partial<GitHubAdvisoryItem> = {}): GitHubAdvisoryItem {
  return {
    ghsa_id: ghsa,
    cve_id: cve,
    summary: `summary of ${ghsa}`,
    severity: 'high',
    state: 'published',
    vulnerabilities: [{ package: { ecosystem: 'go', name: 'github.com/opencontainers/runc' }, vulnerable_version_range: range, patched_versions: '1.2.9' }],
    ...over,
  };
}

describe('GitHub advisories merged with the built-in table', () => {
  it('keeps only published, not withdrawn advisories of the runc Go package, and says which ranges it cannot read', () => {
    const { entries, problems } = fromGitHubAdvisories([
      item('GHSA-0001-0001-0001', 'CVE-2099-0001', '< 1.2.9'),
      item('GHSA-0002-0002-0002', null, '< 1.2.9', { state: 'draft' }),
      item('GHSA-0003-0003-0003', null, '< 1.2.9', { withdrawn_at: '2025-01-01T00:00:00Z' }),
      item('GHSA-0004-0004-0004', null, '< 9.9.9', { vulnerabilities: [{ package: { ecosystem: 'go', name: 'github.com/other/thing' }, vulnerable_version_range: '< 9.9.9', patched_versions: null }] }),
      item('GHSA-0005-0005-0005', null, 'every version before the fix'),
    ]);
    expect(entries.map((e) => e.id)).toEqual(['CVE-2099-0001', 'GHSA-0005-0005-0005']);
    expect(entries[0]).toMatchObject({ cve: 'CVE-2099-0001', ghsa: 'GHSA-0001-0001-0001', fixed: ['1.2.9'], sources: ['github'], affected: '< 1.2.9' });
    expect(entries[1]!.ranges).toEqual([]);
    expect(problems).toEqual(['GHSA-0005-0005-0005: version range "every version before the fix" not understood; this advisory cannot refuse a version']);
  });

  it('deduplicates by CVE or GHSA id: one entry, both sources, either range refuses', () => {
    const github = fromGitHubAdvisories([
      item('GHSA-xr7r-f8xq-vfvv', 'CVE-2024-21626', '>= 1.0.0-rc93, <= 1.1.11'),
      item('GHSA-new0-new0-new0', 'CVE-2099-0002', '>= 1.1.0, < 1.1.13'),
      item('GHSA-new0-new0-new0', 'CVE-2099-0002', '>= 1.1.0, < 1.1.13'),
    ]).entries;
    const table = mergeAdvisories(builtinAdvisories(), github, 'merged');
    const leaky = table.entries.filter((e) => e.id === 'CVE-2024-21626');
    expect(leaky).toHaveLength(1);
    expect(leaky[0]).toMatchObject({ cve: 'CVE-2024-21626', ghsa: 'GHSA-xr7r-f8xq-vfvv', sources: ['built-in', 'github'] });
    expect(table.entries.filter((e) => e.id === 'CVE-2099-0002')).toHaveLength(1);
    expect(advisoriesFor('1.1.12', table).map((a) => a.id)).toContain('CVE-2099-0002');
    expect(advisoriesFor('1.1.12').map((a) => a.id)).not.toContain('CVE-2099-0002');
    expect(advisoryIds(leaky[0]!)).toBe('GHSA-xr7r-f8xq-vfvv (CVE-2024-21626)');
    expect(advisoryIds(builtinAdvisories().entries[1]!)).toBe('runc-rc93-pipe-hang');
    expect(table.origin).toBe('merged');
    // the built-in table itself is left as it was
    expect(builtinAdvisories().entries.find((e) => e.id === 'CVE-2024-21626')?.sources).toEqual(['built-in']);
  });
});
