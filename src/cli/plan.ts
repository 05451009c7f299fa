// `runc-rollout plan`: what apply would do on every node. Changes nothing.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { pendingChanges, refusedNodes } from '../core/plan.js';
import { ExitCode } from '../errors.js';
import { renderPlanTable, summaryLine } from '../output/plan-table.js';
import { DEFAULT_REPO } from '../release/fetch.js';
import { createSshTransport } from '../ssh/ssh2-transport.js';
import { DEFAULT_PARALLEL, runPlan, savePlan } from '../workflows/plan.js';
import type { CliContext } from './context.js';
import type { Runner } from './main.js';

interface PlanFlags {
  inventory: string;
  version: string;
  limit: string[];
  repo: string;
  pre: boolean;
  releaseDir?: string;
  insecureSkipSignature: boolean;
  allowVulnerable: boolean;
  allowDowngrade: boolean;
  parallel: number;
  detailedExitcode: boolean;
  out?: string;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function toolVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name];
  return Boolean(v && v !== 'false' && v !== '0');
}

export async function planAction(ctx: CliContext, flags: PlanFlags): Promise<number> {
  const g = ctx.globals();
  const { plan } = await runPlan({
    inventoryPath: resolve(ctx.cwd, flags.inventory),
    limit: flags.limit,
    release: {
      repo: flags.repo,
      version: flags.version,
      pre: flags.pre,
      githubApiUrl: g.githubApiUrl,
      ...(g.githubToken ? { token: g.githubToken } : {}),
      cacheDir: g.cacheDir,
      ...(g.keyring ? { keyringPath: g.keyring } : {}),
      ...(flags.releaseDir ? { releaseDir: resolve(ctx.cwd, flags.releaseDir) } : {}),
      insecureSkipSignature: flags.insecureSkipSignature,
      allowVulnerable: flags.allowVulnerable,
    },
    transport: createSshTransport({
      ...(ctx.env.SSH_AUTH_SOCK ? { agentSocket: ctx.env.SSH_AUTH_SOCK } : {}),
      ...(ctx.env.RUNC_ROLLOUT_KEY_PASSPHRASE ? { keyPassphrase: ctx.env.RUNC_ROLLOUT_KEY_PASSPHRASE } : {}),
      log: ctx.log,
    }),
    parallel: flags.parallel,
    allowDowngrade: flags.allowDowngrade,
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
  program
    .command('plan')
    .description('show what apply would change on each node (changes nothing)')
    .requiredOption('-i, --inventory <file>', 'inventory file')
    .requiredOption('--version <version>', 'target runc release: v1.2.9, 1.2.9, latest, or a range like ~1.2')
    .option('-l, --limit <pattern>', 'only nodes whose name matches the glob, or label=value (repeatable)', collect, [] as string[])
    .option('--repo <owner/name>', 'GitHub repository of the releases', DEFAULT_REPO)
    .option('--pre', 'allow pre-releases when resolving --version', false)
    .option('--release-dir <dir>', 'read the release files from this directory instead of GitHub (air-gapped)')
    .option('--insecure-skip-signature', 'do not verify release signatures (lab use only)', false)
    .option('--allow-vulnerable', 'allow a target version with known advisories', false)
    .option('--allow-downgrade', 'plan downgrades instead of refusing them', false)
    .option('--parallel <n>', 'nodes contacted at once', positiveInt, DEFAULT_PARALLEL)
    .option('--detailed-exitcode', 'exit 2 when changes are pending (0: nothing to change, 3: refused)', false)
    .option('--out <file>', 'save the plan as JSON for a later `apply FILE`')
    .action(run(async (ctx, flags) => planAction(ctx, flags as PlanFlags)));
}
