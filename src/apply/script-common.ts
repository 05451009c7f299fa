// Pieces every remote script of the pipeline shares, and the parser of their
// `@@rr key value...` output lines.
import { q } from '../core/shell.js';
import { STATE_DIR } from '../core/types.js';

/** Start of every script: strict mode, the PATH systemd gives containerd, helpers. */
export function prelude(): string {
  return `set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
umask 022
# A dropped connection must not kill a script half-way (between a rename and
# the state write): output to a gone channel fails quietly instead.
trap '' PIPE
rr_die() { printf 'runc-rollout: %s\\n' "$*" >&2; exit 1; }
# from stdin, so a file name never appears (escaped) in sha256sum's output
rr_sha() { rr_s=$(sha256sum <"$1") || return 1; printf '%s\\n' "\${rr_s%% *}"; }
# node text travels as hex: names and version lines cannot break the line format
rr_hex() { od -An -v -tx1 | tr -d ' \\n'; }
rr_put() { printf '@@rr %s\\n' "$*" || :; }
rr_puthex() { rr_k=$1; shift; printf '@@rr %s %s\\n' "$rr_k" "$(printf '%s' "$*" | rr_hex)" || :; }
`;
}

export function statePath(stateDir = STATE_DIR): string {
  return `${stateDir}/state.json`;
}

/** Shell lines that write stdin to state.json: temp file, fsync, rename. */
export function writeStateFromStdin(stateDir = STATE_DIR): string {
  const file = statePath(stateDir);
  return `mkdir -p ${q(stateDir)}
dd of=${q(`${file}.tmp`)} bs=65536 conv=fsync status=none
[ -s ${q(`${file}.tmp`)} ] || rr_die 'empty state.json from the controller'
mv -f ${q(`${file}.tmp`)} ${q(file)}
rr_put state-written
`;
}

export type Records = Map<string, string[][]>;

/** `@@rr key f1 f2` lines -> key -> list of field lists, in order. */
export function parseRecords(stdout: string): Records {
  const out: Records = new Map();
  for (const line of stdout.split('\n')) {
    const m = /^@@rr (\S+)(?: (.*))?$/.exec(line);
    if (!m?.[1]) continue;
    const fields = m[2] === undefined || m[2] === '' ? [] : m[2].split(' ');
    const list = out.get(m[1]) ?? [];
    list.push(fields);
    out.set(m[1], list);
  }
  return out;
}

export function first(r: Records, key: string): string[] | undefined {
  return r.get(key)?.[0];
}

export function unhex(s: string | undefined): string {
  if (!s || !/^(?:[0-9a-f]{2})*$/.test(s)) return '';
  return Buffer.from(s, 'hex').toString('utf8');
}
