// One SSH connection per node per command. `apply` gathers facts over a
// connection and carries out the change over the same one: the pool hands the
// executor (and a rollback-all after it) the session the facts came over, and
// opens a new one only when that one has dropped since (a long confirmation
// prompt, a node that restarted sshd). Sessions handed out are leases: their
// close() leaves the connection to the pool, which closes every connection
// once, in parallel, at the end of the command.
import type { NodeSpec } from '../core/types.js';
import type { NodeSession, RunOptions, RunResult, Transport } from './transport.js';

export class SessionPool implements Transport {
  private readonly sessions = new Map<string, NodeSession>();
  private readonly opening = new Map<string, Promise<NodeSession>>();
  /** Connections this pool opened itself (adopted ones not counted); tests and --verbose look. */
  reconnects = 0;

  constructor(private readonly base: Transport) {}

  /** Take over a session opened elsewhere (the facts step); the pool closes it. The change follows: it warms up now. */
  adopt(session: NodeSession): void {
    session.warmUp?.();
    const old = this.sessions.get(session.node);
    this.sessions.set(session.node, session);
    if (old && old !== session) void old.close().catch(() => undefined);
  }

  async connect(node: NodeSpec, opts: { signal?: AbortSignal } = {}): Promise<NodeSession> {
    const pooled = this.sessions.get(node.name);
    if (pooled && isOpen(pooled)) return lease(pooled);
    let pending = this.opening.get(node.name);
    if (!pending) {
      if (pooled) {
        this.sessions.delete(node.name);
        void pooled.close().catch(() => undefined);
      }
      pending = this.base.connect(node, opts).then((s) => {
        this.reconnects++;
        this.sessions.set(node.name, s);
        return s;
      });
      this.opening.set(node.name, pending);
      pending.finally(() => this.opening.delete(node.name)).catch(() => undefined);
    }
    return lease(await pending);
  }

  /** Close every connection, in parallel; never throws. */
  async closeAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close().catch(() => undefined)));
  }
}

function isOpen(s: NodeSession): boolean {
  return s.isOpen ? s.isOpen() : true;
}

function lease(s: NodeSession): NodeSession {
  return {
    node: s.node,
    run: (script: string, opts?: RunOptions): Promise<RunResult> => s.run(script, opts),
    isOpen: () => isOpen(s),
    warmUp: () => s.warmUp?.(),
    close: async () => undefined,
  };
}
