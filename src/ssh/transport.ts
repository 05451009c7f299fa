// The SSH edge as the rest of the program sees it. The core and the executor
// only use these interfaces, so they can be driven by the real ssh2 transport
// (src/ssh/ssh2-transport.ts) or by an in-memory fake in unit tests.
import type { Readable } from 'node:stream';
import type { NodeSpec } from '../core/types.js';

export interface RunOptions {
  /** Streamed to the remote command's stdin (uploads use this: `dd of=... conv=fsync`). */
  stdin?: Readable | Buffer | string;
  /** Kill the remote command (close the channel) after this long. */
  timeoutMs?: number;
  /** Resolve with the non-zero result instead of throwing RemoteCommandError. */
  allowFailure?: boolean;
  signal?: AbortSignal;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface NodeSession {
  readonly node: string;
  /**
   * Run a POSIX sh script as root: directly when the SSH user is root, else
   * through `sudo -n`. Throws RemoteCommandError on a non-zero exit unless
   * `allowFailure` is set.
   */
  run(script: string, opts?: RunOptions): Promise<RunResult>;
  /** False once the connection has dropped or been closed (absent: assume open). */
  isOpen?(): boolean;
  /** Several commands will follow: get ready for them now, in the background (ssh2: start the node's shell). */
  warmUp?(): void;
  close(): Promise<void>;
}

export interface Transport {
  /** Open one connection to the node, reused for all its commands. Throws SshError. */
  connect(node: NodeSpec, opts?: { signal?: AbortSignal }): Promise<NodeSession>;
}
