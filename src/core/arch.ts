// Maps a node's `uname -m` to the suffix of runc's release asset names.
import type { Arch } from './types.js';

const EXACT: Record<string, Arch> = {
  x86_64: 'amd64',
  amd64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  armv7l: 'armhf',
  armv8l: 'armhf', // 32-bit userland on a 64-bit core reports armv8l
  armv6l: 'armel',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  i386: '386',
  i486: '386',
  i586: '386',
  i686: '386',
};

export function archFromUname(machine: string): Arch | null {
  const m = machine.trim();
  const exact = EXACT[m];
  if (exact) return exact;
  // armv5tel, armv5tejl, ...: soft-float ARM
  if (/^armv5/.test(m)) return 'armel';
  return null;
}
