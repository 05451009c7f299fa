// The node lock (STATE_DIR/lock) and the probe that runs under it in the same
// round trip. A lock names the SSH connection that holds it (the sshd process
// serving it, with its start time against pid reuse): while that process
// lives, the lock is held; once it is gone (controller killed, connection
// lost), the lock is stale and only --force-unlock breaks it.
import { q } from '../core/shell.js';
import { STATE_DIR, SYSCTL_DROPIN } from '../core/types.js';
import { first, parseRecords, prelude, unhex, writeStateFromStdin } from './script-common.js';
import { SMOKE_LABELS, smokePaths } from './smoke.js';
import { runToken } from './run-token.js';

export interface LockScriptOptions {
  runId: string;
  lockOwner: string;
  forceUnlock: boolean;
  /** The runc path to probe (inventory or plan); optional for rollback, which reads it from state.json. */
  runcPath?: string;
  stateDir?: string;
}

const TOOLS = ['sha256sum', 'timeout', 'od', 'dd', 'mv', 'ln', 'cp', 'sed', 'readlink', 'find'];

export function lockPath(stateDir = STATE_DIR): string {
  return `${stateDir}/lock`;
}

/** Lock content is line based: control characters in the owner would forge lines. */
function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 200);
}

export function buildLockScript(o: LockScriptOptions): string {
  const stateDir = o.stateDir ?? STATE_DIR;
  const sm = smokePaths(o.runId, stateDir);
  return `${prelude()}
for rr_t in ${TOOLS.join(' ')}; do
  command -v "$rr_t" >/dev/null 2>&1 || rr_die "required tool not found on the node: $rr_t"
done
# Replacing a root-owned binary needs root: say so, rather than fail later on a file we may not write.
RR_UID=$(id -u 2>/dev/null || :)
[ "$RR_UID" = 0 ] || rr_die "commands run as $(id -un 2>/dev/null || echo "uid $RR_UID"), not root: runc-rollout replaces a root-owned binary; connect as root, or set ssh.sudo: true for a user with passwordless sudo"
RR_SD=${q(stateDir)}
RR_LOCK=${q(lockPath(stateDir))}
RR_RUN=${q(oneLine(o.runId))}
rr_stat() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f"$2"; }
rr_conn() {
  rr_p=$$
  while [ -n "$rr_p" ] && [ "$rr_p" -gt 1 ] 2>/dev/null; do
    case $(cat "/proc/$rr_p/comm" 2>/dev/null) in sshd|sshd-session) echo "$rr_p"; return 0 ;; esac
    rr_p=$(rr_stat "$rr_p" 2)
  done
}
# 0: holder alive, 1: holder gone, 2: cannot tell
rr_alive() {
  rr_lp=$(sed -n 's/^pid=//p' "$RR_LOCK" 2>/dev/null | head -n 1)
  rr_ls=$(sed -n 's/^start=//p' "$RR_LOCK" 2>/dev/null | head -n 1)
  case $rr_lp in ''|*[!0-9]*) return 2 ;; esac
  [ -r "/proc/$rr_lp/stat" ] || return 1
  [ "$(rr_stat "$rr_lp" 20)" = "$rr_ls" ] || return 1
  return 0
}
# backups and state are root's alone; an existing dir keeps the mode its admin gave it
[ -d "$RR_SD" ] || { mkdir -p "$RR_SD"; chmod 0700 "$RR_SD"; }
RR_CP=$(rr_conn)
RR_CS=
[ -n "$RR_CP" ] && RR_CS=$(rr_stat "$RR_CP" 20)
RR_LT="$RR_SD/.lock.${runToken(o.runId)}.$$"
# A full disk must not leave the temp file behind (set -e would exit before the rm below).
printf 'owner=%s\\nrun=%s\\npid=%s\\nstart=%s\\ntime=%s\\n' ${q(oneLine(o.lockOwner))} "$RR_RUN" "$RR_CP" "$RR_CS" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$RR_LT" || {
  rm -f "$RR_LT"
  rr_die "cannot write the lock file in $RR_SD (disk full or read-only?)"
}
# link(2) fails when the name exists: creating the lock is atomic
if ln "$RR_LT" "$RR_LOCK" 2>/dev/null; then
  RR_GOT=acquired
else
  rr_puthex lockinfo "$(cat "$RR_LOCK" 2>/dev/null)"
  if rr_alive; then RR_AL=0; else RR_AL=$?; fi
  if [ "$RR_AL" = 0 ]; then
    RR_GOT=held
  elif [ ${o.forceUnlock ? 1 : 0} = 1 ]; then
    rm -f "$RR_LOCK"
    if ln "$RR_LT" "$RR_LOCK" 2>/dev/null; then RR_GOT=broken; else RR_GOT=held; fi
  else
    RR_GOT=stale
  fi
  [ "$RR_AL" = 2 ] && rr_put lockholder unknown
fi
rm -f "$RR_LT"
rr_put lock "$RR_GOT"
case $RR_GOT in acquired|broken) ;; *) exit 0 ;; esac

# Probe, under the lock.
[ -e /lib64 ] && rr_put lib64
command -v gzip >/dev/null 2>&1 && rr_put gzip
rr_puthex live "$(cat /proc/sys/fs/pipe-user-pages-soft 2>/dev/null || :)"
[ -e ${q(SYSCTL_DROPIN)} ] && rr_put dropin
[ -f "$RR_SD/state.json" ] && rr_puthex state "$(cat "$RR_SD/state.json")"
for rr_f in "$RR_SD"/backups/runc-*; do
  [ -f "$rr_f" ] || continue
  rr_put backup "$(rr_sha "$rr_f")" "$(printf '%s' "$rr_f" | rr_hex)"
done
RR_RUNC=${q(o.runcPath ?? '')}
RR_REAL=
if [ -n "$RR_RUNC" ] && [ -e "$RR_RUNC" ]; then
  RR_REAL=$(readlink -f "$RR_RUNC")
  rr_puthex real "$RR_REAL"
  rr_put sha "$(rr_sha "$RR_REAL")"
  [ -x "$RR_REAL" ] && rr_puthex version "$(timeout -k 2 20 "$RR_REAL" --version </dev/null 2>/dev/null | head -n 1 || :)"
  # Staged files of runs that died: the lock says none of them is still running.
  for rr_f in "$(dirname "$RR_REAL")/.$(basename "$RR_REAL").runc-rollout."*; do
    [ -e "$rr_f" ] || continue
    rm -f "$rr_f"
    rr_puthex cleaned "$rr_f"
  done
fi
# Smoke containers and bundles of runs that died. Their cgroups are found by
# the dead run's token only: /sys/fs/cgroup may be shared with other nodes'
# (or hosts') runs, whose containers are not ours to kill.
RR_SM=${q(sm.base)}
rr_cg_gone() {
  for rr_cg in $(find /sys/fs/cgroup -maxdepth 3 -type d -name "runc-rollout-smoke-$1" 2>/dev/null); do
    for rr_i in 1 2 3 4 5; do
      for rr_p in $(cat "$rr_cg/cgroup.procs" 2>/dev/null); do kill -9 "$rr_p" 2>/dev/null || :; done
      rmdir "$rr_cg" 2>/dev/null && break
      sleep 1
    done
    rr_puthex cleaned "$rr_cg"
  done
}
if [ -d "$RR_SM" ]; then
  for rr_d in "$RR_SM"/runc-root/*; do
    [ -e "$rr_d" ] || continue
    rr_id=$(basename "$rr_d")
    [ -n "$RR_REAL" ] && timeout -k 2 10 "$RR_REAL" --root "$RR_SM/runc-root" delete -f "$rr_id" >/dev/null 2>&1 || :
    rr_t=\${rr_id#runc-rollout-smoke-}
    for rr_l in ${SMOKE_LABELS.join(' ')}; do rr_t=\${rr_t%-$rr_l}; done
    case $rr_t in *[!A-Za-z0-9._-]*|'') ;; *) rr_cg_gone "$rr_t" ;; esac
    rm -rf "$rr_d"
    rr_puthex cleaned "$rr_d"
  done
  for rr_d in "$RR_SM"/*; do
    [ -e "$rr_d" ] && [ "$rr_d" != "$RR_SM/runc-root" ] || continue
    rr_t=$(basename "$rr_d")
    if [ -d "$rr_d" ]; then
      case $rr_t in *[!A-Za-z0-9._-]*|'') ;; *) rr_cg_gone "$rr_t" ;; esac
    fi
    rm -rf "$rr_d"
    rr_puthex cleaned "$rr_d"
  done
fi
`;
}

export interface LockProbe {
  lock: 'acquired' | 'broken' | 'held' | 'stale';
  /** The lock file found in place (held, stale or broken), raw. */
  lockInfo: string | null;
  holderUnknown: boolean;
  hasLib64: boolean;
  hasGzip: boolean;
  live: number | null;
  dropinExists: boolean;
  stateText: string | null;
  backups: { path: string; sha256: string }[];
  /** The resolved runc file (symlinks followed), when it exists. */
  realPath: string | null;
  sha256: string | null;
  versionLine: string | null;
  cleaned: string[];
}

export function parseLockProbe(stdout: string): LockProbe {
  const r = parseRecords(stdout);
  const lock = first(r, 'lock')?.[0];
  if (lock !== 'acquired' && lock !== 'broken' && lock !== 'held' && lock !== 'stale') {
    throw new Error('the lock script gave no verdict');
  }
  const liveText = unhex(first(r, 'live')?.[0]).trim();
  const sha = first(r, 'sha')?.[0] ?? null;
  const info = first(r, 'lockinfo');
  return {
    lock,
    lockInfo: info ? unhex(info[0]) : null,
    holderUnknown: r.has('lockholder'),
    hasLib64: r.has('lib64'),
    hasGzip: r.has('gzip'),
    live: /^\d+$/.test(liveText) ? Number(liveText) : null,
    dropinExists: r.has('dropin'),
    stateText: r.has('state') ? unhex(first(r, 'state')?.[0]) : null,
    backups: (r.get('backup') ?? []).filter((f) => /^[0-9a-f]{64}$/.test(f[0] ?? '')).map((f) => ({ sha256: f[0] as string, path: unhex(f[1]) })),
    realPath: r.has('real') ? unhex(first(r, 'real')?.[0]) : null,
    sha256: sha && /^[0-9a-f]{64}$/.test(sha) ? sha : null,
    versionLine: r.has('version') ? unhex(first(r, 'version')?.[0]).trim() || null : null,
    cleaned: (r.get('cleaned') ?? []).map((f) => unhex(f[0])),
  };
}

/** One-line summary of a lock file's content for messages. */
export function describeLock(info: string | null): string {
  if (!info) return 'lock file unreadable';
  const kv = new Map(info.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  return `owner ${kv.get('owner') || '?'}, run ${kv.get('run') || '?'}, since ${kv.get('time') || '?'}`;
}

export interface UnlockScriptOptions {
  runId: string;
  /** Files to remove first (the staged binary of a run that stopped before the swap). */
  remove?: string[];
  /** stdin carries a new state.json. */
  writeState?: boolean;
  /** NodeRun.smokeId: whose smoke bundle to remove (default: runId). */
  smokeId?: string;
  stateDir?: string;
  /** Read-only shell run first, whose failure is ignored (the stuck `runc init` report rides along). */
  before?: string;
}

/** Releases the lock only if this run holds it, and removes the run's smoke bundle. */
export function buildUnlockScript(o: UnlockScriptOptions): string {
  const stateDir = o.stateDir ?? STATE_DIR;
  const sm = smokePaths(o.smokeId ?? o.runId, stateDir);
  const removes = (o.remove ?? []).map((f) => `rm -f ${q(f)}\n[ ! -e ${q(f)} ] || rr_die ${q(`could not remove ${f}`)}\n`).join('');
  return `${prelude()}
${o.before ? `( ${o.before.trim()}
) || :
` : ''}${removes}rm -rf ${q(sm.bundle)}
# empty folders this run created and did not use
rmdir ${q(sm.root)} ${q(sm.base)} 2>/dev/null || :
rmdir ${q(`${stateDir}/backups`)} 2>/dev/null || :
${o.writeState ? writeStateFromStdin(stateDir) : ''}RR_LOCK=${q(lockPath(stateDir))}
if [ -f "$RR_LOCK" ] && grep -Fqx -- ${q(`run=${oneLine(o.runId)}`)} "$RR_LOCK"; then
  rm -f "$RR_LOCK"
  rr_put unlocked
else
  rr_put lock-not-ours
fi
`;
}
