// The `apply` flow: fresh facts + verified release -> plan (or a saved plan
// checked against them) -> shown -> confirmed -> executed batch by batch ->
// report written. Returns the report; never exits the process.
//
// One connection per node for the whole command: the facts are gathered over
// it and the change is carried out over it (SessionPool). Keepalives run while
// the user reads the plan; a connection that dropped meanwhile is reopened.
import { executePlan, type ExecutorEvent } from '../apply/executor.js';
import { writeReport, type RunReport } from '../apply/report.js';
import { planDrift } from '../core/drift.js';
import { refusedNodes } from '../core/plan.js';
import type { BatchSize, FailureBudget } from '../core/batching.js';
import type { Plan } from '../core/types.js';
import { InputError, RolloutError, ExitCode } from '../errors.js';
import type { Logger } from '../output/logger.js';
import type { ReleaseOptions } from '../release/fetch.js';
import { SessionPool } from '../ssh/session-pool.js';
import type { Transport } from '../ssh/transport.js';
import { runPlan } from './plan.js';
import type { NodeSelection } from './select.js';
import { checkResumeRelease, resumeSelection, type ResumeSource } from './resume.js';
import type { OnBudgetExceeded, OnUnreachable } from '../core/policies.js';
import type { RolloutWindow } from '../core/window.js';

export interface ApplyOptions extends NodeSelection {
  /** Inventory file; with a saved plan, defaults to the plan's. */
  inventoryPath?: string;
  /** A saved plan (`plan --out`), already parsed: applied only if nothing drifted. */
  savedPlan?: { path: string; plan: Plan };
  /** Release source; `version` (and repo) come from the saved plan when there is one. */
  release: Omit<ReleaseOptions, 'log' | 'signal' | 'version'> & { version?: string };
  transport: Transport;
  parallel?: number;
  allowDowngrade: boolean;
  batch: BatchSize;
  canary: number;
  pauseMs: number;
  maxFailures: FailureBudget;
  smokeTimeoutMs: number;
  forceUnlock: boolean;
  lockOwner: string;
  runId: string;
  toolVersion: string;
  /** Where the run report is written (always, also for failed or interrupted runs). */
  reportPath: string;
  /** Asked once the plan is known and before any node is touched; false cancels (exit 3). */
  confirm: (plan: Plan) => Promise<boolean>;
  /** Control-plane nodes in the final batches; undefined: on for inventories from `inventory from-kubectl` (`source: kubernetes`). */
  controlPlaneLast?: boolean;
  /** Each batch holds nodes of one value of this label only. */
  serialBy?: string;
  /** Upgrade nodes that fail their health gates before the change instead of skipping them. */
  includeUnhealthy?: boolean;
  /** `--unstick`: after every smoke and the sysctl step, end each node's stuck `runc init` of the old runc, then check its health gates. */
  unstick?: boolean;
  /** `runc init` blocked on a pipe for longer than this is stuck (--stuck-after; default 5 minutes). */
  stuckAfterSeconds?: number;
  onPlan?: (plan: Plan) => void;
  onEvent?: (e: ExecutorEvent) => void;
  log: Logger;
  signal?: AbortSignal;
  /** Rollout policies (see executePlan); defaults fail, stop, no windows. */
  onUnreachable?: OnUnreachable;
  onBudgetExceeded?: OnBudgetExceeded;
  windows?: readonly RolloutWindow[];
  /** The clock the windows are checked against. */
  now?: () => Date;
  /** `--resume`: continue the run of this report (its nodes and release; finished nodes are left out). */
  resume?: ResumeSource;
  /** With --resume: whether --repo was given on the command line (then it must match the report's). */
  resumeRepoGiven?: boolean;
}

export interface ApplyResult {
  plan: Plan;
  report: RunReport;
  reportPath: string;
}

export async function runApply(opts: ApplyOptions): Promise<ApplyResult> {
  const saved = opts.savedPlan?.plan;
  if (saved && (opts.limit.length > 0 || opts.shard)) {
    throw new InputError('--limit and --shard cannot be combined with a saved plan: the plan already names its nodes', [`plan limit: ${saved.limit.join(', ') || '(all nodes)'}`]);
  }
  if (saved && opts.release.version !== undefined) {
    throw new InputError(`--version cannot be combined with a saved plan: the plan is for ${saved.release.repo} ${saved.release.tag}`);
  }
  if (opts.resume && (saved || opts.limit.length > 0 || opts.shard)) {
    throw new InputError('--resume cannot be combined with a saved plan, --limit or --shard: the report already names its nodes');
  }
  const resumed = opts.resume ? resumeSelection(opts.resume, { ...(opts.release.version !== undefined ? { version: opts.release.version } : {}), ...(opts.resumeRepoGiven ? { repo: opts.release.repo } : {}) }) : null;
  if (resumed && resumed.remaining.length === 0) {
    throw new RolloutError(`--resume: run ${resumed.runId} already finished all ${resumed.finished.length} of its nodes; nothing to do`, { exitCode: ExitCode.ok });
  }
  const inventoryPath = opts.inventoryPath ?? resumed?.inventory ?? saved?.inventory;
  if (!inventoryPath) throw new InputError('no inventory: pass -i FILE');
  const version = saved ? saved.release.tag : resumed ? resumed.tag : opts.release.version;
  if (!version) throw new InputError('no release: pass --version V (e.g. 1.2.9, latest) or a saved plan');

  const pool = new SessionPool(opts.transport);
  try {
    return await planAndExecute(opts, pool, { saved, resumed, inventoryPath, version });
  } finally {
    await pool.closeAll();
  }
}

async function planAndExecute(
  opts: ApplyOptions,
  pool: SessionPool,
  ctx: { saved: Plan | undefined; resumed: ReturnType<typeof resumeSelection> | null; inventoryPath: string; version: string },
): Promise<ApplyResult> {
  const { saved, resumed, inventoryPath, version } = ctx;
  const { plan, inventory, release, sessions } = await runPlan({
    inventoryPath,
    limit: saved ? saved.limit : resumed ? resumed.remaining : opts.limit,
    ...((saved ? saved.shard : opts.shard) ? { shard: (saved ? saved.shard : opts.shard) as string } : {}),
    ...(opts.sshOverrides ? { sshOverrides: opts.sshOverrides } : {}),
    ...(opts.sshConfig ? { sshConfig: opts.sshConfig } : {}),
    // A saved plan names an exact tag, already chosen (a pre-release only if --pre allowed it then).
    release: { ...opts.release, repo: saved ? saved.release.repo : resumed ? resumed.repo : opts.release.repo, version, pre: saved || resumed ? true : opts.release.pre },
    transport: opts.transport,
    parallel: opts.parallel,
    allowDowngrade: saved ? saved.options.allowDowngrade : resumed ? resumed.allowDowngrade : opts.allowDowngrade,
    toolVersion: opts.toolVersion,
    ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    log: opts.log,
    signal: opts.signal,
    keepSessions: true,
  });
  for (const s of sessions) pool.adopt(s);

  if (saved) {
    const drift = planDrift(saved, plan);
    if (drift.length > 0) {
      throw new RolloutError(`saved plan ${opts.savedPlan?.path} no longer matches the fleet or the release; nothing was changed. Make a new plan.`, {
        exitCode: ExitCode.refused,
        details: drift,
      });
    }
  }
  if (opts.resume) checkResumeRelease(opts.resume, release);
  // With no drift the fresh plan says the same as the saved one, with facts from seconds ago.
  opts.onPlan?.(plan);
  // Same rule as `plan`: a node that cannot be planned is fixed or left out with --limit, never skipped silently.
  // `--on-unreachable skip` lets unreachable nodes through (reported, outside the budget); blocked nodes never.
  const refused = refusedNodes(plan).filter((n) => !(n.action === 'unreachable' && opts.onUnreachable === 'skip'));
  if (refused.length > 0) {
    throw new RolloutError(`${refused.length} node${refused.length === 1 ? '' : 's'} cannot be upgraded; nothing was changed. Fix them or leave them out with --limit.`, {
      exitCode: ExitCode.refused,
      details: refused.map((n) => `${n.name}: ${n.action}: ${n.error ?? 'no detail'}`),
    });
  }
  if (!(await opts.confirm(plan))) throw new RolloutError('apply cancelled; nothing was changed', { exitCode: ExitCode.refused });

  const selected = new Set(plan.nodes.map((n) => n.name));
  const report = await executePlan({
    plan,
    nodes: inventory.nodes.filter((n) => selected.has(n.name)),
    release,
    transport: pool,
    batch: opts.batch,
    canary: opts.canary,
    pauseMs: opts.pauseMs,
    maxFailures: opts.maxFailures,
    smokeTimeoutMs: opts.smokeTimeoutMs,
    runId: opts.runId,
    lockOwner: opts.lockOwner,
    forceUnlock: opts.forceUnlock,
    parallel: opts.parallel,
    signal: opts.signal,
    onEvent: opts.onEvent,
    toolVersion: opts.toolVersion,
    onUnreachable: opts.onUnreachable ?? 'fail',
    onBudgetExceeded: opts.onBudgetExceeded ?? 'stop',
    windows: opts.windows ?? [],
    ...(opts.now ? { now: opts.now } : {}),
    resumedFrom: resumed ? { runId: resumed.runId, path: resumed.path, finished: resumed.finished } : null,
    controlPlaneLast: opts.controlPlaneLast ?? inventory.source === 'kubernetes',
    ...(opts.serialBy ? { serialBy: opts.serialBy } : {}),
    includeUnhealthy: opts.includeUnhealthy ?? false,
    ...(opts.unstick ? { unstick: true } : {}),
    ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
  });
  await writeReport(report, opts.reportPath);
  return { plan, report, reportPath: opts.reportPath };
}
