// Checks that a file is an ELF executable for the node's architecture before
// it is ever uploaded: a mislabelled asset would otherwise only fail on the node.
import type { Arch } from './types.js';

interface ElfTarget {
  bits: 32 | 64;
  endian: 'little' | 'big';
  machine: number;
  machineName: string;
}

// e_machine values from the ELF spec. armhf and armel share EM_ARM; the float
// ABI is not reliably visible in the header of Go binaries, so it is not checked.
const TARGETS: Record<Arch, ElfTarget> = {
  amd64: { bits: 64, endian: 'little', machine: 62, machineName: 'x86-64' },
  arm64: { bits: 64, endian: 'little', machine: 183, machineName: 'AArch64' },
  armhf: { bits: 32, endian: 'little', machine: 40, machineName: 'ARM' },
  armel: { bits: 32, endian: 'little', machine: 40, machineName: 'ARM' },
  ppc64le: { bits: 64, endian: 'little', machine: 21, machineName: 'PowerPC64' },
  s390x: { bits: 64, endian: 'big', machine: 22, machineName: 'S/390' },
  riscv64: { bits: 64, endian: 'little', machine: 243, machineName: 'RISC-V' },
  '386': { bits: 32, endian: 'little', machine: 3, machineName: 'i386' },
};

const MACHINE_NAMES: Record<number, string> = { 3: 'i386', 21: 'PowerPC64', 22: 'S/390', 40: 'ARM', 62: 'x86-64', 183: 'AArch64', 243: 'RISC-V' };

/** Bytes of the file's start needed by checkElf. */
export const ELF_HEADER_BYTES = 20;

/** null when `header` (the file's first bytes) is an ELF executable for `arch`; otherwise why not. */
export function checkElf(header: Uint8Array, arch: Arch): string | null {
  const want = TARGETS[arch];
  if (header.length < ELF_HEADER_BYTES || header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) {
    return 'not an ELF file';
  }
  const bits = header[4] === 1 ? 32 : header[4] === 2 ? 64 : null;
  const endian = header[5] === 1 ? 'little' : header[5] === 2 ? 'big' : null;
  if (bits === null || endian === null) return 'ELF header has an invalid class or byte order';
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const le = endian === 'little';
  const type = view.getUint16(16, le);
  const machine = view.getUint16(18, le);
  const problems: string[] = [];
  if (machine !== want.machine) problems.push(`machine ${MACHINE_NAMES[machine] ?? `#${machine}`}, want ${want.machineName}`);
  if (bits !== want.bits) problems.push(`${bits}-bit, want ${want.bits}-bit`);
  if (endian !== want.endian) problems.push(`${endian}-endian, want ${want.endian}-endian`);
  // ET_EXEC, or ET_DYN for position-independent executables
  if (type !== 2 && type !== 3) problems.push(`ELF type ${type} is not an executable`);
  return problems.length === 0 ? null : `ELF binary for the wrong target (${problems.join('; ')}), expected ${arch}`;
}
