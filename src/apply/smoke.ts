// The smoke container: an engine-independent, image-free container run by the
// runc under test through the lifecycle containerd-shim drives (create, start,
// exec, kill, delete). Pure: builds the OCI config and the remote script; the
// pipeline (node-upgrade.ts) runs it.
import { q } from '../core/shell.js';
import { STATE_DIR } from '../core/types.js';
import { runToken } from './run-token.js';

/**
 * Argument-matching rules in the seccomp profile. libseccomp compiles each to
 * about one BPF instruction (8 bytes): 2048 rules make a ~16 KiB filter, larger
 * than a pipe shrunk to 1 or 2 pages (the rc93 hang needs filter > pipe), and
 * half the kernel's 4096-instruction cap (measured: ~4090 rules fail to load).
 */
export const SMOKE_SECCOMP_RULES = 2048;
/** setdomainname(name, len) with len >= 0x7fff0000: the kernel rejects any len > 64, so no real call matches. */
const NEVER_SYSCALL = 'setdomainname';
const NEVER_LEN_BASE = 0x7fff0000;

export const SMOKE_READY = 'runc-rollout-smoke-ready';

export interface SmokeConfigOptions {
  /** Whether the node has /lib64 (a bind mount of a missing source fails create). */
  hasLib64: boolean;
  /** cgroupsPath for the container: per run, so a leak is findable and removable by name. */
  cgroupName: string;
  rules?: number;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export function buildSmokeConfig(opts: SmokeConfigOptions): { [k: string]: Json } {
  const rules = opts.rules ?? SMOKE_SECCOMP_RULES;
  const syscalls: Json[] = [];
  for (let i = 0; i < rules; i++) {
    syscalls.push({ names: [NEVER_SYSCALL], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: NEVER_LEN_BASE + i, op: 'SCMP_CMP_EQ' }] });
  }
  const hostDirs = ['/bin', '/lib', ...(opts.hasLib64 ? ['/lib64'] : []), '/usr', '/sbin'];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      // exec (not a child) so `kill` reaches the process that holds the container open.
      args: ['/bin/sh', '-c', `echo ${SMOKE_READY}; exec sleep 600`],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc-rollout-smoke',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=1024k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=1024k'] },
      ...hostDirs.map((d) => ({ destination: d, type: 'bind', source: d, options: ['rbind', 'ro', 'nosuid', 'nodev'] })),
    ],
    linux: {
      cgroupsPath: `/${opts.cgroupName}`,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls },
    },
  };
}

export const SMOKE_LABELS = ['staged', 'installed', 'sysctl', 'restored'] as const;
export type SmokeLabel = (typeof SMOKE_LABELS)[number];

export interface SmokeScriptOptions {
  /** The runc binary under test. */
  runcPath: string;
  runId: string;
  label: SmokeLabel;
  /** Overall deadline for the whole lifecycle, seconds. */
  timeoutSec: number;
  /** Write the bundle from stdin first (config.json, gzip'd when `gzip`). */
  prepare: false | { gzip: boolean };
  /** Inventory smoke.command, run after the built-in lifecycle passed. */
  customCommand?: string;
  stateDir?: string;
}

export function smokePaths(runId: string, stateDir = STATE_DIR) {
  const token = runToken(runId);
  const base = `${stateDir}/smoke`;
  return {
    base,
    /** Separate state root: the engine's containers are never listed, touched or named. */
    root: `${base}/runc-root`,
    bundle: `${base}/${token}`,
    cgroupName: `runc-rollout-smoke-${token}`,
    containerId: (label: SmokeLabel) => `runc-rollout-smoke-${token}-${label}`,
  };
}

/**
 * The remote smoke script. Prints `@@rr smoke ok` on success; on failure
 * `@@rr smoke failed <step>` on stdout and the step's stderr tail on stderr,
 * exits non-zero, and has removed the container, its cgroup and the bundle.
 */
export function buildSmokeScript(o: SmokeScriptOptions): string {
  const p = smokePaths(o.runId, o.stateDir);
  const id = p.containerId(o.label);
  const marker = `runc-rollout-marker-${runToken(o.runId)}-${o.label}-${Date.now().toString(36)}`;
  const secs = Math.max(5, Math.ceil(o.timeoutSec));
  const prepare = o.prepare
    ? `rm -rf "$RR_B"
mkdir -p "$RR_B/rootfs"
chmod 0700 ${q(p.base)}
${o.prepare.gzip ? 'gzip -dc >"$RR_B/config.json"' : 'cat >"$RR_B/config.json"'}
`
    : `[ -s "$RR_B/config.json" ] || { echo 'smoke bundle missing: '"$RR_B" >&2; exit 1; }
`;
  const custom = o.customCommand
    ? `RR_STEP=custom-command
rr_rem
RUNC_ROLLOUT_RUNC=$RR_RUNC timeout -k 5 "$RR_REM" sh -c ${q(o.customCommand)} </dev/null >"$RR_W.custom-command.out" 2>"$RR_W.custom-command.err" || { echo $? >"$RR_W.custom-command.rc"; exit 1; }
`
    : '';
  return `set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
RR_RUNC=${q(o.runcPath)}
RR_ROOT=${q(p.root)}
RR_B=${q(p.bundle)}
RR_ID=${q(id)}
RR_CG=${q(p.cgroupName)}
RR_MARK=${q(marker)}
RR_W="$RR_B.${o.label}"
RR_END=$(( $(date +%s) + ${secs} ))
RR_STEP=prepare
RR_CREATED=
RR_OK=
rr_rem() {
  RR_REM=$(( RR_END - $(date +%s) ))
  if [ "$RR_REM" -lt 1 ]; then
    echo "smoke deadline of ${secs}s expired before $RR_STEP" >>"$RR_W.$RR_STEP.err"
    return 1
  fi
}
# Short naps while waiting for the container (it is usually ready within
# milliseconds), longer ones in cleanup; a sleep without fractions naps 1s.
rr_nap() { sleep "\${1:-0.2}" 2>/dev/null || sleep 1; }
rr_cleanup() {
  rr_rc=$?
  trap - EXIT HUP INT TERM
  set +e
  if [ "$RR_OK" != 1 ]; then
    [ "$rr_rc" = 0 ] && rr_rc=1
    printf '@@rr smoke failed %s\\n' "$RR_STEP"
    case $(cat "$RR_W.$RR_STEP.rc" 2>/dev/null) in
      124|137) echo "runc $RR_STEP did not finish within the ${secs}s smoke deadline (a runc that blocks exporting its seccomp filter, the rc93 hang, looks like this)" >&2 ;;
    esac
    tail -n 20 "$RR_W.$RR_STEP.err" >&2 2>/dev/null
    if [ "$RR_STEP" != create ] && [ -s "$RR_W.create.err" ]; then echo '--- container output (stderr):' >&2; tail -n 5 "$RR_W.create.err" >&2; fi
  fi
  if [ -n "$RR_CREATED" ]; then
    timeout -k 2 10 "$RR_RUNC" --root "$RR_ROOT" kill "$RR_ID" KILL >/dev/null 2>&1
    timeout -k 2 10 "$RR_RUNC" --root "$RR_ROOT" delete -f "$RR_ID" >/dev/null 2>&1
  fi
  # The runc under test may be the broken one: finish the job by hand.
  [ -s "$RR_W.pid" ] && kill -9 "$(cat "$RR_W.pid")" 2>/dev/null
  for rr_cg in $(find /sys/fs/cgroup -maxdepth 3 -type d -name "$RR_CG" 2>/dev/null); do
    for rr_i in 1 2 3 4 5 6 7 8 9 10; do
      for rr_p in $(cat "$rr_cg/cgroup.procs" 2>/dev/null); do kill -9 "$rr_p" 2>/dev/null; done
      rmdir "$rr_cg" 2>/dev/null && break
      rr_nap
    done
  done
  rm -rf "$RR_ROOT/$RR_ID"
  rm -f "$RR_W".*
  [ "$RR_OK" = 1 ] || rm -rf "$RR_B"
  [ "$RR_OK" = 1 ] && printf '@@rr smoke ok\\n'
  exit "$rr_rc"
}
trap rr_cleanup EXIT
# The SSH channel may be gone by the time the verdict is printed: cleanup must still run to the end.
trap '' PIPE
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$RR_ROOT"
chmod 0700 "$RR_ROOT"
${prepare}rm -f "$RR_W".*
[ -x "$RR_RUNC" ] || { echo "not executable: $RR_RUNC" >"$RR_W.prepare.err"; exit 1; }
command -v timeout >/dev/null || { echo 'timeout(1) not found on the node' >"$RR_W.prepare.err"; exit 1; }

# stdio go to files: the container must never hold the SSH channel open.
RR_STEP=create
rr_rem
RR_CREATED=1
timeout -k 5 "$RR_REM" "$RR_RUNC" --root "$RR_ROOT" create --bundle "$RR_B" --pid-file "$RR_W.pid" "$RR_ID" </dev/null >"$RR_W.ctr.out" 2>"$RR_W.create.err" || { echo $? >"$RR_W.create.rc"; exit 1; }

RR_STEP=start
rr_rem
timeout -k 5 "$RR_REM" "$RR_RUNC" --root "$RR_ROOT" start "$RR_ID" </dev/null >/dev/null 2>"$RR_W.start.err" || { echo $? >"$RR_W.start.rc"; exit 1; }
until grep -qx ${q(SMOKE_READY)} "$RR_W.ctr.out" 2>/dev/null; do
  kill -0 "$(cat "$RR_W.pid" 2>/dev/null)" 2>/dev/null || { echo 'the container process exited without printing its ready line' >>"$RR_W.start.err"; exit 1; }
  rr_rem
  rr_nap 0.02
done

RR_STEP=exec
rr_rem
RR_GOT=$(timeout -k 5 "$RR_REM" "$RR_RUNC" --root "$RR_ROOT" exec "$RR_ID" /bin/sh -c 'echo "$1"' sh "$RR_MARK" </dev/null 2>"$RR_W.exec.err") || { echo $? >"$RR_W.exec.rc"; exit 1; }
[ "$RR_GOT" = "$RR_MARK" ] || { echo "exec printed '$RR_GOT', expected the marker" >>"$RR_W.exec.err"; exit 1; }

RR_STEP=kill
rr_rem
timeout -k 5 "$RR_REM" "$RR_RUNC" --root "$RR_ROOT" kill "$RR_ID" KILL </dev/null >/dev/null 2>"$RR_W.kill.err" || { echo $? >"$RR_W.kill.rc"; exit 1; }

RR_STEP=delete
rr_rem
until timeout -k 5 "$RR_REM" "$RR_RUNC" --root "$RR_ROOT" delete "$RR_ID" </dev/null >/dev/null 2>"$RR_W.delete.err"; do
  rr_rem
  rr_nap 0.05
done
RR_CREATED=
[ ! -e "$RR_ROOT/$RR_ID" ] || { echo "runc delete left $RR_ROOT/$RR_ID behind" >>"$RR_W.delete.err"; exit 1; }

${custom}RR_STEP=done
RR_OK=1
`;
}

/** Parses a smoke run's stdout: null when it passed, else the lifecycle step that failed. */
export function smokeFailedStep(stdout: string): string | null {
  if (/^@@rr smoke ok$/m.test(stdout)) return null;
  const m = /^@@rr smoke failed (\S+)$/m.exec(stdout);
  return m?.[1] ?? 'unknown';
}
