import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkElf } from '../../src/core/elf.js';
import { ARCHES, type Arch } from '../../src/core/types.js';

function header(opts: { bits: 1 | 2; data: 1 | 2; machine: number; type?: number }): Uint8Array {
  const b = new Uint8Array(64);
  b.set([0x7f, 0x45, 0x4c, 0x46, opts.bits, opts.data, 1]);
  const v = new DataView(b.buffer);
  const le = opts.data === 1;
  v.setUint16(16, opts.type ?? 2, le);
  v.setUint16(18, opts.machine, le);
  return b;
}

const GOOD: Record<Arch, Uint8Array> = {
  amd64: header({ bits: 2, data: 1, machine: 62 }),
  arm64: header({ bits: 2, data: 1, machine: 183 }),
  armhf: header({ bits: 1, data: 1, machine: 40 }),
  armel: header({ bits: 1, data: 1, machine: 40 }),
  ppc64le: header({ bits: 2, data: 1, machine: 21 }),
  s390x: header({ bits: 2, data: 2, machine: 22 }),
  riscv64: header({ bits: 2, data: 1, machine: 243 }),
  '386': header({ bits: 1, data: 1, machine: 3 }),
};

describe('checkElf', () => {
  it.each(ARCHES)('accepts a %s executable', (arch) => {
    expect(checkElf(GOOD[arch], arch)).toBeNull();
  });

  it('accepts position-independent executables (ET_DYN)', () => {
    expect(checkElf(header({ bits: 2, data: 1, machine: 62, type: 3 }), 'amd64')).toBeNull();
  });

  it('refuses another architecture, naming both', () => {
    expect(checkElf(GOOD.amd64, 'arm64')).toMatch(/x86-64.*AArch64/);
    expect(checkElf(GOOD.arm64, 'amd64')).toMatch(/AArch64.*x86-64/);
  });

  it('refuses wrong class or byte order with the right e_machine', () => {
    expect(checkElf(header({ bits: 1, data: 1, machine: 62 }), 'amd64')).toMatch(/32-bit/);
    expect(checkElf(header({ bits: 2, data: 2, machine: 22 }), 's390x')).toBeNull();
    expect(checkElf(header({ bits: 2, data: 1, machine: 22 }), 's390x')).toMatch(/little-endian/);
  });

  it('refuses relocatable objects and core files', () => {
    expect(checkElf(header({ bits: 2, data: 1, machine: 62, type: 1 }), 'amd64')).toMatch(/not an executable/);
    expect(checkElf(header({ bits: 2, data: 1, machine: 62, type: 4 }), 'amd64')).toMatch(/not an executable/);
  });

  it('refuses non-ELF content and short files', () => {
    expect(checkElf(new TextEncoder().encode('#!/bin/sh\necho runc version 1.2.9\n'), 'amd64')).toBe('not an ELF file');
    expect(checkElf(GOOD.amd64.subarray(0, 10), 'amd64')).toBe('not an ELF file');
    expect(checkElf(new Uint8Array(0), 'amd64')).toBe('not an ELF file');
  });

  it('reads a real binary of this machine', () => {
    const real = readFileSync('/bin/sh').subarray(0, 64);
    const host: Arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    expect(checkElf(real, host)).toBeNull();
    expect(checkElf(real, host === 'amd64' ? 'arm64' : 'amd64')).not.toBeNull();
  });
});
