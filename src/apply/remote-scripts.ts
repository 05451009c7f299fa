// The remote scripts that change a node's binary: stage, backup, swap. Pure
// builders; node-upgrade.ts runs them. The target path is only ever written by
// rename(2) of a file in its own directory whose digest was checked just before.
import { posix } from 'node:path';
import { q } from '../core/shell.js';
import { STATE_DIR } from '../core/types.js';
import { runToken } from './run-token.js';
import { prelude, writeStateFromStdin } from './script-common.js';
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

/** Upload: stdin -> staged file, fsync'd. A short write (disk full) leaves nothing behind. */
export function buildUploadScript(realPath: string, staged: string, gzip = false): string {
  return `${prelude()}
${uploadBody(realPath, staged, gzip)}`;
}

/** Digest, mode, SELinux label and `--version` of the staged file. A wrong digest removes it. */
export function buildStageCheckScript(staged: string, sha256: string, realPath?: string): string {
  return `${prelude()}
RR_S=${q(staged)}
${checkBody(sha256, realPath)}`;
}

/**
 * Upload and check in one round trip: what the node wrote is checked against
 * the release digest before anything else may use it. With `gzip` stdin is
 * the gzip'd binary (compressed once per release on the controller) and the
 * node inflates it; the digest is still that of the inflated file.
 */
export function buildStageScript(o: { realPath: string; staged: string; sha256: string; gzip: boolean }): string {
  return `${prelude()}
${uploadBody(o.realPath, o.staged, o.gzip)}${checkBody(o.sha256, o.realPath)}`;
}

function uploadBody(realPath: string, staged: string, gzip: boolean): string {
  const dir = posix.dirname(realPath);
  // A gzip error must name itself, not surface later as a wrong digest; dd's status is the pipeline's.
  const write = gzip
    ? `{ gzip -dc || echo "$?" >"$RR_S.gzrc"; } | dd of="$RR_S" bs=1M conv=fsync status=none`
    : `dd of="$RR_S" bs=1M conv=fsync status=none`;
  return `RR_S=${q(staged)}
[ -d ${q(dir)} ] || rr_die ${q(`directory ${dir} does not exist`)}
rm -f "$RR_S" "$RR_S.gzrc"
umask 077
if ! ${write}; then
  rm -f "$RR_S" "$RR_S.gzrc"
  df -Pk ${q(dir)} >&2 || :
  rr_die "writing $RR_S failed (dd's error above: disk full, read-only filesystem?); the partial file was removed"
fi
${gzip ? `if [ -e "$RR_S.gzrc" ]; then
  rm -f "$RR_S" "$RR_S.gzrc"
  rr_die "gzip -dc failed inflating the upload (its error above); the partial file was removed"
fi
` : ''}umask 022
rr_put uploaded
`;
}

function checkBody(sha256: string, realPath?: string): string {
  // Where SELinux labels runc (container_runtime_exec_t), a new file would get its folder's default label.
  const label = realPath ? `if command -v chcon >/dev/null 2>&1; then chcon --reference=${q(realPath)} "$RR_S" 2>/dev/null || :; fi
` : '';
  return `[ -f "$RR_S" ] || rr_die "staged file $RR_S is missing"
RR_GOT=$(rr_sha "$RR_S")
if [ "$RR_GOT" != ${q(sha256)} ]; then
  rm -f "$RR_S"
  rr_die "staged file has sha256 $RR_GOT, expected "${q(sha256)}"; removed"
fi
chmod 0755 "$RR_S"
${label}rr_put sha "$RR_GOT"
rr_puthex version "$(timeout -k 2 20 "$RR_S" --version </dev/null 2>&1 | head -n 1 || :)"
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

/** Backup (or reuse of a verified one), rotation, then state.json from stdin. */
export function buildBackupScript(o: BackupScriptOptions): string {
  const dir = backupDir(o.stateDir ?? STATE_DIR);
  const tmp = `${dir}/.tmp.${runToken(o.runId)}`;
  const make = o.reuse
    ? `[ "$(rr_sha ${q(o.reuse)})" = "$RR_CUR" ] || rr_die ${q(`backup ${o.reuse} no longer matches the current binary`)}
rr_puthex backup-reused ${q(o.reuse)}
`
    : `rm -f ${q(tmp)}
if ! dd if="$RR_T" of=${q(tmp)} bs=1M conv=fsync status=none; then
  rm -f ${q(tmp)}
  rr_die "copying $RR_T to $RR_BK failed (dd's error above: disk full?); the partial copy was removed"
fi
chmod 0755 ${q(tmp)}
[ "$(rr_sha ${q(tmp)})" = "$RR_CUR" ] || { rm -f ${q(tmp)}; rr_die 'backup copy does not match the current binary'; }
mv -f ${q(tmp)} ${q(o.create ?? '')}
rr_puthex backup-created ${q(o.create ?? '')}
`;
  const protect = o.protect.map((p) => `"$RR_BK/$rr_n" = ${q(p)}`).join(' ] || [ ');
  return `${prelude()}
RR_T=${q(o.realPath)}
RR_CUR=${q(o.currentSha256)}
RR_BK=${q(dir)}
RR_GOT=$(rr_sha "$RR_T")
[ "$RR_GOT" = "$RR_CUR" ] || rr_die "runc at $RR_T changed since the lock step: sha256 $RR_GOT, expected $RR_CUR"
mkdir -p "$RR_BK"
chmod 0700 "$RR_BK"
${make}RR_I=0
for rr_n in $(ls -1t "$RR_BK" | grep -E '^runc-[A-Za-z0-9.+~_-]+$' || :); do
  RR_I=$((RR_I + 1))
  [ "$RR_I" -gt ${KEEP_BACKUPS} ] || continue
  ${protect ? `if [ ${protect} ]; then continue; fi\n  ` : ''}rm -f "$RR_BK/$rr_n"
  rr_puthex rotated "$RR_BK/$rr_n"
done
${writeStateFromStdin(o.stateDir)}`;
}

/** Re-checks the staged digest, renames it over the target, records it, and reads back digest and version. */
export function buildSwapScript(o: { staged: string; realPath: string; sha256: string; stateDir?: string }): string {
  return `${prelude()}
RR_S=${q(o.staged)}
RR_T=${q(o.realPath)}
[ -x "$RR_S" ] || rr_die "staged file $RR_S is missing or not executable; not swapped"
[ "$(rr_sha "$RR_S")" = ${q(o.sha256)} ] || rr_die "staged file no longer has the release digest; not swapped"
mv -f "$RR_S" "$RR_T"
rr_put swapped
${writeStateFromStdin(o.stateDir)}rr_put sha "$(rr_sha "$RR_T")"
rr_puthex version "$(timeout -k 2 20 "$RR_T" --version </dev/null 2>&1 | head -n 1 || :)"
`;
}

/** Digest and version of the target (verify step for a node already at the target). */
export function buildReadBinaryScript(realPath: string): string {
  return `${prelude()}
RR_T=${q(realPath)}
rr_put sha "$(rr_sha "$RR_T")"
rr_puthex version "$(timeout -k 2 20 "$RR_T" --version </dev/null 2>&1 | head -n 1 || :)"
`;
}
