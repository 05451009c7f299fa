// Options that plan, apply and rollback share: which nodes (--limit, --shard,
// SSH overrides), which release, and CI outputs (--report-junit, the GitHub
// step summary). One definition each, so the commands cannot drift apart.
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseShard } from '../core/shard.js';
import { errorMessage } from '../errors.js';
import { ADVISORY_MODES, type AdvisoryMode } from '../release/advisories.js';
import { DEFAULT_REPO, type ReleaseOptions } from '../release/fetch.js';
import type { NodeSelection } from '../workflows/select.js';
import type { CliContext } from './context.js';
import { checked, collect } from './flag-parsers.js';
import { parseDuration } from '../core/batching.js';

export interface SelectionFlags {
  limit: string[];
  shard?: string;
  sshUser?: string;
  sshPort?: number;
  identity?: string;
  knownHosts?: string;
  sshConfig?: string;
  sshClient?: 'ssh2' | 'openssh';
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port number 1-65535');
  return n;
}

function shard(value: string): string {
  try {
    parseShard(value);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
  return value;
}

function userName(value: string): string {
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/i.test(value)) throw new InvalidArgumentError('expected a user name (letters, digits, "_", ".", "-")');
  return value;
}

export function addSelectionOptions(cmd: Command): Command {
  return cmd
    .option('-l, --limit <pattern>', 'only nodes whose name matches the glob, an Ansible group, or label=value (repeatable)', collect, [] as string[])
    .option('--shard <i/n>', 'this controller\'s share of the selected nodes (stable split for CI matrices)', shard)
    .option('--ssh-user <name>', 'SSH user for every node (beats the inventory)', userName)
    .option('--ssh-port <n>', 'SSH port for every node (beats the inventory)', port)
    .option('--identity <file>', 'SSH private key for every node (beats the inventory)')
    .option('--known-hosts <file>', 'known_hosts file for every node (beats the inventory)')
    .option('--ssh-config <file>', 'OpenSSH client config to read instead of the inventory\'s ssh.config or ~/.ssh/config ("none": read none); the inventory beats it')
    .addOption(new Option('--ssh-client <client>', 'ssh2 (built in) or openssh (the system ssh: host and user certificates, all of ssh_config; one process per command)').choices(['ssh2', 'openssh']).default('ssh2'));
}

/** `--ssh-client openssh`: the system ssh, which reads --ssh-config (if given) itself. */
export function sshClientFrom(ctx: CliContext, flags: SelectionFlags): { client?: 'openssh'; configFile?: string } {
  if (flags.sshClient !== 'openssh') return {};
  return { client: 'openssh', ...(flags.sshConfig ? { configFile: flags.sshConfig === 'none' ? 'none' : resolve(ctx.cwd, flags.sshConfig) } : {}) };
}

export function selectionFrom(ctx: CliContext, flags: SelectionFlags): NodeSelection {
  const o = {
    ...(flags.sshUser ? { user: flags.sshUser } : {}),
    ...(flags.sshPort ? { port: flags.sshPort } : {}),
    ...(flags.identity ? { identityFile: resolve(ctx.cwd, flags.identity) } : {}),
    ...(flags.knownHosts ? { knownHosts: resolve(ctx.cwd, flags.knownHosts) } : {}),
  };
  return {
    limit: flags.limit,
    ...(flags.shard ? { shard: flags.shard } : {}),
    ...(Object.keys(o).length ? { sshOverrides: o } : {}),
    ...(flags.sshConfig ? { sshConfig: flags.sshConfig === 'none' ? 'none' : resolve(ctx.cwd, flags.sshConfig) } : {}),
  };
}

export interface ReleaseFlags {
  version?: string;
  repo?: string;
  pre: boolean;
  releaseDir?: string;
  insecureSkipSignature: boolean;
  allowVulnerable: boolean;
  advisories?: AdvisoryMode;
}

/** `--advisories github|builtin`, for every command that checks versions against advisories. */
export function advisoriesOption(): Option {
  return new Option('--advisories <source>', "advisories to check versions against: github (the repository's published security advisories, cached, merged with the built-in table; the built-in table alone when GitHub cannot be reached) or builtin")
    .choices(ADVISORY_MODES)
    .default('github');
}

export function addReleaseOptions(cmd: Command): Command {
  return cmd
    .option('--repo <owner/name>', `GitHub repository of the releases (default ${DEFAULT_REPO}; forks and mirrors)`)
    .option('--pre', 'allow pre-releases when resolving --version', false)
    .option('--release-dir <dir>', 'read the release files from this directory instead of GitHub (air-gapped), verified the same way')
    .addOption(new Option('--insecure-skip-signature', 'DANGEROUS, lab use only: do not verify release signatures (checksums are still checked)').default(false))
    .option('--allow-vulnerable', 'allow a target version with known advisories', false)
    .addOption(advisoriesOption());
}

/** Release options without `version` (apply may take it from a saved plan). */
export function releaseFrom(ctx: CliContext, flags: ReleaseFlags): Omit<ReleaseOptions, 'log' | 'signal' | 'version'> {
  const g = ctx.globals();
  return {
    repo: flags.repo ?? DEFAULT_REPO,
    pre: flags.pre,
    githubApiUrl: g.githubApiUrl,
    ...(g.githubToken ? { token: g.githubToken } : {}),
    cacheDir: g.cacheDir,
    ...(g.keyring ? { keyringPath: g.keyring } : {}),
    ...(flags.releaseDir ? { releaseDir: resolve(ctx.cwd, flags.releaseDir) } : {}),
    insecureSkipSignature: flags.insecureSkipSignature,
    allowVulnerable: flags.allowVulnerable,
    ...(flags.advisories ? { advisories: flags.advisories } : {}),
  };
}

/** `--stuck-after`: plan, apply and unstick call a `runc init` stuck when blocked writing into a pipe for longer than this. */
export function addStuckAfterOption(cmd: Command): Command {
  return cmd.option('--stuck-after <duration>', 'a `runc init` blocked writing into a pipe for longer than this is stuck (the rc93 hang)', checked((s) => parseDuration(s, '--stuck-after')), '5m');
}

export function stuckAfterSeconds(text: string): number {
  return Math.floor(parseDuration(text, '--stuck-after') / 1000);
}

export function addCiOptions(cmd: Command): Command {
  return cmd.option('--report-junit <file>', 'also write JUnit XML (a test case per node) for CI systems');
}

/**
 * JUnit file (written whole or not at all) and, when GITHUB_STEP_SUMMARY is
 * set, a Markdown summary appended to it. A failure here is reported but never
 * changes the exit code: the rollout's outcome is what the code says.
 */
export async function writeCiOutputs(ctx: CliContext, junitPath: string | undefined, junit: () => string, markdown: () => string): Promise<void> {
  if (junitPath) {
    const path = resolve(ctx.cwd, junitPath);
    try {
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, junit());
      await rename(tmp, path);
      ctx.log.info(`JUnit report written to ${path}`);
    } catch (err) {
      ctx.log.error(`could not write the JUnit report ${path}: ${errorMessage(err)}`);
    }
  }
  const summary = ctx.env.GITHUB_STEP_SUMMARY;
  if (summary) {
    try {
      await appendFile(summary, markdown());
    } catch (err) {
      ctx.log.error(`could not append to GITHUB_STEP_SUMMARY (${summary}): ${errorMessage(err)}`);
    }
  }
}
