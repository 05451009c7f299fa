import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FactsParseError, parseDfAvailable, parseFacts, parsePackageOwner } from '../../src/facts/parse.js';
import { BINARY_NAME_AWK, FACTS_BEGIN, FACTS_END, buildFactsScript } from '../../src/facts/script.js';
import { SCAN_BEGIN, SCAN_END } from '../../src/facts/stuck-scan.js';

const b = (s: string) => `b:${Buffer.from(s).toString('base64')}`;
const x = (s: string) => `x:${Buffer.from(s).toString('hex')}`;
const rec = (key: string, ...fields: string[]) => [key, ...fields.map(b)].join('\t');
const DF = 'Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/vda         264212084 23089888  83301024      22% /\n';
const SHA = 'a'.repeat(64);

/** A well-formed output; `over` replaces or adds records by key, `null` drops one. */
function output(over: Record<string, string | null> = {}, noise = ''): string {
  const base: Record<string, string> = {
    machine: rec('machine', 'x86_64'),
    runc_path: rec('runc_path', '/usr/local/sbin/runc', 'path'),
    runc_file: rec('runc_file', '1', '1'),
    runc_sha256: rec('runc_sha256', `${SHA}  /usr/local/sbin/runc`),
    runc_version: rec('runc_version', 'runc version 1.0.0-rc93\ncommit: v1.0.0-rc93-0-g12644e61\nspec: 1.0.2-dev\n', '0'),
    df_runc_dir: rec('df_runc_dir', DF),
    df_state_dir: rec('df_state_dir', DF),
    sysctl_live: rec('sysctl_live', '65536'),
    sysctl_dir: [rec('sysctl_dir', '/etc/sysctl.d'), rec('sysctl_dir', '/usr/lib/sysctl.d')].join('\n'),
    sysctl_file: [
      rec('sysctl_file', '/etc/sysctl.d/90-rc93.conf', '/etc/sysctl.d/90-rc93.conf', '2:fs.pipe-user-pages-soft = 65536'),
      rec('sysctl_file', '/etc/sysctl.d/99-sysctl.conf', '/etc/sysctl.conf', ''),
      rec('sysctl_file', '/usr/lib/sysctl.d/50-default.conf', '/usr/lib/sysctl.d/50-default.conf', '7:# fs.pipe-user-pages-soft is fine'),
      rec('sysctl_file', '/etc/sysctl.conf', '/etc/sysctl.conf', ''),
    ].join('\n'),
    stuck: [
      SCAN_BEGIN,
      'stuck 4242 9000 700 4200 S pipe_write 4242',
      '@@exe',
      'lrwxrwxrwx 1 root root 0 Dec  6 03:09 /proc/4242/exe -> /usr/local/sbin/runc (deleted)',
      '@@sha',
      `${'b'.repeat(64)}  /proc/4242/exe`,
      '@@cmdline',
      '==> /dev/null <==',
      '',
      '==> /proc/4242/cmdline <==',
      'runc\x01init\x01',
      '==> /proc/4200/cmdline <==',
      'runc\x01create\x01--bundle\x01/b\x01ctr-1\x01',
      '',
      SCAN_END,
    ].join('\n'),
  };
  const merged = { ...base, ...over };
  const body = Object.values(merged).filter((v): v is string => v !== null);
  return `${noise}${FACTS_BEGIN}\n${body.join('\n')}\n${FACTS_END}\n`;
}

describe('parseFacts on captured outputs', () => {
  it('reads a Debian host with the distro runc package (captured from dash)', () => {
    const text = readFileSync(new URL('../fixtures/facts/debian-packaged-runc.txt', import.meta.url), 'utf8');
    const f = parseFacts(text, 'deb');
    expect(f).toMatchObject({
      machine: 'x86_64',
      arch: 'amd64',
      runcPath: '/usr/sbin/runc',
      runcPathSource: 'path',
      containerdBinaryName: null,
      runc: { exists: true, executable: true, versionLine: 'runc version 1.1.5+ds1', version: '1.1.5+ds1', sha256: '9a87d5bcdd630ec420ec56a6c21b70aa6960edcefe1cf4bb181cee290bdd6b98' },
      packageOwner: 'runc',
      freeBytes: { runcDir: 83274924 * 1024, stateDir: 83274924 * 1024 },
      stuck: [],
      state: null,
    });
    expect(f.sysctl.live).toBe(16384);
    expect(f.sysctl.files.find((s) => s.path === '/etc/sysctl.d/99-sysctl.conf')?.realPath).toBe('/etc/sysctl.conf');
    expect(f.sysctl.names).toEqual([
      { dir: '/etc/sysctl.d', names: ['99-sysctl.conf'] },
      { dir: '/usr/lib/sysctl.d', names: ['50-pid-max.conf', '99-protect-links.conf'] },
      { dir: '/lib/sysctl.d', names: ['50-pid-max.conf', '99-protect-links.conf'] },
    ]);
    expect(f.notes).toBeUndefined();
  });

  it('reads an rc93 node with the old sysctl workaround, ignoring login noise before the marker', () => {
    const f = parseFacts(output({}, 'Welcome to node-1!\r\nlast login: yesterday\n'), 'n1');
    expect(f.runc.version).toBe('1.0.0-rc93');
    expect(f.runc.sha256).toBe(SHA);
    expect(f.stuck).toEqual([
      { pid: 4242, startTicks: 9000, ageSeconds: 700, state: 'S', wchan: 'pipe_write', exe: '/usr/local/sbin/runc (deleted)', current: false, ppid: 4200, parent: 'runc create --bundle /b ctr-1', containerId: 'ctr-1' },
    ]);
    expect(f.sysctl.live).toBe(65536);
    expect(f.sysctl.files[0]).toEqual({ path: '/etc/sysctl.d/90-rc93.conf', settings: [{ line: 2, value: '65536' }] });
    // a comment mentioning the key is not a setting
    expect(f.sysctl.files.find((s) => s.path === '/usr/lib/sysctl.d/50-default.conf')?.settings).toEqual([]);
    expect(f.sysctl.files.map((s) => s.path)).toEqual([
      '/etc/sysctl.d/90-rc93.conf',
      '/etc/sysctl.d/99-sysctl.conf',
      '/usr/lib/sysctl.d/50-default.conf',
      '/etc/sysctl.conf',
    ]);
  });

  it('accepts hex fields (no base64 on the node) and CRLF line ends', () => {
    const text = output({ machine: `machine\t${x('aarch64')}` }).replace(/\n/g, '\r\n');
    expect(parseFacts(text, 'n').arch).toBe('arm64');
  });

  it('accepts plain fields (paths and numbers the script sends unencoded), and refuses a plain field with other characters', () => {
    const text = output({ machine: 'machine\tr:aarch64', sysctl_live: 'sysctl_live\tr:16384', runc_path: 'runc_path\tr:/usr/bin/runc\tr:inventory' });
    const f = parseFacts(text, 'n');
    expect([f.arch, f.sysctl.live, f.runcPath]).toEqual(['arm64', 16384, '/usr/bin/runc']);
    expect(() => parseFacts(output({ machine: 'machine\tr:x86 64' }), 'n')).toThrow(/machine: field 1 is not encoded/);
  });

  it('reads containerd BinaryName, package owners and a state file', () => {
    const state = { schema: 1, runId: 'r1', updatedAt: '2026-01-01T00:00:00Z', runcPath: '/usr/bin/runc', phase: 'swapped', original: { version: '1.1.0', sha256: SHA, backupPath: '/var/lib/runc-rollout/backups/x' }, target: { version: '1.2.9', sha256: SHA }, sysctl: { liveBefore: 1, files: [] } };
    const f = parseFacts(
      output({
        containerd_binary: rec('containerd_binary', 'runc', '/usr/bin/runc'),
        owner_dpkg: rec('owner_dpkg', 'diversion by foo from: /usr/bin/runc\ncontainerd.io: /usr/bin/runc'),
        state: rec('state', JSON.stringify(state)),
      }),
      'n',
    );
    expect(f.containerdBinaryName).toBe('/usr/bin/runc');
    expect(f.packageOwner).toBe('containerd.io');
    expect(f.state?.phase).toBe('swapped');
  });

  it('turns an unreadable state file and a killed `runc --version` into notes, not errors', () => {
    const f = parseFacts(output({ state: rec('state', '{"schema":1,'), runc_version: rec('runc_version', '', '137') }), 'n');
    expect(f.state).toBeNull();
    expect(f.runc.version).toBeNull();
    expect(f.notes).toEqual([expect.stringContaining('did not answer in time'), expect.stringContaining('not valid JSON')]);
  });

  it('notes a version line it cannot parse', () => {
    const f = parseFacts(output({ runc_version: rec('runc_version', 'crun version 1.8\n', '0') }), 'n');
    expect(f.runc).toMatchObject({ versionLine: 'crun version 1.8', version: null });
    expect(f.notes).toEqual([expect.stringContaining('cannot parse the runc version')]);
  });

  it('reads a node without runc', () => {
    const f = parseFacts(output({ runc_path: rec('runc_path', '', 'none'), runc_file: null, runc_sha256: null, runc_version: null, df_runc_dir: null }), 'n');
    expect(f).toMatchObject({ runcPath: null, runcPathSource: 'none', runc: { exists: false, executable: false, version: null, sha256: null }, freeBytes: { runcDir: null } });
  });

  const garbage: [string, string, RegExp][] = [
    ['no begin marker', 'bash: sh: command not found\n', /no "@@runc-rollout-facts 1" line/],
    ['cut off', output().replace(`${FACTS_END}\n`, ''), /cut off/],
    ['unencoded field', output({ machine: 'machine\tx86_64' }), /line 2: machine: field 1 is not encoded/],
    ['bad base64', output({ machine: 'machine\tb:!!!' }), /machine: field 1 is not encoded/],
    ['stray text', output({ junk: 'hello world' }), /unexpected text "hello world"/],
    ['missing record', output({ machine: null }), /missing "machine" record/],
    ['bad sha256sum output', output({ runc_sha256: rec('runc_sha256', 'sha256sum: /usr/local/sbin/runc: Permission denied') }), /runc_sha256: not sha256sum output/],
    ['non-numeric live sysctl', output({ sysctl_live: rec('sysctl_live', 'sixteen') }), /line \d+: sysctl_live: expected a number/],
    ['unknown runc path source', output({ runc_path: rec('runc_path', '/x', 'guess') }), /unknown source "guess"/],
  ];
  it.each(garbage)('refuses garbage: %s', (_name, text, message) => {
    let err: unknown;
    try {
      parseFacts(text, 'node-7');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FactsParseError);
    expect((err as Error).message).toMatch(/^node-7: cannot read node facts: /);
    expect((err as Error).message).toMatch(message);
  });
});

const hasDpkgRunc = (() => {
  try {
    execFileSync('dpkg', ['-S', '/usr/sbin/runc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('small parsers', () => {
  it('df -Pk available bytes, with spaces in names', () => {
    expect(parseDfAvailable(DF)).toBe(83301024 * 1024);
    expect(parseDfAvailable('Filesystem 1024-blocks Used Available Capacity Mounted on\nmy fs 100 40 60 40% /mnt/my disk\n')).toBe(60 * 1024);
    expect(parseDfAvailable('df: /x: No such file\n')).toBeNull();
    expect(parseDfAvailable('')).toBeNull();
  });
  it('package owners', () => {
    expect(parsePackageOwner('runc: /usr/sbin/runc\n', undefined)).toBe('runc');
    expect(parsePackageOwner(undefined, 'runc-1.1.12-1.el9.x86_64\n')).toBe('runc-1.1.12-1.el9.x86_64');
    expect(parsePackageOwner(undefined, 'file /usr/local/sbin/runc is not owned by any package\n')).toBeNull();
    expect(parsePackageOwner(undefined, undefined)).toBeNull();
    expect(parsePackageOwner('containerd.io:amd64: /usr/bin/runc\n', undefined)).toBe('containerd.io');
  });

  it.skipIf(!hasDpkgRunc)('the script finds the dpkg owner from the file lists, as dpkg -S does (this machine\'s packaged runc)', () => {
    const dpkg = execFileSync('dpkg', ['-S', '/usr/sbin/runc'], { encoding: 'utf8' }).split(':')[0];
    const out = execFileSync('sh', ['-c', buildFactsScript({ runcPath: '/usr/sbin/runc' })], { encoding: 'utf8' });
    expect(parseFacts(out, 'local').packageOwner).toBe(dpkg);
    const none = execFileSync('sh', ['-c', buildFactsScript({ runcPath: '/usr/bin/env' })], { encoding: 'utf8' });
    expect(parseFacts(none, 'local').packageOwner).toBe(execFileSync('dpkg', ['-S', '/usr/bin/env'], { encoding: 'utf8' }).split(':')[0]);
  });
});

describe('containerd BinaryName extraction (the script\'s awk program)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-toml-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const awk = (toml: string) => {
    const f = join(dir, 'config.toml');
    writeFileSync(f, toml);
    return execFileSync('awk', [BINARY_NAME_AWK, f], { encoding: 'utf8' }).trim();
  };
  it.each([
    ['config v2', 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n  BinaryName = "/usr/local/sbin/runc"\n', '/usr/local/sbin/runc'],
    ['config v3, single quotes, comment', "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  BinaryName = '/opt/bin/runc' # pinned\n", '/opt/bin/runc'],
    ['dotted key in the runtime table', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n  options.BinaryName = "/usr/bin/runc"\n', '/usr/bin/runc'],
    [
      'another runtime\'s BinaryName is not runc\'s',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n  BinaryName = "/usr/bin/nvidia-container-runtime"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n',
      '',
    ],
    ['bare name', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."runc".options]\nBinaryName="runc"\n', 'runc'],
    ['empty', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nBinaryName = ""\n', ''],
  ])('%s', (_name, toml, want) => {
    expect(awk(toml)).toBe(want);
  });
});

describe('the facts script, run for real by the local sh (read-only)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-facts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fake = (name: string, body: string, mode = 0o755) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    const p = join(d, 'runc');
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, mode);
    return p;
  };
  const run = (opts: Parameters<typeof buildFactsScript>[0]) => parseFacts(execFileSync('sh', ['-c', buildFactsScript(opts)], { encoding: 'utf8' }), 'local');

  it('reports an inventory path: version, digest, free space, live sysctl', () => {
    const p = fake('ok', 'echo "runc version 1.1.12"; echo "commit: v1.1.12-0-g51d5e946"');
    const f = run({ runcPath: p });
    expect(f.runcPath).toBe(p);
    expect(f.runcPathSource).toBe('inventory');
    expect(f.runc).toEqual({
      exists: true,
      executable: true,
      versionLine: 'runc version 1.1.12',
      version: '1.1.12',
      sha256: createHash('sha256').update(readFileSync(p)).digest('hex'),
    });
    expect(f.freeBytes.runcDir).toBeGreaterThan(0);
    expect(f.freeBytes.stateDir).toBeGreaterThan(0);
    expect(f.sysctl.live).toBe(Number(readFileSync('/proc/sys/fs/pipe-user-pages-soft', 'utf8').trim()));
    expect(Array.isArray(f.stuck)).toBe(true);
    expect(f.arch).not.toBeNull();
  });

  it('keeps a hostile path literal (quoting) and round-trips odd characters', () => {
    const p = fake("it's $(touch pwned); `id`\tx", 'echo "runc version 1.2.0-rc.1"');
    const f = run({ runcPath: p });
    expect(f.runcPath).toBe(p);
    expect(f.runc.version).toBe('1.2.0-rc.1');
    expect(() => readFileSync(join(dir, 'pwned'))).toThrow();
    expect(() => readFileSync('pwned')).toThrow();
  });

  it('a hanging `runc --version` is killed, not waited for', () => {
    const p = fake('hang', 'exec sleep 600');
    const f = run({ runcPath: p, versionTimeoutSeconds: 1 });
    expect(f.runc.version).toBeNull();
    expect(f.notes).toEqual([expect.stringContaining('did not answer in time')]);
  });

  it('reports where a symlinked runc resolves', () => {
    const p = fake('linked', 'echo "runc version 1.1.12"');
    const link = join(dir, 'linked', 'runc-link');
    symlinkSync(p, link);
    expect(run({ runcPath: link }).runc).toMatchObject({ exists: true, version: '1.1.12', realPath: p });
    expect(run({ runcPath: p }).runc.realPath).toBeUndefined();
  });

  it('a non-executable file and a missing one', () => {
    const p = fake('noexec', 'echo "runc version 1.1.12"', 0o644);
    expect(run({ runcPath: p }).runc).toMatchObject({ exists: true, executable: false, versionLine: null, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(run({ runcPath: join(dir, 'missing', 'runc') }).runc).toEqual({ exists: false, executable: false, versionLine: null, version: null, sha256: null });
  });

  // A private pid namespace shows only our decoys, so the list is exact whatever else the machine runs.
  it.skipIf(process.getuid?.() !== 0)('lists `runc init` processes blocked writing into a pipe for longer than the threshold, and no look-alike', () => {
    const ready = join(dir, 'ready');
    // $0 set by perl: one argument "runc init"
    const decoy = (argv: string) => `perl -e '$0="${argv}"; open(F, ">>", $ARGV[0]); print F "x\\n"; close F; sleep 60' ${ready} &`;
    // argv "runc\0init\0" blocked writing into a full pipe: yes(1) under that argv, into a sleep that never reads
    const blocked = (argv0: string, argv1: string) => `bash -c 'exec -a ${argv0} yes ${argv1}' | sleep 60 &`;
    // the same argv, not blocked on a pipe: cat blocks opening a FIFO named like the argument
    const fifos = join(dir, 'fifos');
    mkdirSync(fifos, { recursive: true });
    execFileSync('mkfifo', [join(fifos, 'init')]);
    const opening = (argv0: string, argv1: string) => `(cd ${fifos} && exec bash -c 'exec -a ${argv0} cat ${argv1}') &`;
    const list = (script: string, waitSeconds: number) => {
      const inner = [
        decoy('runc init'),
        decoy('/usr/local/sbin/runc init'),
        blocked('runc', 'init'),
        blocked('/usr/local/sbin/runc', 'init'),
        blocked('runc', 'initialize'),
        blocked('/usr/bin/xrunc', 'init'),
        opening('runc', 'init'),
        `until [ "$(cat ${ready} 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.1; done`,
        `sleep ${waitSeconds}`,
        'sh -c "$1"',
      ].join('\n');
      rmSync(ready, { force: true });
      const out = execFileSync('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c', inner, 'sh', script], { encoding: 'utf8' });
      return parseFacts(out, 'local').stuck.map((p) => `${p.parent === null ? '?' : 'parent'} ${p.wchan}`);
    };
    // older than 1 s after waiting 2.5 s: the two blocked `runc init`, nothing else
    expect(list(buildFactsScript({ stuckAfterSeconds: 1 }), 2.5)).toEqual([expect.stringMatching(/^parent (anon_)?pipe_write$/), expect.stringMatching(/^parent (anon_)?pipe_write$/)]);
    // none is anywhere near a day old
    expect(list(buildFactsScript({ stuckAfterSeconds: 86400 }), 0)).toEqual([]);
  });
});
