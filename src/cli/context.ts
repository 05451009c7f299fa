// What every command gets from the CLI frame. This is the only place (with
// main.ts) that reads process state; commands pass plain values inward.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { createLogger, type Logger } from '../output/logger.js';

export const DEFAULT_GITHUB_API_URL = 'https://api.github.com';

export interface GlobalOptions {
  githubApiUrl: string;
  /** From GITHUB_TOKEN; never printed. */
  githubToken: string | undefined;
  cacheDir: string;
  /** Trusted keyring file; the packaged upstream runc.keyring when undefined. */
  keyring: string | undefined;
  json: boolean;
  verbose: boolean;
}

export interface CliContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: Writable;
  stderr: Writable;
  /** stdout and stdin are terminals and CI is not set: live views and prompts allowed. */
  interactive: boolean;
  /** Aborted on the first SIGINT/SIGTERM. */
  signal: AbortSignal;
  log: Logger;
  globals(): GlobalOptions;
}

export function addGlobalOptions(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .option('--github-api-url <url>', 'GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3)', env.GITHUB_API_URL || DEFAULT_GITHUB_API_URL)
    .option('--cache-dir <dir>', 'where verified release assets are cached', defaultCacheDir(env))
    .option('--keyring <file>', 'trusted OpenPGP keyring for release signatures (default: the packaged upstream runc.keyring)')
    .option('--json', 'machine-readable output on stdout; human logs go to stderr', false)
    .option('--verbose', 'more detail in logs', false);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'runc-rollout');
}

export function readGlobals(program: Command, env: NodeJS.ProcessEnv, cwd: string): GlobalOptions {
  const o = program.opts<{ githubApiUrl: string; cacheDir: string; keyring?: string; json: boolean; verbose: boolean }>();
  return {
    githubApiUrl: o.githubApiUrl.replace(/\/+$/, ''),
    githubToken: env.GITHUB_TOKEN || undefined,
    cacheDir: resolve(cwd, o.cacheDir),
    keyring: o.keyring ? resolve(cwd, o.keyring) : undefined,
    json: Boolean(o.json),
    verbose: Boolean(o.verbose),
  };
}

export function makeContext(program: Command, io: {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  stdinIsTTY: boolean;
  signal: AbortSignal;
}): CliContext {
  const ci = Boolean(io.env.CI && io.env.CI !== 'false' && io.env.CI !== '0');
  const interactive = Boolean(io.stdout.isTTY && io.stdinIsTTY && !ci);
  const colour = Boolean(io.stderr.isTTY) && !ci && !io.env.NO_COLOR;
  let cached: GlobalOptions | undefined;
  const globals = () => (cached ??= readGlobals(program, io.env, io.cwd));
  return {
    env: io.env,
    cwd: io.cwd,
    stdout: io.stdout,
    stderr: io.stderr,
    interactive,
    signal: io.signal,
    log: createLogger(io.stderr, { colour, verbose: () => globals().verbose }),
    globals,
  };
}
