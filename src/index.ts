// Public entry point of the `runc-rollout` package.
export { apply, plan, resolveRelease, rollback } from './library.js';
export type { ApplyOptions, CommonOptions, ConnectionOptions, PlanOptions, ReleaseSource, RollbackOptions } from './library.js';
export { loadInventory } from './inventory/load.js';
export { selectNodes } from './core/limit.js';
export { shardNodes } from './core/shard.js';
export { PlanSchema, parsePlanFile } from './core/plan-schema.js';
export { runReportSchema, parseReport } from './apply/report.js';
export type { RunReport } from './apply/report.js';
export type { ExecutorEvent } from './apply/executor.js';
export type { NodeEvent, NodeOutcome, NodeStatus, StepName } from './apply/types.js';
export type { Inventory, NodePlan, NodeSpec, Plan, VerifiedRelease, Arch } from './core/types.js';
export { advisoriesFor, builtinAdvisories, type Advisory, type AdvisoryTable } from './core/advisories.js';
export type { StuckRuncInit, UnstuckProcess } from './core/stuck.js';
export { parseWindow, inWindow, windowsOpen, type RolloutWindow } from './core/window.js';
export { describePolicies, type NodePolicy, type OnBudgetExceeded, type OnUnreachable } from './core/policies.js';
export { ExitCode, RolloutError, InputError, ReleaseError, SshError, RemoteCommandError, InterruptedError } from './errors.js';
export { silentLogger, type Logger } from './output/logger.js';
export { toJUnitXml, planToJUnitXml } from './output/junit.js';
