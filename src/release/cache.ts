// The local cache of verified assets: <cacheDir>/releases/<owner>/<name>/<tag>/<arch>/
// holding runc.<arch>, its .asc, runc.sha256sum and meta.json. Files are
// fetched into a fresh staging directory and the directory is renamed into
// place only after verification, so an interrupted run never leaves a
// usable-looking entry. Entries are re-verified on every use.
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ReleaseError } from '../errors.js';
import { ARCHES, type Arch } from '../core/types.js';

const metaSchema = z.object({
  schema: z.literal(1),
  repo: z.string(),
  tag: z.string(),
  version: z.string(),
  prerelease: z.boolean(),
  arch: z.enum(ARCHES),
  name: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  signatureVerified: z.boolean(),
  verifiedAt: z.string(),
});
export type CacheMeta = z.infer<typeof metaSchema>;

const META = 'meta.json';
const SAFE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export function cacheArchDir(cacheDir: string, repo: string, tag: string, arch: Arch): string {
  if (!SAFE.test(tag)) throw new ReleaseError(`cannot cache ${repo} ${tag}: unsafe path component ${JSON.stringify(tag)}`);
  return join(cacheRepoDir(cacheDir, repo), tag, arch);
}

/** <cacheDir>/releases/<owner>/<name>: the repository's releases, and its advisories next to them. */
export function cacheRepoDir(cacheDir: string, repo: string): string {
  const [owner, name] = repo.split('/');
  for (const part of [owner, name]) {
    if (!part || !SAFE.test(part)) throw new ReleaseError(`cannot cache ${repo}: unsafe path component ${JSON.stringify(part)}`);
  }
  return join(cacheDir, 'releases', owner!, name!);
}

/** The entry's metadata, or null when there is no complete entry. */
export async function readCacheMeta(dir: string): Promise<CacheMeta | null> {
  let text: string;
  try {
    text = await readFile(join(dir, META), 'utf8');
  } catch {
    return null;
  }
  const parsed = metaSchema.safeParse(safeJson(text));
  return parsed.success ? parsed.data : null;
}

export async function makeStagingDir(finalDir: string): Promise<string> {
  const parent = join(finalDir, '..');
  await mkdir(parent, { recursive: true });
  return mkdtemp(join(parent, `.staging-${finalDir.split('/').pop()}-`));
}

export async function commitStagingDir(staging: string, finalDir: string, meta: CacheMeta): Promise<void> {
  await writeFile(join(staging, META), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644 });
  await rm(finalDir, { recursive: true, force: true });
  await rename(staging, finalDir);
}

export async function discard(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
