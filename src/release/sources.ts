// Where release files come from: a GitHub release, or a local folder holding
// the same files (air-gapped sites). Both only copy bytes into a staging
// directory; verification happens afterwards, identically for both.
import { copyFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ReleaseError } from '../errors.js';
import { isPlainName } from '../core/sha256sum.js';
import type { ReleaseApi } from '../github/client.js';
import type { GitHubRelease } from '../github/schemas.js';

export interface ReleaseFiles {
  /** For messages: "opencontainers/runc v1.2.9" or the folder. */
  describe: string;
  has(name: string): boolean;
  /** Copies `name` to `dest`, refusing more than `maxBytes`. */
  fetch(name: string, dest: string, maxBytes: number): Promise<void>;
}

export function githubFiles(api: ReleaseApi, repo: string, rel: GitHubRelease): ReleaseFiles {
  const describe = `${repo} ${rel.tag_name}`;
  return {
    describe,
    has: (name) => rel.assets.some((a) => a.name === name),
    async fetch(name, dest, maxBytes) {
      const matches = rel.assets.filter((a) => a.name === name);
      if (matches.length !== 1) {
        throw new ReleaseError(`${describe}: ${matches.length === 0 ? 'has no asset' : 'lists more than one asset named'} ${name}`, [
          `assets: ${rel.assets.map((a) => a.name).join(', ') || '(none)'}`,
        ]);
      }
      await api.download(matches[0]!, dest, { maxBytes });
    },
  };
}

export async function directoryFiles(dir: string): Promise<ReleaseFiles> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new ReleaseError(`--release-dir ${dir} is not a directory`);
  const present = new Map<string, boolean>();
  const exists = async (name: string) => {
    if (!present.has(name)) present.set(name, (await stat(join(dir, name)).catch(() => null))?.isFile() ?? false);
    return present.get(name)!;
  };
  return {
    describe: dir,
    has: () => true, // checked when fetched
    async fetch(name, dest, maxBytes) {
      if (!isPlainName(name)) throw new ReleaseError(`refusing asset name ${JSON.stringify(name)}`);
      if (!(await exists(name))) throw new ReleaseError(`--release-dir ${dir} has no file ${name}`);
      const src = join(dir, name);
      const size = (await stat(src)).size;
      if (size > maxBytes) throw new ReleaseError(`${src}: ${size} bytes, over the ${maxBytes}-byte cap; refusing it`);
      await copyFile(src, dest);
    },
  };
}
