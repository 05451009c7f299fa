// The `unstick` flow, for nodes already at the target: facts from every
// selected node (the stuck `runc init` scan rides with them) -> a preview of
// what would be ended, node by node -> confirmed -> on each node, exactly the
// previewed processes that still match are ended, then its health gates are
// checked -> report. A node whose runc is not past the rc93 hang, or that
// cannot be reached, refuses the whole run before anything is ended (fix it
// or leave it out with --limit), as apply does with blocked nodes.
import type { ExecutorEvent } from '../apply/executor.js';
import { runHealthGate } from '../apply/health.js';
import { NodeRun, StepFailure } from '../apply/node-run.js';
import { unstickNode } from '../apply/node-unstick.js';
import type { RunReport } from '../apply/report.js';
import type { NodeEvent, NodeOutcome } from '../apply/types.js';
import { endable, unstickRefusal, type UnstickPreview, type UnstickPreviewNode } from '../core/stuck.js';
import type { NodeSpec } from '../core/types.js';
import { ExitCode, RolloutError } from '../errors.js';
import type { Logger } from '../output/logger.js';
import { SessionPool } from '../ssh/session-pool.js';
import type { Transport } from '../ssh/transport.js';
import { DEFAULT_PARALLEL, gatherFleetFacts } from './plan.js';
import { loadSelection, type NodeSelection } from './select.js';
import { runSingleBatch } from './single-batch.js';

export interface UnstickOptions extends NodeSelection {
  inventoryPath: string;
  transport: Transport;
  parallel?: number;
  stuckAfterSeconds: number;
  runId: string;
  toolVersion: string;
  reportPath: string;
  /** Shown before anything is asked or done. */
  onPreview?: (p: UnstickPreview) => void;
  /** Asked when there is something to end; false cancels (exit 3). */
  confirm: (p: UnstickPreview) => Promise<boolean>;
  onEvent?: (e: ExecutorEvent) => void;
  log: Logger;
  signal?: AbortSignal;
}

export interface UnstickRun {
  preview: UnstickPreview;
  report: RunReport;
}

export async function runUnstick(opts: UnstickOptions): Promise<UnstickRun> {
  const startedAt = new Date().toISOString();
  const { inventory, nodes } = await loadSelection(opts.inventoryPath, opts, opts.log);
  const pool = new SessionPool(opts.transport);
  try {
    opts.log.info(`looking for stuck runc init on ${nodes.length} node${nodes.length === 1 ? '' : 's'}`);
    const gathered = await gatherFleetFacts(nodes, { transport: pool, parallel: opts.parallel ?? DEFAULT_PARALLEL, keepOpen: true, stuckAfterSeconds: opts.stuckAfterSeconds, log: opts.log, ...(opts.signal ? { signal: opts.signal } : {}) });
    for (const g of gathered) if (g.session) pool.adopt(g.session);
    const preview: UnstickPreview = {
      stuckAfterSeconds: opts.stuckAfterSeconds,
      nodes: gathered.map(({ node, facts, error }) => {
        const base = { name: node.name, host: node.ssh.host, runcPath: facts?.runcPath ?? null, version: facts?.runc.version ?? null, sha256: facts?.runc.sha256 ?? null, stuck: facts?.stuck ?? [] };
        const refused = !facts ? `unreachable: ${error ?? 'no facts'}` : !facts.runcPath || !facts.runc.sha256 ? 'no runc found' : unstickRefusal(facts.runc.version);
        return { ...base, toEnd: refused ? [] : endable(base.stuck), refused };
      }),
    };
    opts.onPreview?.(preview);
    const refused = preview.nodes.filter((n) => n.refused);
    if (refused.length) {
      throw new RolloutError(`${refused.length} node${refused.length === 1 ? '' : 's'} cannot be unstuck; nothing was ended. Upgrade them first (runc-rollout apply) or leave them out with --limit.`, {
        exitCode: ExitCode.refused,
        details: refused.map((n) => `${n.name}: ${n.refused}`),
      });
    }
    if (preview.nodes.some((n) => n.toEnd.length > 0) && !(await opts.confirm(preview))) throw new RolloutError('unstick cancelled; nothing was ended', { exitCode: ExitCode.refused });

    const specs = new Map(nodes.map((n) => [n.name, n]));
    const report = await runSingleBatch({
      command: 'unstick',
      nodes: preview.nodes,
      parallel: opts.parallel ?? DEFAULT_PARALLEL,
      runId: opts.runId,
      startedAt,
      toolVersion: opts.toolVersion,
      inventory: inventory.path,
      options: { batch: null, canary: 0, pauseMs: 0, maxFailures: 'n/a', smokeTimeoutMs: 0, forceUnlock: false, allowDowngrade: false, unstick: true, stuckAfterSeconds: opts.stuckAfterSeconds },
      budget: 'no budget: every selected node is unstuck',
      reportPath: opts.reportPath,
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      each: (p, emit) => unstickOne(opts, pool, specs.get(p.name) as NodeSpec, p, emit),
    });
    return { preview, report };
  } finally {
    await pool.closeAll();
  }
}

/** One node: end what the preview showed (each process re-checked on the node), then its health gates. */
async function unstickOne(opts: UnstickOptions, pool: SessionPool, node: NodeSpec, p: UnstickPreviewNode, emit: (e: NodeEvent) => void): Promise<NodeOutcome> {
  const current = { version: p.version, sha256: p.sha256 };
  const out: NodeOutcome = { name: p.name, host: p.host, status: 'unchanged', from: current, to: current, failedStep: null, error: null, backupPath: null, sysctl: { before: null, after: null }, steps: [], rollback: null };
  if (p.toEnd.length === 0) return { ...out, unstuck: [] };
  let run: NodeRun | undefined;
  try {
    const session = await pool.connect(node, opts.signal ? { signal: opts.signal } : {});
    run = new NodeRun(session, node.name, emit, opts.runId, 0);
    const r = run;
    await r.step('unstick', async () => ({
      value: undefined,
      message: await unstickNode(r, { runcPath: p.runcPath as string, currentSha256: p.sha256 as string, version: p.version, stuckAfterSeconds: opts.stuckAfterSeconds, found: p.stuck }, (res) => {
        out.unstuck = res.unstuck;
      }),
    }));
    if (node.health) await runHealthGate(r, 'health-after-unstick', node.health, opts.signal);
    return { ...out, steps: r.steps };
  } catch (err) {
    const f = err instanceof StepFailure ? err : new StepFailure('unstick', String(err));
    return { ...out, steps: run?.steps ?? [], status: f.outcomeUnknown ? 'unknown' : 'failed', failedStep: f.step, error: `${f.step}: ${f.message}` };
  }
}

