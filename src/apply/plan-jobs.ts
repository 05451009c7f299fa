// From a plan to the per-node jobs the executor hands to the pipeline, after
// checking that the plan can be carried out as approved: the verified release
// is the one the plan targets, and every node it names is in the inventory.
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { ReleaseError } from '../errors.js';
import type { NodePlan, NodeSpec, Plan, PlanAction, ReleaseAsset, VerifiedRelease } from '../core/types.js';
import { untouchedOutcome } from './report.js';
import type { NodeJob, NodeOutcome } from './types.js';

/** Actions the pipeline carries out; `none` still brings the sysctl to the target. */
export const RUNNABLE: readonly PlanAction[] = ['upgrade', 'downgrade', 'none'];

/** Refuses (before any node is touched) a plan the release or inventory cannot carry out. */
export function prepareJobs(
  plan: Plan,
  nodes: NodeSpec[],
  release: VerifiedRelease,
  opts: Pick<NodeJob, 'runId' | 'smokeTimeoutMs' | 'lockOwner' | 'forceUnlock' | 'includeUnhealthy' | 'unstick' | 'stuckAfterSeconds'>,
): Map<string, NodeJob> {
  const specs = new Map(nodes.map((n) => [n.name, n]));
  const problems: string[] = [];
  const jobs = new Map<string, NodeJob>();
  const gzipped = new Map<ReleaseAsset, () => Promise<Buffer | null>>();
  if (plan.release.tag !== release.tag || plan.release.repo !== release.repo) {
    problems.push(`plan is for ${plan.release.repo} ${plan.release.tag}, release given is ${release.repo} ${release.tag}`);
  }
  for (const np of plan.nodes) {
    if (!RUNNABLE.includes(np.action)) continue;
    const node = specs.get(np.name);
    if (!node) {
      problems.push(`${np.name}: in the plan but not in the inventory`);
      continue;
    }
    let asset = null;
    if (np.action !== 'none') {
      asset = np.arch ? (release.assets[np.arch] ?? null) : null;
      if (!asset) problems.push(`${np.name}: the release has no verified binary for arch ${np.arch ?? 'unknown'}`);
      else if (np.target && asset.sha256 !== np.target.sha256) {
        problems.push(`${np.name}: plan targets sha256 ${np.target.sha256}, the verified ${asset.name} is ${asset.sha256}`);
      }
    }
    if (asset && !gzipped.has(asset)) gzipped.set(asset, once(() => gzipFile(asset.path)));
    jobs.set(np.name, {
      node,
      plan: np,
      asset,
      ...(asset ? { gzipped: gzipped.get(asset) } : {}),
      runId: opts.runId,
      smokeTimeoutMs: opts.smokeTimeoutMs,
      lockOwner: opts.lockOwner,
      forceUnlock: opts.forceUnlock,
      ...(opts.includeUnhealthy ? { includeUnhealthy: true } : {}),
      ...(opts.unstick ? { unstick: true } : {}),
      ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}),
    });
  }
  if (problems.length) throw new ReleaseError('the plan does not match the release or inventory; nothing was changed', problems);
  return jobs;
}

/**
 * Compressed once, on the thread pool, when the first node needs it. Sent
 * instead of the binary to nodes that have gzip: runc shrinks to about half,
 * and each node's transfer is cut by that much for one compression per run.
 * Any failure here only means the plain binary is sent.
 */
async function gzipFile(path: string): Promise<Buffer | null> {
  try {
    return await promisify(gzip)(await readFile(path), { level: 6 });
  } catch {
    return null;
  }
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** The outcome of a plan node the run did not change. */
export function skippedOutcome(np: NodePlan, status: NodeOutcome['status'], error: string): NodeOutcome {
  const before = np.sysctl ? { live: np.sysctl.live, persisted: np.sysctl.persisted } : null;
  return untouchedOutcome(np, status, error, np.current, before);
}
