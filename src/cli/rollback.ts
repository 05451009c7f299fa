// `runc-rollout rollback`: restore, on each node, what the last apply replaced.
import type { Command } from 'commander';
import { parseCount, parseDuration } from '../core/batching.js';
import { runRollback } from '../workflows/rollback.js';
import type { CliContext } from './context.js';
import { addCiOptions, addSelectionOptions, type SelectionFlags } from './fleet-options.js';
import type { Runner } from './main.js';
import { addRunOptions, askYesNo, fleetRun, humanOut, lockOwner, requireConfirmable, runWithView, toolVersion } from './rollout-io.js';

interface RollbackFlags extends SelectionFlags {
  inventory: string;
  reportJunit?: string;
  smokeTimeout: string;
  connectTimeout?: string;
  parallel: string;
  report?: string;
  yes: boolean;
  forceUnlock: boolean;
  overwriteChanged?: boolean;
}

export async function rollbackAction(ctx: CliContext, flags: RollbackFlags, cmd?: Command): Promise<number> {
  requireConfirmable(ctx, flags.yes, 'roll back');
  const { inventoryPath, selection, transport, runId, reportPath } = await fleetRun(ctx, flags, cmd);
  const out = humanOut(ctx);
  return runWithView(ctx, { reportPath, junitPath: flags.reportJunit }, async (onEvent) => {
    const { report } = await runRollback({
      inventoryPath,
      ...selection,
      transport,
      parallel: parseCount(flags.parallel, '--parallel', 1),
      smokeTimeoutMs: parseDuration(flags.smokeTimeout, '--smoke-timeout'),
      forceUnlock: flags.forceUnlock,
      overwriteChanged: flags.overwriteChanged ?? false,
      lockOwner: lockOwner(),
      runId,
      toolVersion: toolVersion(),
      reportPath,
      confirm: async (nodes) => {
        out.write(`Rolling back ${nodes.length} node${nodes.length === 1 ? '' : 's'} to what their last apply replaced: ${nodes.map((n) => n.name).join(', ')}\n`);
        return flags.yes || askYesNo(ctx, 'Roll back these nodes?');
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
    .command('rollback')
    .description("restore each node's runc binary and sysctl values from before its last apply (from the node's state file)")
    .requiredOption('-i, --inventory <file>', 'inventory file (native YAML, or an Ansible INI/YAML inventory)');
  addSelectionOptions(cmd);
  addRunOptions(cmd, { smokeTimeout: 'time limit of the smoke container run of the restored binary', parallel: 'nodes restored at once' });
  cmd.option('--overwrite-changed', 'also replace a runc or sysctl file that changed since the apply (installed by a package upgrade or by hand); without it those are left alone and reported');
  addCiOptions(cmd).action(run(async (ctx, flags, command) => rollbackAction(ctx, flags as RollbackFlags, command as Command)));
}
