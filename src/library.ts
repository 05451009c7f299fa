// The library face of the tool: the same workflows the CLI runs, with plain
// options, progress as events, typed errors and no process.exit. Defaults are
// filled here (real SSH transport, silent logger); env and argv are the
// caller's business, never read here.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { newRunId, defaultReportPath, type RunReport } from './apply/report.js';
import type { ExecutorEvent } from './apply/executor.js';
import type { BatchSize, FailureBudget } from './core/batching.js';
import type { OnBudgetExceeded, OnUnreachable } from './core/policies.js';
import { parseWindows } from './core/window.js';
import type { Arch, Plan, VerifiedRelease } from './core/types.js';
import { silentLogger, type Logger } from './output/logger.js';
import { DEFAULT_REPO, fetchRelease, type ReleaseOptions } from './release/fetch.js';
import { createOpensshTransport } from './ssh/openssh-transport.js';
import { createSshTransport } from './ssh/ssh2-transport.js';
import type { Transport } from './ssh/transport.js';
import { runApply } from './workflows/apply.js';
import { runPlan } from './workflows/plan.js';
import { runRollback } from './workflows/rollback.js';
import type { NodeSelection } from './workflows/select.js';

function toolVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** How to reach the nodes. Give `transport` to bring your own; otherwise ssh2 with these settings. */
export interface ConnectionOptions {
  transport?: Transport;
  /** SSH agent socket (the CLI passes SSH_AUTH_SOCK). */
  agentSocket?: string;
  /** Passphrase of encrypted key files (the CLI passes RUNC_ROLLOUT_KEY_PASSPHRASE). */
  keyPassphrase?: string;
  connectTimeoutMs?: number;
  /** `openssh`: drive the system ssh (host and user certificates; `sshConfig` becomes its -F). Default `ssh2`. */
  sshClient?: 'ssh2' | 'openssh';
}

/** Where the release comes from; the same fields as the CLI's flags. */
export interface ReleaseSource {
  repo?: string;
  version: string;
  pre?: boolean;
  githubApiUrl?: string;
  token?: string;
  cacheDir: string;
  keyringPath?: string;
  releaseDir?: string;
  insecureSkipSignature?: boolean;
  allowVulnerable?: boolean;
  /** `github` (default): GitHub's published advisories merged with the built-in table; `builtin`: the table only. */
  advisories?: 'github' | 'builtin';
  timeoutMs?: number;
}

export interface CommonOptions extends ConnectionOptions, Partial<NodeSelection> {
  inventory: string;
  parallel?: number;
  log?: Logger;
  signal?: AbortSignal;
}

function transportOf(o: ConnectionOptions & { sshConfig?: string }, log: Logger): Transport {
  if (!o.transport && o.sshClient === 'openssh') {
    return createOpensshTransport({
      ...(o.agentSocket ? { agentSocket: o.agentSocket } : {}),
      ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      ...(o.sshConfig ? { configFile: o.sshConfig } : {}),
      log,
    });
  }
  return (
    o.transport ??
    createSshTransport({
      ...(o.agentSocket ? { agentSocket: o.agentSocket } : {}),
      ...(o.keyPassphrase ? { keyPassphrase: o.keyPassphrase } : {}),
      ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      log,
    })
  );
}

function releaseOf(r: ReleaseSource): Omit<ReleaseOptions, 'log' | 'signal'> {
  return {
    repo: r.repo ?? DEFAULT_REPO,
    version: r.version,
    pre: r.pre ?? false,
    githubApiUrl: r.githubApiUrl ?? 'https://api.github.com',
    cacheDir: r.cacheDir,
    insecureSkipSignature: r.insecureSkipSignature ?? false,
    allowVulnerable: r.allowVulnerable ?? false,
    ...(r.token ? { token: r.token } : {}),
    ...(r.keyringPath ? { keyringPath: r.keyringPath } : {}),
    ...(r.releaseDir ? { releaseDir: r.releaseDir } : {}),
    ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}),
    ...(r.advisories ? { advisories: r.advisories } : {}),
  };
}

function selectionOf(o: Partial<NodeSelection>): NodeSelection {
  return { limit: o.limit ?? [], ...(o.shard ? { shard: o.shard } : {}), ...(o.sshOverrides ? { sshOverrides: o.sshOverrides } : {}) };
}

/** Resolve, download and verify a release for the given architectures (the cache is reused). */
export async function resolveRelease(release: ReleaseSource, arches: Arch[], opts: { log?: Logger; signal?: AbortSignal } = {}): Promise<VerifiedRelease> {
  return fetchRelease({ ...releaseOf(release), log: opts.log ?? silentLogger, ...(opts.signal ? { signal: opts.signal } : {}) }, arches);
}

export interface PlanOptions extends CommonOptions {
  release: ReleaseSource;
  allowDowngrade?: boolean;
  /** A `runc init` blocked writing into a pipe for longer than this is stuck (default 300). */
  stuckAfterSeconds?: number;
}

/** Gather facts (read-only) and build the plan. Changes nothing on any node. */
export async function plan(opts: PlanOptions): Promise<Plan> {
  const log = opts.log ?? silentLogger;
  const { plan: p } = await runPlan({
    inventoryPath: opts.inventory,
    ...selectionOf(opts),
    release: releaseOf(opts.release),
    transport: transportOf(opts, log),
    ...(opts.parallel ? { parallel: opts.parallel } : {}),
    allowDowngrade: opts.allowDowngrade ?? false,
    ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    toolVersion: toolVersion(),
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return p;
}

export interface ApplyOptions extends PlanOptions {
  batch?: number | BatchSize;
  canary?: number;
  pauseMs?: number;
  maxFailures?: number | FailureBudget;
  smokeTimeoutMs?: number;
  forceUnlock?: boolean;
  /** Where the run report is written (default `.runc-rollout/runs/<runId>.json` under `cwd`). */
  reportPath?: string;
  cwd?: string;
  /** Called with the plan before any node is touched; resolve false to cancel. Required: a library never assumes yes. */
  confirm: (plan: Plan) => boolean | Promise<boolean>;
  onPlan?: (plan: Plan) => void;
  /** Progress: batches, nodes and every step of every node. */
  onEvent?: (event: ExecutorEvent) => void;
  /** Rollout policies, as the CLI flags of the same names (defaults fail, stop, no windows). */
  onUnreachable?: OnUnreachable;
  onBudgetExceeded?: OnBudgetExceeded;
  /** `--window` specs, e.g. `Sat 01:00-05:00 Europe/Berlin`. */
  windows?: string[];
  /** The clock the windows are checked against (default the system clock). */
  now?: () => Date;
  /** End each node's stuck `runc init` of the old runc once its new runc passed every smoke and the sysctl step (`--unstick`). */
  unstick?: boolean;
}

const count = (n: number | BatchSize): BatchSize => (typeof n === 'number' ? { kind: 'count', count: n } : n);
const budget = (n: number | FailureBudget): FailureBudget => (typeof n === 'number' ? { kind: 'count', count: n } : n);

/** Plan, confirm, then upgrade batch by batch. The report's `exitCode` is what the CLI would exit with. */
export async function apply(opts: ApplyOptions): Promise<RunReport> {
  const log = opts.log ?? silentLogger;
  const runId = newRunId();
  const { report } = await runApply({
    inventoryPath: opts.inventory,
    ...selectionOf(opts),
    release: releaseOf(opts.release),
    transport: transportOf(opts, log),
    ...(opts.parallel ? { parallel: opts.parallel } : {}),
    allowDowngrade: opts.allowDowngrade ?? false,
    batch: count(opts.batch ?? 1),
    canary: opts.canary ?? 0,
    pauseMs: opts.pauseMs ?? 0,
    maxFailures: budget(opts.maxFailures ?? 0),
    smokeTimeoutMs: opts.smokeTimeoutMs ?? 60_000,
    forceUnlock: opts.forceUnlock ?? false,
    lockOwner: `runc-rollout library@${hostname()}`,
    runId,
    toolVersion: toolVersion(),
    reportPath: opts.reportPath ?? defaultReportPath(opts.cwd ?? '.', runId),
    confirm: async (p) => opts.confirm(p),
    onUnreachable: opts.onUnreachable ?? 'fail',
    onBudgetExceeded: opts.onBudgetExceeded ?? 'stop',
    windows: parseWindows(opts.windows ?? [], 'windows'),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.onPlan ? { onPlan: opts.onPlan } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.unstick ? { unstick: true } : {}),
    ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return report;
}

export interface RollbackOptions extends CommonOptions {
  smokeTimeoutMs?: number;
  forceUnlock?: boolean;
  /** Also replace a runc or sysctl file that changed since the apply (CLI --overwrite-changed). */
  overwriteChanged?: boolean;
  reportPath?: string;
  cwd?: string;
  confirm: (nodes: string[]) => boolean | Promise<boolean>;
  onEvent?: (event: ExecutorEvent) => void;
}

/** Restore each selected node from its state file (what its last apply replaced). */
export async function rollback(opts: RollbackOptions): Promise<RunReport> {
  const log = opts.log ?? silentLogger;
  const runId = newRunId();
  const { report } = await runRollback({
    inventoryPath: opts.inventory,
    ...selectionOf(opts),
    transport: transportOf(opts, log),
    ...(opts.parallel ? { parallel: opts.parallel } : {}),
    smokeTimeoutMs: opts.smokeTimeoutMs ?? 60_000,
    forceUnlock: opts.forceUnlock ?? false,
    overwriteChanged: opts.overwriteChanged ?? false,
    lockOwner: `runc-rollout library@${hostname()}`,
    runId,
    toolVersion: toolVersion(),
    reportPath: opts.reportPath ?? defaultReportPath(opts.cwd ?? '.', runId),
    confirm: async (nodes) => opts.confirm(nodes.map((n) => n.name)),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return report;
}
