// Typed errors. Every failure that reaches the CLI is one of these; the CLI maps
// `exitCode` to the process exit status in exactly one place (src/cli/main.ts).

export const ExitCode = {
  ok: 0,
  /** The rollout ran and at least one node failed. */
  nodeFailed: 1,
  /** `plan --detailed-exitcode` found changes. */
  changesPending: 2,
  /** Refused before touching any node: bad input, release not found or not verified, unreachable nodes. */
  refused: 3,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class RolloutError extends Error {
  readonly exitCode: ExitCodeValue;
  /** Extra lines shown under the message (hints, per-item problems). */
  readonly details: string[];
  constructor(message: string, opts: { exitCode?: ExitCodeValue; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.refused;
    this.details = opts.details ?? [];
  }
}

/** Bad user input: flags, inventory, plan files. `issues` are `path: message` lines. */
export class InputError extends RolloutError {
  readonly issues: string[];
  constructor(message: string, issues: string[] = []) {
    super(message, { exitCode: ExitCode.refused, details: issues });
    this.issues = issues;
  }
}

/** The release could not be found, downloaded or verified. Always refuses before any node is touched. */
export class ReleaseError extends RolloutError {
  constructor(message: string, details: string[] = [], cause?: unknown) {
    super(message, { exitCode: ExitCode.refused, details, cause });
  }
}

/** A network call to the GitHub API failed (after retries) or timed out. */
export class GitHubError extends ReleaseError {
  readonly status: number | undefined;
  constructor(message: string, status?: number, details: string[] = [], cause?: unknown) {
    super(message, details, cause);
    this.status = status;
  }
}

/** SSH connection or authentication failure for one node. */
export class SshError extends RolloutError {
  readonly node: string;
  constructor(node: string, message: string, cause?: unknown) {
    super(`${node}: ${message}`, { exitCode: ExitCode.refused, cause });
    this.node = node;
  }
}

/** A remote command exited non-zero (or was killed). Carries what an SRE needs to reproduce it. */
export class RemoteCommandError extends RolloutError {
  readonly node: string;
  readonly command: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderrTail: string;
  constructor(node: string, command: string, code: number | null, signal: string | null, stderr: string) {
    const tail = tailLines(stderr, 20);
    const how = code === null ? `killed by ${signal ?? 'unknown signal'}` : `exit code ${code}`;
    super(`${node}: remote command failed (${how}): ${summarizeCommand(command)}${tail ? `\n${indent(tail)}` : ''}`, {
      exitCode: ExitCode.nodeFailed,
    });
    this.node = node;
    this.command = command;
    this.code = code;
    this.signal = signal;
    this.stderrTail = tail;
  }
}

export type InterruptReason = 'timeout' | 'aborted' | 'connection-lost' | 'shell-lost';

/**
 * A remote command whose outcome is unknown: it timed out, was aborted, or the
 * connection dropped while it ran. The channel was closed; the process on the
 * node may still be running or may have finished.
 */
export class RemoteCommandInterruptedError extends RemoteCommandError {
  /** `shell-lost`: the node's shell loop died under the command on a live connection (ssh/shell-look.ts). */
  readonly reason: InterruptReason;
  constructor(node: string, command: string, reason: InterruptReason, detail: string, stderr = '') {
    super(node, command, null, null, stderr);
    this.reason = reason;
    this.message = `${node}: ${detail}: ${summarizeCommand(command)}${this.stderrTail ? `\n${indent(this.stderrTail)}` : ''}`;
  }
}

/** The user interrupted the run (SIGINT/SIGTERM). */
export class InterruptedError extends RolloutError {
  constructor(message = 'interrupted') {
    super(message, { exitCode: ExitCode.interrupted });
  }
}

export function tailLines(text: string, n: number): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  return lines.slice(-n).join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** Remote scripts can be long; error messages show their first line only. */
export function summarizeCommand(command: string): string {
  const first = command.split('\n')[0] ?? '';
  return first.length > 200 ? `${first.slice(0, 197)}...` : first + (command.includes('\n') ? ' ...' : '');
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
