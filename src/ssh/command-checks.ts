// What a finished remote command's result means beyond its exit code, shared
// by both transports (ssh2-transport.ts, openssh-transport.ts): sudo's own
// refusals and timeout(1) stopping the script are not the script's failures.
import { RemoteCommandError, RemoteCommandInterruptedError, SshError } from '../errors.js';
import type { RunOptions, RunResult } from './transport.js';

/** Exit status of timeout(1) when it stopped the command. */
export const TIMEOUT_EXIT = 124;

/** sudo's own refusals are not command failures: say what is wrong and how to fix it, even with allowFailure. */
export function checkSudo(node: string, user: string, r: RunResult): void {
  if (r.code === 1 && /^sudo: (a password is required|a terminal is required)/m.test(r.stderr)) {
    throw new SshError(
      node,
      `sudo: a password is required. runc-rollout runs commands with "sudo -n" and never types a password: ` +
        `allow ${user} to use sudo without one (e.g. "${user} ALL=(root) NOPASSWD: ALL" in /etc/sudoers.d/runc-rollout, edited with visudo), or connect as root`,
    );
  }
  if (r.code === 1 && /^(sudo: )?\S+ is not in the sudoers file|^Sorry, user \S+ (is not allowed|may not run sudo)/m.test(r.stderr)) {
    throw new SshError(node, `sudo: user ${user} may not run commands as root on this node; grant it in /etc/sudoers.d (NOPASSWD), or connect as root`);
  }
  if (r.code === 127 && /sudo: (command )?not found|sudo: No such file/.test(r.stderr)) {
    throw new SshError(node, `sudo is not installed on this node, but the inventory sets ssh.sudo for user ${user}`);
  }
}

/** 124 after (about) the full time is timeout(1) stopping the script, not the script's own failure. */
export function checkTimeout(node: string, script: string, r: RunResult, timeoutMs: number, elapsedMs: number): void {
  if (r.code === TIMEOUT_EXIT && elapsedMs >= timeoutMs * 0.9) {
    const secs = Math.round(timeoutMs / 100) / 10;
    throw new RemoteCommandInterruptedError(node, script, 'timeout', `timed out after ${secs}s; stopped on the node (timeout(1) killed it)`, r.stderr);
  }
  if (r.code === 127 && /timeout: (command )?not found|timeout: No such file/.test(r.stderr)) {
    throw new SshError(node, 'timeout(1) (coreutils or busybox) is not installed on this node; it is needed to enforce command timeouts');
  }
}

/** A finished command as both transports report it: sudo's refusals, timeout(1)'s stop, then a non-zero exit unless allowFailure. */
export function judgeResult(c: { node: string; user: string; sudo: boolean; script: string; opts: RunOptions; elapsedMs: number }, r: RunResult): RunResult {
  if (c.sudo) checkSudo(c.node, c.user, r);
  if (c.opts.timeoutMs !== undefined) checkTimeout(c.node, c.script, r, c.opts.timeoutMs, c.elapsedMs);
  if (r.code !== 0 && !c.opts.allowFailure) throw new RemoteCommandError(c.node, c.script, r.code, r.signal, r.stderr);
  return r;
}
