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
# the same into RR_DIG, one process fewer than $(rr_sha FILE)
rr_dig() { RR_DIG=$(sha256sum <"$1") || return 1; RR_DIG=\${RR_DIG%% *}; }
RR_NL='
'
# node text travels as hex: names and version lines cannot break the line format
rr_hex() { od -An -v -tx1 | tr -d ' \\n'; }
rr_put() { printf '@@rr %s\\n' "$*" || :; }
rr_puthex() { rr_k=$1; shift; printf '@@rr %s %s\\n' "$rr_k" "$(printf '%s' "$*" | rr_hex)" || :; }
# a value that cannot hold a newline (the first line of a program's output) needs no encoder: raw, read back by lineOf()
rr_putline() { printf '@@rr %s %s\\n' "$1" "$2" || :; }
`;
}

/**
 * rr_version FILE: the first line of \`FILE --version\` into RR_VER (one
 * process and the binary; no \`| head\`, no encoder), under a deadline.
 */
export const VERSION_LINE = `rr_version() {
  RR_VER=$(timeout -k 2 20 "$1" --version </dev/null 2>&1) || :
  RR_VER=\${RR_VER%%"$RR_NL"*}
}
`;

/**
 * rr_meta FROM TO: FROM's owner, group, mode, file capabilities
 * (security.capability) and SELinux label onto TO. Run it after TO's data is
 * written: a write or a chown clears file capabilities. GNU cp does it all in
 * one process (chown, then the xattrs, then the mode); BusyBox's cp cannot,
 * so there stat, chown, chmod, getcap/setcap and chcon do it one by one. A
 * label or capability that cannot be set is an error. A node with neither GNU
 * cp nor getcap cannot read capabilities at all: \`meta-note no-caps\` says so.
 */
export const META_COPY = `rr_meta() {
  rr_mc=
  [ -e /sys/fs/selinux/enforce ] && rr_mc=,context
  if rr_me=$(cp --attributes-only --preserve=mode,ownership,xattr$rr_mc -- "$1" "$2" 2>&1); then return 0; fi
  case $rr_me in
    *unrecognized*|*'invalid option'*|*'unknown option'*|*'illegal option'*) ;;
    *) printf '%s\\n' "$rr_me" >&2; return 1 ;;
  esac
  rr_me=$(stat -c '%u:%g %a' -- "$1") || return 1
  chown "\${rr_me% *}" "$2" && chmod "\${rr_me#* }" "$2" || return 1
  if command -v getcap >/dev/null 2>&1; then
    rr_me=$(getcap "$1") || return 1
    # "FILE cap_x=ep" (libcap >= 2.4x) or "FILE = cap_x+ep"
    rr_me=\${rr_me#"$1"}; rr_me=\${rr_me# }; rr_me=\${rr_me#= }
    [ -z "$rr_me" ] || setcap "$rr_me" "$2" || return 1
  else
    rr_put meta-note no-caps
  fi
  [ -z "$rr_mc" ] || chcon --reference="$1" -- "$2"
}
`;

export function statePath(stateDir = STATE_DIR): string {
  return `${stateDir}/state.json`;
}

/**
 * Shell lines that write stdin to state.json: temp file, fsync, rename, then
 * one \`sync\` for the state directory and \`alsoSync\` (paths whose rename or
 * write must be durable too: one process for all of them). \`sync FILE...\`
 * fsyncs each path, a directory too, on GNU coreutils (>= 8.24) and BusyBox.
 */
export function writeStateFromStdin(stateDir = STATE_DIR, alsoSync: string[] = []): string {
  const file = statePath(stateDir);
  return `[ -d ${q(stateDir)} ] || mkdir -p ${q(stateDir)}
dd of=${q(`${file}.tmp`)} bs=65536 conv=fsync status=none
[ -s ${q(`${file}.tmp`)} ] || rr_die 'empty state.json from the controller'
mv -f ${q(`${file}.tmp`)} ${q(file)}
${syncPaths([...new Set([stateDir, ...alsoSync])])}rr_put state-written
`;
}

/** One \`sync\` process for every path given (files and directories, fsync'd each). */
export function syncPaths(paths: string[]): string {
  return paths.length ? `sync -- ${paths.map(q).join(' ')}\n` : '';
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

/** A value written with rr_putline (the rest of its line), or an older script's hex one under \`hexKey\`. */
export function lineOf(r: Records, key: string, hexKey?: string): string {
  const raw = first(r, key);
  if (raw) return raw.join(' ').trim();
  return hexKey ? unhex(first(r, hexKey)?.[0]).trim() : '';
}

export function unhex(s: string | undefined): string {
  if (!s || !/^(?:[0-9a-f]{2})*$/.test(s)) return '';
  return Buffer.from(s, 'hex').toString('utf8');
}
