// What a CLI e2e test file sets up around its fleet: the signed release
// fixtures, the loopback GitHub serving them, temp folders removed at the end,
// and a fresh CLI environment (cache, working directory) per call.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { assertBuilt, type CliEnv } from './apply-cli.js';

export interface CliFixtures {
  readonly fx: ReleaseFixtures;
  readonly server: ReleaseServer;
  /** A temp folder named `${prefix}-${what}-XXXXXX`, removed after the file's tests. */
  temp(what: string): string;
  /** A CLI environment with its own cache and working directory. */
  env(extra?: Record<string, string>): CliEnv;
}

/** Registers the hooks (skipped when `unsupported`); the handle is usable inside tests and later beforeAll hooks. */
export function useCliFixtures(prefix: string, unsupported: string | null): CliFixtures {
  const temps: string[] = [];
  let fx: ReleaseFixtures | undefined;
  let server: ReleaseServer | undefined;
  const temp = (what: string) => {
    const d = mkdtempSync(join(tmpdir(), `${prefix}-${what}-`));
    temps.push(d);
    return d;
  };
  beforeAll(async () => {
    if (unsupported) return;
    assertBuilt();
    fx = sharedReleaseFixtures();
    server = await startReleaseServer(fx.dir);
  });
  afterAll(async () => {
    await server?.stop();
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useCliFixtures: only inside tests (after beforeAll)');
    return v;
  };
  return {
    get fx() {
      return need(fx);
    },
    get server() {
      return need(server);
    },
    temp,
    env: (extra) => ({ apiUrl: need(server).url, fixtures: need(fx), cacheDir: temp('cache'), cwd: temp('cwd'), ...(extra ? { env: extra } : {}) }),
  };
}
