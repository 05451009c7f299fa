import { EventEmitter } from 'node:events';
import type { Client } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { SharedHops } from '../../src/ssh/ssh2-transport.js';

/** Just enough of an ssh2 Client: end() closes it. */
function fakeClient(): Client & { ended: number } {
  const c = new EventEmitter() as EventEmitter & { ended: number; end(): void; destroy(): void };
  c.ended = 0;
  c.end = () => {
    c.ended++;
    setImmediate(() => c.emit('close'));
  };
  c.destroy = c.end;
  return c as unknown as Client & { ended: number };
}

describe('shared jump hop connections', () => {
  it('concurrent acquires open one connection; the last release closes it', async () => {
    const pool = new SharedHops();
    let opened = 0;
    const client = fakeClient();
    const open = async () => {
      opened++;
      await new Promise((r) => setTimeout(r, 5));
      return client;
    };
    const [a, b, c] = await Promise.all([pool.acquire('k', open), pool.acquire('k', open), pool.acquire('k', open)]);
    expect(opened).toBe(1);
    expect(a.client).toBe(client);
    a.release();
    a.release(); // idempotent
    b.release();
    expect(client.ended).toBe(0);
    c.release();
    expect(client.ended).toBe(1);
    expect(pool.size).toBe(0);
    // A new acquire after that opens a fresh connection.
    const d = await pool.acquire('k', async () => fakeClient());
    expect(d.client).not.toBe(client);
    d.release();
  });

  it('a failed open fails every waiter and is forgotten; a dropped hop is reopened', async () => {
    const pool = new SharedHops();
    const failing = async (): Promise<Client> => {
      throw new Error('refused');
    };
    const results = await Promise.allSettled([pool.acquire('k', failing), pool.acquire('k', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(pool.size).toBe(0);

    const first = fakeClient();
    const lease = await pool.acquire('k', async () => first);
    first.emit('close'); // the hop dropped
    const second = fakeClient();
    const again = await pool.acquire('k', async () => second);
    expect(again.client).toBe(second);
    lease.release();
    expect(first.ended).toBe(0); // already closed: not ended again
    again.release();
    expect(second.ended).toBe(1);
  });
});
