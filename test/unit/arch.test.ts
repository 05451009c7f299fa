import { describe, expect, it } from 'vitest';
import { archFromUname } from '../../src/core/arch.js';

describe('archFromUname', () => {
  it.each([
    ['x86_64', 'amd64'],
    ['aarch64', 'arm64'],
    ['armv7l', 'armhf'],
    ['armv6l', 'armel'],
    ['armv5tel', 'armel'],
    ['armv5tejl', 'armel'],
    ['ppc64le', 'ppc64le'],
    ['s390x', 's390x'],
    ['riscv64', 'riscv64'],
    ['i386', '386'],
    ['i686', '386'],
    ['x86_64\n', 'amd64'],
  ])('%j -> %s', (m, want) => {
    expect(archFromUname(m)).toBe(want);
  });

  it.each(['', 'ppc64', 'mips64', 'sparc64', 'armv4', 'X86_64'])('%j is unsupported', (m) => {
    expect(archFromUname(m)).toBeNull();
  });
});
