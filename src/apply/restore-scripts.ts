// Putting a node back to a state.json record: the binary by stage-and-rename
// of its backup, the sysctl files from their backups, the live value. Every
// part is idempotent (skipped when already in place). The sysctl parts follow
// the binary: restored only once the original binary is back, so the node
// never pairs the old runc with the new values or the reverse; each sysctl
// part is attempted even when another one failed.
// The same plan also renders as the commands an SRE runs by hand.
import { q } from '../core/shell.js';
import { SYSCTL_KEY } from '../core/types.js';
import { prelude } from './script-common.js';
import { PROC_KEY } from './sysctl-scripts.js';

export interface RestorePlan {
  realPath: string;
  /** Digest to restore; the backup must have it. */
  originalSha256: string;
  /** '' when the record never changed the binary. */
  backupPath: string;
  /** Temp file next to the target for the stage-and-rename. */
  restoreTemp: string;
  /** Leftovers to remove first (this run's staged file). */
  remove: string[];
  /** Also remove every `<prefix>*` file: temp files of any run next to the target. */
  cleanPrefix?: string;
  files: { path: string; backupPath: string | null }[];
  liveBefore: number | null;
  procKey?: string;
}

export function buildRestoreScript(p: RestorePlan): string {
  const procKey = p.procKey ?? PROC_KEY;
  const files = p.files
    .map((f) =>
      f.backupPath
        ? `rr_file_restore ${q(f.path)} ${q(f.backupPath)} || RR_BAD="$RR_BAD file"\n`
        : `rm -f ${q(f.path)} && rr_puthex file-removed ${q(f.path)} || RR_BAD="$RR_BAD file"\n`,
    )
    .join('');
  const live =
    p.liveBefore === null
      ? ''
      : `if [ "$(cat ${q(procKey)} 2>/dev/null)" != ${p.liveBefore} ]; then
  if printf '%s\\n' ${p.liveBefore} 2>/dev/null >${q(procKey)} && [ "$(cat ${q(procKey)})" = ${p.liveBefore} ]; then
    rr_put live-restored ${p.liveBefore}
  else
    echo ${q(`could not set ${SYSCTL_KEY} back to ${p.liveBefore}`)} >&2
    RR_BAD="$RR_BAD live"
  fi
fi
`;
  return `${prelude()}
set +e
RR_T=${q(p.realPath)}
RR_ORIG=${q(p.originalSha256)}
RR_BK=${q(p.backupPath)}
RR_RT=${q(p.restoreTemp)}
RR_BAD=
${p.remove.map((f) => `rm -f ${q(f)}\n`).join('')}${
    p.cleanPrefix
      ? `for rr_f in ${q(p.cleanPrefix)}*; do
  [ -e "$rr_f" ] || continue
  rm -f "$rr_f" && rr_puthex cleaned "$rr_f"
done
`
      : ''
  }rr_binary() {
  [ "$(rr_sha "$RR_T" 2>/dev/null)" = "$RR_ORIG" ] && { rr_put binary-in-place; return 0; }
  [ -n "$RR_BK" ] && [ -f "$RR_BK" ] || { echo "no backup to restore $RR_T from ($RR_BK)" >&2; return 1; }
  rm -f "$RR_RT"
  dd if="$RR_BK" of="$RR_RT" bs=1M conv=fsync status=none || { rm -f "$RR_RT"; echo "copying the backup next to $RR_T failed (disk full?)" >&2; return 1; }
  [ "$(rr_sha "$RR_RT")" = "$RR_ORIG" ] || { rm -f "$RR_RT"; echo "backup $RR_BK does not have sha256 $RR_ORIG" >&2; return 1; }
  # keep the SELinux label of the file being replaced (see the stage check)
  [ -e "$RR_T" ] && command -v chcon >/dev/null 2>&1 && chcon --reference="$RR_T" "$RR_RT" 2>/dev/null
  chmod 0755 "$RR_RT" && mv -f "$RR_RT" "$RR_T" || { rm -f "$RR_RT"; echo "could not rename the restored binary over $RR_T" >&2; return 1; }
  [ "$(rr_sha "$RR_T")" = "$RR_ORIG" ] || { echo "$RR_T does not have sha256 $RR_ORIG after the restore" >&2; return 1; }
  rr_put binary-restored
}
rr_file_restore() {
  [ -f "$2" ] || { echo "backup $2 of $1 is missing" >&2; return 1; }
  [ -f "$1" ] && [ "$(rr_sha "$1")" = "$(rr_sha "$2")" ] && return 0
  cp -p "$2" "$1.runc-rollout.tmp" && mv -f "$1.runc-rollout.tmp" "$1" || { rm -f "$1.runc-rollout.tmp"; echo "could not restore $1 from $2" >&2; return 1; }
  rr_puthex file-restored "$1"
}
if rr_binary; then
  :
${files}${live}else
  RR_BAD="$RR_BAD binary"
  # The release binary stays in place: the sysctl values stay those that go with it.
  echo 'sysctl values and files left as they are, matching the runc still in place' >&2
fi
if [ -n "$RR_BAD" ]; then
  rr_put restore-failed $RR_BAD
  exit 1
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
    out.push(
      `cp ${q(p.backupPath)} ${q(p.restoreTemp)} && sync`,
      // One chained line: a pasted block must not rename a backup whose digest is wrong.
      `echo ${q(`${p.originalSha256}  ${p.restoreTemp}`)} | sha256sum -c - && chmod 0755 ${q(p.restoreTemp)} && mv -f ${q(p.restoreTemp)} ${q(p.realPath)}`,
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
  s: { runcPath: string; original: { sha256: string; backupPath: string }; sysctl: { liveBefore: number | null; files: { path: string; backupPath: string | null }[] } },
  restoreTemp: string,
  remove: string[],
  cleanPrefix?: string,
): RestorePlan {
  return {
    realPath: s.runcPath,
    originalSha256: s.original.sha256,
    backupPath: s.original.backupPath,
    restoreTemp,
    remove,
    files: s.sysctl.files,
    liveBefore: s.sysctl.liveBefore,
    ...(cleanPrefix ? { cleanPrefix } : {}),
  };
}
