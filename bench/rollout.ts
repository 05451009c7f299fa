// runc-rollout itself, run as the built CLI (`node bin/runc-rollout`) in a
// child process, and the breakdown of where its apply time goes, read from
// the run report's batch and step timings.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { measured, type Counters, type MeasuredRun } from './measure.js';
import { RELEASE } from './testbed.js';

export const ROOT = resolve(import.meta.dirname, '..');

/**
 * A private copy of the built CLI (bin, dist, keyring, package.json; node_modules
 * linked), so a rebuild in the checkout during a long bench does not change
 * what is measured half-way. Returns its folder and a digest of its dist/.
 */
export function snapshotCli(work: string): { root: string; distSha256: string } {
  const root = join(work, 'runc-rollout');
  mkdirSync(root, { recursive: true });
  for (const p of ['bin', 'dist', 'keyring', 'package.json']) cpSync(join(ROOT, p), join(root, p), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) h.update(p.slice(root.length)).update(readFileSync(p));
    }
  };
  walk(join(root, 'dist'));
  return { root, distSha256: h.digest('hex') };
}

export interface RolloutSetup {
  /** The CLI copy to run (snapshotCli). */
  cliRoot: string;
  work: string;
  apiUrl: string;
  keyring: string;
  cacheDir: string;
  inventory: string;
  parallel: number;
  batch: number;
  /** Appended to plan and apply. */
  extraArgs: string[];
}

const env = (s: RolloutSetup): NodeJS.ProcessEnv => ({ ...process.env, CI: 'true', GITHUB_API_URL: s.apiUrl, NO_COLOR: '1' });
const globals = (s: RolloutSetup) => ['--github-api-url', s.apiUrl, '--keyring', s.keyring, '--cache-dir', s.cacheDir];
const cli = (s: RolloutSetup, args: string[]) => [process.execPath, join(s.cliRoot, 'bin/runc-rollout'), ...args];
const release = ['--repo', RELEASE.repo, '--version', RELEASE.version];

export function rolloutPlanArgs(s: RolloutSetup): string[] {
  return [...globals(s), 'plan', '-i', s.inventory, ...release, '--parallel', String(s.parallel), '--ssh-config', 'none', ...s.extraArgs];
}

export function rolloutApplyArgs(s: RolloutSetup, report: string): string[] {
  return [...globals(s), 'apply', '-i', s.inventory, ...release, '--batch', String(s.batch), '--parallel', String(s.parallel), '--ssh-config', 'none', '--yes', '--report', report, ...s.extraArgs];
}

export function runRolloutPlan(s: RolloutSetup, tag: string, counters: Counters | null): Promise<MeasuredRun> {
  return measured(s.work, tag, cli(s, rolloutPlanArgs(s)), { env: env(s), counters });
}

export async function runRolloutApply(s: RolloutSetup, tag: string, counters: Counters | null): Promise<MeasuredRun & { report: string }> {
  const report = join(s.work, `${tag}.report.json`);
  const r = await measured(s.work, tag, cli(s, rolloutApplyArgs(s, report)), { env: env(s), counters });
  return { ...r, report };
}

/** Node start-up and module loading: `runc-rollout --version`. */
export function runRolloutStartup(s: RolloutSetup, tag: string): Promise<MeasuredRun> {
  return measured(s.work, tag, cli(s, ['--version']), { env: env(s) });
}

/** Release resolution and verification from the warm cache (what plan and apply do before touching a node). */
export function runRolloutRelease(s: RolloutSetup, tag: string): Promise<MeasuredRun> {
  return measured(s.work, tag, cli(s, [...globals(s), 'release', 'fetch', ...release]), { env: env(s) });
}

interface ReportShape {
  startedAt: string;
  finishedAt: string;
  batches: { index: number; nodes: string[]; startedAt: string | null; finishedAt: string | null }[];
  nodes: { name: string; status: string; steps: { name: string; status: string; durationMs: number }[] }[];
}

export interface ApplyBreakdown {
  /** Process spawn -> executor start: start-up, release verification, connect + facts, plan. */
  beforeBatchesMs: number;
  batchMs: number[];
  /** Between one batch's end and the next one's start. */
  betweenBatchesMs: number;
  /** Last batch's end -> process exit: report, closing connections, exit. */
  afterBatchesMs: number;
  /** Per step: duration of each node's step, ms. */
  stepMs: Record<string, number[]>;
  statuses: Record<string, number>;
}

export function applyBreakdown(run: MeasuredRun, reportPath: string): ApplyBreakdown {
  const r = JSON.parse(readFileSync(reportPath, 'utf8')) as ReportShape;
  const t = (iso: string | null) => (iso ? Date.parse(iso) : NaN);
  const batches = r.batches.filter((b) => b.startedAt && b.finishedAt);
  const batchMs = batches.map((b) => t(b.finishedAt) - t(b.startedAt));
  let between = 0;
  for (let i = 1; i < batches.length; i++) between += t(batches[i]!.startedAt) - t(batches[i - 1]!.finishedAt);
  const first = batches[0] ? t(batches[0].startedAt) : t(r.startedAt);
  const last = batches.at(-1) ? t(batches.at(-1)!.finishedAt) : t(r.finishedAt);
  const stepMs: Record<string, number[]> = {};
  const statuses: Record<string, number> = {};
  for (const n of r.nodes) {
    statuses[n.status] = (statuses[n.status] ?? 0) + 1;
    for (const s of n.steps) if (s.status === 'ok') (stepMs[s.name] ??= []).push(s.durationMs);
  }
  return {
    beforeBatchesMs: first - run.startedAtMs,
    batchMs,
    betweenBatchesMs: between,
    afterBatchesMs: run.startedAtMs + run.wallMs - last,
    stepMs,
    statuses,
  };
}
