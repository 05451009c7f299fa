import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NodeSpec } from '../../src/core/types.js';
import { RemoteCommandError, RolloutError, SshError } from '../../src/errors.js';
import { FACTS_BEGIN } from '../../src/facts/script.js';
import { silentLogger } from '../../src/output/logger.js';
import type { NodeSession, RunResult, Transport } from '../../src/ssh/transport.js';
import { gatherFleetFacts, runPlan } from '../../src/workflows/plan.js';

const GOOD = readFileSync(new URL('../fixtures/facts/debian-packaged-runc.txt', import.meta.url), 'utf8');

const spec = (name: string, runcPath?: string): NodeSpec => ({
  name,
  ssh: { host: `${name}.test`, port: 22, user: 'root', knownHosts: '/k', hostKeyPolicy: 'strict', sudo: false },
  ...(runcPath ? { runcPath } : {}),
  labels: {},
});

/** A transport whose nodes behave as scripted: connect failure, a run answer, or a run failure. */
function fakeTransport(behaviour: Record<string, 'refuse' | 'garbage' | 'sudo-fails' | 'good'>) {
  const closed: string[] = [];
  const scripts: Record<string, string> = {};
  let inFlight = 0;
  let maxInFlight = 0;
  const transport: Transport = {
    async connect(node) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      const b = behaviour[node.name];
      if (b === 'refuse') throw new SshError(node.name, 'root@h:22: connection refused');
      const session: NodeSession = {
        node: node.name,
        async run(script): Promise<RunResult> {
          scripts[node.name] = script;
          if (b === 'sudo-fails') throw new RemoteCommandError(node.name, script, 1, null, 'sudo: a password is required');
          return { code: 0, signal: null, stdout: b === 'garbage' ? 'Segmentation fault\n' : GOOD, stderr: '' };
        },
        async close() {
          closed.push(node.name);
        },
      };
      return session;
    },
  };
  return { transport, closed, scripts, maxInFlight: () => maxInFlight };
}

describe('gatherFleetFacts', () => {
  it('keeps every node: facts, or the reason they are missing; closes every session it opened', async () => {
    const t = fakeTransport({ a: 'good', b: 'refuse', c: 'garbage', d: 'sudo-fails' });
    const got = await gatherFleetFacts([spec('a', '/usr/bin/runc'), spec('b'), spec('c'), spec('d')], { transport: t.transport, log: silentLogger });
    expect(got.map((g) => g.node.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(got[0]).toMatchObject({ error: null, session: null, facts: { runcPath: '/usr/sbin/runc', runc: { version: '1.1.5+ds1' } } });
    expect(got[1]).toMatchObject({ facts: null, error: 'root@h:22: connection refused' });
    expect(got[2]!.facts).toBeNull();
    expect(got[2]!.error).toMatch(new RegExp(`cannot read node facts: no "${FACTS_BEGIN}" line`));
    expect(got[3]!.facts).toBeNull();
    expect(got[3]!.error).toMatch(/exit code 1.*\n.*sudo: a password is required/s);
    expect(t.closed.sort()).toEqual(['a', 'c', 'd']);
    // the inventory path reaches the script, quoted
    expect(t.scripts.a).toContain("rr_inv=/usr/bin/runc\n");
  });

  it('leaves sessions open when asked, for a following step', async () => {
    const t = fakeTransport({ a: 'good' });
    const [g] = await gatherFleetFacts([spec('a')], { transport: t.transport, log: silentLogger, keepOpen: true });
    expect(g!.session?.node).toBe('a');
    expect(t.closed).toEqual([]);
  });

  it('contacts at most `parallel` nodes at once', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const t = fakeTransport(Object.fromEntries(names.map((n) => [n, 'good' as const])));
    const got = await gatherFleetFacts(names.map((n) => spec(n)), { transport: t.transport, log: silentLogger, parallel: 3 });
    expect(got.every((g) => g.facts !== null)).toBe(true);
    expect(t.maxInFlight()).toBeGreaterThan(1);
    expect(t.maxInFlight()).toBeLessThanOrEqual(3);
  });

  it('contacts no node once interrupted, and says so per node', async () => {
    const t = fakeTransport({ a: 'good' });
    const abort = new AbortController();
    abort.abort();
    const got = await gatherFleetFacts([spec('a')], { transport: t.transport, log: silentLogger, signal: abort.signal });
    expect(got).toEqual([{ node: spec('a'), facts: null, error: 'not contacted: interrupted', session: null }]);
    expect(t.scripts).toEqual({});
  });
});

describe('runPlan', () => {
  it('refuses, naming every node, when no node answered with a usable architecture (no release is fetched)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rr-plan-wf-'));
    try {
      const inv = join(dir, 'inv.yaml');
      writeFileSync(inv, 'ssh: { knownHosts: ./known_hosts }\nnodes:\n  - { name: a, host: 10.0.0.1 }\n  - { name: b, host: 10.0.0.2 }\n');
      const t = fakeTransport({ a: 'refuse', b: 'sudo-fails' });
      const err = await runPlan({
        inventoryPath: inv,
        limit: [],
        // nothing listens here: reaching the release step would fail differently
        release: { repo: 'test/runc', version: 'v1.2.9', pre: false, githubApiUrl: 'http://127.0.0.1:9', cacheDir: join(dir, 'cache'), insecureSkipSignature: false, allowVulnerable: false },
        transport: t.transport,
        allowDowngrade: false,
        toolVersion: '0.0.0',
        log: silentLogger,
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RolloutError);
      expect((err as RolloutError).message).toMatch(/no selected node answered/);
      expect((err as RolloutError).details).toEqual(['a: root@h:22: connection refused', expect.stringMatching(/^b: .*exit code 1/s)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
