// The built CLI as a child process for the fault suite: like test/e2e/apply-cli.ts,
// but every run carries secrets in its environment (a GitHub token, a key
// passphrase) and every result is checked never to show them, in its output
// or in any report file it wrote.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseReport, type RunReport } from '../../src/apply/report.js';
import { ROOT, type CliEnv, type CliResult } from '../e2e/apply-cli.js';

export const SECRETS = {
  GITHUB_TOKEN: 'ghp_FaultSuiteTokenThatMustNeverBePrinted0001',
  RUNC_ROLLOUT_KEY_PASSPHRASE: 'passphrase-that-must-never-be-printed-0002',
};
/** What sudo says when it prompts or lectures: the tool runs `sudo -n` and must never pass such text on. */
const SUDO_CHATTER = /\[sudo\] password for|We trust you have received the usual lecture/;

export function startCli(env: CliEnv, args: string[], onOutput?: (text: string, child: ChildProcess) => void): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/runc-rollout'), '--github-api-url', env.apiUrl, '--cache-dir', env.cacheDir, '--keyring', env.fixtures.keyringPath, ...args],
    { cwd: env.cwd, env: { ...process.env, ...SECRETS, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  let all = '';
  const on = (d: Buffer, which: 'out' | 'err') => {
    const s = d.toString();
    if (which === 'out') stdout += s;
    else stderr += s;
    all += s;
    onOutput?.(all, child);
  };
  child.stdout?.on('data', (d: Buffer) => on(d, 'out'));
  child.stderr?.on('data', (d: Buffer) => on(d, 'err'));
  const done = new Promise<CliResult>((res) =>
    child.on('close', (code, signal) => {
      const r = { code, signal, stdout, stderr };
      expectNoSecrets(`${stdout}\n${stderr}`, `output of ${args.join(' ')}`);
      expectNoSecrets(reportTexts(env.cwd), `reports under ${env.cwd}`);
      res(r);
    }),
  );
  return { child, done };
}

export const runCli = (env: CliEnv, args: string[]) => startCli(env, args).done;

export function expectNoSecrets(text: string, what: string): void {
  for (const [k, v] of Object.entries(SECRETS)) expect(text.includes(v), `${k} appears in ${what}`).toBe(false);
  expect(SUDO_CHATTER.test(text), `sudo's prompt or lecture appears in ${what}`).toBe(false);
}

function reportTexts(cwd: string): string {
  const dir = join(cwd, '.runc-rollout', 'runs');
  return existsSync(dir) ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n') : '';
}

export function reportCount(cwd: string): number {
  const dir = join(cwd, '.runc-rollout', 'runs');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).length : 0;
}

export function latestReport(cwd: string): RunReport {
  const dir = join(cwd, '.runc-rollout', 'runs');
  const last = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().at(-1);
  if (!last) throw new Error(`no report in ${dir}`);
  return parseReport(readFileSync(join(dir, last), 'utf8'), last);
}

export const show = (r: CliResult) => `exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
