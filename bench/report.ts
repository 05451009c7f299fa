// Figures from raw runs: medians, ratios, the targets, the printed
// table and the JSON document. Pure (unit-testable), except nothing: the
// caller writes the files.
import type { MeasuredRun } from './measure.js';
import type { Phase } from './options.js';

export type Tool = 'rollout' | 'ansible' | 'floor';
export const TOOLS: Tool[] = ['rollout', 'ansible', 'floor'];
export const TOOL_LABEL: Record<Tool, string> = { rollout: 'runc-rollout', ansible: 'ansible', floor: 'floor' };

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export function ratio(a: number, b: number): number {
  return b > 0 && Number.isFinite(a) && Number.isFinite(b) ? a / b : NaN;
}

export interface Figures {
  runs: number;
  wallMs: number;
  cpuS: number;
  /** ru_maxrss: the largest single process of the tree. */
  maxRssMB: number;
  /** Peak of the tree's summed PSS (Ansible: the playbook process, its forks and ssh). */
  peakTreePssMB: number;
  /** SSH connections opened per node per command: lowest and highest over nodes and runs (null: no counters). */
  connsPerNode: { min: number; max: number } | null;
  /** Bytes the controller sent per node (IP packets to port 22): median over runs of the median node, and the highest node. */
  bytesPerNode: { median: number; max: number } | null;
  /** Raw wall times, ms. */
  wallRunsMs: number[];
}

export function figures(runs: MeasuredRun[]): Figures {
  const per = runs.map((r) => (r.perNode ? Object.values(r.perNode) : null));
  const counted = per.filter((p): p is { conns: number; bytes: number }[] => p !== null && p.length > 0);
  const conns = counted.flatMap((p) => p.map((x) => x.conns));
  return {
    runs: runs.length,
    wallMs: median(runs.map((r) => r.wallMs)),
    cpuS: median(runs.map((r) => r.userS + r.sysS)),
    maxRssMB: median(runs.map((r) => r.maxRssKB / 1024)),
    peakTreePssMB: median(runs.map((r) => r.peakTreePssKB / 1024)),
    connsPerNode: conns.length ? { min: Math.min(...conns), max: Math.max(...conns) } : null,
    bytesPerNode: counted.length ? { median: median(counted.map((p) => median(p.map((x) => x.bytes)))), max: Math.max(...counted.flatMap((p) => p.map((x) => x.bytes))) } : null,
    wallRunsMs: runs.map((r) => Math.round(r.wallMs)),
  };
}

export interface Target {
  what: string;
  /** The fleet size the issue states it for. */
  statedFor: string;
  value: string;
  pass: boolean | null;
}

const SLACK_BYTES = 8 * 1024;

/** The targets for one phase, from this run's figures. */
export function targets(phase: Phase, f: Record<Tool, Figures>, binarySize: number): Target[] {
  const rr = f.rollout;
  const out: Target[] = [];
  const add = (what: string, statedFor: string, value: number, pass: boolean | null, fmt = (x: number) => `${x.toFixed(2)}x`) =>
    out.push({ what, statedFor, value: Number.isFinite(value) ? fmt(value) : 'n/a', pass: Number.isFinite(value) ? pass : null });
  const vsFloor = ratio(rr.wallMs, f.floor.wallMs);
  const vsAnsible = ratio(f.ansible.wallMs, rr.wallMs);
  const cpu = ratio(f.ansible.cpuS, rr.cpuS);
  if (phase === 'plan') {
    add('wall <= 1.2x floor', '50 nodes', vsFloor, vsFloor <= 1.2);
    add('>= 2x faster than Ansible', '50 nodes', vsAnsible, vsAnsible >= 2);
    add('controller CPU <= 1/10 of Ansible', '50 nodes', cpu, cpu >= 10, (x) => `1/${x.toFixed(1)}`);
  } else {
    add('wall <= 1.5x floor', '20 nodes, --batch 5', vsFloor, vsFloor <= 1.5);
    add('>= 2x faster than Ansible', '20 nodes, --batch 5', vsAnsible, vsAnsible >= 2);
    add('controller CPU <= 1/5 of Ansible', '20 nodes, --batch 5', cpu, cpu >= 5, (x) => `1/${x.toFixed(1)}`);
  }
  const c = rr.connsPerNode;
  out.push({ what: 'exactly 1 SSH connection per node', statedFor: 'any', value: c ? (c.min === c.max ? `${c.min}` : `${c.min}..${c.max}`) : 'n/a', pass: c ? c.min === 1 && c.max === 1 : null });
  add('peak RSS < 150 MB', '200 nodes', rr.maxRssMB, rr.maxRssMB < 150, (x) => `${x.toFixed(0)} MB`);
  if (phase === 'apply' && rr.bytesPerNode) {
    const over = rr.bytesPerNode.max - binarySize;
    add(`bytes/node <= binary (${kib(binarySize)}) + a few KiB`, 'any', over, over <= SLACK_BYTES, (x) => `${x >= 0 ? '+' : ''}${kib(x)} (max node)`);
  }
  return out;
}

const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : 'n/a');
const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');

/** Columns padded to their widest cell; the first column left-aligned, the rest right-aligned. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function phaseTable(phase: Phase, f: Record<Tool, Figures>): string {
  const fmtConns = (c: Figures['connsPerNode']) => (c ? (c.min === c.max ? `${c.min}` : `${c.min}..${c.max}`) : 'n/a');
  const fmtBytes = (b: Figures['bytesPerNode']) => (b ? `${kib(b.median)}` : 'n/a');
  const row = (label: string, get: (t: Tool) => string, ratios?: [string, string]) => [label, ...TOOLS.map(get), ...(ratios ?? ['', ''])];
  const rr = f.rollout;
  return formatTable([
    [phase, ...TOOLS.map((t) => TOOL_LABEL[t]), 'rr/ansible', 'rr/floor'],
    row('wall s', (t) => s(f[t].wallMs), [x(ratio(rr.wallMs, f.ansible.wallMs)), x(ratio(rr.wallMs, f.floor.wallMs))]),
    row('controller CPU s', (t) => (Number.isFinite(f[t].cpuS) ? f[t].cpuS.toFixed(2) : 'n/a'), [x(ratio(rr.cpuS, f.ansible.cpuS)), x(ratio(rr.cpuS, f.floor.cpuS))]),
    row('peak RSS MB (largest process)', (t) => f[t].maxRssMB.toFixed(0)),
    row('peak tree PSS MB', (t) => f[t].peakTreePssMB.toFixed(0)),
    row('SSH connections per node', (t) => fmtConns(f[t].connsPerNode)),
    row('bytes sent per node', (t) => fmtBytes(f[t].bytesPerNode)),
    row('runs (wall s)', (t) => f[t].wallRunsMs.map((ms) => s(ms)).join(' ')),
  ]);
}

export function targetTable(ts: Target[]): string {
  return formatTable([['target', 'stated for', 'this run', ''], ...ts.map((t) => [t.what, t.statedFor, t.value, t.pass === null ? 'n/a' : t.pass ? 'ok' : 'target missed'])]);
}

/** Median per step over nodes and runs, and the apply timeline, as table rows. */
export function breakdownTable(b: { beforeBatchesMs: number[]; batchMs: number[][]; betweenBatchesMs: number[]; afterBatchesMs: number[]; stepMs: Record<string, number[]> }, floor: { batchMs: number[][]; connectMs: number[]; uploadMs: number[]; smokeMs: number[]; roundTripMs: number[] }): string {
  const sumMedian = (runs: number[][]) => median(runs.map((r) => r.reduce((a, c) => a + c, 0)));
  const rows: string[][] = [['where the time goes (apply; medians, s)', 'runc-rollout', 'floor']];
  rows.push(['before the first batch: start-up, release, connect, facts, plan', s(median(b.beforeBatchesMs)), '-']);
  rows.push(['all batches', s(sumMedian(b.batchMs)), s(sumMedian(floor.batchMs))]);
  rows.push(['  one batch', s(median(b.batchMs.flat())), s(median(floor.batchMs.flat()))]);
  rows.push(['  of which ssh connect, slowest node of a batch', '-', s(median(floor.connectMs))]);
  rows.push(['between batches', s(median(b.betweenBatchesMs)), '-']);
  rows.push(['after the last batch: report, close, exit', s(median(b.afterBatchesMs)), '-']);
  rows.push(['one more command on an open connection (ssh mux)', '', s(median(floor.roundTripMs))]);
  rows.push(['per node step (median over nodes and runs)', '', '']);
  const floorFor: Record<string, string> = { stage: s(median(floor.uploadMs)), 'staged-smoke': s(median(floor.smokeMs)), smoke: s(median(floor.smokeMs)), 'smoke-after-sysctl': s(median(floor.smokeMs)) };
  for (const [step, ms] of Object.entries(b.stepMs)) rows.push([`  ${step}`, s(median(ms)), floorFor[step] ?? '']);
  return formatTable(rows);
}
