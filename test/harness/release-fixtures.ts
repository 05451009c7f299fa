// Stand-in runc releases, built and signed the way runc's own
// script/release_sign.sh does it (gpg --detach-sign --armor per file,
// `sha256sum` output clear-signed in place), with throwaway GnuPG keys.
//
// Layout: one repository per scenario so tags stay real runc versions:
//   test/runc           v1.0.0-rc93 v1.1.12 v1.2.8 v1.2.9 v1.3.4 (latest)
//                       v1.4.0-rc.3 (prerelease) v1.5.0 (draft: must never be picked)
//   test/hang, test/fail, test/fail-installed, test/wrong-version   v1.2.9 with that stand-in
//   test/bad-checksum   signed sums list another binary's digest
//   test/untrusted      everything signed by a key not in the keyring
//   test/expired-key    signed (in 2020) by a keyring key that has expired since
//   test/truncated      the served binary is cut short
//   test/wrong-arch     runc.arm64 is really an x86-64 binary (correctly summed and signed)
//   test/unsigned-sums  runc.sha256sum without its PGP wrapper
//   test/altered-sums   a digest edited inside the clear-signed text (binary swapped to match)
//   test/duplicate-sums runc.amd64 listed twice with different digests, validly signed
//   test/path-sums      a line naming ../runc.amd64, validly signed
// Only the host's architecture gets binaries (static stand-ins built with gcc).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStandIn, type StandInMode } from './standin.js';
import type { Arch } from '../../src/core/types.js';

export interface FixtureRelease {
  repo: string;
  tag: string;
  draft: boolean;
  prerelease: boolean;
  publishedAt: string;
  /** Absolute folder holding exactly the release's assets. */
  dir: string;
}

export interface ReleaseFixtures {
  dir: string;
  /** Architecture the stand-in binaries are built for (the host's). */
  arch: Arch;
  /** Trusted keyring (upstream format: show-keys text + armored blocks): the release key and the expired key. */
  keyringPath: string;
  /** Keyring with only the untrusted key, for tests that swap keyrings. */
  untrustedKeyringPath: string;
  fingerprints: { release: string; expired: string; untrusted: string };
  releases: FixtureRelease[];
  /** Folder of one release, e.g. for --release-dir. */
  releaseDir(repo: string, tag: string): string;
}

export interface ReleaseFixtureOptions {
  /** Real runc the `exec` stand-ins exec (default Debian's /usr/sbin/runc). */
  realRunc?: string;
}

const MAIN: { tag: string; prerelease?: boolean; draft?: boolean }[] = [
  { tag: 'v1.0.0-rc93', prerelease: true },
  { tag: 'v1.1.12' },
  { tag: 'v1.2.8' },
  { tag: 'v1.2.9' },
  { tag: 'v1.3.4' },
  { tag: 'v1.4.0-rc.3', prerelease: true },
  { tag: 'v1.5.0', draft: true },
];
const BEHAVIOURS: StandInMode[] = ['hang', 'fail', 'fail-installed'];
type BadKind = 'bad-checksum' | 'untrusted' | 'expired-key' | 'truncated' | 'wrong-arch' | 'unsigned-sums' | 'altered-sums' | 'duplicate-sums' | 'path-sums';
const BAD: BadKind[] = ['bad-checksum', 'untrusted', 'expired-key', 'truncated', 'wrong-arch', 'unsigned-sums', 'altered-sums', 'duplicate-sums', 'path-sums'];

export function hostArch(): Arch {
  if (process.arch === 'x64') return 'amd64';
  if (process.arch === 'arm64') return 'arm64';
  throw new Error(`release fixtures: unsupported host architecture ${process.arch}`);
}

/** Builds the fixtures into `dir` (created; must not hold other fixtures). */
export function makeReleaseFixtures(dir: string, opts: ReleaseFixtureOptions = {}): ReleaseFixtures {
  mkdirSync(dir, { recursive: true });
  const arch = hostArch();
  // gpg-agent's socket path must stay short: keep GNUPGHOME directly under /tmp.
  const home = mkdtempSync(join(tmpdir(), 'rr-gpg-'));
  const gpg = (args: string[], cwd?: string, input?: string) =>
    execFileSync('gpg', ['--batch', '--yes', '--no-tty', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      env: { ...process.env, GNUPGHOME: home, LC_ALL: 'C' },
      cwd,
      input,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    }).toString();
  try {
    const keys = makeKeys(gpg);
    const keyringPath = join(dir, 'trusted.keyring');
    writeFileSync(keyringPath, [exportKeyring(gpg, keys.release, 'release'), exportKeyring(gpg, keys.expired, 'expired')].join(''));
    const untrustedKeyringPath = join(dir, 'untrusted.keyring');
    writeFileSync(untrustedKeyringPath, exportKeyring(gpg, keys.untrusted, 'untrusted'));

    const releases: FixtureRelease[] = [];
    let day = 0;
    const add = (repo: string, tag: string, build: (rdir: string) => void, flags: { prerelease?: boolean; draft?: boolean } = {}) => {
      const rdir = join(dir, 'repos', repo, tag);
      mkdirSync(rdir, { recursive: true });
      build(rdir);
      day += 1;
      releases.push({ repo, tag, draft: flags.draft ?? false, prerelease: flags.prerelease ?? false, publishedAt: new Date(Date.UTC(2025, 0, day)).toISOString(), dir: rdir });
    };
    const ctx: BuildCtx = { gpg, arch, keys, realRunc: opts.realRunc };
    for (const r of MAIN) add('test/runc', r.tag, (d) => buildRelease(ctx, d, r.tag.slice(1), 'exec'), r);
    for (const mode of BEHAVIOURS) add(`test/${mode}`, 'v1.2.9', (d) => buildRelease(ctx, d, '1.2.9', mode));
    add('test/wrong-version', 'v1.2.9', (d) => buildRelease(ctx, d, '1.2.8', 'exec'));
    for (const kind of BAD) add(`test/${kind}`, 'v1.2.9', (d) => buildBad(ctx, d, kind));

    const fixtures: ReleaseFixtures = {
      dir,
      arch,
      keyringPath,
      untrustedKeyringPath,
      fingerprints: { release: keys.release, expired: keys.expired, untrusted: keys.untrusted },
      releases,
      releaseDir: (repo, tag) => join(dir, 'repos', repo, tag),
    };
    writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify({ ...fixtures, releaseDir: undefined }, null, 2)}\n`);
    return fixtures;
  } finally {
    try {
      execFileSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: home }, stdio: 'ignore' });
    } catch {
      /* no agent was started */
    }
    rmSync(home, { recursive: true, force: true });
  }
}

/** Reads fixtures written by makeReleaseFixtures. */
export function loadReleaseFixtures(dir: string): ReleaseFixtures {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Omit<ReleaseFixtures, 'releaseDir'>;
  return { ...m, releaseDir: (repo, tag) => join(dir, 'repos', repo, tag) };
}

const HERE = dirname(fileURLToPath(import.meta.url));
const HARNESS_FILES = [fileURLToPath(import.meta.url), join(HERE, 'standin.ts'), join(HERE, 'standin', 'standin.c')];

/**
 * Fixtures shared by every test of a run (and later runs while the harness is
 * unchanged): built once into tmpdir, keyed by the harness' own source, and
 * published with an atomic rename so parallel workers never see half of it.
 */
export function sharedReleaseFixtures(opts: ReleaseFixtureOptions = {}): ReleaseFixtures {
  const h = createHash('sha256');
  for (const f of HARNESS_FILES) h.update(readFileSync(f));
  h.update(JSON.stringify(opts));
  const dir = join(tmpdir(), `runc-rollout-release-fixtures-${h.digest('hex').slice(0, 12)}`);
  if (!existsSync(join(dir, 'manifest.json'))) {
    const tmp = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}`;
    makeReleaseFixtures(tmp, opts);
    try {
      renameSync(tmp, dir);
      // paths inside the manifest point at tmp: rewrite them for the final place
      writeFileSync(join(dir, 'manifest.json'), readFileSync(join(dir, 'manifest.json'), 'utf8').split(tmp).join(dir));
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another worker won the race
    }
  }
  return loadReleaseFixtures(dir);
}

interface Keys {
  release: string;
  expired: string;
  untrusted: string;
}
interface BuildCtx {
  gpg: (args: string[], cwd?: string, input?: string) => string;
  arch: Arch;
  keys: Keys;
  realRunc: string | undefined;
}

function fingerprintOf(gpg: BuildCtx['gpg'], uid: string): string {
  const out = gpg(['--with-colons', '--fingerprint', uid]);
  const fpr = /^fpr:::::::::([0-9A-F]{40}):/m.exec(out)?.[1];
  if (!fpr) throw new Error(`no fingerprint for ${uid}`);
  return fpr;
}

function makeKeys(gpg: BuildCtx['gpg']): Keys {
  // Like upstream's keys: a certify-only ed25519 primary with a signing subkey.
  gpg(['--quick-gen-key', 'Release Key <release@test.invalid>', 'ed25519', 'cert', 'never']);
  const release = fingerprintOf(gpg, 'release@test.invalid');
  gpg(['--quick-add-key', release, 'ed25519', 'sign', '5y']);
  gpg(['--quick-gen-key', 'Untrusted Key <untrusted@test.invalid>', 'ed25519', 'sign', '5y']);
  const untrusted = fingerprintOf(gpg, 'untrusted@test.invalid');
  // A key that was valid in January 2020 and expired a day later.
  gpg(['--faked-system-time', '20200101T000000!', '--quick-gen-key', 'Expired Key <expired@test.invalid>', 'ed25519', 'sign', '1d']);
  const expired = fingerprintOf(gpg, 'expired@test.invalid');
  return { release, expired, untrusted };
}

/** One upstream-style keyring entry: `gpg --show-keys` text, then the armored block with a Comment header. */
function exportKeyring(gpg: BuildCtx['gpg'], fpr: string, github: string): string {
  const armored = gpg(['--armor', '--comment', `github=${github}`, '--export', fpr]);
  const shown = gpg(['--show-keys'], undefined, armored).trimEnd();
  return `${shown}\n\n${armored.trimEnd()}\n`;
}

function signFiles(ctx: BuildCtx, dir: string, key: string, files: string[], fakedTime?: string) {
  const time = fakedTime ? ['--faked-system-time', fakedTime] : [];
  for (const f of files) ctx.gpg([...time, '--local-user', key, '--detach-sign', '--armor', f], dir);
}

function writeSums(dir: string, files: string[]): string {
  return execFileSync('sha256sum', files, { cwd: dir }).toString();
}

function clearSign(ctx: BuildCtx, dir: string, key: string, fakedTime?: string) {
  const time = fakedTime ? ['--faked-system-time', fakedTime] : [];
  // as release_sign.sh: --output runc.sha256sum.tmp, then move over the original
  ctx.gpg([...time, '--local-user', key, '--clear-sign', '--armor', '--output', 'runc.sha256sum.tmp', 'runc.sha256sum'], dir);
  renameSync(join(dir, 'runc.sha256sum.tmp'), join(dir, 'runc.sha256sum'));
}

/** runc.<arch> (+ .asc), a stand-in source tarball (+ .asc) and the clear-signed runc.sha256sum. */
function buildRelease(ctx: BuildCtx, dir: string, version: string, mode: StandInMode, key = ctx.keys.release, fakedTime?: string) {
  const bin = `runc.${ctx.arch}`;
  buildStandIn(join(dir, bin), { version, mode, ...(ctx.realRunc ? { realRunc: ctx.realRunc } : {}) });
  writeFileSync(join(dir, 'runc.tar.xz'), createHash('sha256').update(`source of ${version}`).digest());
  const files = [bin, 'runc.tar.xz'];
  writeFileSync(join(dir, 'runc.sha256sum'), writeSums(dir, files));
  signFiles(ctx, dir, key, files, fakedTime);
  clearSign(ctx, dir, key, fakedTime);
}

function buildBad(ctx: BuildCtx, dir: string, kind: BadKind) {
  const bin = `runc.${ctx.arch}`;
  const swapBinary = (mode: StandInMode) => {
    buildStandIn(join(dir, bin), { version: '1.2.9', mode });
    signFiles(ctx, dir, ctx.keys.release, [bin]);
  };
  const resignSums = (text: string) => {
    writeFileSync(join(dir, 'runc.sha256sum'), text);
    clearSign(ctx, dir, ctx.keys.release);
  };
  const sumOf = (f: string) => createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  switch (kind) {
    case 'untrusted':
      return buildRelease(ctx, dir, '1.2.9', 'exec', ctx.keys.untrusted);
    case 'expired-key':
      return buildRelease(ctx, dir, '1.2.9', 'exec', ctx.keys.expired, '20200101T120000!');
  }
  buildRelease(ctx, dir, '1.2.9', 'exec');
  switch (kind) {
    case 'bad-checksum':
      return swapBinary('fail'); // signed, but not the binary runc.sha256sum lists
    case 'truncated':
      return truncateSync(join(dir, bin), 4096);
    case 'wrong-arch': {
      const other = ctx.arch === 'amd64' ? 'arm64' : 'amd64';
      copyFileSync(join(dir, bin), join(dir, `runc.${other}`));
      signFiles(ctx, dir, ctx.keys.release, [`runc.${other}`]);
      return resignSums(writeSums(dir, [bin, `runc.${other}`, 'runc.tar.xz']));
    }
    case 'unsigned-sums':
      return writeFileSync(join(dir, 'runc.sha256sum'), writeSums(dir, [bin, 'runc.tar.xz']));
    case 'altered-sums': {
      const signed = readFileSync(join(dir, 'runc.sha256sum'), 'utf8');
      const before = sumOf(bin);
      swapBinary('fail');
      return writeFileSync(join(dir, 'runc.sha256sum'), signed.replace(before, sumOf(bin)));
    }
    case 'duplicate-sums':
      return resignSums(`${writeSums(dir, [bin, 'runc.tar.xz'])}${'0'.repeat(64)}  ${bin}\n`);
    case 'path-sums':
      return resignSums(`${writeSums(dir, [bin, 'runc.tar.xz'])}${sumOf(bin)}  ../${bin}\n`);
  }
}

/** Every file of a release folder, sorted: its assets. */
export function releaseAssetNames(dir: string): string[] {
  return readdirSync(dir).sort();
}
