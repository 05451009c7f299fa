// The one POSIX sh script that gathers a node's facts in a single round trip.
// It only reads. Output is line records `key<TAB>field<TAB>field...` where
// every field is `r:<plain>` (paths, numbers) or `x:<hex>`, so file names,
// file contents and odd `runc --version` output cannot break parsing.
//
// Every process it starts costs the node milliseconds (20 nodes may share two
// cores), so it starts a fixed few whatever the node holds: the commands whose
// output is the fact (uname, sha256sum, runc --version under timeout(1), one
// df for both folders, the dpkg file lists), then one `awk` pass
// (facts-awk.ts) that encodes every record and reads the sysctl files and the
// state file, then the stuck `runc init` scan (stuck-scan.ts: shell builtins
// over /proc, processes only for what it finds). Everything else is a shell
// builtin: no `$(...)` around builtins, `cd -P` instead of readlink(1) for
// folders.
import { q } from '../core/shell.js';
import { SYSCTL_DIRS, SYSCTL_CONF } from '../core/sysctl.js';
import { STATE_DIR } from '../core/types.js';
import { factsAwk } from './facts-awk.js';
import { buildStuckScan } from './stuck-scan.js';
import { STUCK_AFTER_SECONDS } from '../core/stuck.js';

export const FACTS_BEGIN = '@@runc-rollout-facts 1';
export const FACTS_END = '@@runc-rollout-facts end';

export interface FactsScriptOptions {
  /** runc path from the inventory (already validated as absolute); detected when absent. */
  runcPath?: string;
  /** `runc init` blocked on a pipe for longer than this is stuck (default 5 minutes). */
  stuckAfterSeconds?: number;
  /** Kill `runc --version` after this long: a broken runc must not hang fact gathering. */
  versionTimeoutSeconds?: number;
}

// containerd's BinaryName for the runc runtime only (other runtimes, e.g. nvidia's, have their own),
// in v2 (`io.containerd.grpc.v1.cri`) and v3 (`io.containerd.cri.v1.runtime`) table spellings.
export const BINARY_NAME_AWK = [
  '/^[ \\t]*\\[/ { t = $0; gsub(/[ \\t"\\047]/, "", t); next }',
  '/^[ \\t]*(options\\.)?BinaryName[ \\t]*=/ {',
  '  ok = ($0 ~ /^[ \\t]*options\\./) ? (t ~ /runtimes\\.runc\\]$/) : (t ~ /runtimes\\.runc\\.options\\]$/)',
  '  if (!ok) next',
  '  v = $0; sub(/^[^=]*=[ \\t]*/, "", v); c = substr(v, 1, 1)',
  '  if (c == "\\"" || c == "\\047") { v = substr(v, 2); i = index(v, c); if (i) v = substr(v, 1, i - 1) }',
  '  else sub(/[ \\t#].*$/, "", v)',
  '  print v; exit',
  '}',
].join('\n');

export function buildFactsScript(opts: FactsScriptOptions = {}): string {
  const stuckAfter = Math.trunc(opts.stuckAfterSeconds ?? STUCK_AFTER_SECONDS);
  const versionTimeout = Math.trunc(opts.versionTimeoutSeconds ?? 10);
  const stateFile = `${STATE_DIR}/state.json`;
  const awk = factsAwk({ stateFile, liveFile: '/proc/sys/fs/pipe-user-pages-soft' });
  return `# runc-rollout facts: read-only
# systemd's default PATH: the one containerd and dockerd resolve "runc" with
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
rr_nl='
'
# command -v without a subshell: sets rr_w
rr_which() {
  rr_w=
  case $1 in */*) return ;; esac
  rr_ifs=$IFS; IFS=:
  for rr_d in $PATH; do
    if [ -f "$rr_d/$1" ] && [ -x "$rr_d/$1" ]; then rr_w=$rr_d/$1; break; fi
  done
  IFS=$rr_ifs
}
# the resolved path of a file that is not itself a link (cd -P resolves the folders): sets rr_c
rr_canon() {
  rr_c=$1
  cd -P "\${1%/*}/" 2>/dev/null && rr_c=\${PWD%/}/\${1##*/}
}
# the nearest folder that exists, from $1 up: sets rr_u
rr_dir() {
  rr_u=$1
  while [ ! -d "$rr_u" ]; do
    case $rr_u in */*) rr_u=\${rr_u%/*} ;; *) rr_u=/ ;; esac
    [ -n "$rr_u" ] || rr_u=/
  done
}
# dpkg's owner of $1 from its file lists (dpkg -S loads the whole database, ~100 ms of CPU): sets rr_own
rr_dpkg_owner() {
  if [ -d /var/lib/dpkg/info ]; then
    rr_own=$(grep -Flx -- "$1" /var/lib/dpkg/info/*.list 2>/dev/null) || return 1
    rr_own=\${rr_own%%"$rr_nl"*}
    rr_own=\${rr_own##*/}
    rr_own=\${rr_own%.list}
    rr_own="\${rr_own%%:*}: $1"
  else
    rr_own=$(dpkg -S "$1" 2>/dev/null)
  fi
}
printf '%s\\n' ${q(FACTS_BEGIN)}
# the records, for the awk pass at the end: R KEY N FIELD...
set -- R machine 1 "$(uname -m)"

rr_cbin=
rr_cpath=
if [ -f /etc/containerd/config.toml ]; then
  rr_cbin=$(awk ${q(BINARY_NAME_AWK)} /etc/containerd/config.toml 2>/dev/null)
  case $rr_cbin in
    '') ;;
    /*) rr_cpath=$rr_cbin ;;
    *) rr_which "$rr_cbin"; rr_cpath=$rr_w ;;
  esac
  set -- "$@" R containerd_binary 2 "$rr_cbin" "$rr_cpath"
fi

rr_inv=${q(opts.runcPath ?? '')}
rr_which runc
if [ -n "$rr_inv" ]; then rr_runc=$rr_inv; rr_src=inventory
elif [ -n "$rr_w" ]; then rr_runc=$rr_w; rr_src=path
elif [ -n "$rr_cpath" ] && [ -f "$rr_cpath" ]; then rr_runc=$rr_cpath; rr_src=containerd
else rr_runc=; rr_src=none
fi
set -- "$@" R runc_path 2 "$rr_runc" "$rr_src"

rr_dfs=
if [ -n "$rr_runc" ]; then
  rr_e=0; rr_x=0
  [ -f "$rr_runc" ] && rr_e=1
  [ "$rr_e" = 1 ] && [ -x "$rr_runc" ] && rr_x=1
  set -- "$@" R runc_file 2 "$rr_e" "$rr_x"
  if [ "$rr_e" = 1 ]; then
    # from stdin: sha256sum escapes odd file names in its output
    rr_sum=$(sha256sum <"$rr_runc" 2>/dev/null)
    set -- "$@" R runc_sha256 1 "\${rr_sum%% *}"
    if [ -L "$rr_runc" ]; then
      rr_real=$(readlink -f "$rr_runc" 2>/dev/null)
      set -- "$@" R runc_realpath 1 "$rr_real"
    else
      rr_canon "$rr_runc"; rr_real=$rr_c
    fi
    rr_own=
    if command -v dpkg >/dev/null 2>&1; then
      rr_dpkg_owner "$rr_runc" || { [ "$rr_real" != "$rr_runc" ] && rr_dpkg_owner "$rr_real"; } || rr_own=
    fi
    [ -n "$rr_own" ] && set -- "$@" R owner_dpkg 1 "$rr_own"
    rr_own=
    command -v rpm >/dev/null 2>&1 && { rr_own=$(rpm -qf "$rr_runc" 2>/dev/null) || rr_own=; }
    [ -n "$rr_own" ] && set -- "$@" R owner_rpm 1 "$rr_own"
  fi
  if [ "$rr_x" = 1 ]; then
    rr_rc=
    if command -v timeout >/dev/null 2>&1; then
      # stderr away meanwhile: the shell itself says "Killed" when the watchdog fires
      exec 9>&2 2>/dev/null
      rr_out=$(timeout -s KILL ${versionTimeout} "$rr_runc" --version </dev/null)
      rr_rc=$?
      exec 2>&9 9>&-
      # no output and an odd status: maybe a timeout(1) that takes other options (old BusyBox: -t SECS)
      case $rr_rc in 0 | 137) ;; *) [ -n "$rr_out" ] || rr_rc= ;; esac
    fi
    if [ -z "$rr_rc" ]; then
      # the watchdog writes nowhere, so an orphaned sleep cannot hold the channel open
      rr_out=$( {
        "$rr_runc" --version </dev/null & rr_vp=$!
        ( sleep ${versionTimeout}; kill -9 "$rr_vp" ) >/dev/null 2>&1 </dev/null & rr_wp=$!
        wait "$rr_vp"; rr_rc=$?
        kill "$rr_wp"
        printf '\\n@rc=%s' "$rr_rc"
      } 2>/dev/null )
      rr_rc=\${rr_out##*@rc=}
      rr_out=\${rr_out%@rc=*}
    fi
    # a runc that floods its output is broken anyway; the record must stay an argument
    [ \${#rr_out} -le 65536 ] || rr_out="(runc --version printed \${#rr_out} bytes)"
    set -- "$@" R runc_version 2 "$rr_out" "$rr_rc"
  fi
  rr_dir "\${rr_runc%/*}"; rr_dfs=$rr_u
fi
# one df for both folders: a header, then a line per folder in order
rr_dir ${q(STATE_DIR)}
rr_df=$(df -Pk $rr_dfs "$rr_u" 2>/dev/null)
rr_h=\${rr_df%%"$rr_nl"*}
rr_l=\${rr_df#*"$rr_nl"}
if [ -z "$rr_dfs" ]; then
  set -- "$@" R df_state_dir 1 "$rr_df"
else
  case $rr_l in
    *"$rr_nl"*) set -- "$@" R df_runc_dir 1 "$rr_h$rr_nl\${rr_l%%"$rr_nl"*}" R df_state_dir 1 "$rr_h$rr_nl\${rr_l#*"$rr_nl"}" ;;
    *) set -- "$@" R df_runc_dir 1 '' R df_state_dir 1 '' ;;
  esac
fi

for rr_sd in ${SYSCTL_DIRS.map((d) => q(d)).join(' ')}; do
  [ -d "$rr_sd" ] || continue
  set -- "$@" D "$rr_sd"
  rr_canon "$rr_sd/x"; rr_pd=\${rr_c%/x}
  for rr_f in "$rr_sd"/*.conf; do
    { [ -e "$rr_f" ] || [ -L "$rr_f" ]; } || continue
    [ -d "$rr_f" ] && continue
    if [ -L "$rr_f" ]; then rr_r=$(readlink -f "$rr_f" 2>/dev/null); else rr_r=$rr_pd/\${rr_f##*/}; fi
    set -- "$@" F "$rr_f" "$rr_r"
  done
done
if [ -e ${q(SYSCTL_CONF)} ]; then
  if [ -L ${q(SYSCTL_CONF)} ]; then rr_r=$(readlink -f ${q(SYSCTL_CONF)} 2>/dev/null); else rr_canon ${q(SYSCTL_CONF)}; rr_r=$rr_c; fi
  set -- "$@" F ${q(SYSCTL_CONF)} "$rr_r"
fi
[ -f ${q(stateFile)} ] && set -- "$@" S

awk ${q(awk)} "$@" </dev/null
# runc init blocked writing into a pipe for more than ${stuckAfter}s (the rc93 hang)
${buildStuckScan({ runcPathExpr: '"$rr_runc"', stuckAfterSeconds: stuckAfter })}printf '%s\\n' ${q(FACTS_END)}
exit 0
`;
}
