// Facts of one node in one round trip over an open session.
import type { NodeFacts, NodeSpec } from '../core/types.js';
import type { NodeSession } from '../ssh/transport.js';
import { parseFacts } from './parse.js';
import { buildFactsScript } from './script.js';

export interface GatherOptions {
  /** Whole-script limit; the script itself bounds `runc --version` to 10 s. */
  timeoutMs?: number;
  /** `runc init` blocked on a pipe for longer than this is stuck (default 5 minutes). */
  stuckAfterSeconds?: number;
  signal?: AbortSignal;
}

export async function gatherFacts(session: NodeSession, node: NodeSpec, opts: GatherOptions = {}): Promise<NodeFacts> {
  const script = buildFactsScript({ ...(node.runcPath ? { runcPath: node.runcPath } : {}), ...(opts.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: opts.stuckAfterSeconds } : {}) });
  const res = await session.run(script, { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
  return parseFacts(res.stdout, node.name);
}
