// The facts script under BusyBox alone (its sh, awk, ps without etimes, df,
// base64), in a throwaway chroot inside private mount and pid namespaces.
// Needs root and a static busybox: on PATH, or named by RUNC_ROLLOUT_TEST_BUSYBOX
// (e.g. extracted with `apt-get download busybox-static && dpkg-deb -x ...`).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planSysctl } from '../../src/core/sysctl.js';
import { parseFacts } from '../../src/facts/parse.js';
import { buildFactsScript } from '../../src/facts/script.js';
import { parseProcessCount, processCountCommand } from '../harness/process-count.js';

function findBusybox(): string | null {
  if (process.env.RUNC_ROLLOUT_TEST_BUSYBOX) return process.env.RUNC_ROLLOUT_TEST_BUSYBOX;
  try {
    return execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}
const busybox = process.getuid?.() === 0 ? findBusybox() : null;
if (!busybox) console.warn('skipping the BusyBox facts test: needs root and a static busybox (RUNC_ROLLOUT_TEST_BUSYBOX)');

describe.skipIf(!busybox)('the facts script on a BusyBox-only system', () => {
  const root = mkdtempSync(join(tmpdir(), 'rr-busybox-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const put = (path: string, text: string, mode = 0o644) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
    chmodSync(join(root, path), mode);
  };

  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/sbin', 'proc', 'dev', 'tmp', 'var/lib']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(busybox!, join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    execFileSync('chroot', [root, '/bin/busybox', '--install', '-s']);
    put('usr/local/sbin/runc', '#!/bin/sh\necho "runc version 1.0.0-rc93"\necho "commit: v1.0.0-rc93-0-g12644e61"\n', 0o755);
    put('etc/sysctl.d/90-rc93.conf', '# workaround\nfs.pipe-user-pages-soft = 65536\n');
    put('usr/lib/sysctl.d/99-zz.conf', 'fs/pipe-user-pages-soft=4096\n');
    put('etc/sysctl.conf', 'kernel.x = 1\n-fs.pipe-user-pages-soft = 1\n');
    symlinkSync('../sysctl.conf', join(root, 'etc/sysctl.d/99-sysctl.conf'));
    put('etc/containerd/config.toml', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  BinaryName = "runc"\n');
    for (const f of ['init', 'initialize']) execFileSync('mkfifo', [join(root, 'tmp', f)]);
  };
  // / must be a mount point inside the chroot, or BusyBox df finds no filesystem for it
  const mounts = 'mount --make-rprivate / && mount --bind "$1" "$1" && mount --bind /dev "$1/dev" && mount -t proc proc "$1/proc"';
  const run = (script: string) => execFileSync('unshare', ['--mount', '--pid', '--fork', 'sh', '-c', `${mounts} && exec chroot "$1" /bin/sh -c "$2"`, 'sh', root, script], { encoding: 'utf8' });

  it('gathers every fact with BusyBox applets only', () => {
    build();
    const f = parseFacts(run(buildFactsScript()), 'busybox');
    expect(f).toMatchObject({
      runcPath: '/usr/local/sbin/runc',
      runcPathSource: 'path',
      containerdBinaryName: '/usr/local/sbin/runc',
      runc: { exists: true, executable: true, version: '1.0.0-rc93', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      packageOwner: null,
      freeBytes: { runcDir: expect.any(Number), stateDir: expect.any(Number) },
      stuck: [],
      state: null,
    });
    expect(f.notes).toBeUndefined();
    expect(planSysctl(f.sysctl)).toMatchObject({
      persisted: 1,
      persistedFrom: '/etc/sysctl.conf:2',
      commentOut: [
        { path: '/usr/lib/sysctl.d/99-zz.conf', lines: [1] },
        { path: '/etc/sysctl.conf', lines: [2] },
      ],
    });
  });

  // The stuck runc init scan with BusyBox's sh and applets, in the namespace's pid space
  it('lists stuck `runc init` from /proc in a few processes, not one per process', () => {
    build();
    const script = join(root, 'tmp', 'facts.sh');
    writeFileSync(script, buildFactsScript({ stuckAfterSeconds: 1 }));
    // argv "runc\0init\0" blocked writing into a full pipe (yes into a sleep that never reads) ...
    const blocked = (argv0: string, argv1: string) => `bash -c 'exec -a ${argv0} yes ${argv1}' | sleep 60 &`;
    // ... and not blocked on a pipe: cat blocks opening a FIFO named like its argument
    const opening = (argv0: string, argv1: string) => `(cd "$1/tmp" && exec bash -c 'exec -a ${argv0} cat ${argv1}') &`;
    const inner = [
      mounts,
      blocked('runc', 'init'),
      blocked('/usr/local/sbin/runc', 'init'),
      blocked('runc', 'initialize'),
      blocked('/usr/bin/xrunc', 'init'),
      opening('runc', 'init'),
      // more processes to scan: the scan must not cost a process per process
      'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 60 & done',
      'sleep 2.5',
      processCountCommand({ scriptFile: '/tmp/facts.sh', outFile: `${root}/tmp/out`, summaryFile: `${root}/tmp/summary`, shell: `chroot "$1" /bin/sh` }),
    ].join('\n');
    const c = parseProcessCount(execFileSync('unshare', ['--mount', '--pid', '--fork', 'sh', '-c', inner, 'sh', root], { encoding: 'utf8' }));
    expect(c.exitCode).toBe(0);
    const stuck = parseFacts(readFileSync(join(root, 'tmp', 'out'), 'utf8'), 'busybox').stuck;
    expect(stuck.map((p) => p.wchan)).toEqual([expect.stringMatching(/^(anon_)?pipe_write$/), expect.stringMatching(/^(anon_)?pipe_write$/)]);
    // Debian's BusyBox 1.35 (its sh runs most applets without exec): uname, the containerd awk,
    // sha256sum, dpkg -S and rpm -qf (applets here), timeout (2) + runc, df, readlink for
    // 99-sysctl.conf, awk; the stuck scan: none for the 30 processes it reads, then ls,
    // sha256sum and head | tr for the two it finds
    expect(c.forks).toBeLessThanOrEqual(16);
    expect(c.execs).toBeLessThanOrEqual(16);
  });
});
