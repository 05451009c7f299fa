// The `plan` flow: inventory -> facts from every selected node (read-only) ->
// verified release for the arches found -> the pure plan. Every node ends up
// in the plan: a node whose facts could not be gathered is `unreachable` with
// the reason, never dropped.
import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import type { AdvisoryTable } from '../core/advisories.js';
import { mapLimit } from '../core/concurrency.js';
import { buildPlan, type PlanNodeInput } from '../core/plan.js';
import type { Arch, Inventory, NodeFacts, NodeSpec, Plan, VerifiedRelease } from '../core/types.js';
import { InterruptedError, RolloutError, errorMessage } from '../errors.js';
import { gatherFacts } from '../facts/gather.js';
import type { Logger } from '../output/logger.js';
import { assembleRelease, openRelease, verifyArch, type CheckedAsset, type ReleaseOptions } from '../release/fetch.js';
import type { NodeSession, Transport } from '../ssh/transport.js';
import { loadSelection, type NodeSelection } from './select.js';

export const DEFAULT_PARALLEL = 20;

export interface GatheredNode extends PlanNodeInput {
  /** Open session when `keepOpen` was asked and the node answered; the caller closes it. */
  session: NodeSession | null;
}

export interface GatherFleetOptions {
  transport: Transport;
  parallel?: number;
  log: Logger;
  signal?: AbortSignal;
  /** Leave sessions open for a following step (apply); plan closes them at once. */
  keepOpen?: boolean;
  factsTimeoutMs?: number;
  /** --stuck-after, in seconds. */
  stuckAfterSeconds?: number;
  /** Called with each node's facts as they arrive (plan starts verifying a new arch's release binary at once). */
  onFacts?: (facts: NodeFacts) => void;
}

/** Connect to every node (bounded) and gather its facts; per-node failures become `error`. */
export async function gatherFleetFacts(nodes: NodeSpec[], opts: GatherFleetOptions): Promise<GatheredNode[]> {
  const { log, signal } = opts;
  return mapLimit(nodes, opts.parallel ?? DEFAULT_PARALLEL, async (node): Promise<GatheredNode> => {
    if (signal?.aborted) return { node, facts: null, error: 'not contacted: interrupted', session: null };
    let session: NodeSession | null = null;
    try {
      session = await opts.transport.connect(node, signal ? { signal } : {});
      const facts: NodeFacts = await gatherFacts(session, node, {
        ...(signal ? { signal } : {}),
        ...(opts.factsTimeoutMs ? { timeoutMs: opts.factsTimeoutMs } : {}),
        ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
      });
      log.debug(`${node.name}: ${facts.machine}, runc ${facts.runc.version ?? '?'} at ${facts.runcPath ?? '(none)'}`);
      opts.onFacts?.(facts);
      if (!opts.keepOpen) {
        await closeQuietly(session, log);
        session = null;
      }
      return { node, facts, error: null, session };
    } catch (err) {
      if (session) await closeQuietly(session, log);
      const message = errorMessage(err).replace(new RegExp(`^${escapeRegExp(node.name)}: `), '');
      log.debug(`${node.name}: ${message}`);
      return { node, facts: null, error: message, session: null };
    }
  });
}

async function closeQuietly(session: NodeSession, log: Logger): Promise<void> {
  try {
    await session.close();
  } catch (err) {
    log.debug(`${session.node}: close: ${errorMessage(err)}`);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface PlanRunOptions extends NodeSelection {
  inventoryPath: string;
  release: Omit<ReleaseOptions, 'log' | 'signal'>;
  transport: Transport;
  parallel?: number;
  allowDowngrade: boolean;
  toolVersion: string;
  /** `runc init` blocked on a pipe for longer than this is stuck (--stuck-after; default 5 minutes). */
  stuckAfterSeconds?: number;
  log: Logger;
  signal?: AbortSignal;
  now?: () => Date;
  /** Leave the fact-gathering connections open and return them (apply carries out the change over them). */
  keepSessions?: boolean;
}

export interface PlanRun {
  plan: Plan;
  inventory: Inventory;
  release: VerifiedRelease;
  /** With keepSessions: the open sessions of the nodes that answered; the caller closes them. */
  sessions: NodeSession[];
}

export async function runPlan(opts: PlanRunOptions): Promise<PlanRun> {
  const { log, signal } = opts;
  const { inventory, nodes } = await loadSelection(opts.inventoryPath, opts, log);
  log.info(`gathering facts from ${nodes.length} node${nodes.length === 1 ? '' : 's'} (parallel ${opts.parallel ?? DEFAULT_PARALLEL})`);

  // The release is resolved and verified while the nodes answer: each architecture as soon as the first node of it does.
  const release = releaseVerifier({ ...opts.release, log, ...(signal ? { signal } : {}) });
  const gathered = await gatherFleetFacts(nodes, {
    transport: opts.transport,
    parallel: opts.parallel ?? DEFAULT_PARALLEL,
    log,
    keepOpen: opts.keepSessions ?? false,
    ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    onFacts: (f) => {
      if (f.arch) release.want(f.arch);
    },
    ...(signal ? { signal } : {}),
  });
  const sessions = gathered.flatMap((g) => (g.session ? [g.session] : []));
  try {
    return await planFromFacts(opts, inventory, gathered, sessions, release);
  } catch (err) {
    await Promise.all(sessions.map((s) => closeQuietly(s, log)));
    throw err;
  }
}

async function planFromFacts(opts: PlanRunOptions, inventory: Inventory, gathered: GatheredNode[], sessions: NodeSession[], verifier: ReleaseVerifier): Promise<PlanRun> {
  const { log, signal } = opts;
  if (signal?.aborted) throw new InterruptedError('plan interrupted while gathering facts');
  const down = gathered.filter((g) => g.error !== null);
  if (down.length) log.warn(`${down.length} node${down.length === 1 ? '' : 's'} unreachable: ${down.map((g) => g.node.name).join(', ')}`);

  const arches = [...new Set(gathered.map((g) => g.facts?.arch).filter((a): a is Arch => Boolean(a)))];
  if (arches.length === 0) {
    throw new RolloutError('no selected node answered with a supported architecture: nothing to plan', {
      details: gathered.map((g) => `${g.node.name}: ${g.error ?? `unsupported architecture "${g.facts?.machine ?? '?'}"`}`),
    });
  }
  const release = await verifier.finish(arches);
  const plan = buildPlan({
    advisories: await verifier.advisories(),
    ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    inventoryPath: inventory.path,
    limit: opts.limit,
    nodes: gathered.map(({ node, facts, error }) => ({ node, facts, error })),
    release,
    allowDowngrade: opts.allowDowngrade,
    toolVersion: opts.toolVersion,
    now: (opts.now ?? (() => new Date()))(),
  });
  if (opts.shard) plan.shard = opts.shard;
  return { plan, inventory, release, sessions };
}

interface ReleaseVerifier {
  want(arch: Arch): void;
  finish(arches: Arch[]): Promise<VerifiedRelease>;
  /** The advisory table the target was checked against. */
  advisories(): Promise<AdvisoryTable>;
}

/** Starts resolving at once; failures surface from finish(), after the facts, never as unhandled rejections. */
function releaseVerifier(ro: ReleaseOptions): ReleaseVerifier {
  const opened = openRelease(ro);
  opened.catch(() => undefined);
  const perArch = new Map<Arch, Promise<CheckedAsset>>();
  const want = (arch: Arch): Promise<CheckedAsset> => {
    let p = perArch.get(arch);
    if (!p) {
      p = opened.then((r) => verifyArch(r, arch));
      p.catch(() => undefined);
      perArch.set(arch, p);
    }
    return p;
  };
  return {
    want: (arch) => void want(arch),
    async finish(arches) {
      const r = await opened;
      const checked: Partial<Record<Arch, CheckedAsset>> = {};
      for (const arch of arches) checked[arch] = await want(arch);
      return assembleRelease(r, checked);
    },
    advisories: async () => (await opened).advisories,
  };
}

/** `--out FILE`: written whole or not at all. */
export async function savePlan(path: string, plan: Plan): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(plan, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}
