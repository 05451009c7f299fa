// `runc-rollout apply`: plan, confirm, then upgrade the fleet batch by batch.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultReportPath, newRunId } from '../apply/report.js';
import { parseBatchSize, parseCount, parseDuration, parseFailureBudget } from '../core/batching.js';
import { parsePlanFile } from '../core/plan-schema.js';
import { pendingChanges } from '../core/plan.js';
import type { Plan } from '../core/types.js';
import { InputError } from '../errors.js';
import { createApplyView } from '../output/apply-view.js';
import { renderPlanTable } from '../output/plan-table.js';
import { DEFAULT_REPO } from '../release/fetch.js';
import { runApply } from '../workflows/apply.js';
import { FINISHED_STATUSES } from '../workflows/resume.js';
import { addConfigOption, withConfigDefaults } from './config-defaults.js';
import type { CliContext } from './context.js';
import { addCiOptions, addReleaseOptions, addSelectionOptions, addStuckAfterOption, releaseFrom, selectionFrom, sshClientFrom, stuckAfterSeconds, type ReleaseFlags, type SelectionFlags } from './fleet-options.js';
import type { Runner } from './main.js';
import { addPolicyOptions, policiesFrom, type PolicyFlags } from './apply-policies.js';
import { describePolicies } from '../core/policies.js';
import { keyPassphrases } from './passphrase-prompt.js';
import { addRunOptions, askYesNo, chosenConnectTimeout, finishRun, humanOut, lockOwner, requireConfirmable, toolVersion, transportFor } from './rollout-io.js';
import { checked } from './flag-parsers.js';

interface ApplyFlags extends SelectionFlags, ReleaseFlags, PolicyFlags {
  config?: string;
  inventory?: string;
  reportJunit?: string;
  batch: string;
  canary: string;
  pause: string;
  maxFailures: string;
  smokeTimeout: string;
  connectTimeout?: string;
  parallel: string;
  report?: string;
  yes: boolean;
  forceUnlock: boolean;
  allowDowngrade: boolean;
  /** undefined: on for inventories from Kubernetes. */
  controlPlaneLast?: boolean;
  serialBy?: string;
  includeUnhealthy: boolean;
  unstick: boolean;
  stuckAfter: string;
}

export async function applyAction(ctx: CliContext, planFile: string | undefined, typed: ApplyFlags, cmd?: Command): Promise<number> {
  requireConfirmable(ctx, typed.yes, 'apply');
  // A saved plan or a resumed run names its own release: the config's version and repo do not apply then.
  const releaseKeys = planFile || typed.resume ? [] : (['version', 'repo'] as const);
  const flags = await withConfigDefaults(ctx, cmd, typed, [...releaseKeys, 'batch', 'canary', 'pause', 'maxFailures', 'smokeTimeout', 'connectTimeout', 'parallel', 'onUnreachable', 'onBudgetExceeded', 'advisories', 'stuckAfter', 'unstick']);
  if (!planFile && !flags.inventory && !flags.resume) throw new InputError('apply needs -i INVENTORY (or a saved plan file, or --resume RUN_REPORT)');
  if (!planFile && !flags.version && !flags.resume) throw new InputError('apply needs --version V (or a saved plan file, or --resume RUN_REPORT)');
  const policies = await policiesFrom(ctx, flags, cmd);
  let savedPlan: { path: string; plan: Plan } | undefined;
  if (planFile) {
    const path = resolve(ctx.cwd, planFile);
    savedPlan = { path, plan: parsePlanFile(await readFile(path, 'utf8'), path) };
  }
  const { batch, maxFailures } = policies;
  const selection = selectionFrom(ctx, flags);
  const connectTimeout = chosenConnectTimeout(flags.connectTimeout, cmd);
  // The nodes runApply will select: a saved plan's, or the unfinished ones of a resumed run.
  const earlier = policies.resume?.report;
  const passphrases = flags.sshClient === 'openssh' ? undefined : await keyPassphrases(
    ctx,
    flags.inventory ? resolve(ctx.cwd, flags.inventory) : (earlier?.inventory ?? savedPlan?.plan.inventory),
    savedPlan ? { ...selection, limit: savedPlan.plan.limit, ...(savedPlan.plan.shard ? { shard: savedPlan.plan.shard } : {}) }
      : earlier ? { ...selection, limit: earlier.nodes.filter((n) => !(FINISHED_STATUSES as readonly string[]).includes(n.status)).map((n) => n.name) }
      : selection,
    flags.yes,
  );
  const runId = newRunId();
  const reportPath = flags.report ? resolve(ctx.cwd, flags.report) : defaultReportPath(ctx.cwd, runId);
  const out = humanOut(ctx);
  const colour = Boolean((out as { isTTY?: boolean }).isTTY) && ctx.log.colour;
  const view = createApplyView({ out, interactive: ctx.interactive });

  try {
    const { report } = await runApply({
      ...(flags.inventory ? { inventoryPath: resolve(ctx.cwd, flags.inventory) } : {}),
      ...(savedPlan ? { savedPlan } : {}),
      ...selection,
      release: {
        ...releaseFrom(ctx, flags),
        repo: savedPlan?.plan.release.repo ?? flags.repo ?? DEFAULT_REPO,
        ...(flags.version ? { version: flags.version } : {}),
      },
      transport: transportFor(ctx, { ...sshClientFrom(ctx, flags), ...(connectTimeout ? { connectTimeout } : {}), ...(passphrases ? { passphrases } : {}) }),
      parallel: parseCount(flags.parallel, '--parallel', 1),
      allowDowngrade: flags.allowDowngrade,
      batch,
      canary: policies.canary,
      onUnreachable: policies.onUnreachable,
      onBudgetExceeded: policies.onBudgetExceeded,
      windows: policies.windows,
      ...(policies.now ? { now: policies.now } : {}),
      ...(policies.resume ? { resume: policies.resume, resumeRepoGiven: flags.repo !== undefined } : {}),
      pauseMs: parseDuration(flags.pause, '--pause'),
      maxFailures,
      smokeTimeoutMs: parseDuration(flags.smokeTimeout, '--smoke-timeout'),
      forceUnlock: flags.forceUnlock,
      lockOwner: lockOwner(),
      runId,
      toolVersion: toolVersion(),
      reportPath,
      onPlan: (plan) => {
        out.write(renderPlanTable(plan, { colour }));
        for (const l of describePolicies(policies, plan.nodes.length)) out.write(`${l}\n`);
      },
      confirm: async (plan) => {
        if (flags.yes) return true;
        const n = pendingChanges(plan).length;
        return askYesNo(ctx, `Apply this plan (${n} node${n === 1 ? '' : 's'} to change)?`);
      },
      onEvent: (e) => view.handle(e),
      ...(flags.controlPlaneLast !== undefined ? { controlPlaneLast: flags.controlPlaneLast } : {}),
      ...(flags.serialBy ? { serialBy: flags.serialBy } : {}),
      includeUnhealthy: flags.includeUnhealthy,
      // --resume carries the earlier run's --unstick and --stuck-after unless given again
      unstick: cmd?.getOptionValueSource('unstick') !== 'cli' && earlier?.options.unstick !== undefined ? earlier.options.unstick : flags.unstick,
      stuckAfterSeconds: cmd?.getOptionValueSource('stuckAfter') !== 'cli' && earlier?.options.stuckAfterSeconds !== undefined ? earlier.options.stuckAfterSeconds : stuckAfterSeconds(flags.stuckAfter),
      log: ctx.log,
      signal: ctx.signal,
    });
    await view.close();
    return await finishRun(ctx, report, reportPath, flags.reportJunit);
  } finally {
    await view.close();
  }
}

export function register(program: Command, run: Runner): void {
  const cmd = program
    .command('apply [plan-file]')
    .description('upgrade runc on the fleet: verified release, staged smoke test, atomic swap, sysctl restore, automatic rollback')
    .option('-i, --inventory <file>', 'inventory file (default with a saved plan: the one it was made from)')
    .option('--version <version>', 'target runc release: v1.2.9, 1.2.9, latest, or a range like ~1.2')
    .option('--batch <n|p%>', 'nodes changed at once, or a percentage of the selected nodes', checked(parseBatchSize), '1')
    .option('--canary <n>', 'nodes upgraded first, as their own batch', checked((s) => parseCount(s, '--canary')), '0')
    .option('--pause <duration>', 'wait between batches (e.g. 30s, 2m)', checked(parseDuration), '0')
    .option('--max-failures <n|p%>', 'failed nodes tolerated over the whole run before no further batch starts', checked(parseFailureBudget), '0')
    .option('--allow-downgrade', 'carry out downgrades instead of refusing them', false)
    .option('--control-plane-last', 'nodes labelled node-role.kubernetes.io/control-plane (or master) only in the final batches (default for inventories from `inventory from-kubectl`)')
    .option('--no-control-plane-last', 'do not order control-plane nodes last')
    .option('--serial-by <label>', 'each batch holds nodes of one value of this label only (e.g. topology.kubernetes.io/zone)')
    .option('--include-unhealthy', 'upgrade nodes whose health gates fail before the change instead of skipping them', false)
    .option('--unstick', 'once a node\'s new runc passed every smoke and the sysctl step, end its stuck `runc init` processes of the old runc (the rc93 hang; SIGKILL), then check its health gates', false);
  addStuckAfterOption(cmd);
  addRunOptions(cmd, { smokeTimeout: 'time limit of each smoke container run', parallel: 'nodes contacted at once (facts; and within a batch)' });
  addPolicyOptions(cmd);
  addConfigOption(cmd);
  addSelectionOptions(cmd);
  addReleaseOptions(cmd);
  addCiOptions(cmd).action(run(async (ctx, planFile, flags, command) => applyAction(ctx, planFile as string | undefined, flags as ApplyFlags, command as Command)));
}
