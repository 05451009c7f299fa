// `runc-rollout unstick`: on nodes already upgraded past the rc93 hang, end the
// stuck `runc init` processes of the old runc, after a preview and a prompt.
import type { Command } from 'commander';
import { parseCount } from '../core/batching.js';
import { renderUnstickPreview } from '../output/unstick-preview.js';
import { runUnstick } from '../workflows/unstick.js';
import { addConfigOption, withConfigDefaults } from './config-defaults.js';
import type { CliContext } from './context.js';
import { addCiOptions, addSelectionOptions, addStuckAfterOption, stuckAfterSeconds, type SelectionFlags } from './fleet-options.js';
import { checked } from './flag-parsers.js';
import type { Runner } from './main.js';
import { addConnectTimeoutOption, askYesNo, fleetRun, humanOut, requireConfirmable, runWithView, toolVersion } from './rollout-io.js';
import { DEFAULT_PARALLEL } from '../workflows/plan.js';

interface UnstickFlags extends SelectionFlags {
  config?: string;
  inventory: string;
  stuckAfter: string;
  parallel: string;
  connectTimeout?: string;
  report?: string;
  reportJunit?: string;
  yes: boolean;
}

export async function unstickAction(ctx: CliContext, typed: UnstickFlags, cmd?: Command): Promise<number> {
  requireConfirmable(ctx, typed.yes, 'end processes');
  const flags = await withConfigDefaults(ctx, cmd, typed, ['stuckAfter', 'parallel', 'connectTimeout']);
  const { inventoryPath, selection, transport, runId, reportPath } = await fleetRun(ctx, flags, cmd);
  const out = humanOut(ctx);
  return runWithView(ctx, { reportPath, junitPath: flags.reportJunit }, async (onEvent) => {
    const { report } = await runUnstick({
      inventoryPath,
      ...selection,
      transport,
      parallel: parseCount(String(flags.parallel), '--parallel', 1),
      stuckAfterSeconds: stuckAfterSeconds(flags.stuckAfter),
      runId,
      toolVersion: toolVersion(),
      reportPath,
      onPreview: (p) => out.write(renderUnstickPreview(p)),
      confirm: async (p) => {
        if (flags.yes) return true;
        const n = p.nodes.reduce((sum, x) => sum + x.toEnd.length, 0);
        return askYesNo(ctx, `End these ${n} stuck runc init process${n === 1 ? '' : 'es'} (SIGKILL)?`);
      },
      onEvent,
      log: ctx.log,
      signal: ctx.signal,
    });
    return report;
  });
}

export function register(program: Command, run: Runner): void {
  const cmd = program
    .command('unstick')
    .description('end the stuck `runc init` processes (the rc93 hang) of an old runc on nodes already upgraded past it, then check their health gates; shows what it would end first')
    .requiredOption('-i, --inventory <file>', 'inventory file (native YAML, or an Ansible INI/YAML inventory)')
    .option('--parallel <n>', 'nodes contacted at once', checked((s) => parseCount(s, '--parallel', 1)), String(DEFAULT_PARALLEL))
    .option('--report <file>', 'write the run report here (default .runc-rollout/runs/RUN_ID.json)')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)', false);
  addStuckAfterOption(cmd);
  addConnectTimeoutOption(cmd);
  addConfigOption(cmd);
  addSelectionOptions(cmd);
  addCiOptions(cmd).action(run(async (ctx, flags, command) => unstickAction(ctx, flags as UnstickFlags, command as Command)));
}
