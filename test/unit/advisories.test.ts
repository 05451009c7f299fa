import { describe, expect, it } from 'vitest';
import { advisoriesFor, allAdvisories, isVulnerable } from '../../src/core/advisories.js';

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
