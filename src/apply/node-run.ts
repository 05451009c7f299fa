// What upgrade and rollback share on one node: step events and records, remote
// runs whose failures are classified (failed vs outcome unknown), and the smoke
// container runner.
import { gzipSync } from 'node:zlib';
import { RemoteCommandInterruptedError, SshError, errorMessage, tailLines, type InterruptReason } from '../errors.js';
import type { NodeSession, RunOptions, RunResult } from '../ssh/transport.js';
import type { NodeEvent, StepName, StepRecord } from './types.js';
import { buildSmokeConfig, buildSmokeScript, smokeFailedStep, smokePaths, type SmokeLabel } from './smoke.js';

/** How an interrupted command reads in a step's message (the connection is gone only for `connection-lost`). */
const INTERRUPTED: Record<InterruptReason, string> = { 'connection-lost': 'connection lost', timeout: 'timed out', aborted: 'aborted', 'shell-lost': "the node's shell ended under it" };

/** A step's failure, with what the pipeline needs to decide and report. */
export class StepFailure extends Error {
  /** The connection dropped (or the command was cut off) while it ran: its effect on the node is unknown. */
  readonly outcomeUnknown: boolean;
  readonly lostConnection: boolean;
  /** The remote command's result when it ran to a non-zero exit: its output says how far it got. */
  readonly result: RunResult | undefined;

  constructor(
    readonly step: StepName,
    message: string,
    o: { outcomeUnknown?: boolean; lostConnection?: boolean; result?: RunResult } = {},
  ) {
    super(message);
    this.outcomeUnknown = o.outcomeUnknown ?? false;
    this.lostConnection = o.lostConnection ?? false;
    this.result = o.result;
  }

  /** The same failure, told as step `step`'s. */
  as(step: StepName): StepFailure {
    return step === this.step ? this : new StepFailure(step, this.message, this);
  }
}

export interface RunFacts {
  hasLib64: boolean;
  hasGzip: boolean;
}

export class NodeRun {
  readonly steps: StepRecord[] = [];
  private readonly open = new Map<StepName, { at: string; t0: number }>();
  private smokeReady = false;

  constructor(
    readonly session: NodeSession,
    readonly node: string,
    private readonly emitFn: (e: NodeEvent) => void,
    readonly runId: string,
    readonly smokeTimeoutMs: number,
  ) {}

  /**
   * Names this node's smoke bundle, container and cgroup. Per node, not just
   * per run: where nodes share a cgroup tree (test fleets, nested setups) two
   * nodes' smokes of one run must not collide or clean up each other.
   */
  get smokeId(): string {
    return `${this.runId}.${this.node}`;
  }

  private emit(step: StepName, status: NodeEvent['status'], message?: string): void {
    const e: NodeEvent = { node: this.node, step, status, at: new Date().toISOString() };
    if (message !== undefined) e.message = message;
    try {
      this.emitFn(e);
    } catch {
      // A broken view must not break a node half-way through a change.
    }
  }

  start(step: StepName, message?: string): void {
    this.open.set(step, { at: new Date().toISOString(), t0: Date.now() });
    this.emit(step, 'start', message);
  }

  finish(step: StepName, status: 'ok' | 'failed' | 'skipped', message?: string): void {
    const o = this.open.get(step);
    this.open.delete(step);
    const rec: StepRecord = { name: step, status, startedAt: o?.at ?? new Date().toISOString(), durationMs: o ? Date.now() - o.t0 : 0 };
    if (message !== undefined) rec.message = message;
    this.steps.push(rec);
    this.emit(step, status, message);
  }

  /** A step whose work ran inside an earlier round trip: reported now, timed from `sinceMs`. */
  record(step: StepName, status: 'ok' | 'failed', message: string, sinceMs: number): void {
    this.open.set(step, { at: new Date(sinceMs).toISOString(), t0: sinceMs });
    this.emit(step, 'start');
    this.finish(step, status, message);
  }

  skip(step: StepName, why: string): void {
    this.finish(step, 'skipped', why);
  }

  /** Runs `fn` as step `step`: start, then ok with its message or failed with the failure's. */
  async step<T>(step: StepName, fn: () => Promise<{ value: T; message?: string }>): Promise<T> {
    this.start(step);
    try {
      const r = await fn();
      this.finish(step, 'ok', r.message);
      return r.value;
    } catch (err) {
      const f = err instanceof StepFailure ? err : new StepFailure(step, errorMessage(err));
      this.finish(step, 'failed', shortDetail(f.message));
      throw f.as(step);
    }
  }

  /**
   * One remote script for step `step`. A non-zero exit becomes a StepFailure
   * with the stderr tail; a dropped connection or timeout one whose outcome is
   * unknown. `accept` lets a caller read the output of a failed run too.
   */
  async exec(step: StepName, what: string, script: string, opts: RunOptions = {}): Promise<RunResult> {
    let r: RunResult;
    try {
      r = await this.session.run(script, { ...opts, allowFailure: true });
    } catch (err) {
      if (err instanceof RemoteCommandInterruptedError) {
        const lost = err.reason === 'connection-lost';
        throw new StepFailure(step, `${what}: ${INTERRUPTED[err.reason]}; outcome on the node unknown (${tailLines(err.message, 3)})`, { outcomeUnknown: true, lostConnection: lost });
      }
      if (err instanceof SshError) throw new StepFailure(step, `${what}: ${err.message}`, { lostConnection: /connection|closed|gone/i.test(err.message) });
      throw new StepFailure(step, `${what}: ${errorMessage(err)}`);
    }
    if (r.code !== 0) {
      const tail = tailLines(r.stderr, 20).trim();
      const how = r.code === null ? `killed${r.signal ? ` by ${r.signal}` : ''}` : `exit ${r.code}`;
      throw new StepFailure(step, `${what} failed (${how})${tail ? `: ${tail}` : ''}`, { result: r });
    }
    return r;
  }

  /** The smoke container with `runcPath`; the bundle is uploaded with the first smoke, and again after a failed one removed it. */
  async smoke(step: StepName, label: SmokeLabel, runcPath: string, facts: RunFacts, customCommand?: string): Promise<string> {
    const paths = smokePaths(this.smokeId);
    const prepare = this.smokeReady ? false : { gzip: facts.hasGzip };
    const script = buildSmokeScript({ runcPath, runId: this.smokeId, label, timeoutSec: this.smokeTimeoutMs / 1000, prepare, customCommand });
    let stdin: Buffer | undefined;
    if (prepare) {
      const json = Buffer.from(JSON.stringify(buildSmokeConfig({ hasLib64: facts.hasLib64, cgroupName: paths.cgroupName })));
      stdin = prepare.gzip ? gzipSync(json) : json;
    }
    this.smokeReady = false;
    try {
      // The script's own deadline ends the lifecycle; the margin is for its cleanup of a hung runc.
      await this.exec(step, `smoke container with ${runcPath}`, script, { stdin, timeoutMs: this.smokeTimeoutMs + 45_000 });
      this.smokeReady = true;
      return `create, start, exec, kill, delete passed${customCommand ? ', custom smoke command passed' : ''}`;
    } catch (err) {
      const r = err instanceof StepFailure ? err.result : undefined;
      if (r) {
        const failed = smokeFailedStep(r.stdout) ?? 'unknown';
        const tail = tailLines(r.stderr, 15).trim();
        throw new StepFailure(step, `smoke container with ${runcPath} failed at \`${failed}\`${tail ? `: ${tail}` : ''}`);
      }
      throw err;
    }
  }
}

/** A few lines of a message, for step events and records. */
export function shortDetail(s: string): string {
  const l = s.split('\n').slice(0, 6).join('\n');
  return l.length > 800 ? `${l.slice(0, 797)}...` : l;
}
