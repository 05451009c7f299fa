// Putting a node back to a state.json record: the binary by stage-and-rename
// of its backup, the sysctl files from their backups, the live value. Every
// part is idempotent (skipped when already in place). The sysctl parts follow
// the binary: restored only once the original binary is back, so the node
// never pairs the old runc with the new values or the reverse; each sysctl
// part is attempted even when another one failed.
//
// A restore only replaces what the record's change put there: a runc that is
// neither the record's target nor its original, a sysctl file that is not as
// the change left it, a live value the change did not set, was changed since
// by someone else (a package upgrade, a hand fix). It is left alone and
// reported (`*-changed` records), unless `overwriteChanged` (rollback
// --overwrite-changed) says to replace it anyway.
// The same plan also renders as the commands an SRE runs by hand.
import { posix } from 'node:path';
import { q } from '../core/shell.js';
import { SYSCTL_KEY, SYSCTL_TARGET, type NodeState, type SysctlFileRecord } from '../core/types.js';
import { META_COPY, prelude, syncPaths } from './script-common.js';
import { COMMENT_MARKER, PROC_KEY } from './sysctl-scripts.js';

export interface RestorePlan {
  realPath: string;
  /** Digest to restore; the backup must have it. */
  originalSha256: string;
  /** The digest the change installed: besides the original, the only runc the restore replaces. */
  targetSha256: string;
  /** '' when the record never changed the binary. */
  backupPath: string;
  /** The backup carries the original's owner, mode, capabilities and label; else they come from the runc in place (older records). */
  backupMetadata: boolean;
  /** Temp file next to the target for the stage-and-rename. */
  restoreTemp: string;
  /** Leftovers to remove first (this run's staged file). */
  remove: string[];
  /** Also remove every `<prefix>*` file: temp files of any run next to the target. */
  cleanPrefix?: string;
  files: SysctlFileRecord[];
  liveBefore: number | null;
  /** The live value the change set (null: it set none); a live value that is neither this nor liveBefore was changed since. */
  liveSet: number | null;
  procKey?: string;
  /** Replace a runc, sysctl file or live value even when it was changed since the change. */
  overwriteChanged?: boolean;
}

export function buildRestoreScript(p: RestorePlan): string {
  const procKey = p.procKey ?? PROC_KEY;
  const files = p.files
    .map(
      (f, i) => `rr_file ${i} ${q(f.path)} ${q(f.backupPath ?? '')} ${q(f.written ?? (f.commented ? 'commented' : ''))}
case $? in 0) ;; 2) RR_LEFT="$RR_LEFT file" ;; *) RR_BAD="$RR_BAD file" ;; esac
`,
    )
    .join('');
  const ours = p.liveSet === null ? '' : ` ] && [ "$rr_lv" != ${p.liveSet}`;
  const live =
    p.liveBefore === null
      ? ''
      : `rr_lv=
read -r rr_lv <${q(procKey)} 2>/dev/null
if [ "$rr_lv" != ${p.liveBefore} ]; then
  if [ "$RR_FORCE" = 0 ] && [ -n "$rr_lv"${ours} ]; then
    rr_put live-changed "$rr_lv"
    RR_LEFT="$RR_LEFT live"
  elif printf '%s\\n' ${p.liveBefore} 2>/dev/null >${q(procKey)} && read -r rr_lv <${q(procKey)} && [ "$rr_lv" = ${p.liveBefore} ]; then
    rr_put live-restored ${p.liveBefore}
  else
    echo ${q(`could not set ${SYSCTL_KEY} back to ${p.liveBefore}`)} >&2
    RR_BAD="$RR_BAD live"
  fi
fi
`;
  const leftovers = [...p.remove.map(q), ...(p.cleanPrefix ? [`${q(p.cleanPrefix)}*`] : [])];
  // Where the restored runc takes its owner, mode, capabilities and label from.
  const meta = p.backupMetadata ? `rr_meta "$RR_BK" "$RR_RT"` : `if [ -e "$RR_T" ]; then rr_meta "$RR_T" "$RR_RT"; else chmod 0755 "$RR_RT"; fi`;
  const dirs = [posix.dirname(p.realPath), ...p.files.map((f) => posix.dirname(f.path))];
  return `${prelude()}${META_COPY}set +e
RR_T=${q(p.realPath)}
RR_ORIG=${q(p.originalSha256)}
RR_TGT=${q(p.targetSha256)}
RR_BK=${q(p.backupPath)}
RR_RT=${q(p.restoreTemp)}
RR_FORCE=${p.overwriteChanged ? 1 : 0}
RR_MARK=${q(COMMENT_MARKER)}
RR_BAD=
RR_LEFT=
RR_CH=
${
  leftovers.length
    ? `set --
for rr_f in ${leftovers.join(' ')}; do [ -e "$rr_f" ] && set -- "$@" "$rr_f"; done
[ $# = 0 ] || { rm -f -- "$@" && rr_put cleaned $#; }
`
    : ''
}# 0: in place or restored; 2: changed since the change, left alone; 1: failed
rr_binary() {
  if [ -e "$RR_T" ]; then
    rr_dig "$RR_T" || { echo "cannot read $RR_T" >&2; return 1; }
    [ "$RR_DIG" = "$RR_ORIG" ] && { rr_put binary-in-place; return 0; }
    if [ "$RR_DIG" != "$RR_TGT" ] && [ "$RR_FORCE" = 0 ]; then rr_put binary-changed "$RR_DIG"; return 2; fi
  fi
  [ -n "$RR_BK" ] && [ -f "$RR_BK" ] || { echo "no backup to restore $RR_T from ($RR_BK)" >&2; return 1; }
  dd if="$RR_BK" of="$RR_RT" bs=1M status=none || { rm -f "$RR_RT"; echo "copying the backup next to $RR_T failed (disk full?)" >&2; return 1; }
  rr_dig "$RR_RT" && [ "$RR_DIG" = "$RR_ORIG" ] || { rm -f "$RR_RT"; echo "backup $RR_BK does not have sha256 $RR_ORIG" >&2; return 1; }
  ${meta} || { rm -f "$RR_RT"; echo "could not give the restored runc its owner, mode, capabilities and label (error above)" >&2; return 1; }
  sync -- "$RR_RT" && mv -f "$RR_RT" "$RR_T" || { rm -f "$RR_RT"; echo "could not rename the restored binary over $RR_T" >&2; return 1; }
  RR_CH=1
  rr_put binary-restored
}
# $1 index in the record, $2 file, $3 its backup ('': the change created it), $4 what the change left: a sha256, 'commented', '' (not recorded)
rr_file() {
  rr_now=
  if [ -e "$2" ]; then rr_dig "$2" || return 1; rr_now=$RR_DIG; fi
  if [ -n "$3" ]; then
    [ -f "$3" ] || { echo "backup $3 of $2 is missing" >&2; return 1; }
    rr_dig "$3" || return 1
    [ "$rr_now" = "$RR_DIG" ] && return 0
  else
    [ -n "$rr_now" ] || return 0
  fi
  if [ "$RR_FORCE" = 0 ] && [ -n "$rr_now" ]; then
    case $4 in
      '') ;;
      commented)
        rr_x=$(sed "s/^$RR_MARK//" "$2" | sha256sum) || return 1
        [ "\${rr_x%% *}" = "$RR_DIG" ] || { rr_put file-changed "$1"; return 2; } ;;
      *) [ "$rr_now" = "$4" ] || { rr_put file-changed "$1"; return 2; } ;;
    esac
  fi
  RR_CH=1
  if [ -z "$3" ]; then
    rm -f "$2" || return 1
    rr_put file-removed "$1"
    return 0
  fi
  cp -p "$3" "$2.runc-rollout.tmp" && sync -- "$2.runc-rollout.tmp" && mv -f "$2.runc-rollout.tmp" "$2" || { rm -f "$2.runc-rollout.tmp"; echo "could not restore $2 from $3" >&2; return 1; }
  rr_put file-restored "$1"
}
rr_binary
case $? in
  0)
${files}${live}    ;;
  2)
    RR_LEFT="$RR_LEFT binary"
    echo "runc at $RR_T is not what this change installed: left alone, and the sysctl values and files with it" >&2 ;;
  *)
    RR_BAD="$RR_BAD binary"
    # The release binary stays in place: the sysctl values stay those that go with it.
    echo 'sysctl values and files left as they are, matching the runc still in place' >&2 ;;
esac
[ -z "$RR_CH" ] || ${syncPaths([...new Set(dirs)]).trimEnd()}
if [ -n "$RR_BAD" ]; then
  rr_put restore-failed $RR_BAD
  exit 1
fi
if [ -n "$RR_LEFT" ]; then
  rr_put restore-left $RR_LEFT
  exit 0
fi
rr_put restore-ok
`;
}

/** The same restore as shell commands for an SRE to run as root on the node. */
export function manualRestoreCommands(p: RestorePlan): string[] {
  const procKey = p.procKey ?? PROC_KEY;
  const out: string[] = [];
  for (const f of p.remove) out.push(`rm -f ${q(f)}`);
  if (p.cleanPrefix) out.push(`rm -f ${q(p.cleanPrefix)}*`);
  if (p.backupPath) {
    const from = p.backupMetadata ? p.backupPath : p.realPath;
    out.push(
      `cp ${q(p.backupPath)} ${q(p.restoreTemp)}`,
      // owner, mode, file capabilities (and label) of the original, after the data: a write clears capabilities
      `cp --attributes-only --preserve=mode,ownership,xattr ${q(from)} ${q(p.restoreTemp)} && sync ${q(p.restoreTemp)}`,
      // One chained line: a pasted block must not rename a backup whose digest is wrong.
      `echo ${q(`${p.originalSha256}  ${p.restoreTemp}`)} | sha256sum -c - && mv -f ${q(p.restoreTemp)} ${q(p.realPath)} && sync ${q(posix.dirname(p.realPath))}`,
      `echo ${q(`${p.originalSha256}  ${p.realPath}`)} | sha256sum -c -`,
    );
  }
  for (const f of p.files) {
    out.push(f.backupPath ? `cp -p ${q(f.backupPath)} ${q(f.path)}` : `rm -f ${q(f.path)}`);
  }
  if (p.liveBefore !== null) out.push(`echo ${p.liveBefore} > ${q(procKey)}`);
  return out;
}

/** The restore a state.json record calls for. */
export function restorePlanFromState(
  s: Pick<NodeState, 'runcPath' | 'original' | 'target' | 'sysctl' | 'phase'>,
  restoreTemp: string,
  remove: string[],
  cleanPrefix?: string,
  overwriteChanged = false,
): RestorePlan {
  return {
    realPath: s.runcPath,
    originalSha256: s.original.sha256,
    targetSha256: s.target.sha256,
    backupPath: s.original.backupPath,
    backupMetadata: s.original.metadata === 'backup',
    restoreTemp,
    remove,
    files: s.sysctl.files,
    liveBefore: s.sysctl.liveBefore,
    // Only the sysctl step sets the live value; before it, the value is the one the record found.
    liveSet: s.phase === 'sysctl-applied' || s.phase === 'done' ? SYSCTL_TARGET : null,
    ...(cleanPrefix ? { cleanPrefix } : {}),
    ...(overwriteChanged ? { overwriteChanged } : {}),
  };
}
