// The one POSIX sh script that gathers a node's facts in a single round trip.
// It only reads. Output is line records `key<TAB>field<TAB>field...` where
// every field is `b:<base64>` (or `x:<hex>` where base64 is missing), so file
// names, file contents and odd `runc --version` output cannot break parsing.
import { q } from '../core/shell.js';
import { SYSCTL_DIRS, SYSCTL_CONF } from '../core/sysctl.js';
import { STATE_DIR } from '../core/types.js';

export const FACTS_BEGIN = '@@runc-rollout-facts 1';
export const FACTS_END = '@@runc-rollout-facts end';

export interface FactsScriptOptions {
  /** runc path from the inventory (already validated as absolute); detected when absent. */
  runcPath?: string;
  /** `runc init` older than this counts as stuck. */
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
  const stuckAfter = Math.trunc(opts.stuckAfterSeconds ?? 300);
  const versionTimeout = Math.trunc(opts.versionTimeoutSeconds ?? 10);
  const stateFile = `${STATE_DIR}/state.json`;
  return `# runc-rollout facts: read-only
# systemd's default PATH: the one containerd and dockerd resolve "runc" with
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
if command -v base64 >/dev/null 2>&1; then
  rr_enc() { printf 'b:'; base64 | tr -d '\\n'; }
else
  rr_enc() { printf 'x:'; od -An -v -tx1 | tr -d ' \\n'; }
fi
# Plain values (paths, numbers) go as they are: encoding each one costs two
# processes, and a node runs this for dozens of values.
rr_put() {
  printf '%s' "$1"; shift
  for rr_v in "$@"; do
    case $rr_v in
      *[!A-Za-z0-9._/:@+=,%~-]*) printf '\\t'; printf '%s' "$rr_v" | rr_enc ;;
      *) printf '\\tr:%s' "$rr_v" ;;
    esac
  done
  printf '\\n'
}
rr_df() {
  rr_d=$1
  while [ ! -d "$rr_d" ]; do rr_d=$(dirname "$rr_d"); done
  df -Pk "$rr_d" 2>/dev/null
}
rr_sysfile() {
  rr_put sysctl_file "$1" "$(readlink -f "$1" 2>/dev/null)" "$(grep -n -E 'pipe|[*?[]' "$1" 2>/dev/null)"
}
printf '%s\\n' ${q(FACTS_BEGIN)}
rr_put machine "$(uname -m)"

rr_cbin=
rr_cpath=
if [ -f /etc/containerd/config.toml ]; then
  rr_cbin=$(awk ${q(BINARY_NAME_AWK)} /etc/containerd/config.toml 2>/dev/null)
  case $rr_cbin in
    '') ;;
    /*) rr_cpath=$rr_cbin ;;
    *) rr_cpath=$(command -v "$rr_cbin" 2>/dev/null) ;;
  esac
  rr_put containerd_binary "$rr_cbin" "$rr_cpath"
fi

rr_inv=${q(opts.runcPath ?? '')}
rr_onpath=$(command -v runc 2>/dev/null)
if [ -n "$rr_inv" ]; then rr_runc=$rr_inv; rr_src=inventory
elif [ -n "$rr_onpath" ]; then rr_runc=$rr_onpath; rr_src=path
elif [ -n "$rr_cpath" ] && [ -f "$rr_cpath" ]; then rr_runc=$rr_cpath; rr_src=containerd
else rr_runc=; rr_src=none
fi
rr_put runc_path "$rr_runc" "$rr_src"

if [ -n "$rr_runc" ]; then
  rr_e=0; rr_x=0
  [ -f "$rr_runc" ] && rr_e=1
  [ "$rr_e" = 1 ] && [ -x "$rr_runc" ] && rr_x=1
  rr_put runc_file "$rr_e" "$rr_x"
  if [ "$rr_e" = 1 ]; then
    rr_put runc_sha256 "$(sha256sum "$rr_runc" 2>/dev/null)"
    rr_real=$(readlink -f "$rr_runc" 2>/dev/null)
    [ -L "$rr_runc" ] && rr_put runc_realpath "$rr_real"
    # dpkg -S loads the whole package database (~100 ms of CPU per node); the
    # file lists answer the same question for one path in a few ms.
    rr_dpkg_owner() {
      if [ -d /var/lib/dpkg/info ]; then
        rr_l=$(grep -Flx -- "$1" /var/lib/dpkg/info/*.list 2>/dev/null | head -n 1)
        [ -n "$rr_l" ] || return 1
        rr_l=\${rr_l##*/}
        rr_l=\${rr_l%.list}
        printf '%s: %s\\n' "\${rr_l%%:*}" "$1"
      else
        dpkg -S "$1" 2>/dev/null
      fi
    }
    rr_own=
    if command -v dpkg >/dev/null 2>&1; then
      rr_own=$(rr_dpkg_owner "$rr_runc") || { [ "$rr_real" != "$rr_runc" ] && rr_own=$(rr_dpkg_owner "$rr_real"); } || rr_own=
    fi
    [ -n "$rr_own" ] && rr_put owner_dpkg "$rr_own"
    rr_own=
    command -v rpm >/dev/null 2>&1 && { rr_own=$(rpm -qf "$rr_runc" 2>/dev/null) || rr_own=; }
    [ -n "$rr_own" ] && rr_put owner_rpm "$rr_own"
  fi
  if [ "$rr_x" = 1 ]; then
    # the watchdog writes nowhere, so an orphaned sleep cannot hold the channel open
    rr_out=$( {
      "$rr_runc" --version </dev/null & rr_vp=$!
      ( sleep ${versionTimeout}; kill -9 "$rr_vp" ) >/dev/null 2>&1 </dev/null & rr_wp=$!
      wait "$rr_vp"; rr_rc=$?
      kill "$rr_wp"
      printf '\\n@rc=%s' "$rr_rc"
    } 2>/dev/null )
    rr_put runc_version "\${rr_out%@rc=*}" "\${rr_out##*@rc=}"
  fi
  rr_put df_runc_dir "$(rr_df "$(dirname "$rr_runc")")"
fi
rr_put df_state_dir "$(rr_df ${q(STATE_DIR)})"

rr_put sysctl_live "$(cat /proc/sys/fs/pipe-user-pages-soft 2>/dev/null)"
for rr_sd in ${SYSCTL_DIRS.map((d) => q(d)).join(' ')}; do
  [ -d "$rr_sd" ] || continue
  rr_put sysctl_dir "$rr_sd"
  for rr_f in "$rr_sd"/*.conf; do
    { [ -e "$rr_f" ] || [ -L "$rr_f" ]; } || continue
    [ -d "$rr_f" ] && continue
    rr_sysfile "$rr_f"
  done
done
[ -e ${q(SYSCTL_CONF)} ] && rr_sysfile ${q(SYSCTL_CONF)}

# runc init processes older than ${stuckAfter}s: procps ps when it knows etimes, else /proc (busybox)
if ps -eo etimes= >/dev/null 2>&1; then
  rr_n=$(ps -eo etimes=,args= | awk '$1 > ${stuckAfter} && $2 ~ /(^|\\/)runc$/ && $3 == "init" { n++ } END { print n + 0 }')
else
  rr_hz=$(getconf CLK_TCK 2>/dev/null) || rr_hz=
  [ -n "$rr_hz" ] || rr_hz=100
  rr_up=$(cut -d. -f1 /proc/uptime)
  rr_n=0
  for rr_p in /proc/[0-9]*; do
    # argv[0] and argv[1] only: a shell running this very script has the pattern in its argv[2]
    rr_c=$(tr '\\000' '\\n' < "$rr_p/cmdline" 2>/dev/null | head -n 2 | tr '\\n' ' ') || continue
    case $rr_c in 'runc init ' | */'runc init ') ;; *) continue ;; esac
    rr_st=$(cat "$rr_p/stat" 2>/dev/null) || continue
    set -- \${rr_st##*) }
    shift 19
    [ $((rr_up - $1 / rr_hz)) -gt ${stuckAfter} ] && rr_n=$((rr_n + 1))
  done
fi
rr_put stuck_runc_init "$rr_n"

[ -f ${q(stateFile)} ] && rr_put state "$(cat ${q(stateFile)})"
printf '%s\\n' ${q(FACTS_END)}
exit 0
`;
}
