// A node's "everything the tool may touch", as path -> description lines, so a
// test can prove a read-only command (plan) or a refused run changed nothing.
import { dirname } from 'node:path';
import { q } from '../../../src/core/shell.js';

const PRIVATE_DIRS = ['/usr/local/sbin', '/var/lib/runc-rollout', '/etc/sysctl.d', '/run/sysctl.d', '/usr/lib/sysctl.d', '/etc/containerd'];

/**
 * Shell script printing `path<TAB>description` lines. A shared folder such as
 * /usr/bin is too big to hash whole: its listing is hashed instead (any new
 * or vanished entry shows), plus every entry whose name mentions runc.
 */
export function snapshotScript(runcPath: string | null): string {
  const describe = [
    'describe() {',
    '  if [ -L "$1" ]; then printf "%s\\tlink %s\\n" "$1" "$(readlink "$1")";',
    '  elif [ -f "$1" ]; then printf "%s\\tfile %s %s\\n" "$1" "$(stat -c %a "$1")" "$(sha256sum < "$1" | cut -d" " -f1)";',
    '  elif [ -d "$1" ]; then printf "%s\\tdir %s\\n" "$1" "$(stat -c %a "$1")"; fi',
    '}',
  ].join('\n');
  const lines = [describe, `find ${PRIVATE_DIRS.map(q).join(' ')} /etc/sysctl.conf 2>/dev/null | LC_ALL=C sort | while IFS= read -r p; do describe "$p"; done`];
  const dir = runcPath ? dirname(runcPath) : null;
  if (dir && !PRIVATE_DIRS.includes(dir)) {
    lines.push(`printf "%s\\tlisting %s\\n" ${q(dir)} "$(ls -a ${q(dir)} | sha256sum | cut -d" " -f1)"`);
    lines.push(`find ${q(dir)} -maxdepth 1 -name '*runc*' | LC_ALL=C sort | while IFS= read -r p; do describe "$p"; done`);
  }
  lines.push('printf "sysctl:live\\t%s\\n" "$(cat /proc/sys/fs/pipe-user-pages-soft)"');
  return lines.join('\n');
}

export function parseSnapshot(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out[line.slice(0, tab)] = line.slice(tab + 1);
  }
  return out;
}
