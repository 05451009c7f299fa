// Defaults for apply/plan flags kept with the fleet instead of retyped in
// every pipeline: `runc-rollout.config.yaml` in the working directory (or
// --config FILE), and the inventory's own `rollout:` section, which is more
// specific and wins over the file. Flags given on the command line win over
// both. Validated like the inventory: every problem at once, with its path.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { parseBatchSize, parseCount, parseDuration, parseFailureBudget } from '../core/batching.js';
import { InputError, errorMessage } from '../errors.js';

export const CONFIG_FILE = 'runc-rollout.config.yaml';

const via = (parse: (s: string) => unknown) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const s = String(v);
    try {
      parse(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: errorMessage(err).replace(/^--[a-z-]+:?\s*/, '') });
    }
    return s;
  });

/** Keys are the flags' camelCase names, so they map onto commander's option values one to one. */
export const rolloutDefaultsSchema = z
  .object({
    version: z.string().min(1),
    repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be owner/name'),
    batch: via((s) => parseBatchSize(s)),
    canary: via((s) => parseCount(s, 'canary')),
    pause: via((s) => parseDuration(s, 'pause')),
    maxFailures: via((s) => parseFailureBudget(s)),
    smokeTimeout: via((s) => parseDuration(s, 'smokeTimeout')),
    connectTimeout: via((s) => {
      if (parseDuration(s, 'connectTimeout') <= 0) throw new Error('must be longer than 0');
    }),
    parallel: via((s) => parseCount(s, 'parallel', 1)),
    onUnreachable: z.enum(['fail', 'skip']),
    onBudgetExceeded: z.enum(['stop', 'rollback-all']),
    advisories: z.enum(['github', 'builtin']),
    stuckAfter: via((s) => parseDuration(s, 'stuckAfter')),
    unstick: z.boolean(),
  })
  .partial()
  .strict();

export type RolloutDefaults = z.output<typeof rolloutDefaultsSchema>;

function validate(raw: unknown, where: string): RolloutDefaults {
  if (raw === null || raw === undefined) return {};
  const r = rolloutDefaultsSchema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => {
    const path = i.path.length ? i.path.join('.') : '(top level)';
    const msg = i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')} (known: ${Object.keys(rolloutDefaultsSchema.shape).join(', ')})` : i.message;
    return `${where}: ${path}: ${msg}`;
  });
  throw new InputError(`${where}: ${issues.length} problem${issues.length === 1 ? '' : 's'}`, issues);
}

async function readYaml(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`${path}: cannot read it: ${errorMessage(err)}`);
  }
  try {
    return YAML.parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new InputError(`${path}: YAML syntax error: ${errorMessage(err).split('\n')[0]}`);
  }
}

/**
 * The merged defaults: the config file (explicit path, else CONFIG_FILE in
 * `cwd` when present), then the inventory's `rollout:` section on top.
 */
export async function loadRolloutDefaults(opts: { cwd: string; configPath?: string; inventoryPath?: string }): Promise<RolloutDefaults> {
  const file = opts.configPath ?? join(opts.cwd, CONFIG_FILE);
  const fromFile = validate(await readYaml(file, opts.configPath !== undefined), file);
  let fromInventory: RolloutDefaults = {};
  if (opts.inventoryPath) {
    const inv = await readYaml(opts.inventoryPath, false).catch(() => undefined); // the loader reports inventory errors itself
    if (inv && typeof inv === 'object' && !Array.isArray(inv) && 'rollout' in inv) {
      fromInventory = validate((inv as { rollout: unknown }).rollout, `${opts.inventoryPath}: rollout`);
    }
  }
  return { ...fromFile, ...fromInventory };
}
