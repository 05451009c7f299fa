// The facts script under BusyBox alone (its sh, awk, ps without etimes, df,
// base64), in a throwaway chroot inside private mount and pid namespaces.
// Needs root and a static busybox: on PATH, or named by RUNC_ROLLOUT_TEST_BUSYBOX
// (e.g. extracted with `apt-get download busybox-static && dpkg-deb -x ...`).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planSysctl } from '../../src/core/sysctl.js';
import { parseFacts } from '../../src/facts/parse.js';
import { buildFactsScript } from '../../src/facts/script.js';

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

  it('gathers every fact with BusyBox applets only', () => {
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

    // / must be a mount point inside the chroot, or BusyBox df finds no filesystem for it
    const enter = `mount --make-rprivate / && mount --bind "$1" "$1" && mount --bind /dev "$1/dev" && mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"`;
    const out = execFileSync('unshare', ['--mount', '--pid', '--fork', 'sh', '-c', enter, 'sh', root, buildFactsScript()], { encoding: 'utf8' });
    const f = parseFacts(out, 'busybox');
    expect(f).toMatchObject({
      runcPath: '/usr/local/sbin/runc',
      runcPathSource: 'path',
      containerdBinaryName: '/usr/local/sbin/runc',
      runc: { exists: true, executable: true, version: '1.0.0-rc93', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      packageOwner: null,
      freeBytes: { runcDir: expect.any(Number), stateDir: expect.any(Number) },
      stuckRuncInit: 0,
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
});
