import { describe, expect, it } from 'vitest';
import {
  applicationOrder,
  parseSysctlLine,
  planPersist,
  planSysctl,
  resolvePersisted,
  settingsInText,
} from '../../src/core/sysctl.js';
import type { SysctlFile } from '../../src/core/types.js';

/** Files from `path -> text` (and `path -> [realPath, text]` for symlinks); names derived from the files. */
function fs(spec: Record<string, string | [string, string]>): { files: SysctlFile[]; names: { dir: string; names: string[] }[] } {
  const files: SysctlFile[] = Object.entries(spec).map(([path, v]) => {
    const [real, text] = Array.isArray(v) ? v : [path, v];
    const f: SysctlFile = { path, settings: settingsInText(text) };
    if (real !== path) f.realPath = real;
    return f;
  });
  const names = new Map<string, string[]>();
  for (const f of files) {
    const dir = f.path.slice(0, f.path.lastIndexOf('/'));
    if (dir.endsWith('sysctl.d')) names.set(dir, [...(names.get(dir) ?? []), f.path.slice(dir.length + 1)]);
  }
  return { files, names: [...names].map(([dir, n]) => ({ dir, names: n })) };
}

describe('parseSysctlLine', () => {
  it.each([
    ['fs.pipe-user-pages-soft = 65536', { value: '65536', glob: false }],
    ['fs.pipe-user-pages-soft=0', { value: '0', glob: false }],
    ['fs/pipe-user-pages-soft = 1', { value: '1', glob: false }],
    ['-fs.pipe-user-pages-soft = 2', { value: '2', glob: false }],
    ['  - fs.pipe-user-pages-soft   =   3  ', { value: '3', glob: false }],
    ['\tfs.pipe-user-pages-soft\t=\t4', { value: '4', glob: false }],
    ['fs.pipe-user-pages-soft = 65536 # no inline comments in sysctl.d', { value: '65536 # no inline comments in sysctl.d', glob: false }],
    ['fs.pipe-user-* = 5', { value: '5', glob: true }],
    ['fs.pipe-user-pages-?oft = 6', { value: '6', glob: true }],
    ['fs.* = 8', { value: '8', glob: true }],
    ['fs/pipe-user-pages-[st]oft = 7', { value: '7', glob: true }],
  ])('%j sets our key', (line, want) => {
    expect(parseSysctlLine(line)).toEqual(want);
  });

  it.each([
    '# fs.pipe-user-pages-soft = 4',
    '   ; fs.pipe-user-pages-soft = 4',
    'fs.pipe-user-pages-hard = 5',
    'fs.pipe-user-pages-softer = 5',
    'fs.pipe-max-size = 1048576',
    'fs.pipe-user-pages-soft',
    'net.ipv4.ip_forward = 1',
    'fs.pipe-user-pages-soft.x = 1',
    'kernel.* = 1',
    'fs.*.x = 1',
    '= 1',
    '',
  ])('%j does not', (line) => {
    expect(parseSysctlLine(line)).toBeNull();
  });

  it('keeps line numbers', () => {
    expect(settingsInText('# header\nfs.file-max = 1\n\nfs.pipe-user-pages-soft = 1\nfs.pipe-user-pages-soft = 2\n')).toEqual([
      { line: 4, value: '1' },
      { line: 5, value: '2' },
    ]);
  });
});

describe('resolvePersisted (systemd-sysctl order)', () => {
  const cases: [string, Record<string, string | [string, string]>, { value: number | null; from: string | null }][] = [
    ['nothing sets it', { '/etc/sysctl.d/10-other.conf': 'fs.file-max = 1\n' }, { value: null, from: null }],
    ['one drop-in', { '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 65536\n' }, { value: 65536, from: '/etc/sysctl.d/90-pipe.conf:1' }],
    [
      'a name in /etc masks the same name in /usr/lib',
      { '/etc/sysctl.d/50-x.conf': '# emptied by the admin\n', '/usr/lib/sysctl.d/50-x.conf': 'fs.pipe-user-pages-soft = 65536\n' },
      { value: null, from: null },
    ],
    [
      '/run masks /usr/lib but not /etc',
      {
        '/etc/sysctl.d/50-x.conf': 'fs.pipe-user-pages-soft = 1\n',
        '/run/sysctl.d/50-x.conf': 'fs.pipe-user-pages-soft = 2\n',
        '/run/sysctl.d/60-y.conf': 'fs.pipe-user-pages-soft = 3\n',
        '/usr/lib/sysctl.d/60-y.conf': 'fs.pipe-user-pages-soft = 4\n',
      },
      { value: 3, from: '/run/sysctl.d/60-y.conf:1' },
    ],
    [
      'files apply by name, not by directory',
      { '/etc/sysctl.d/10-admin.conf': 'fs.pipe-user-pages-soft = 200\n', '/usr/lib/sysctl.d/90-vendor.conf': 'fs.pipe-user-pages-soft = 100\n' },
      { value: 100, from: '/usr/lib/sysctl.d/90-vendor.conf:1' },
    ],
    [
      'later lines of one file win',
      { '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 1\n# x\nfs/pipe-user-pages-soft = 2\n' },
      { value: 2, from: '/etc/sysctl.d/90-pipe.conf:3' },
    ],
    [
      '/etc/sysctl.conf comes last',
      { '/etc/sysctl.d/99-zzz.conf': 'fs.pipe-user-pages-soft = 1\n', '/etc/sysctl.conf': '\n\nfs.pipe-user-pages-soft = 2\n' },
      { value: 2, from: '/etc/sysctl.conf:3' },
    ],
    [
      '99-sysctl.conf -> ../sysctl.conf is /etc/sysctl.conf, applied last',
      {
        '/etc/sysctl.d/99-sysctl.conf': ['/etc/sysctl.conf', 'fs.pipe-user-pages-soft = 2\n'],
        '/etc/sysctl.d/99-zzz.conf': 'fs.pipe-user-pages-soft = 1\n',
        '/etc/sysctl.conf': 'fs.pipe-user-pages-soft = 2\n',
      },
      { value: 2, from: '/etc/sysctl.conf:1' },
    ],
    [
      'byte order: upper case before lower case, "-" before digits',
      {
        '/etc/sysctl.d/99-a.conf': 'fs.pipe-user-pages-soft = 1\n',
        '/etc/sysctl.d/99-Z.conf': 'fs.pipe-user-pages-soft = 2\n',
        '/etc/sysctl.d/990.conf': 'fs.pipe-user-pages-soft = 3\n',
        '/etc/sysctl.d/99-b.conf': 'fs.pipe-user-pages-soft = 4\n',
      },
      { value: 3, from: '/etc/sysctl.d/990.conf:1' },
    ],
    [
      'an explicit assignment beats a later glob',
      { '/etc/sysctl.d/10-a.conf': 'fs.pipe-user-pages-soft = 1\n', '/etc/sysctl.d/90-b.conf': 'fs.pipe-user-* = 2\n' },
      { value: 1, from: '/etc/sysctl.d/10-a.conf:1' },
    ],
    ['a glob alone applies', { '/etc/sysctl.d/90-b.conf': 'fs.pipe-user-* = 2\n' }, { value: 2, from: '/etc/sysctl.d/90-b.conf:1' }],
    ['an invalid value is reported with no number', { '/etc/sysctl.d/90-b.conf': 'fs.pipe-user-pages-soft = lots\n' }, { value: null, from: '/etc/sysctl.d/90-b.conf:1' }],
  ];
  it.each(cases)('%s', (_name, spec, want) => {
    const { files, names } = fs(spec);
    const got = resolvePersisted(files, names);
    expect({ value: got.value, from: got.from }).toEqual(want);
  });

  it('ignores names that are not *.conf and dirs outside the search path', () => {
    const { files } = fs({ '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 1\n' });
    const names = [
      { dir: '/etc/sysctl.d', names: ['90-pipe.conf', 'README', '95-pipe.conf.bak'] },
      { dir: '/opt/sysctl.d', names: ['99-x.conf'] },
    ];
    expect(applicationOrder(files, names).map((f) => f.path)).toEqual(['/etc/sysctl.d/90-pipe.conf']);
  });

  it('counts a name listed for a dir even with no file record (nothing set there)', () => {
    const { files } = fs({ '/usr/lib/sysctl.d/50-x.conf': 'fs.pipe-user-pages-soft = 65536\n' });
    const names = [
      { dir: '/etc/sysctl.d', names: ['50-x.conf'] },
      { dir: '/usr/lib/sysctl.d', names: ['50-x.conf'] },
    ];
    expect(resolvePersisted(files, names).value).toBeNull();
  });
});

describe('planPersist: what still beats 99-runc-rollout.conf after a reboot', () => {
  const cases: [string, Record<string, string | [string, string]>, { path: string; lines: number[] }[]][] = [
    ['nothing', {}, []],
    ['a file sorting before ours', { '/etc/sysctl.d/90-pipe.conf': 'fs.pipe-user-pages-soft = 65536\n' }, []],
    ['a file sorting after ours', { '/etc/sysctl.d/99-zz.conf': 'x = 1\nfs.pipe-user-pages-soft = 65536\n' }, [{ path: '/etc/sysctl.d/99-zz.conf', lines: [2] }]],
    ['a vendor file after ours', { '/usr/lib/sysctl.d/zz-vendor.conf': 'fs.pipe-user-pages-soft = 1\n' }, [{ path: '/usr/lib/sysctl.d/zz-vendor.conf', lines: [1] }]],
    ['our name in a vendor dir is masked', { '/usr/lib/sysctl.d/99-runc-rollout.conf': 'fs.pipe-user-pages-soft = 4096\n' }, []],
    ['an old copy of our drop-in is replaced', { '/etc/sysctl.d/99-runc-rollout.conf': 'fs.pipe-user-pages-soft = 4096\n' }, []],
    [
      'a later file masked by an /etc file of the same name',
      { '/etc/sysctl.d/99-zz.conf': '# masked\n', '/usr/lib/sysctl.d/99-zz.conf': 'fs.pipe-user-pages-soft = 1\n' },
      [],
    ],
    ['/etc/sysctl.conf', { '/etc/sysctl.conf': '# old workaround\nfs.pipe-user-pages-soft = 65536\n' }, [{ path: '/etc/sysctl.conf', lines: [2] }]],
    [
      '99-sysctl.conf -> ../sysctl.conf counted once, edited through the real file',
      {
        '/etc/sysctl.d/99-sysctl.conf': ['/etc/sysctl.conf', 'a = 1\nb = 2\nfs.pipe-user-pages-soft = 65536\n'],
        '/etc/sysctl.conf': 'a = 1\nb = 2\nfs.pipe-user-pages-soft = 65536\n',
      },
      [{ path: '/etc/sysctl.conf', lines: [3] }],
    ],
    [
      'a later symlink into a vendor file is edited at its target',
      {
        '/etc/sysctl.d/99-zz.conf': ['/usr/lib/sysctl.d/99-zz.conf', 'fs.pipe-user-pages-soft = 1\n'],
        '/usr/lib/sysctl.d/99-zz.conf': 'fs.pipe-user-pages-soft = 1\n',
      },
      [{ path: '/usr/lib/sysctl.d/99-zz.conf', lines: [1] }],
    ],
    ['a later line with the target value is left alone', { '/etc/sysctl.conf': 'fs.pipe-user-pages-soft = 16384\n' }, []],
    ['a later glob loses to our explicit line anyway', { '/etc/sysctl.d/99-zz.conf': 'fs.pipe-user-* = 1\n' }, []],
    [
      'several lines and files',
      {
        '/etc/sysctl.d/10-early.conf': 'fs.pipe-user-pages-soft = 9\n',
        '/etc/sysctl.d/99-zz.conf': 'fs.pipe-user-pages-soft = 1\nfs.pipe-user-pages-soft = 16384\nfs.pipe-user-pages-soft = 2\n',
        '/etc/sysctl.conf': 'fs.pipe-user-pages-soft = 3\n',
      },
      [
        { path: '/etc/sysctl.d/99-zz.conf', lines: [1, 3] },
        { path: '/etc/sysctl.conf', lines: [1] },
      ],
    ],
  ];
  it.each(cases)('%s', (_name, spec, want) => {
    const { files, names } = fs(spec);
    const r = planPersist(files, names);
    expect(r.commentOut).toEqual(want);
    // with those lines gone, our drop-in (or an equal later line) decides
    expect(r.after.value).toBe(16384);
  });
});

describe('planSysctl', () => {
  it('nothing to do when live is 16384 and nothing persists another value', () => {
    const p = planSysctl({ live: 16384, ...fs({}) });
    expect(p).toEqual({ live: 16384, persisted: null, persistedFrom: null, target: 16384, changeLive: false, changePersisted: false, commentOut: [] });
  });
  it('the old workaround: 65536 live and in a sysctl.d file that sorts before ours', () => {
    const p = planSysctl({ live: 65536, ...fs({ '/etc/sysctl.d/90-rc93.conf': 'fs.pipe-user-pages-soft = 65536\n' }) });
    expect(p).toMatchObject({ live: 65536, persisted: 65536, persistedFrom: '/etc/sysctl.d/90-rc93.conf:1', changeLive: true, changePersisted: true, commentOut: [] });
  });
  it('a live-only change: the boot value is already the default', () => {
    const p = planSysctl({ live: 0, ...fs({}) });
    expect(p).toMatchObject({ changeLive: true, changePersisted: false });
  });
  it('a later file with the target value needs no change', () => {
    const p = planSysctl({ live: 16384, ...fs({ '/etc/sysctl.conf': 'fs.pipe-user-pages-soft=16384\n' }) });
    expect(p).toMatchObject({ persisted: 16384, persistedFrom: '/etc/sysctl.conf:1', changeLive: false, changePersisted: false });
  });
  it('an unreadable live value is a change', () => {
    expect(planSysctl({ live: null, ...fs({}) }).changeLive).toBe(true);
  });
  it('an invalid persisted value is a change', () => {
    expect(planSysctl({ live: 16384, ...fs({ '/etc/sysctl.d/10-x.conf': 'fs.pipe-user-pages-soft = big\n' }) })).toMatchObject({
      persisted: null,
      changePersisted: true,
    });
  });
});
