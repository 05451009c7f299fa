// The run report: what an apply or rollback did to every node. Written after
// every run (also interrupted ones) so an operator or a later `--resume` can
// see exactly which node is in which state.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ExitCode, InputError } from '../errors.js';
import { ARCHES } from '../core/types.js';
import { NODE_POLICIES, ON_BUDGET_EXCEEDED, ON_UNREACHABLE } from '../core/policies.js';
import { UNSTICK_OUTCOMES } from '../core/stuck.js';
import { HEALTH_STEPS, INFO_STEPS, UNSTICK_STEPS, UPGRADE_STEPS, type NodeOutcome, type NodeStatus } from './types.js';
import { StuckRuncInitSchema } from '../core/plan-schema.js';

export const NODE_STATUSES = ['upgraded', 'unchanged', 'rolled-back', 'failed', 'not-attempted', 'unknown', 'unreachable'] as const satisfies readonly NodeStatus[];
const STEP_NAMES = [...UPGRADE_STEPS, ...HEALTH_STEPS, ...INFO_STEPS, ...UNSTICK_STEPS, 'rollback', 'unlock'] as const;

const versionDigest = z.object({ version: z.string().nullable(), sha256: z.string().nullable() });
const sysctlSnapshot = z.object({ live: z.number().nullable(), persisted: z.number().nullable() });

export const nodeOutcomeSchema = z.object({
  name: z.string(),
  host: z.string(),
  status: z.enum(NODE_STATUSES),
  from: versionDigest.nullable(),
  to: versionDigest.nullable(),
  failedStep: z.enum(STEP_NAMES).nullable(),
  error: z.string().nullable(),
  backupPath: z.string().nullable(),
  sysctl: z.object({ before: sysctlSnapshot.nullable(), after: sysctlSnapshot.nullable() }),
  steps: z.array(
    z.object({
      name: z.enum(STEP_NAMES),
      status: z.enum(['ok', 'failed', 'skipped']),
      startedAt: z.string(),
      durationMs: z.number(),
      message: z.string().optional(),
    }),
  ),
  rollback: z
    .object({ ok: z.boolean(), smokeOk: z.boolean().nullable(), error: z.string().nullable(), manualCommands: z.array(z.string()) })
    .nullable(),
  /** Which rollout policy decided the node's fate; absent in reports of older versions. */
  policy: z.enum(NODE_POLICIES).nullable().optional(),
  /** Stuck `runc init` left after the change; absent when not looked (and in reports of older versions). */
  stuck: z.array(StuckRuncInitSchema).optional(),
  /** What --unstick or `unstick` did to each stuck process it set out to end. */
  unstuck: z
    .array(
      z.object({
        pid: z.number(),
        ageSeconds: z.number(),
        containerId: z.string().nullable(),
        exe: z.string().nullable(),
        outcome: z.enum(UNSTICK_OUTCOMES),
        detail: z.string().optional(),
      }),
    )
    .optional(),
});

export const STOP_REASONS = ['budget-exceeded', 'interrupted', 'window'] as const;
export type StopReason = (typeof STOP_REASONS)[number];

export const runReportSchema = z.object({
  schema: z.literal(1),
  command: z.enum(['apply', 'rollback', 'unstick']),
  runId: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  tool: z.object({ name: z.literal('runc-rollout'), version: z.string() }),
  /** Null for `rollback` and `unstick`, which install no release. */
  release: z
    .object({
      repo: z.string(),
      tag: z.string(),
      version: z.string(),
      signatureVerified: z.boolean(),
      assets: z.partialRecord(z.enum(ARCHES), z.object({ name: z.string(), sha256: z.string(), size: z.number() })),
    })
    .nullable(),
  inventory: z.string().nullable(),
  options: z.object({
    batch: z.string().nullable(),
    canary: z.number(),
    pauseMs: z.number(),
    maxFailures: z.string(),
    smokeTimeoutMs: z.number(),
    forceUnlock: z.boolean(),
    allowDowngrade: z.boolean(),
    // Rollout policies (absent in reports of older versions).
    onUnreachable: z.enum(ON_UNREACHABLE).optional(),
    onBudgetExceeded: z.enum(ON_BUDGET_EXCEEDED).optional(),
    windows: z.array(z.string()).optional(),
    /** `--resume`: the report this run continued, and the nodes it had already finished. */
    resumedFrom: z.object({ runId: z.string(), path: z.string(), finished: z.array(z.string()) }).nullable().optional(),
    /** `--unstick` and `--stuck-after` (seconds), when given. */
    unstick: z.boolean().optional(),
    stuckAfterSeconds: z.number().optional(),
  }),
  batches: z.array(
    z.object({
      index: z.number(),
      canary: z.boolean(),
      nodes: z.array(z.string()),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
      failures: z.number(),
    }),
  ),
  interrupted: z.boolean(),
  stoppedReason: z.enum(STOP_REASONS).nullable(),
  nodes: z.array(nodeOutcomeSchema),
  summary: z.object({ total: z.number(), ...Object.fromEntries(NODE_STATUSES.map((s) => [s, z.number()])) } as Record<
    'total' | NodeStatus,
    z.ZodNumber
  >),
  exitCode: z.union([z.literal(ExitCode.ok), z.literal(ExitCode.nodeFailed), z.literal(ExitCode.interrupted)]),
});

export type RunReport = z.infer<typeof runReportSchema>;
export type RunSummary = RunReport['summary'];
export type BatchRecord = RunReport['batches'][number];

// Keep the schema honest against the hand-written contract type.
type Assert<T extends true> = T;
type _OutcomeMatches = Assert<z.infer<typeof nodeOutcomeSchema> extends NodeOutcome ? (NodeOutcome extends z.infer<typeof nodeOutcomeSchema> ? true : false) : false>;

/** Statuses of an apply that count against the failure budget. */
export const FAILED_STATUSES: readonly NodeStatus[] = ['rolled-back', 'failed', 'unknown', 'unreachable'];
/** What a node may end as for the run to exit 0: a rollback's success is `rolled-back`. */
export const OK_STATUSES: Record<RunReport['command'], readonly NodeStatus[]> = {
  apply: ['upgraded', 'unchanged'],
  rollback: ['rolled-back', 'unchanged'],
  unstick: ['unchanged'],
};

export function summarize(nodes: readonly Pick<NodeOutcome, 'status'>[]): RunSummary {
  const summary = { total: nodes.length } as RunSummary;
  for (const s of NODE_STATUSES) summary[s] = 0;
  for (const n of nodes) summary[n.status] += 1;
  return summary;
}

/**
 * 0 only when every node ended in an OK status (or was left for the next
 * rollout window: a clean stop); an interruption wins over failures.
 */
export function runExitCode(nodes: readonly Pick<NodeOutcome, 'status' | 'policy'>[], interrupted: boolean, command: RunReport['command'] = 'apply'): RunReport['exitCode'] {
  if (interrupted) return ExitCode.interrupted;
  const ok = (n: Pick<NodeOutcome, 'status' | 'policy'>) => OK_STATUSES[command].includes(n.status) || (n.status === 'not-attempted' && n.policy === 'window');
  return nodes.every(ok) ? ExitCode.ok : ExitCode.nodeFailed;
}

/** Sortable and unique enough for a file name: `20261128T180203Z-3fa9c1`. */
/** Time to the millisecond first, so run ids (and report file names) sort by start even within one second. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.(\d+)Z$/, '$1Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function defaultReportPath(cwd: string, runId: string): string {
  return join(cwd, '.runc-rollout', 'runs', `${runId}.json`);
}

export function serializeReport(report: RunReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Temp file in the same directory, fsync, rename: a reader never sees half a report. */
export async function writeReport(report: RunReport, path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(serializeReport(report));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return path;
}

export function parseReport(text: string, source = 'report'): RunReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not JSON: ${(err as Error).message}`);
  }
  const parsed = runReportSchema.safeParse(data);
  if (!parsed.success) {
    throw new InputError(
      `${source}: not a runc-rollout run report`,
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  return parsed.data;
}

export type ReportInput = Omit<RunReport, 'schema' | 'summary' | 'exitCode' | 'tool'> & { toolVersion: string };

/** Summary and exit code are derived, never passed in, so they cannot disagree with the nodes. */
export function assembleReport(input: ReportInput): RunReport {
  return {
    schema: 1,
    command: input.command,
    runId: input.runId,
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    tool: { name: 'runc-rollout', version: input.toolVersion },
    release: input.release,
    inventory: input.inventory,
    options: input.options,
    batches: input.batches,
    interrupted: input.interrupted,
    stoppedReason: input.stoppedReason,
    nodes: input.nodes,
    summary: summarize(input.nodes),
    exitCode: runExitCode(input.nodes, input.interrupted, input.command),
  };
}

/** The outcome of a node the run did not change (not attempted, unreachable, blocked). */
export function untouchedOutcome(
  node: { name: string; host: string },
  status: NodeOutcome['status'],
  error: string,
  from: NodeOutcome['from'] = null,
  sysctlBefore: NodeOutcome['sysctl']['before'] = null,
): NodeOutcome {
  return { name: node.name, host: node.host, status, from, to: null, failedStep: null, error, backupPath: null, sysctl: { before: sysctlBefore, after: null }, steps: [], rollback: null };
}
