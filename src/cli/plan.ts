// `runc-rollout plan`: what apply would do on every node. Changes nothing.
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { pendingChanges, refusedNodes } from '../core/plan.js';
import { parseCount } from '../core/batching.js';
import { ExitCode, InputError } from '../errors.js';
import { renderPlanTable, summaryLine } from '../output/plan-table.js';
import { planToJUnitXml } from '../output/junit.js';
import { planStepSummary } from '../output/step-summary.js';
import { DEFAULT_PARALLEL, runPlan, savePlan } from '../workflows/plan.js';
import { addConfigOption, withConfigDefaults } from './config-defaults.js';
import type { CliContext } from './context.js';
import { addCiOptions, addReleaseOptions, addSelectionOptions, addStuckAfterOption, releaseFrom, selectionFrom, sshClientFrom, stuckAfterSeconds, writeCiOutputs, type ReleaseFlags, type SelectionFlags } from './fleet-options.js';
import type { Runner } from './main.js';
import { keyPassphrases } from './passphrase-prompt.js';
import { addConnectTimeoutOption, chosenConnectTimeout, toolVersion, transportFor } from './rollout-io.js';

interface PlanFlags extends SelectionFlags, ReleaseFlags {
  config?: string;
  inventory: string;
  version?: string;
  allowDowngrade: boolean;
  reportJunit?: string;
  parallel: number;
  connectTimeout?: string;
  detailedExitcode: boolean;
  out?: string;
  stuckAfter: string;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}


function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name];
  return Boolean(v && v !== 'false' && v !== '0');
}

export async function planAction(ctx: CliContext, typed: PlanFlags, cmd?: Command): Promise<number> {
  const flags = await withConfigDefaults(ctx, cmd, typed, ['version', 'repo', 'parallel', 'connectTimeout', 'advisories', 'stuckAfter']);
  if (!flags.version) throw new InputError('plan needs --version V (or `version:` in the config or the inventory\'s rollout: section)');
  const g = ctx.globals();
  const inventoryPath = resolve(ctx.cwd, flags.inventory);
  const selection = selectionFrom(ctx, flags);
  const connectTimeout = chosenConnectTimeout(flags.connectTimeout, cmd);
  const passphrases = flags.sshClient === 'openssh' ? undefined : await keyPassphrases(ctx, inventoryPath, selection, false);
  const { plan } = await runPlan({
    inventoryPath,
    ...selection,
    release: { ...releaseFrom(ctx, flags), version: flags.version },
    transport: transportFor(ctx, { ...sshClientFrom(ctx, flags), ...(connectTimeout ? { connectTimeout } : {}), ...(passphrases ? { passphrases } : {}) }),
    parallel: parseCount(String(flags.parallel), '--parallel', 1),
    allowDowngrade: flags.allowDowngrade,
    stuckAfterSeconds: stuckAfterSeconds(flags.stuckAfter),
    toolVersion: toolVersion(),
    log: ctx.log,
    signal: ctx.signal,
  });

  if (flags.out) {
    const out = resolve(ctx.cwd, flags.out);
    await savePlan(out, plan);
    ctx.log.info(`plan saved to ${out}`);
  }
  if (g.json) {
    ctx.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
  } else {
    const tty = Boolean((ctx.stdout as { isTTY?: boolean }).isTTY);
    const colour = tty && !envFlag(ctx.env, 'CI') && !ctx.env.NO_COLOR;
    ctx.stdout.write(renderPlanTable(plan, { colour }));
  }

  await writeCiOutputs(ctx, flags.reportJunit, () => planToJUnitXml(plan), () => planStepSummary(plan));

  const refused = refusedNodes(plan);
  if (refused.length) {
    ctx.log.error(`${refused.length} node${refused.length === 1 ? '' : 's'} cannot be planned (${refused.map((n) => `${n.name}: ${n.action}`).join(', ')})`);
    return ExitCode.refused;
  }
  if (g.json) ctx.log.info(summaryLine(plan));
  const pending = pendingChanges(plan).length > 0;
  return pending && flags.detailedExitcode ? ExitCode.changesPending : ExitCode.ok;
}

export function register(program: Command, run: Runner): void {
  const cmd = program
    .command('plan')
    .description('show what apply would change on each node (changes nothing)')
    .requiredOption('-i, --inventory <file>', 'inventory file (native YAML, or an Ansible INI/YAML inventory)')
    .option('--version <version>', 'target runc release: v1.2.9, 1.2.9, latest, or a range like ~1.2');
  addConfigOption(cmd);
  addSelectionOptions(cmd);
  addReleaseOptions(cmd);
  addConnectTimeoutOption(cmd);
  addStuckAfterOption(cmd);
  addCiOptions(cmd)
    .option('--allow-downgrade', 'plan downgrades instead of refusing them', false)
    .option('--parallel <n>', 'nodes contacted at once', positiveInt, DEFAULT_PARALLEL)
    .option('--detailed-exitcode', 'exit 2 when changes are pending (0: nothing to change, 3: refused)', false)
    .option('--out <file>', 'save the plan as JSON for a later `apply FILE`')
    .action(run(async (ctx, flags, command) => planAction(ctx, flags as PlanFlags, command as Command)));
}
