// Remote scripts for fs.pipe-user-pages-soft: apply (live + persisted) and
// restore. Only our key is ever written; `sysctl --system` is never run (it
// would re-apply every other setting of the node too).
import { posix } from 'node:path';
import { q } from '../core/shell.js';
import { SYSCTL_DROPIN, SYSCTL_KEY, SYSCTL_TARGET } from '../core/types.js';
import { prelude, syncPaths, writeStateFromStdin } from './script-common.js';

export const PROC_KEY = `/proc/sys/${SYSCTL_KEY.replace(/\./g, '/')}`;
/** Prefix of a line we commented out; no `/`, `&`, `\` or `|`: it goes into a sed replacement. */
export const COMMENT_MARKER = '# runc-rollout: overridden by 99-runc-rollout.conf: ';

export interface SysctlApplyOptions {
  runId: string;
  commentOut: { path: string; lines: number[]; backupPath: string | null }[];
  dropinBackup: string | null;
  target?: number;
  dropin?: string;
  procKey?: string;
  stateDir?: string;
}

function backupFile(src: string, dst: string): string {
  return `mkdir -p ${q(posix.dirname(dst))}
chmod 0700 ${q(posix.dirname(dst))}
# a backup already taken by this run is the pristine one: never overwrite it
if [ ! -e ${q(dst)} ]; then
  cp -p ${q(src)} ${q(`${dst}.tmp`)} || rr_die ${q(`could not back up ${src}`)}
  mv -f ${q(`${dst}.tmp`)} ${q(dst)}
fi
`;
}

/** The drop-in a run writes (state.json records its digest: a rollback removes only this exact file). */
export function dropinContent(runId: string, target = SYSCTL_TARGET): string {
  return `# Written by runc-rollout (run ${runId.replace(/[\r\n]/g, ' ')}). runc 1.0.0-rc93 hangs when pipes shrink;\n# keep ${SYSCTL_KEY} at the kernel default.\n${SYSCTL_KEY} = ${target}\n`;
}

/**
 * Backups first, then state.json (stdin) naming them, then the drop-in, the
 * commented-out lines and the live value. Lines are re-checked before they are
 * touched: a file edited since the plan is refused, not guessed at.
 */
export function buildSysctlApplyScript(o: SysctlApplyOptions): string {
  const target = o.target ?? SYSCTL_TARGET;
  const dropin = o.dropin ?? SYSCTL_DROPIN;
  const procKey = o.procKey ?? PROC_KEY;
  const backupPaths = [...o.commentOut.flatMap((c) => (c.backupPath ? [c.backupPath] : [])), ...(o.dropinBackup ? [o.dropinBackup] : [])];
  const backups = [
    ...o.commentOut.filter((c) => c.backupPath).map((c) => backupFile(c.path, c.backupPath as string)),
    ...(o.dropinBackup ? [backupFile(dropin, o.dropinBackup)] : []),
  ].join('');
  const edits = o.commentOut
    .map((c) => {
      const checks = c.lines
        .map(
          (n) => `RR_L=$(sed -n ${q(`${Math.trunc(n)}p`)} "$RR_F")
case $RR_L in
  ${q(COMMENT_MARKER)}*) ;;
  *) printf '%s\\n' "$RR_L" | grep -q 'pipe-user-pages-soft' || rr_die "$RR_F line ${Math.trunc(n)} no longer sets ${SYSCTL_KEY} (edited since the plan?); re-run plan"
     RR_SED="\${RR_SED}${Math.trunc(n)}s/^/\${RR_MARK}/
" ;;
esac
`,
        )
        .join('');
      return `RR_F=${q(c.path)}
RR_SED=
${checks}if [ -n "$RR_SED" ]; then
  cp -p "$RR_F" "$RR_F.runc-rollout.tmp"
  sed -e "$RR_SED" "$RR_F" >"$RR_F.runc-rollout.tmp" || { rm -f "$RR_F.runc-rollout.tmp"; rr_die "could not edit $RR_F"; }
  sync -- "$RR_F.runc-rollout.tmp"
  mv -f "$RR_F.runc-rollout.tmp" "$RR_F" || { rm -f "$RR_F.runc-rollout.tmp"; rr_die "could not replace $RR_F"; }
  rr_puthex commented "$RR_F"
fi
`;
    })
    .join('');
  const content = dropinContent(o.runId, target);
  return `${prelude()}
# the sed program is built from line numbers and this fixed marker only
RR_MARK=${q(COMMENT_MARKER)}
${backups}${writeStateFromStdin(o.stateDir, backupPaths.flatMap((b) => [b, posix.dirname(b)]))}mkdir -p ${q(posix.dirname(dropin))}
printf '%s' ${q(content)} >${q(`${dropin}.runc-rollout.tmp`)}
chmod 0644 ${q(`${dropin}.runc-rollout.tmp`)}
sync -- ${q(`${dropin}.runc-rollout.tmp`)}
mv -f ${q(`${dropin}.runc-rollout.tmp`)} ${q(dropin)}
rr_put dropin-written
${edits}${syncPaths([...new Set([posix.dirname(dropin), ...o.commentOut.map((c) => posix.dirname(c.path))])])}if ! printf '%s\\n' ${target} 2>/dev/null >${q(procKey)}; then
  rr_die ${q(`cannot write ${SYSCTL_KEY} live (${procKey} refused the write)`)}
fi
RR_LIVE=$(cat ${q(procKey)})
[ "$RR_LIVE" = ${target} ] || rr_die "${SYSCTL_KEY} reads back $RR_LIVE after writing ${target}"
rr_put live "$RR_LIVE"
`;
}
