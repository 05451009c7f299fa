// What `apply` and `rollback` share at the CLI edge: the confirmation prompt,
// the transport built from the environment, who holds the node lock, and the
// end of a run (summary, report on stdout). Not a command: no `register`.
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { ExecutorEvent } from '../apply/executor.js';
import type { RunReport } from '../apply/report.js';
import { createApplyView } from '../output/apply-view.js';
import { parseCount, parseDuration } from '../core/batching.js';
import { ExitCode, InputError, InterruptedError, RolloutError } from '../errors.js';
import { toJUnitXml } from '../output/junit.js';
import { renderSummary } from '../output/run-summary.js';
import { runStepSummary } from '../output/step-summary.js';
import { createOpensshTransport } from '../ssh/openssh-transport.js';
import { createSshTransport } from '../ssh/ssh2-transport.js';
import type { Transport } from '../ssh/transport.js';
import type { CliContext } from './context.js';
import { checked } from './flag-parsers.js';
import { selectionFrom, sshClientFrom, writeCiOutputs, type SelectionFlags } from './fleet-options.js';
import { keyPassphrases } from './passphrase-prompt.js';
import { resolve } from 'node:path';
import { defaultReportPath, newRunId } from '../apply/report.js';
import type { NodeSelection } from '../workflows/select.js';
import { DEFAULT_PARALLEL } from '../workflows/plan.js';

export function toolVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The connect timeout when neither `--connect-timeout` (or the config) nor the host's ssh_config ConnectTimeout sets one: TCP, SSH handshake and auth of one node. */
export const DEFAULT_CONNECT_TIMEOUT = '15s';

/** What the command settled before connecting: a connect timeout the user chose, and passphrases asked on the terminal. */
export interface SshSettings {
  connectTimeout?: { ms: number; source: string };
  passphrases?: ReadonlyMap<string, string>;
  /** `--ssh-client openssh`, with `--ssh-config` for ssh's -F (sshClientFrom). */
  client?: 'openssh';
  configFile?: string;
}

export function transportFor(ctx: CliContext, ssh: SshSettings = {}): Transport {
  if (ssh.client === 'openssh') {
    return createOpensshTransport({
      connectTimeoutMs: parseConnectTimeout(DEFAULT_CONNECT_TIMEOUT),
      ...(ssh.connectTimeout ? { explicitConnectTimeout: ssh.connectTimeout } : {}),
      ...(ssh.configFile ? { configFile: ssh.configFile } : {}),
      ...(ctx.env.SSH_AUTH_SOCK ? { agentSocket: ctx.env.SSH_AUTH_SOCK } : {}),
      env: ctx.env,
      log: ctx.log,
    });
  }
  return createSshTransport({
    connectTimeoutMs: parseConnectTimeout(DEFAULT_CONNECT_TIMEOUT),
    ...(ssh.connectTimeout ? { explicitConnectTimeout: ssh.connectTimeout } : {}),
    ...(ctx.env.SSH_AUTH_SOCK ? { agentSocket: ctx.env.SSH_AUTH_SOCK } : {}),
    ...(ctx.env.RUNC_ROLLOUT_KEY_PASSPHRASE ? { keyPassphrase: ctx.env.RUNC_ROLLOUT_KEY_PASSPHRASE } : {}),
    ...(ssh.passphrases?.size ? { passphrases: ssh.passphrases } : {}),
    log: ctx.log,
  });
}

/**
 * `--connect-timeout` as the user chose it, or undefined when nobody did (the
 * flag has no commander default on purpose: a default would always beat the
 * host's ssh_config ConnectTimeout). Typed on the command line, or a default
 * from the config file or the inventory's rollout: section.
 */
export function chosenConnectTimeout(value: string | undefined, cmd: Pick<Command, 'getOptionValueSource'> | undefined): { ms: number; source: string } | undefined {
  if (value === undefined) return undefined;
  const typed = cmd === undefined || cmd.getOptionValueSource('connectTimeout') === 'cli';
  return { ms: parseConnectTimeout(value), source: typed ? '--connect-timeout' : 'connectTimeout in the config' };
}

/** Written into each node's lock, so whoever finds it knows whom to ask. */
export function lockOwner(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): the pid and host still identify us
  }
  return `${user}@${hostname()} pid ${process.pid}`;
}

/** Human output goes to stdout, unless stdout carries JSON. */
export function humanOut(ctx: CliContext): Writable {
  return ctx.globals().json ? ctx.stderr : ctx.stdout;
}

/** Without a terminal there is nobody to answer: refuse up front rather than hang or assume yes. */
export function requireConfirmable(ctx: CliContext, yes: boolean, what: string): void {
  if (yes || ctx.interactive) return;
  throw new RolloutError(`refusing to ${what} without confirmation: no terminal to ask on (CI or non-interactive). Review it (runc-rollout plan) and pass --yes.`, {
    exitCode: ExitCode.refused,
  });
}

/** y/N on the terminal; an interrupt while asking counts as no. */
export async function askYesNo(ctx: CliContext, question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: ctx.stderr, terminal: true });
  try {
    const answer = await rl.question(`${question} [y/N] `, { signal: ctx.signal });
    return /^y(es)?$/i.test(answer.trim());
  } catch (err) {
    if (ctx.signal.aborted) throw new InterruptedError('interrupted at the confirmation prompt; nothing was changed');
    throw err;
  } finally {
    rl.close();
  }
}

/** The end of every apply and rollback: summary, CI outputs (JUnit, step summary), JSON report; returns the exit code. */
export async function finishRun(ctx: CliContext, report: RunReport, reportPath: string, junitPath: string | undefined): Promise<number> {
  humanOut(ctx).write(renderSummary(report, reportPath));
  await writeCiOutputs(ctx, junitPath, () => toJUnitXml(report), () => runStepSummary(report));
  if (ctx.globals().json) ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.exitCode;
}

/** What a command that acts on an inventory's nodes settles before it connects: which nodes, over what, and where its report goes. */
export interface FleetRun {
  inventoryPath: string;
  selection: NodeSelection;
  transport: Transport;
  runId: string;
  reportPath: string;
}

/** Selection, SSH settings (passphrases asked now, on a terminal), the run id and the report path of a rollback or unstick. */
export async function fleetRun(ctx: CliContext, flags: SelectionFlags & { inventory: string; connectTimeout?: string; report?: string; yes: boolean }, cmd: Command | undefined): Promise<FleetRun> {
  const inventoryPath = resolve(ctx.cwd, flags.inventory);
  const selection = selectionFrom(ctx, flags);
  const connectTimeout = chosenConnectTimeout(flags.connectTimeout, cmd);
  const passphrases = flags.sshClient === 'openssh' ? undefined : await keyPassphrases(ctx, inventoryPath, selection, flags.yes);
  const runId = newRunId();
  return {
    inventoryPath,
    selection,
    transport: transportFor(ctx, { ...sshClientFrom(ctx, flags), ...(connectTimeout ? { connectTimeout } : {}), ...(passphrases ? { passphrases } : {}) }),
    runId,
    reportPath: flags.report ? resolve(ctx.cwd, flags.report) : defaultReportPath(ctx.cwd, runId),
  };
}

/**
 * A run behind its live view (listr2 on a terminal, lines otherwise): `work`
 * gets the event handler; then the summary, CI outputs and JSON report. The
 * view is closed whatever happens.
 */
export async function runWithView(ctx: CliContext, o: { reportPath: string; junitPath: string | undefined }, work: (onEvent: (e: ExecutorEvent) => void) => Promise<RunReport>): Promise<number> {
  const view = createApplyView({ out: humanOut(ctx), interactive: ctx.interactive });
  try {
    const report = await work((e) => view.handle(e));
    await view.close();
    return await finishRun(ctx, report, o.reportPath, o.junitPath);
  } finally {
    await view.close();
  }
}

/** `--connect-timeout`: a duration above zero (a zero deadline would refuse every node). */
export function parseConnectTimeout(text: string): number {
  const ms = parseDuration(text, '--connect-timeout');
  if (ms <= 0) throw new InputError(`--connect-timeout ${text}: must be longer than 0`);
  return ms;
}

/** `--connect-timeout`, shared by every command that connects to nodes. */
export function addConnectTimeoutOption(cmd: Command): Command {
  return cmd.option('--connect-timeout <duration>', `give up connecting to a node (TCP, SSH handshake, auth) after this long (beats ssh_config ConnectTimeout; default: that, else ${DEFAULT_CONNECT_TIMEOUT})`, checked(parseConnectTimeout));
}

/** What apply and rollback share: smoke and connect timeouts, parallelism, report, confirmation, lock takeover. */
export function addRunOptions(cmd: Command, help: { smokeTimeout: string; parallel: string }): Command {
  addConnectTimeoutOption(cmd);
  return cmd
    .option('--smoke-timeout <duration>', help.smokeTimeout, checked(parseDuration), '60s')
    .option('--parallel <n>', help.parallel, checked((s) => parseCount(s, '--parallel', 1)), String(DEFAULT_PARALLEL))
    .option('--report <file>', 'write the run report here (default .runc-rollout/runs/RUN_ID.json)')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)', false)
    .option('--force-unlock', 'take over a node lock left by a controller that died', false);
}
