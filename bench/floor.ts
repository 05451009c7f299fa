// The floor: what any tool must at least spend, driven by OpenSSH with the
// same key, known_hosts and parallelism.
//   plan floor:  N x `ssh -o BatchMode=yes node true`, P at a time.
//   apply floor: batches of B nodes one after the other; per node ONE ssh
//                session uploads the binary at loopback speed and runs the
//                smoke lifecycle (create, start, exec, kill, delete) three
//                times, as runc-rollout's upgrade does (staged, after the
//                swap, after the sysctl). Batch time = its slowest node.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { buildSmokeConfig } from '../src/apply/smoke.js';
import { q } from '../src/core/shell.js';
import { measured, type Counters, type MeasuredRun } from './measure.js';

/** The smokes runc-rollout's upgrade runs on a successful node (src/apply/node-upgrade.ts): staged-smoke, smoke, smoke-after-sysctl. */
export const SMOKES_PER_NODE = ['staged', 'installed', 'sysctl'] as const;

export interface SshTarget {
  user: string;
  identityFile: string;
  knownHosts: string;
}

export function sshArgs(t: SshTarget, controlMaster = 'no'): string[] {
  return ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${t.knownHosts}`, '-o', 'IdentitiesOnly=yes', '-o', `ControlMaster=${controlMaster}`, '-i', t.identityFile, '-l', t.user];
}

/** Shell script: the plan floor fan-out with xargs -P. */
export function planFloorScript(hosts: string[], parallel: number, t: SshTarget): string {
  return `#!/bin/sh
printf '%s\\n' ${hosts.map(q).join(' ')} | xargs -P ${parallel} -I{} ssh ${sshArgs(t).map(q).join(' ')} {} true
`;
}

/** The script one node runs in the apply floor: binary on stdin, timestamps (ns) on stdout. */
export function nodeFloorScript(nodeName: string, hasLib64: boolean): string {
  const config = gzipSync(JSON.stringify(buildSmokeConfig({ hasLib64, cgroupName: `rrb-floor-${nodeName}` }))).toString('base64');
  const smokes = SMOKES_PER_NODE.map((label) => {
    const id = q(`rrb-floor-${nodeName}-${label}`);
    return `"$R" --root "$D/root" create --bundle "$D/bundle" ${id} </dev/null >/dev/null 2>"$D/err"
"$R" --root "$D/root" start ${id}
"$R" --root "$D/root" exec ${id} /bin/true
"$R" --root "$D/root" kill ${id} KILL
"$R" --root "$D/root" delete -f ${id}
t smoke-${label}`;
  });
  return `set -eu
t() { echo "t $1 $(date +%s%N)"; }
t start
D=/tmp/rrb-floor
R="$D/runc"
rm -rf "$D"
mkdir -p "$D/bundle/rootfs"
cat >"$R"
chmod 0755 "$R"
t uploaded
echo ${config} | base64 -d | gzip -dc >"$D/bundle/config.json"
t bundle
${smokes.join('\n')}
`;
}

/** Shell script: the apply floor, batch after batch, each batch's sessions in parallel. */
export function applyFloorScript(batches: { host: string; scriptFile: string }[][], binary: string, t: SshTarget, timeline: string): string {
  const ssh = ['ssh', ...sshArgs(t)].map(q).join(' ');
  const lines = ['#!/bin/sh', 'rc=0'];
  batches.forEach((batch, i) => {
    lines.push(`echo "batch ${i + 1} start $(date +%s%N)" >>${q(timeline)}`);
    lines.push(`printf '%s %s\\n' ${batch.map((b) => `${q(b.host)} ${q(b.scriptFile)}`).join(' ')} | xargs -P ${batch.length} -L 1 sh -c ${q(`exec ${ssh} "$0" "$(cat "$1")" <${q(binary)} >"$1.out" 2>&1`)} || rc=1`);
    lines.push(`echo "batch ${i + 1} end $(date +%s%N)" >>${q(timeline)}`);
  });
  lines.push('exit $rc', '');
  return lines.join('\n');
}

/** Inventory order, cut into batches of `size`. */
export function batchesOf<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Per-node phase times (ms) from a node's floor output. */
export interface NodeFloor {
  /** Epoch ms when the node's script started (the SSH session was up). */
  startAtMs: number;
  uploadMs: number;
  smokeMs: number[];
  /** Epoch ms when the last smoke ended. */
  endAtMs: number;
}

export function parseNodeFloor(out: string): NodeFloor | null {
  const t = new Map<string, number>();
  for (const m of out.matchAll(/^t (\S+) (\d+)$/gm)) t.set(m[1]!, Number(BigInt(m[2]!) / 1000n) / 1000);
  const start = t.get('start');
  const up = t.get('uploaded');
  let prev = t.get('bundle');
  if (start === undefined || up === undefined || prev === undefined) return null;
  const smokeMs: number[] = [];
  for (const l of SMOKES_PER_NODE) {
    const at = t.get(`smoke-${l}`);
    if (at === undefined) return null;
    smokeMs.push(at - prev);
    prev = at;
  }
  return { startAtMs: start, uploadMs: up - start, smokeMs, endAtMs: prev };
}

export function runPlanFloor(work: string, tag: string, hosts: string[], parallel: number, t: SshTarget, counters: Counters | null): Promise<MeasuredRun> {
  const script = join(work, 'floor-plan.sh');
  writeFileSync(script, planFloorScript(hosts, parallel, t));
  return measured(work, tag, ['sh', script], { counters });
}

export interface ApplyFloorRun extends MeasuredRun {
  batchMs: number[];
  /** Per batch: batch start -> the slowest node's session up (ssh spawn, TCP, key exchange, auth). */
  connectMs: number[];
  nodes: (NodeFloor | null)[];
}

export async function runApplyFloor(
  work: string,
  tag: string,
  nodes: { name: string; host: string }[],
  batch: number,
  binary: string,
  hasLib64: boolean,
  t: SshTarget,
  counters: Counters | null,
): Promise<ApplyFloorRun> {
  const files = nodes.map((n) => {
    const scriptFile = join(work, `floor-node-${n.name}.sh`);
    writeFileSync(scriptFile, nodeFloorScript(n.name, hasLib64));
    rmSync(`${scriptFile}.out`, { force: true });
    return { host: n.host, scriptFile };
  });
  const timeline = join(work, `${tag}.timeline`);
  rmSync(timeline, { force: true });
  const script = join(work, 'floor-apply.sh');
  writeFileSync(script, applyFloorScript(batchesOf(files, batch), binary, t, timeline));
  const r = await measured(work, tag, ['sh', script], { counters });
  const marks = new Map<string, number>();
  for (const m of readFileSync(timeline, 'utf8').matchAll(/^batch (\d+) (start|end) (\d+)$/gm)) marks.set(`${m[1]} ${m[2]}`, Number(BigInt(m[3]!) / 1000n) / 1000);
  const batchMs = batchesOf(files, batch).map((_, i) => (marks.get(`${i + 1} end`) ?? NaN) - (marks.get(`${i + 1} start`) ?? NaN));
  const perNode = files.map((f) => {
    try {
      return parseNodeFloor(readFileSync(`${f.scriptFile}.out`, 'utf8'));
    } catch {
      return null;
    }
  });
  const connectMs = batchesOf(perNode, batch).map((b, i) => Math.max(...b.map((n) => (n ? n.startAtMs : NaN))) - (marks.get(`${i + 1} start`) ?? NaN));
  return { ...r, batchMs, connectMs, nodes: perNode };
}

/**
 * What one more command costs on a connection that is already open (what
 * each extra step of a tool pays): an OpenSSH ControlMaster to one node, then
 * `ssh -S ... node true` `count` times in a row. Median ms per command.
 */
export function execRoundTripMs(work: string, host: string, t: SshTarget, count = 10): number {
  const sock = join(work, `rt-${process.pid}.sock`);
  const ssh = (mode: string, args: string[]) => spawnSync('ssh', [...sshArgs(t, mode), '-o', `ControlPath=${sock}`, ...args], { stdio: 'ignore', timeout: 30_000 });
  const master = ssh('yes', ['-o', 'ControlPersist=30', '-f', '-N', host]);
  try {
    if (master.status !== 0) return NaN;
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint();
      const r = ssh('no', [host, 'true']);
      if (r.status === 0) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    return times.length ? times[Math.floor(times.length / 2)]! : NaN;
  } finally {
    ssh('no', ['-O', 'exit', host]);
  }
}
