// What the bench needs beyond the demo's prerequisites (sshd, runc, gcc, gpg):
// Debian's `ansible` (the peer), python3 (the measuring supervisor) and nft
// (connection and byte counters). Installed with apt-get when missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensurePrerequisites } from '../test/demo/prerequisites.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

interface Need {
  what: string;
  ok: () => boolean;
  pkg: string;
  /** The bench runs without it (with a warning) when it cannot be had. */
  optional?: boolean;
}

const NEEDS: Need[] = [
  { what: 'ansible-playbook (the peer)', ok: () => has('ansible-playbook'), pkg: 'ansible' },
  { what: 'python3 (measures CPU and memory of each run)', ok: () => existsSync('/usr/bin/python3') || has('python3'), pkg: 'python3' },
  { what: 'nft (counts SSH connections and bytes per node)', ok: () => has('nft'), pkg: 'nftables', optional: true },
];

/** Returns problems that stop the bench (empty when all is there) and warnings. */
export function ensureBenchPrerequisites(log: (s: string) => void): { problems: string[]; warnings: string[] } {
  const demo = ensurePrerequisites(log);
  if (demo) return { problems: demo, warnings: [] };
  let missing = NEEDS.filter((n) => !n.ok());
  if (missing.length && has('apt-get')) {
    const pkgs = [...new Set(missing.map((n) => n.pkg))];
    log(`installing what the bench needs: ${pkgs.join(', ')} (apt-get)`);
    const r = spawnSync('sh', ['-c', `apt-get install -y --no-install-recommends ${pkgs.join(' ')} || (apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')})`], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0) log(`apt-get exited ${r.status}`);
    missing = NEEDS.filter((n) => !n.ok());
  }
  return {
    problems: missing.filter((n) => !n.optional).map((n) => `missing: ${n.what} (Debian package ${n.pkg})`),
    warnings: missing.filter((n) => n.optional).map((n) => `missing: ${n.what} (Debian package ${n.pkg}); connections and bytes per node will not be reported`),
  };
}

/** Whether the Debian ansible package's ansible.posix collection (sysctl module) is there. */
export function hasAnsiblePosix(): boolean {
  const r = spawnSync('ansible-galaxy', ['collection', 'list', 'ansible.posix'], { encoding: 'utf8' });
  return r.status === 0 && /^ansible\.posix\s/m.test(r.stdout);
}
