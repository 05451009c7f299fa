// The `rollback` flow: for each selected node, put back what its state file
// says the last apply replaced (binary and sysctl values). The node's own
// state file is the source of truth, not a local report: it is what the node
// actually holds. Emits the same events as apply so the same views render it.
import type { ExecutorEvent } from '../apply/executor.js';
import { rollbackNode } from '../apply/node-rollback.js';
import { untouchedOutcome, type RunReport } from '../apply/report.js';
import type { NodeEvent, NodeOutcome } from '../apply/types.js';
import type { NodeSpec } from '../core/types.js';
import { ExitCode, RolloutError, errorMessage } from '../errors.js';
import type { Logger } from '../output/logger.js';
import type { NodeSession, Transport } from '../ssh/transport.js';
import { DEFAULT_PARALLEL } from './plan.js';
import { loadSelection, type NodeSelection } from './select.js';
import { runSingleBatch } from './single-batch.js';

export type RollbackNodeFn = typeof rollbackNode;

export interface RollbackOptions extends NodeSelection {
  inventoryPath: string;
  transport: Transport;
  parallel?: number;
  smokeTimeoutMs: number;
  forceUnlock: boolean;
  /** Replace what changed since the apply too (rollback --overwrite-changed). */
  overwriteChanged?: boolean;
  lockOwner: string;
  runId: string;
  toolVersion: string;
  reportPath: string;
  /** Asked with the selected nodes before any is touched; false cancels (exit 3). */
  confirm: (nodes: NodeSpec[]) => Promise<boolean>;
  onEvent?: (e: ExecutorEvent) => void;
  log: Logger;
  signal?: AbortSignal;
  /** The per-node restore; tests pass a fake. */
  rollback?: RollbackNodeFn;
}

export interface RollbackResult {
  report: RunReport;
  reportPath: string;
}

export async function runRollback(opts: RollbackOptions): Promise<RollbackResult> {
  const startedAt = new Date().toISOString();
  const restore = opts.rollback ?? rollbackNode;
  const { inventory, nodes } = await loadSelection(opts.inventoryPath, opts, opts.log);
  if (!(await opts.confirm(nodes))) throw new RolloutError('rollback cancelled; nothing was changed', { exitCode: ExitCode.refused });

  // One batch: a rollback is the way back to a known state, so no node waits on another.
  const report = await runSingleBatch({
    command: 'rollback',
    nodes: nodes.map((node) => ({ name: node.name, host: node.ssh.host, node })),
    parallel: opts.parallel ?? DEFAULT_PARALLEL,
    runId: opts.runId,
    startedAt,
    toolVersion: opts.toolVersion,
    inventory: inventory.path,
    options: { batch: null, canary: 0, pauseMs: 0, maxFailures: 'n/a', smokeTimeoutMs: opts.smokeTimeoutMs, forceUnlock: opts.forceUnlock, allowDowngrade: false },
    budget: 'no budget: every selected node is restored',
    reportPath: opts.reportPath,
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    each: (n, emit) => restoreOne(opts, restore, n.node, emit),
  });
  return { report, reportPath: opts.reportPath };
}

async function restoreOne(opts: RollbackOptions, restore: RollbackNodeFn, node: NodeSpec, emit: (e: NodeEvent) => void): Promise<NodeOutcome> {
  const target = { name: node.name, host: node.ssh.host };
  let session: NodeSession;
  try {
    session = await opts.transport.connect(node, opts.signal ? { signal: opts.signal } : {});
  } catch (err) {
    return untouchedOutcome(target, 'unreachable', `could not connect: ${errorMessage(err)}`);
  }
  try {
    return await restore(session, node, emit, {
      runId: opts.runId,
      smokeTimeoutMs: opts.smokeTimeoutMs,
      lockOwner: opts.lockOwner,
      forceUnlock: opts.forceUnlock,
      overwriteChanged: opts.overwriteChanged ?? false,
      inventoryPath: opts.inventoryPath,
    });
  } catch (err) {
    // The restore itself threw (connection lost mid-way): what the node holds now is not known.
    return untouchedOutcome(target, 'unknown', errorMessage(err));
  } finally {
    await session.close().catch(() => undefined);
  }
}

