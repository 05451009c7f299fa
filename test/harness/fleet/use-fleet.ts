// The usual way a test file gets a fleet: started in beforeAll, stopped in
// afterAll. Kept apart from fleet.ts so scripts outside vitest (the demo) can
// import the fleet without importing vitest.
import { afterAll, beforeAll } from 'vitest';
import { startFleet } from '../fleet.js';
import type { Fleet, FleetOptions } from './types.js';

/**
 * Registers the hooks and returns a handle whose `fleet` is ready inside
 * tests. `opts` may be a function, so stand-in binaries can be built in the
 * same beforeAll.
 */
export function useFleet(opts: FleetOptions | (() => FleetOptions | Promise<FleetOptions>)): { readonly fleet: Fleet } {
  let fleet: Fleet | undefined;
  beforeAll(async () => {
    fleet = await startFleet(typeof opts === 'function' ? await opts() : opts);
  });
  afterAll(async () => {
    await fleet?.stop();
  });
  return {
    get fleet(): Fleet {
      if (!fleet) throw new Error('useFleet: the fleet is only there inside tests (after beforeAll)');
      return fleet;
    },
  };
}
