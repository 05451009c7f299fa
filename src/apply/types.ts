// The contract between the per-node pipeline (node-upgrade.ts, rollback) and
// the orchestration (executor, report, listr2 view, library callers).
import type { NodePlan, NodeSpec, ReleaseAsset, VersionDigest } from '../core/types.js';
import type { NodePolicy } from '../core/policies.js';
import type { StuckRuncInit, UnstuckProcess } from '../core/stuck.js';

export const UPGRADE_STEPS = [
  'lock',
  'stage',
  'staged-smoke',
  'backup',
  'swap',
  'verify',
  'smoke',
  'sysctl',
  'smoke-after-sysctl',
] as const;
export type UpgradeStep = (typeof UPGRADE_STEPS)[number];
/** Health gates (inventory `health:`): run only on nodes that configure them (src/apply/health.ts). */
export const HEALTH_STEPS = ['health', 'health-after-swap', 'health-after-sysctl', 'health-after-unstick'] as const;
export type HealthStep = (typeof HEALTH_STEPS)[number];
/** Read-only report after a successful change: stuck `runc init` processes (src/apply/stuck-runc-init.ts). */
export const INFO_STEPS = ['runc-init-check'] as const;
/** `--unstick` and `runc-rollout unstick`: end the stuck `runc init` of another runc (src/apply/node-unstick.ts). */
export const UNSTICK_STEPS = ['unstick'] as const;
export type StepName = UpgradeStep | HealthStep | (typeof INFO_STEPS)[number] | (typeof UNSTICK_STEPS)[number] | 'rollback' | 'unlock';

export type StepStatus = 'start' | 'ok' | 'failed' | 'skipped';

export interface NodeEvent {
  node: string;
  step: StepName;
  status: StepStatus;
  /** Short human detail: digest checked, stderr tail, why skipped. */
  message?: string;
  at: string; // ISO time
}

export type NodeStatus =
  | 'upgraded'
  | 'unchanged'
  | 'rolled-back'
  | 'failed' // failed and NOT rolled back cleanly: needs a human
  | 'not-attempted'
  | 'unknown' // connection lost while the node was being changed: state not known
  | 'unreachable';

export interface StepRecord {
  name: StepName;
  status: Exclude<StepStatus, 'start'>;
  startedAt: string;
  durationMs: number;
  message?: string;
}

export interface SysctlSnapshot {
  live: number | null;
  persisted: number | null;
}

export interface NodeOutcome {
  name: string;
  host: string;
  status: NodeStatus;
  from: VersionDigest | null;
  to: VersionDigest | null;
  failedStep: StepName | null;
  error: string | null;
  backupPath: string | null;
  sysctl: { before: SysctlSnapshot | null; after: SysctlSnapshot | null };
  steps: StepRecord[];
  rollback: { ok: boolean; smokeOk: boolean | null; error: string | null; manualCommands: string[] } | null;
  /** Which rollout policy decided this node's fate (budget, window, ...); null or absent: its own upgrade did. */
  policy?: NodePolicy | null;
  /** Stuck `runc init` processes left after the node's change (the check riding with the unlock); absent when not looked. */
  stuck?: StuckRuncInit[];
  /** What `--unstick` (or `unstick`) did to each stuck process it set out to end; absent when it did not run. */
  unstuck?: UnstuckProcess[];
}

/** Everything the per-node pipeline needs; built by the executor from the plan. */
export interface NodeJob {
  node: NodeSpec;
  plan: NodePlan; // action upgrade/downgrade/none; blocked/unreachable never reach the pipeline
  /** The verified binary for this node's arch (absent when action is `none`). */
  asset: ReleaseAsset | null;
  /** The asset gzip'd, compressed once per run and shared by the nodes of its arch; null when compressing failed. */
  gzipped?: () => Promise<Buffer | null>;
  runId: string;
  smokeTimeoutMs: number;
  /** Identifies this controller in the node lock: `user@host pid N`. */
  lockOwner: string;
  forceUnlock: boolean;
  /** Upgrade the node even when its health gates fail before the change (post-change gates then only warn). */
  includeUnhealthy?: boolean;
  /** `runc init` blocked on a pipe for longer than this is stuck (--stuck-after; default 5 minutes). */
  stuckAfterSeconds?: number;
  /** `--unstick`: once the new runc passed every smoke and the sysctl step, end the stuck `runc init` of the old one. */
  unstick?: boolean;
}
