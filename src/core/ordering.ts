// Rollout order on top of the batch arithmetic (batching.ts): control-plane
// nodes last, and batches that never mix values of one label (a zone). Pure.
import { makeBatches, batchCount, type Batch, type BatchPolicy } from './batching.js';

/** Labels that mark a Kubernetes control-plane node: current, legacy (`master`), and Rancher's. */
export const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master', 'node-role.kubernetes.io/controlplane'] as const;

export function isControlPlane(labels: Readonly<Record<string, string>>): boolean {
  // Rancher writes `controlplane: "true"`; kubeadm an empty value. An explicit "false" is not a control plane.
  return CONTROL_PLANE_LABELS.some((k) => Object.hasOwn(labels, k) && labels[k] !== 'false');
}

export interface OrderOptions {
  /** Control-plane nodes go in the final batches, never in a batch with workers. */
  controlPlaneLast?: boolean;
  /** Each batch holds nodes of one value of this label only (nodes without it form their own group). */
  serialBy?: string;
}

/** Value shown for nodes that do not carry the --serial-by label. */
export const NO_VALUE = '(unset)';

/**
 * Segments of `items` that may never share a batch, in rollout order: workers
 * before control-plane nodes (with controlPlaneLast), and within each, one
 * segment per value of `serialBy` in order of first appearance. Inventory
 * order is kept inside every segment.
 */
export function orderSegments<T>(items: readonly T[], labelsOf: (t: T) => Readonly<Record<string, string>>, opts: OrderOptions): { key: string; items: T[] }[] {
  const tiers: { role: string; items: T[] }[] = opts.controlPlaneLast
    ? [
        { role: 'worker', items: items.filter((t) => !isControlPlane(labelsOf(t))) },
        { role: 'control-plane', items: items.filter((t) => isControlPlane(labelsOf(t))) },
      ]
    : [{ role: '', items: [...items] }];
  const segments: { key: string; items: T[] }[] = [];
  for (const tier of tiers) {
    if (!opts.serialBy) {
      if (tier.items.length) segments.push({ key: tier.role, items: tier.items });
      continue;
    }
    const groups = new Map<string, T[]>();
    for (const t of tier.items) {
      const labels = labelsOf(t);
      const v = Object.hasOwn(labels, opts.serialBy) ? (labels[opts.serialBy] as string) : NO_VALUE;
      groups.set(v, [...(groups.get(v) ?? []), t]);
    }
    for (const [v, g] of groups) segments.push({ key: [tier.role, `${opts.serialBy}=${v}`].filter(Boolean).join(' '), items: g });
  }
  return segments;
}

/**
 * makeBatches with an order: without options it is exactly makeBatches. With
 * them, batches are cut inside each segment (orderSegments), so a batch never
 * mixes control-plane nodes with workers nor two values of `serialBy`. The
 * canary batch comes from the first segment (it may hold fewer nodes than
 * --canary when that segment is smaller). `--batch P%` is still a percentage
 * of the whole selection.
 */
export function makeOrderedBatches<T>(
  items: readonly T[],
  policy: BatchPolicy,
  labelsOf: (t: T) => Readonly<Record<string, string>>,
  opts: OrderOptions,
  selected = items.length,
): Batch<T>[] {
  if (!opts.controlPlaneLast && !opts.serialBy) return makeBatches(items, policy, selected);
  const size = batchCount(policy.batch, selected);
  const batches: Batch<T>[] = [];
  let canary = policy.canary;
  for (const seg of orderSegments(items, labelsOf, opts)) {
    let rest = seg.items;
    if (canary > 0 && rest.length > 0) {
      batches.push({ index: batches.length, canary: true, items: rest.slice(0, canary) });
      rest = rest.slice(canary);
      canary = 0;
    }
    for (let i = 0; i < rest.length; i += size) batches.push({ index: batches.length, canary: false, items: rest.slice(i, i + size) });
  }
  return batches;
}
