// What the demo needs on this machine, and how to get it: installed with
// apt-get when we are root on a Debian-like system, else the exact command.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

interface Need {
  what: string;
  ok: () => boolean;
  /** Debian package providing it. */
  pkg: string;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

const NEEDS: Need[] = [
  { what: 'sshd (each test node runs the real OpenSSH server)', ok: () => existsSync('/usr/sbin/sshd'), pkg: 'openssh-server' },
  { what: 'ssh-keygen', ok: () => has('ssh-keygen'), pkg: 'openssh-client' },
  { what: 'runc at /usr/sbin/runc (the stand-in releases run real containers through it)', ok: () => existsSync('/usr/sbin/runc'), pkg: 'runc' },
  { what: 'gcc (builds the stand-in runc binaries)', ok: () => has('gcc'), pkg: 'gcc' },
  {
    what: 'static libc (gcc -static)',
    ok: () => {
      if (!has('gcc')) return false;
      const p = execFileSync('gcc', ['-print-file-name=libc.a'], { encoding: 'utf8' }).trim();
      return p.startsWith('/') && existsSync(p);
    },
    pkg: 'libc6-dev',
  },
  { what: 'gpg (signs the stand-in releases)', ok: () => has('gpg'), pkg: 'gpg' },
  { what: 'gpg-agent', ok: () => has('gpg-agent'), pkg: 'gpg-agent' },
];

/** Returns null when all is there (installing what it can), else the lines to show the user. */
export function ensurePrerequisites(log: (s: string) => void): string[] | null {
  if (process.platform !== 'linux') return ['The demo needs Linux (mount and pid namespaces for the test nodes).'];
  if (process.getuid?.() !== 0) {
    return ['The demo needs root: each test node is a mount+pid namespace running sshd on port 22 of its own loopback address.', 'Run: sudo npm run demo'];
  }
  let missing = NEEDS.filter((n) => !n.ok());
  if (missing.length === 0) return null;
  const pkgs = [...new Set(missing.map((n) => n.pkg))];
  const command = `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  if (has('apt-get')) {
    log(`Installing what the demo needs: ${pkgs.join(', ')}`);
    const r = spawnSync('sh', ['-c', command], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    missing = NEEDS.filter((n) => !n.ok());
    if (r.status === 0 && missing.length === 0) return null;
  }
  return [
    'Missing prerequisites:',
    ...missing.map((n) => `  - ${n.what}`),
    has('apt-get') ? `Tried: ${command}` : `Install them with your package manager; on Debian/Ubuntu: ${command}`,
  ];
}
