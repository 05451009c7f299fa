// `runc-rollout release fetch|list`: the release side on its own, to pre-fill
// the cache, check a version before planning, or see what is available.
import { Option } from 'commander';
import { InputError } from '../errors.js';
import { archFromUname } from '../core/arch.js';
import { ARCHES, type Arch } from '../core/types.js';
import { DEFAULT_REPO, fetchRelease } from '../release/fetch.js';
import { listReleases } from '../release/list.js';
import type { CliContext } from './context.js';
import type { RegisterCommand } from './commands.js';
import { collect } from './flag-parsers.js';
import { advisoriesOption } from './fleet-options.js';
import { advisoryIds, type Advisory } from '../core/advisories.js';
import type { AdvisoryMode } from '../release/advisories.js';

interface FetchFlags {
  version: string;
  arch: string[];
  repo: string;
  pre: boolean;
  releaseDir?: string;
  insecureSkipSignature: boolean;
  allowVulnerable: boolean;
  advisories: AdvisoryMode;
}

interface ListFlags {
  repo: string;
  pre: boolean;
  advisories: AdvisoryMode;
}

export const register: RegisterCommand = (program, run) => {
  const release = program.command('release').description('resolve, download and verify runc releases');

  release
    .command('fetch')
    .description('download and verify a runc release into the cache; print each binary\'s path and SHA-256')
    .requiredOption('--version <version>', 'exact tag (v1.2.9 or 1.2.9), "latest", or a semver range ("^1.2", ">=1.2.9 <1.4")')
    .option('--arch <arch>', `architecture, repeatable (${ARCHES.join(', ')}; uname -m names work too)`, collect)
    .option('--repo <owner/name>', 'GitHub repository (internal forks and mirrors)', DEFAULT_REPO)
    .option('--pre', 'allow prereleases', false)
    .option('--release-dir <dir>', 'verify files from this local folder instead of GitHub (air-gapped sites)')
    .addOption(new Option('--insecure-skip-signature', 'DANGEROUS: do not verify OpenPGP signatures (checksums are still checked)').default(false))
    .option('--allow-vulnerable', 'allow a target version with known advisories', false)
    .addOption(advisoriesOption())
    .action(run(async (ctx, flags) => fetchCommand(ctx, flags as FetchFlags)));

  release
    .command('list')
    .description('list published versions with known advisories')
    .option('--repo <owner/name>', 'GitHub repository', DEFAULT_REPO)
    .option('--pre', 'include prereleases', false)
    .addOption(advisoriesOption())
    .action(run(async (ctx, flags) => listCommand(ctx, flags as ListFlags)));
};

function parseArches(values: string[] | undefined): Arch[] {
  const out: Arch[] = [];
  for (const v of values ?? ['amd64']) {
    const arch = (ARCHES as readonly string[]).includes(v) ? (v as Arch) : archFromUname(v);
    if (!arch) throw new InputError(`--arch ${JSON.stringify(v)}: unknown architecture`, [`known: ${ARCHES.join(', ')}`]);
    if (!out.includes(arch)) out.push(arch);
  }
  return out;
}

async function fetchCommand(ctx: CliContext, flags: FetchFlags): Promise<number> {
  const g = ctx.globals();
  const arches = parseArches(flags.arch);
  const rel = await fetchRelease(
    {
      repo: flags.repo,
      version: flags.version,
      pre: flags.pre,
      githubApiUrl: g.githubApiUrl,
      token: g.githubToken,
      cacheDir: g.cacheDir,
      keyringPath: g.keyring,
      releaseDir: flags.releaseDir,
      insecureSkipSignature: flags.insecureSkipSignature,
      allowVulnerable: flags.allowVulnerable,
      advisories: flags.advisories,
      log: ctx.log,
      signal: ctx.signal,
    },
    arches,
  );
  const assets = arches.map((a) => rel.assets[a]!).map(({ arch, name, path, sha256, size }) => ({ arch, name, path, sha256, size }));
  if (g.json) {
    const { repo, tag, version, prerelease, signatureVerified, signers } = rel;
    ctx.stdout.write(`${JSON.stringify({ repo, tag, version, prerelease, signatureVerified, signers, assets }, null, 2)}\n`);
  } else {
    ctx.log.info(`${rel.repo} ${rel.tag}: ${rel.signatureVerified ? `signatures verified (${rel.signers.join(', ')})` : 'SIGNATURES NOT VERIFIED'}`);
    for (const a of assets) ctx.stdout.write(`${a.arch}\t${a.path}\tsha256:${a.sha256}\n`);
  }
  return 0;
}

/** `CVE-2024-21626 [built-in, github]`: each advisory with where it came from. */
function advisoryText(a: Advisory): string {
  return `${advisoryIds(a)} [${a.sources.join(', ')}]`;
}

async function listCommand(ctx: CliContext, flags: ListFlags): Promise<number> {
  const g = ctx.globals();
  const { releases: list, advisories } = await listReleases({ repo: flags.repo, pre: flags.pre, githubApiUrl: g.githubApiUrl, token: g.githubToken, cacheDir: g.cacheDir, advisories: flags.advisories, log: ctx.log, signal: ctx.signal });
  ctx.log.info(`advisories: ${advisories}`);
  if (g.json) {
    ctx.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  for (const r of list) {
    const flagsText = [r.prerelease ? 'prerelease' : '', r.advisories.length ? `advisories: ${r.advisories.map(advisoryText).join(', ')}` : 'no known advisories']
      .filter(Boolean)
      .join('; ');
    ctx.stdout.write(`${r.tag.padEnd(14)} ${(r.publishedAt ?? '').slice(0, 10).padEnd(10)}  ${flagsText}\n`);
  }
  if (list.length === 0) ctx.log.warn(`no releases found in ${flags.repo}${flags.pre ? '' : ' (prereleases hidden; --pre shows them)'}`);
  return 0;
}
