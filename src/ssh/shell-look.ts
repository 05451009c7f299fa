// After the node's shell loop (shell-driver.ts) ended while a command ran, on
// a connection that is still alive: look at what the loop left on the node
// instead of guessing. Its folder says whether the command was started (`run`)
// and, if the loop lived to see it end, its exit status (`done`). A command
// still running is waited for (it may be changing the node; nothing else may
// start meanwhile). Then the folder is removed.
import { q } from '../core/shell.js';
import { RemoteCommandInterruptedError, errorMessage } from '../errors.js';
import { REMOTE_TIMEOUT_GRACE_MS } from './run-command.js';
import type { ShellLostError } from './shell-driver.js';
import type { RunOptions, RunResult } from './transport.js';

export type ShellLook =
  /** The loop never started it: it can be run again. */
  | { kind: 'not-started' }
  /** It ended and the loop recorded its exit status: the command's own result. */
  | { kind: 'done'; code: number; stdout: string; stderr: string }
  /** It ended, but its exit status was lost with the loop. */
  | { kind: 'ended'; stdout: string; stderr: string }
  /** Still running after the wait, or the loop's folder is gone: nothing can be known. */
  | { kind: 'unknown'; why: string };

/** Poll once a second for up to `waitSec` while any process still runs the request's script. */
export function buildShellLookScript(dir: string, id: number, waitSec: number): string {
  // The pattern must not match this script's own command line, nor grep's: `[s]`.
  const running = `${dir.replace(/[.[\]*^$\\]/g, '\\$&')}/[s]`;
  return `set -u
D=${q(dir)}
[ -d "$D" ] || { echo '@@rrl unknown folder-gone'; exit 0; }
rr_r=
read -r rr_r <"$D/run" 2>/dev/null || :
if [ "$rr_r" != ${id} ]; then rm -rf "$D"; echo '@@rrl not-started'; exit 0; fi
rr_n=0
# -q: a match is status 0 even when a process listed by the glob is gone by the time grep reads it
while grep -qs -- ${q(running)} /proc/[0-9]*/cmdline; do
  rr_n=$((rr_n + 1))
  [ "$rr_n" -le ${Math.max(1, Math.ceil(waitSec))} ] || { echo '@@rrl unknown still-running'; exit 0; }
  sleep 1
done
rr_d=
rr_c=
read -r rr_d rr_c <"$D/done" 2>/dev/null || :
wc -c "$D/o" "$D/e" >"$D/n" 2>/dev/null || { rm -rf "$D"; echo '@@rrl unknown no-output'; exit 0; }
{ read -r rr_o _; read -r rr_e _; } <"$D/n"
if [ "$rr_d" = ${id} ]; then echo "@@rrl done $rr_c $rr_o $rr_e"; else echo "@@rrl ended 0 $rr_o $rr_e"; fi
cat "$D/o" "$D/e"
rm -rf "$D"
`;
}

export function parseShellLook(stdout: Buffer): ShellLook {
  const nl = stdout.indexOf(10);
  const head = (nl < 0 ? stdout : stdout.subarray(0, nl)).toString('latin1');
  if (head === '@@rrl not-started') return { kind: 'not-started' };
  const u = /^@@rrl unknown (\S+)$/.exec(head);
  if (u) return { kind: 'unknown', why: u[1] === 'still-running' ? 'it is still running on the node' : 'the shell left no record of it' };
  const m = /^@@rrl (done|ended) (\d+) (\d+) (\d+)$/.exec(head);
  if (!m) return { kind: 'unknown', why: 'the look at the node gave no answer' };
  const body = stdout.subarray(nl + 1);
  const outLen = Number(m[3]);
  const stdoutText = body.subarray(0, outLen).toString('utf8');
  const stderrText = body.subarray(outLen, outLen + Number(m[4])).toString('utf8');
  return m[1] === 'done' ? { kind: 'done', code: Number(m[2]), stdout: stdoutText, stderr: stderrText } : { kind: 'ended', stdout: stdoutText, stderr: stderrText };
}

export interface ShellLossContext {
  node: string;
  script: string;
  err: ShellLostError;
  opts: RunOptions;
  elapsedMs: number;
  isOpen(): boolean;
  /** Runs the look over a fresh exec channel of the same connection. */
  exec(script: string, timeoutMs: number): Promise<RunResult>;
  /** Runs the command itself over exec (it was never started). */
  rerun(): Promise<RunResult>;
}

/**
 * The command's result after its shell died: its own (recorded or rerun),
 * else an interruption saying what is known. `connection-lost` only when the
 * connection really is gone.
 */
export async function resultAfterShellLoss(c: ShellLossContext): Promise<RunResult> {
  const lost = () => new RemoteCommandInterruptedError(c.node, c.script, 'connection-lost', `connection lost while a command ran (${c.err.why}); its outcome on the node is unknown`, c.err.stderr);
  // A dropped connection closes the shell's channel first: give the connection's own close a turn.
  await new Promise((r) => setImmediate(r));
  if (!c.isOpen()) throw lost();
  const limitMs = c.opts.timeoutMs === undefined ? 600_000 : Math.max(0, c.opts.timeoutMs + REMOTE_TIMEOUT_GRACE_MS - c.elapsedMs);
  let look: ShellLook;
  try {
    const r = await c.exec(buildShellLookScript(c.err.dir, c.err.id, limitMs / 1000), limitMs + 30_000);
    look = r.code === 0 ? parseShellLook(Buffer.from(r.stdout, 'utf8')) : { kind: 'unknown', why: `looking at the node failed (exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''})` };
  } catch (e) {
    if (!c.isOpen() || (e instanceof RemoteCommandInterruptedError && e.reason === 'connection-lost')) throw lost();
    look = { kind: 'unknown', why: `looking at the node failed (${errorMessage(e).split('\n')[0]})` };
  }
  const shellLost = (what: string, stderr: string) => new RemoteCommandInterruptedError(c.node, c.script, 'shell-lost', `the node's shell ended while this command ran (${c.err.why}); ${what}`, stderr);
  switch (look.kind) {
    case 'not-started':
      return c.rerun();
    case 'done':
      return { code: look.code, signal: null, stdout: look.stdout, stderr: look.stderr };
    case 'ended':
      throw shellLost('the command has ended on the node, but its exit status was lost with the shell: outcome unknown', look.stderr);
    case 'unknown':
      throw shellLost(`${look.why}: outcome unknown`, c.err.stderr);
  }
}
