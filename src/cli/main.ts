// The CLI frame: parse argv, run one command, map any error to an exit code in
// exactly one place. The only module (with context.ts) that touches `process`.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ExitCode, RolloutError, errorMessage } from '../errors.js';
import { addGlobalOptions, makeContext, type CliContext } from './context.js';
import { commands } from './commands.js';

export type Action = (ctx: CliContext, ...args: unknown[]) => Promise<number | void>;
/** Wraps a command body so its result becomes the exit code. */
export type Runner = (action: Action) => (...args: unknown[]) => Promise<void>;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(ctxFor: () => CliContext, setExit: (code: number) => void, env: NodeJS.ProcessEnv): Command {
  const program = new Command('runc-rollout')
    .description('Upgrade runc on a fleet of Linux container hosts over SSH: verified release, staged smoke test, atomic swap, sysctl restore, automatic rollback.')
    .version(packageVersion(), '-V, --version-info', 'print the runc-rollout version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  addGlobalOptions(program, env);
  const run: Runner = (action) => async (...args) => {
    const code = await action(ctxFor(), ...args);
    setExit(typeof code === 'number' ? code : ExitCode.ok);
  };
  for (const register of commands) register(program, run);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write(`\nrunc-rollout: ${sig} received: starting no new node; nodes in progress finish or roll back. Send again to abort now.\n`);
      abort.abort(new Error(sig));
    } else {
      process.stderr.write(`runc-rollout: second ${sig}: aborting.\n`);
      process.exit(ExitCode.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let exitCode: number = ExitCode.ok;
  let ctx: CliContext | undefined;
  const program: Command = buildProgram(
    () =>
      (ctx ??= makeContext(program, {
        env: process.env,
        cwd: process.cwd(),
        stdout: process.stdout,
        stderr: process.stderr,
        stdinIsTTY: Boolean(process.stdin.isTTY),
        signal: abort.signal,
      })),
    (code) => {
      exitCode = code;
    },
    process.env,
  );
  // `-V` conflicts with nothing, but users expect `--version` on the top level too;
  // subcommands use --version for the runc release, so only rewrite a bare one.
  const args = argv.slice(2);
  if (args.length === 1 && args[0] === '--version') args[0] = '--version-info';

  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    exitCode = reportError(err, process.stderr);
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.exitCode = exitCode;
}

/** The one place errors become exit codes. */
export function reportError(err: unknown, stderr: NodeJS.WritableStream): number {
  if (err instanceof CommanderError) {
    // help and version output are not errors
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
    return ExitCode.refused; // commander already printed the message
  }
  if (err instanceof RolloutError) {
    stderr.write(`runc-rollout: ${err.message}\n`);
    for (const d of err.details) stderr.write(`  ${d}\n`);
    return err.exitCode;
  }
  stderr.write(`runc-rollout: unexpected error: ${errorMessage(err)}\n`);
  if (err instanceof Error && err.stack) stderr.write(`${err.stack}\n`);
  return ExitCode.refused;
}
