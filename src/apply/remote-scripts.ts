// The remote scripts that change a node's binary: stage, backup, swap. Pure
// builders; node-upgrade.ts runs them. The target path is only ever written by
// rename(2) of a file in its own directory whose digest was checked just before.
import { posix } from 'node:path';
import { q } from '../core/shell.js';
import { STATE_DIR } from '../core/types.js';
import { runToken } from './run-token.js';
import { META_COPY, VERSION_LINE, prelude, writeStateFromStdin } from './script-common.js';
import { backupDir } from './node-state.js';

/** Backups kept besides the ones a record needs. */
export const KEEP_BACKUPS = 3;

/** Temp names next to the target: same filesystem, so rename(2) is atomic; never exactly the target's name. */
export function tempPaths(realPath: string, runId: string) {
  const dir = posix.dirname(realPath);
  const prefix = `${dir}/.${posix.basename(realPath)}.runc-rollout.`;
  const token = runToken(runId);
  return { dir, prefix, staged: `${prefix}${token}.new`, restore: `${prefix}${token}.restore` };
}

/**
 * Stage in one round trip: stdin (the binary, or with `gzip` the binary
 * gzip'd once per release on the controller, inflated here) to the staged
 * file, checked against the release digest before anything else may use it;
 * then the replaced file's owner, group, mode, capabilities and label
 * (rr_meta), fsync, and its `--version`. A wrong digest or a short write
 * leaves nothing behind.
 */
export function buildStageScript(o: { realPath: string; staged: string; sha256: string; gzip: boolean }): string {
  const dir = posix.dirname(o.realPath);
  // gzip writes the file itself: its own exit status and error, no pipe into dd
  const write = o.gzip ? `gzip -dc >"$RR_S"` : `dd of="$RR_S" bs=1M status=none`;
  const what = o.gzip ? "gzip's error above: a corrupt stream, disk full" : "dd's error above: disk full, read-only filesystem";
  return `${prelude()}${META_COPY}${VERSION_LINE}RR_S=${q(o.staged)}
RR_T=${q(o.realPath)}
[ -d ${q(dir)} ] || rr_die ${q(`directory ${dir} does not exist`)}
umask 077
if ! ${write}; then
  rm -f "$RR_S"
  df -Pk ${q(dir)} >&2 || :
  rr_die "writing $RR_S failed (${what}?); the partial file was removed"
fi
umask 022
rr_put uploaded
rr_dig "$RR_S"
if [ "$RR_DIG" != ${q(o.sha256)} ]; then
  rm -f "$RR_S"
  rr_die "staged file has sha256 $RR_DIG, expected "${q(o.sha256)}"; removed"
fi
# Where SELinux labels runc (container_runtime_exec_t), a new file would get its folder's default label.
rr_meta "$RR_T" "$RR_S" || { rm -f "$RR_S"; rr_die "could not give $RR_S the owner, mode, capabilities and label of $RR_T (error above); removed"; }
# data and metadata on disk before the swap renames it over the target
sync -- "$RR_S"
rr_put sha "$RR_DIG"
rr_version "$RR_S"
rr_putline vline "$RR_VER"
`;
}

export interface BackupScriptOptions {
  realPath: string;
  /** Digest the lock step saw; the script refuses if the binary changed since. */
  currentSha256: string;
  reuse: string | null;
  create: string | null;
  protect: string[];
  runId: string;
  stateDir?: string;
}

/**
 * Backup (or reuse of a verified one) carrying the original's owner, mode,
 * capabilities and label (a rollback takes them from it), rotation, then
 * state.json from stdin; one sync makes the backup and both renames durable.
 */
export function buildBackupScript(o: BackupScriptOptions): string {
  const dir = backupDir(o.stateDir ?? STATE_DIR);
  const tmp = `${dir}/.tmp.${runToken(o.runId)}`;
  const keep = o.reuse ?? (o.create as string);
  const make = o.reuse
    ? `rr_dig ${q(o.reuse)}
[ "$RR_DIG" = "$RR_CUR" ] || rr_die ${q(`backup ${o.reuse} no longer matches the current binary`)}
rr_meta "$RR_T" ${q(o.reuse)} || rr_die ${q(`could not give backup ${o.reuse} the owner, mode, capabilities and label of ${o.realPath} (error above)`)}
rr_put backup-reused
`
    : `if ! dd if="$RR_T" of=${q(tmp)} bs=1M status=none; then
  rm -f ${q(tmp)}
  rr_die "copying $RR_T to $RR_BK failed (dd's error above: disk full?); the partial copy was removed"
fi
rr_meta "$RR_T" ${q(tmp)} || { rm -f ${q(tmp)}; rr_die "could not give the backup the owner, mode, capabilities and label of $RR_T (error above)"; }
rr_dig ${q(tmp)}
[ "$RR_DIG" = "$RR_CUR" ] || { rm -f ${q(tmp)}; rr_die 'backup copy does not match the current binary'; }
mv -f ${q(tmp)} ${q(keep)}
rr_put backup-created
`;
  const protect = o.protect.map((p) => `"$RR_BK/$rr_n" = ${q(p)}`).join(' ] || [ ');
  return `${prelude()}${META_COPY}RR_T=${q(o.realPath)}
RR_CUR=${q(o.currentSha256)}
RR_BK=${q(dir)}
rr_dig "$RR_T"
[ "$RR_DIG" = "$RR_CUR" ] || rr_die "runc at $RR_T changed since the lock step: sha256 $RR_DIG, expected $RR_CUR"
# backups are root's alone: a setuid or capable copy must not be reachable
[ -d "$RR_BK" ] || { mkdir -p "$RR_BK" && chmod 0700 "$RR_BK"; }
${make}set -- "$RR_BK"/runc-*
# rotation reads the folder only when there is something to rotate
if [ $# -gt ${KEEP_BACKUPS} ]; then
  RR_I=0
  for rr_n in $(ls -1t "$RR_BK" | grep -E '^runc-[A-Za-z0-9.+~_-]+$' || :); do
    RR_I=$((RR_I + 1))
    [ "$RR_I" -gt ${KEEP_BACKUPS} ] || continue
    ${protect ? `if [ ${protect} ]; then continue; fi
    ` : ''}rm -f "$RR_BK/$rr_n"
    rr_puthex rotated "$RR_BK/$rr_n"
  done
fi
${writeStateFromStdin(o.stateDir, [keep, dir])}`;
}

/**
 * Re-checks the staged digest and that the target is still the file the
 * backup step saw, renames, records it (one sync for both directories), and
 * reads back digest and version.
 */
export function buildSwapScript(o: { staged: string; realPath: string; sha256: string; currentSha256: string; stateDir?: string }): string {
  return `${prelude()}${VERSION_LINE}RR_S=${q(o.staged)}
RR_T=${q(o.realPath)}
[ -x "$RR_S" ] || rr_die "staged file $RR_S is missing or not executable; not swapped"
rr_dig "$RR_S"
[ "$RR_DIG" = ${q(o.sha256)} ] || rr_die "staged file no longer has the release digest; not swapped"
rr_dig "$RR_T"
[ "$RR_DIG" = ${q(o.currentSha256)} ] || rr_die "runc at $RR_T changed since the backup: sha256 $RR_DIG, expected ${o.currentSha256}; not swapped"
mv -f "$RR_S" "$RR_T"
rr_put swapped
${writeStateFromStdin(o.stateDir, [posix.dirname(o.realPath)])}rr_dig "$RR_T"
rr_put sha "$RR_DIG"
rr_version "$RR_T"
rr_putline vline "$RR_VER"
`;
}

/** Digest and version of the target (rollback's report of what the node runs). */
export function buildReadBinaryScript(realPath: string): string {
  return `${prelude()}${VERSION_LINE}RR_T=${q(realPath)}
rr_dig "$RR_T"
rr_put sha "$RR_DIG"
rr_version "$RR_T"
rr_putline vline "$RR_VER"
`;
}
