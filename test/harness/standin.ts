// Builds stand-in runc binaries (standin/standin.c) with gcc, statically, so
// they run inside any test node. Cached by content of their build inputs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type StandInMode = 'exec' | 'hang' | 'fail' | 'fail-installed';
const MODES: Record<StandInMode, number> = { exec: 0, hang: 1, fail: 2, 'fail-installed': 3 };

export interface StandInOptions {
  /** What `runc --version` reports, e.g. `1.0.0-rc93` or `1.2.9`. */
  version: string;
  mode?: StandInMode;
  /** The real runc it execs for everything else (Debian's by default). */
  realRunc?: string;
}

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'standin', 'standin.c');
const CACHE = join(tmpdir(), 'runc-rollout-standins');

/** Build (or reuse) a stand-in and copy it to `out`. Returns `out`. */
export function buildStandIn(out: string, opts: StandInOptions): string {
  const mode = opts.mode ?? 'exec';
  const real = opts.realRunc ?? '/usr/sbin/runc';
  if (!/^[A-Za-z0-9.+~_-]+$/.test(opts.version)) throw new Error(`stand-in version ${JSON.stringify(opts.version)}: unexpected characters`);
  const src = readFileSync(SOURCE);
  const key = createHash('sha256').update(src).update(`\0${opts.version}\0${mode}\0${real}`).digest('hex').slice(0, 16);
  const cached = join(CACHE, `standin-${key}`);
  if (!existsSync(cached)) {
    mkdirSync(CACHE, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    execFileSync('gcc', ['-static', '-O2', '-s', `-DVERSION="${opts.version}"`, `-DMODE=${MODES[mode]}`, `-DREAL_RUNC="${real}"`, '-o', tmp, SOURCE], { stdio: 'pipe' });
    renameSync(tmp, cached);
  }
  mkdirSync(dirname(out), { recursive: true });
  copyFileSync(cached, out);
  return out;
}
