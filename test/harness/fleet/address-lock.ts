// Claims a loopback /24 (127.0.X.0) for one fleet. Test files run in parallel
// and several people test on one machine, so the claim must be atomic (mkdir)
// and survive crashes (locks of dead owners are reclaimed).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

export const LOCK_ROOT = '/tmp/runc-rollout-fleets';

export interface AddressLock {
  /** The X in 127.0.X.(11+i). */
  subnet: number;
  dir: string;
  /** Records the fleet's temp folder, so whoever reclaims a crashed owner's lock also removes it. */
  recordFleetDir(path: string): void;
  release(): void;
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const ownerTag = `${process.pid} ${startTime(process.pid) ?? '?'}`;

function ownerAlive(dir: string): boolean {
  let owner: string;
  try {
    owner = readFileSync(`${dir}/owner`, 'utf8').trim();
  } catch {
    // Created a moment ago and the owner not yet written: treat as held.
    return true;
  }
  const [pid, started] = owner.split(' ');
  const now = startTime(Number(pid));
  // The start time guards against a recycled pid.
  return now !== null && (started === '?' || now === started);
}

function removeLeftovers(staleLock: string): void {
  try {
    const fleetDir = readFileSync(`${staleLock}/fleet-dir`, 'utf8').trim();
    // Only ever a fleet temp folder, whatever the file says.
    if (/^\/[^\0]*\/runc-rollout-fleet-[A-Za-z0-9]+$/.test(fleetDir)) rmSync(fleetDir, { recursive: true, force: true });
  } catch {
    // crashed before it had a folder
  }
  rmSync(staleLock, { recursive: true, force: true });
}

function tryClaim(subnet: number): AddressLock | null {
  const dir = `${LOCK_ROOT}/${subnet}.lock`;
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    if (ownerAlive(dir)) return null;
    // Move the stale lock aside first: rename is atomic, so of two reclaimers only one wins.
    const trash = `${dir}.stale.${process.pid}.${Date.now()}`;
    try {
      renameSync(dir, trash);
    } catch {
      return null;
    }
    removeLeftovers(trash);
    try {
      mkdirSync(dir);
    } catch {
      return null;
    }
  }
  writeFileSync(`${dir}/owner`, ownerTag);
  let released = false;
  return {
    subnet,
    dir,
    recordFleetDir(path) {
      writeFileSync(`${dir}/fleet-dir`, path);
    },
    release() {
      if (released) return;
      released = true;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Claims the lowest free subnet for which `usable` agrees (it checks that no
 * stranger already listens on the fleet's addresses). X=1 first, so a lone
 * fleet sits at 127.0.1.11 as the docs say.
 */
export async function claimSubnet(usable: (subnet: number) => Promise<boolean>): Promise<AddressLock> {
  mkdirSync(LOCK_ROOT, { recursive: true, mode: 0o1777 });
  const skipped: number[] = [];
  for (let subnet = 1; subnet <= 250; subnet++) {
    const lock = tryClaim(subnet);
    if (!lock) continue;
    if (await usable(subnet)) return lock;
    skipped.push(subnet);
    lock.release();
  }
  throw new Error(`no free loopback subnet 127.0.X.0 in ${LOCK_ROOT} (X=1..250)` + (skipped.length ? `; busy with foreign listeners: ${skipped.join(', ')}` : ''));
}
