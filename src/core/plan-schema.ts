// The JSON plan's schema (`plan --json`, `plan --out`, `apply plan.json`).
// Exported from the package so pipelines can validate plans themselves.
import { z } from 'zod';
import { InputError } from '../errors.js';
import { ARCHES, type Plan } from './types.js';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256');
const absPath = z.string().startsWith('/', 'expected an absolute path');
const count = z.number().int().nonnegative();

export const SysctlPlanSchema = z.object({
  live: z.number().int().nullable(),
  persisted: z.number().int().nullable(),
  persistedFrom: z.string().nullable(),
  target: z.number().int().nonnegative(),
  changeLive: z.boolean(),
  changePersisted: z.boolean(),
  commentOut: z.array(z.object({ path: absPath, lines: z.array(z.number().int().positive()) })),
});

export const StuckRuncInitSchema = z.object({
  pid: z.number().int().positive(),
  startTicks: count,
  ageSeconds: z.number().int(),
  state: z.string(),
  wchan: z.string(),
  exe: z.string().nullable(),
  current: z.boolean(),
  ppid: count,
  parent: z.string().nullable(),
  containerId: z.string().nullable(),
});

export const NodePlanSchema = z.object({
  name: z.string().min(1),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  arch: z.enum(ARCHES).nullable(),
  runcPath: absPath.nullable(),
  action: z.enum(['upgrade', 'downgrade', 'none', 'blocked', 'unreachable']),
  current: z.object({ version: z.string().nullable(), sha256: sha256.nullable() }).nullable(),
  target: z.object({ version: z.string().min(1), sha256 }).nullable(),
  sysctl: SysctlPlanSchema.nullable(),
  warnings: z.array(z.string()),
  error: z.string().nullable(),
  /** Absent in plans of older versions. */
  stuck: z.array(StuckRuncInitSchema).optional(),
});

export const PlanSchema = z.object({
  schema: z.literal(1),
  createdAt: z.iso.datetime(),
  tool: z.object({ name: z.literal('runc-rollout'), version: z.string() }),
  release: z.object({
    repo: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'expected owner/name'),
    tag: z.string().min(1),
    version: z.string().min(1),
    signatureVerified: z.boolean(),
    assets: z.partialRecord(z.enum(ARCHES), z.object({ name: z.string().min(1), sha256, size: count })),
  }),
  inventory: z.string().min(1),
  limit: z.array(z.string()),
  shard: z.string().nullish(),
  options: z.object({ allowDowngrade: z.boolean(), stuckAfterSeconds: count.optional() }),
  nodes: z.array(NodePlanSchema),
  summary: z.object({ upgrade: count, downgrade: count, unchanged: count, blocked: count, unreachable: count }),
});

// The schema and the Plan type must not drift apart.
type Parsed = z.infer<typeof PlanSchema>;
const _toPlan = (p: Parsed): Plan => p;
const _toParsed = (p: Plan): Parsed => p;
void _toPlan;
void _toParsed;

/** `nodes[2].target.sha256` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(root)';
}

/** Rules across fields that a saved plan must keep before `apply` trusts it. */
function crossFieldIssues(plan: Plan): string[] {
  const issues: string[] = [];
  const seen = new Set<string>();
  plan.nodes.forEach((n, i) => {
    const at = `nodes[${i}]`;
    if (seen.has(n.name)) issues.push(`${at}.name: duplicate node "${n.name}"`);
    seen.add(n.name);
    if (n.action === 'upgrade' || n.action === 'downgrade' || n.action === 'none') {
      if (!n.arch) issues.push(`${at}.arch: required for action "${n.action}"`);
      if (!n.runcPath) issues.push(`${at}.runcPath: required for action "${n.action}"`);
      if (!n.current?.sha256) issues.push(`${at}.current.sha256: required for action "${n.action}"`);
      if (!n.target) issues.push(`${at}.target: required for action "${n.action}"`);
      else {
        const asset = n.arch ? plan.release.assets[n.arch] : undefined;
        if (!asset) issues.push(`${at}.arch: release has no asset for "${n.arch}"`);
        else if (asset.sha256 !== n.target.sha256) issues.push(`${at}.target.sha256: does not match the release's ${asset.name}`);
        if (n.target.version !== plan.release.version) issues.push(`${at}.target.version: does not match release.version`);
      }
      if (n.action === 'none' && n.target && n.current?.sha256 !== n.target.sha256) issues.push(`${at}.action: "none" but current and target digests differ`);
      if (n.action === 'downgrade' && !plan.options.allowDowngrade) issues.push(`${at}.action: "downgrade" without options.allowDowngrade`);
    } else if (!n.error) {
      issues.push(`${at}.error: required for action "${n.action}"`);
    }
  });
  const counted = {
    upgrade: plan.nodes.filter((n) => n.action === 'upgrade').length,
    downgrade: plan.nodes.filter((n) => n.action === 'downgrade').length,
    unchanged: plan.nodes.filter((n) => n.action === 'none').length,
    blocked: plan.nodes.filter((n) => n.action === 'blocked').length,
    unreachable: plan.nodes.filter((n) => n.action === 'unreachable').length,
  };
  for (const [k, v] of Object.entries(counted)) {
    if (plan.summary[k as keyof typeof counted] !== v) issues.push(`summary.${k}: ${plan.summary[k as keyof typeof counted]} but ${v} nodes have that action`);
  }
  return issues;
}

/** Validate a value as a plan; every problem at once, as `path: message`. */
export function validatePlan(value: unknown, source = 'plan'): Plan {
  const r = PlanSchema.safeParse(value);
  if (!r.success) {
    throw new InputError(`${source}: not a valid runc-rollout plan`, r.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`));
  }
  const issues = crossFieldIssues(r.data);
  if (issues.length) throw new InputError(`${source}: inconsistent plan`, issues);
  return r.data;
}

/** Parse a saved plan file's text (`plan --out FILE`). */
export function parsePlanFile(text: string, source = 'plan file'): Plan {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not JSON: ${(err as Error).message}`);
  }
  if (value && typeof value === 'object' && 'schema' in value && (value as { schema: unknown }).schema !== 1) {
    throw new InputError(`${source}: plan schema ${JSON.stringify((value as { schema: unknown }).schema)} is not supported (this runc-rollout reads schema 1)`);
  }
  return validatePlan(value, source);
}
