// Runs the built CLI (bin/runc-rollout) against a fleet and the loopback
// release server, the way a CI job would: no TTY, CI=true.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseReport, type RunReport } from '../../src/apply/report.js';
import type { ReleaseFixtures } from '../harness/release-fixtures.js';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliEnv {
  apiUrl: string;
  fixtures: ReleaseFixtures;
  cacheDir: string;
  /** Working directory: reports land in its .runc-rollout/runs/. */
  cwd: string;
  /** Extra environment for the CLI (e.g. RUNC_ROLLOUT_NOW). */
  env?: Record<string, string>;
}

export function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'dist/cli/apply.js'))) throw new Error('dist/ is not built: run `npm run build` (npm test does)');
}

/** Starts the CLI; `onOutput` sees stdout+stderr as they arrive (to send a signal at the right moment). */
export function startCli(env: CliEnv, args: string[], onOutput?: (text: string, child: ChildProcess) => void): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/runc-rollout'), '--github-api-url', env.apiUrl, '--cache-dir', env.cacheDir, '--keyring', env.fixtures.keyringPath, ...args],
    { cwd: env.cwd, env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let all = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    all += d.toString();
    onOutput?.(all, child);
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    all += d.toString();
    onOutput?.(all, child);
  });
  const done = new Promise<CliResult>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
  return { child, done };
}

/**
 * The CLI on a pseudo-terminal (util-linux `script`), CI unset: what a person
 * at a terminal gets. `answer` is typed once the y/N prompt shows.
 */
export function runCliOnTty(env: CliEnv, args: string[], answer: string): Promise<CliResult & { prompted: boolean }> {
  const words = [process.execPath, join(ROOT, 'bin/runc-rollout'), '--github-api-url', env.apiUrl, '--cache-dir', env.cacheDir, '--keyring', env.fixtures.keyringPath, ...args];
  const command = `stty cols 120 rows 40; exec ${words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ')}`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete childEnv.CI;
  const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: env.cwd, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let prompted = false;
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (!prompted && /\[y\/N\]/.test(out)) {
      prompted = true;
      child.stdin?.write(answer);
    }
  });
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((res) => child.on('close', (code, signal) => res({ code, signal, stdout: out, stderr: '', prompted })));
}

export function runCli(env: CliEnv, args: string[]): Promise<CliResult> {
  return startCli(env, args).done;
}

export const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** The newest report under cwd/.runc-rollout/runs/ (run ids sort by time). */
export function latestReport(cwd: string): RunReport {
  const dir = join(cwd, '.runc-rollout', 'runs');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  const last = files.at(-1);
  if (!last) throw new Error(`no report in ${dir}`);
  return parseReport(readFileSync(join(dir, last), 'utf8'), last);
}

export function reportCount(cwd: string): number {
  const dir = join(cwd, '.runc-rollout', 'runs');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).length : 0;
}

export function releaseDigest(fx: ReleaseFixtures, repo: string, tag: string): string {
  return createHash('sha256').update(readFileSync(join(fx.releaseDir(repo, tag), `runc.${fx.arch}`))).digest('hex');
}

export function fileDigest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
