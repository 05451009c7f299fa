import { describe, expect, it } from 'vitest';
import type { NodeSpec } from '../../src/core/types.js';
import { SessionPool } from '../../src/ssh/session-pool.js';
import type { NodeSession, Transport } from '../../src/ssh/transport.js';

class FakeSession implements NodeSession {
  open = true;
  closes = 0;
  constructor(readonly node: string) {}
  async run() {
    return { code: 0, signal: null, stdout: this.node, stderr: '' };
  }
  isOpen() {
    return this.open;
  }
  async close() {
    this.closes++;
    this.open = false;
  }
}

function fakeTransport() {
  const opened: FakeSession[] = [];
  const t: Transport = {
    async connect(node) {
      await new Promise((r) => setTimeout(r, 5));
      const s = new FakeSession(node.name);
      opened.push(s);
      return s;
    },
  };
  return { t, opened };
}

const node = (name: string) => ({ name }) as NodeSpec;

describe('SessionPool', () => {
  it('hands out the adopted session and never closes it before closeAll', async () => {
    const { t, opened } = fakeTransport();
    const pool = new SessionPool(t);
    const facts = new FakeSession('n1');
    pool.adopt(facts);
    const a = await pool.connect(node('n1'));
    expect((await a.run('x')).stdout).toBe('n1');
    await a.close();
    const b = await pool.connect(node('n1'));
    await b.close();
    expect(opened).toHaveLength(0);
    expect(facts.closes).toBe(0);
    await pool.closeAll();
    expect(facts.closes).toBe(1);
    expect(pool.reconnects).toBe(0);
  });

  it('reopens a connection that dropped, once even when asked concurrently', async () => {
    const { t, opened } = fakeTransport();
    const pool = new SessionPool(t);
    const facts = new FakeSession('n1');
    pool.adopt(facts);
    facts.open = false;
    const [a, b] = await Promise.all([pool.connect(node('n1')), pool.connect(node('n1'))]);
    expect(opened).toHaveLength(1);
    expect(a.isOpen?.()).toBe(true);
    expect(b.isOpen?.()).toBe(true);
    expect(facts.closes).toBe(1);
    expect(pool.reconnects).toBe(1);
    await pool.closeAll();
    expect(opened[0]?.closes).toBe(1);
  });

  it('connects nodes it was not given and closes them all at the end', async () => {
    const { t, opened } = fakeTransport();
    const pool = new SessionPool(t);
    await Promise.all(['a', 'b', 'c'].map((n) => pool.connect(node(n))));
    expect(opened.map((s) => s.node).sort()).toEqual(['a', 'b', 'c']);
    await pool.closeAll();
    expect(opened.map((s) => s.closes)).toEqual([1, 1, 1]);
  });

  it('a failed connect is not remembered: the next call tries again', async () => {
    let fail = true;
    const pool = new SessionPool({
      async connect(n) {
        if (fail) throw new Error('refused');
        return new FakeSession(n.name);
      },
    });
    await expect(pool.connect(node('n1'))).rejects.toThrow('refused');
    fail = false;
    await expect(pool.connect(node('n1'))).resolves.toMatchObject({ node: 'n1' });
    await pool.closeAll();
  });
});
