// The machine a result was measured on.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, release, totalmem } from 'node:os';

const firstLine = (cmd: string, args: string[]): string | null => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return null;
  return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim())?.trim() ?? null;
};

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGB: number;
  kernel: string;
  os: string | null;
  node: string;
  ansible: string | null;
  openssh: string | null;
  runc: string | null;
  python: string | null;
  loadAvgAtStart: number[];
}

export function machineInfo(): MachineInfo {
  let os: string | null = null;
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null;
  } catch {
    /* not there */
  }
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os,
    node: process.version,
    ansible: firstLine('ansible-playbook', ['--version']),
    openssh: firstLine('ssh', ['-V']),
    runc: firstLine('/usr/sbin/runc', ['--version']),
    python: firstLine('/usr/bin/python3', ['--version']),
    loadAvgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Which runc-rollout was measured: the commit, whether the tree had changes, and when dist/ was built. */
export function codeInfo(root: string): { commit: string | null; uncommittedChanges: boolean | null; distBuiltAt: string | null } {
  const git = (args: string[]) => {
    const r = spawnSync('git', ['-C', root, ...args], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  let distBuiltAt: string | null = null;
  try {
    distBuiltAt = statSync(join(root, 'dist/cli/main.js')).mtime.toISOString();
  } catch {
    /* not built */
  }
  const status = git(['status', '--porcelain', '--', 'src']);
  return { commit: git(['rev-parse', 'HEAD']), uncommittedChanges: status === null ? null : status.length > 0, distBuiltAt };
}
