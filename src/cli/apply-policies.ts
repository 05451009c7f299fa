// `apply`'s rollout-policy flags: --on-unreachable, --on-budget-exceeded,
// --window, --resume, and the clock the windows are checked against. With
// --resume, the earlier run's options are the defaults; flags given on the
// command line win. Not a command: no `register`.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parseReport } from '../apply/report.js';
import { parseBatchSize, parseCount, parseFailureBudget, type BatchSize, type FailureBudget } from '../core/batching.js';
import { parseOnBudgetExceeded, parseOnUnreachable, type OnBudgetExceeded, type OnUnreachable } from '../core/policies.js';
import { parseWindow, parseWindows, scriptedClock, type RolloutWindow } from '../core/window.js';
import type { ResumeSource } from '../workflows/resume.js';
import type { CliContext } from './context.js';
import { checked, collect } from './flag-parsers.js';

export interface PolicyFlags {
  batch: string;
  canary: string;
  maxFailures: string;
  onUnreachable: string;
  onBudgetExceeded: string;
  window: string[];
  resume?: string;
}

export interface PolicyOptions {
  batch: BatchSize;
  canary: number;
  maxFailures: FailureBudget;
  onUnreachable: OnUnreachable;
  onBudgetExceeded: OnBudgetExceeded;
  windows: RolloutWindow[];
  resume?: ResumeSource;
  now?: () => Date;
}

/** Test and replay hook: the windows' clock (ISO times, comma-separated: one per read, the last repeating). */
export const NOW_ENV = 'RUNC_ROLLOUT_NOW';

export function addPolicyOptions(cmd: Command): Command {
  return cmd
    .option('--on-unreachable <fail|skip>', 'fail: refuse when nodes are unreachable, count nodes lost mid-run as failures; skip: leave them out of the run and the budget', checked(parseOnUnreachable), 'fail')
    .option('--on-budget-exceeded <stop|rollback-all>', 'once failures exceed --max-failures: stop starting batches, or also roll back every node this run upgraded', checked(parseOnBudgetExceeded), 'stop')
    .option('--window <spec>', 'start batches only within this window, e.g. "Sat 01:00-05:00 Europe/Berlin" (repeatable)', (v: string, prev: string[]) => collect(checked(parseWindow)(v), prev), [] as string[])
    .option('--resume <run-report>', 'continue an earlier apply: its nodes, release and options; finished nodes are skipped');
}

/** The policy options, with an earlier report's as defaults under --resume. */
export async function policiesFrom(ctx: CliContext, flags: PolicyFlags, cmd: Command | undefined): Promise<PolicyOptions> {
  const explicit = (name: string) => cmd?.getOptionValueSource(name) === 'cli';
  let resume: ResumeSource | undefined;
  if (flags.resume) {
    const path = resolve(ctx.cwd, flags.resume);
    resume = { path, report: parseReport(await readFile(path, 'utf8'), path) };
  }
  const was = resume?.report.options;
  const pick = (name: string, flag: string, earlier: string | null | undefined) => (!explicit(name) && earlier != null ? earlier : flag);
  const windowTexts = !explicit('window') && was?.windows ? was.windows : flags.window;
  const opts: PolicyOptions = {
    batch: parseBatchSize(pick('batch', flags.batch, was?.batch)),
    canary: parseCount(pick('canary', flags.canary, was ? String(was.canary) : undefined), '--canary'),
    maxFailures: parseFailureBudget(pick('maxFailures', flags.maxFailures, was?.maxFailures)),
    onUnreachable: parseOnUnreachable(pick('onUnreachable', flags.onUnreachable, was?.onUnreachable)),
    onBudgetExceeded: parseOnBudgetExceeded(pick('onBudgetExceeded', flags.onBudgetExceeded, was?.onBudgetExceeded)),
    windows: parseWindows(windowTexts),
  };
  if (resume) opts.resume = resume;
  const nowText = ctx.env[NOW_ENV];
  if (nowText) opts.now = scriptedClock(nowText, NOW_ENV);
  return opts;
}
