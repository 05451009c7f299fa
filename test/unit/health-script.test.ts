// The health gate script, run by the local sh against a loopback server, with
// PATH narrowed to show what happens with curl, with wget only, and with neither.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_HTTP_CLIENT_EXIT, buildHealthScript } from '../../src/apply/health.js';
import type { HealthSpec } from '../../src/core/types.js';
import { parseInventory } from '../../src/inventory/load.js';

const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
const tmp = mkdtempSync(join(tmpdir(), 'rr-health-'));
let answer = 'ok';
let status = 200;
const server = createServer((_q, res) => res.writeHead(status).end(answer));
let url = '';

/** A bin folder with the basics and only the HTTP clients named. */
function binWith(clients: string[]): string {
  const dir = mkdtempSync(join(tmp, 'bin-'));
  for (const c of ['sh', 'date', 'sleep', 'timeout', 'head', 'tail', 'tr', 'printf', 'test', 'true', 'false', ...clients]) {
    const p = which(c);
    if (p.startsWith('/')) symlinkSync(p, join(dir, c));
  }
  return dir;
}
/** Async: the server answering the script lives in this process. */
const run = (h: HealthSpec, path: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => {
    execFile(join(path, 'sh'), ['-c', buildHealthScript(h)], { encoding: 'utf8', env: { PATH: path }, timeout: 30_000 }, (err, stdout, stderr) => {
      res({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
const spec = (extra: Partial<HealthSpec> = {}): HealthSpec => ({ kubelet: true, kubeletUrl: url, timeoutMs: 0, settleMs: 0, commands: [], ...extra });

beforeAll(async () => {
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
});
afterAll(async () => {
  await new Promise((res) => server.close(res));
  rmSync(tmp, { recursive: true, force: true });
});

describe('buildHealthScript', () => {
  it.skipIf(!which('curl'))('passes on `ok` through curl, fails on anything else with the answer', async () => {
    answer = 'ok';
    status = 200;
    const bin = binWith(['curl']);
    const r = await run(spec(), bin);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tool curl$/m);
    answer = '[-]pleg failed';
    status = 500;
    const bad = await run(spec(), bin);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`unhealthy: kubelet healthz ${url} answered [-]pleg failed`);
  });

  it.skipIf(!which('wget'))('uses wget when the node has no curl', async () => {
    answer = 'ok';
    status = 200;
    const r = await run(spec(), binWith(['wget']));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tool wget$/m);
  });

  it('says so when the node has neither curl nor wget', async () => {
    const r = await run(spec(), binWith([]));
    expect(r.status).toBe(NO_HTTP_CLIENT_EXIT);
    expect(r.stderr).toContain('neither curl nor wget is installed on the node');
  });

  it('runs custom commands without kubelet, and names the one that failed', async () => {
    const bin = binWith([]);
    expect((await run(spec({ kubelet: false, commands: ['true', 'test -d /'] }), bin)).status).toBe(0);
    const r = await run(spec({ kubelet: false, commands: ['true', 'echo containerd down; false'] }), bin);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/health command 2 \(echo containerd down; false\) exited 1: containerd down/);
  });

  it('retries a failing check until the timeout, counting the checks', async () => {
    const r = await run(spec({ kubelet: false, commands: ['false'], timeoutMs: 2_000 }), binWith([]));
    expect(r.status).toBe(1);
    expect(Number(/\((\d+) check\(s\) within 2s\)/.exec(r.stderr)?.[1])).toBeGreaterThan(1);
  });
});

describe('health: in the inventory', () => {
  const inv = (health: string, nodeHealth = '') =>
    parseInventory(`health:\n${health}\nnodes:\n  - name: a\n    host: 10.0.0.1\n${nodeHealth}  - name: b\n    host: 10.0.0.2\n`, join(tmp, 'i.yaml'), { home: tmp });

  it('resolves defaults and per-node overrides', () => {
    const i = inv('  kubelet: true\n  settle: 30s\n  commands: ["crictl info"]', '    health: { timeout: 2m, kubeletUrl: "http://127.0.0.1:20248/healthz" }\n');
    expect(i.nodes[0]?.health).toEqual({ kubelet: true, kubeletUrl: 'http://127.0.0.1:20248/healthz', timeoutMs: 120_000, settleMs: 30_000, commands: ['crictl info'] });
    expect(i.nodes[1]?.health).toEqual({ kubelet: true, kubeletUrl: 'http://127.0.0.1:10248/healthz', timeoutMs: 60_000, settleMs: 30_000, commands: ['crictl info'] });
  });

  it('has no gate unless kubelet or commands ask for one, and refuses bad values', () => {
    expect(inv('  settle: 30s').nodes[0]?.health).toBeUndefined();
    expect(() => inv('  kubelet: true\n  kubeletUrl: "http://x/$(reboot)"')).toThrow(/health\.kubeletUrl: .* is not a plain http\(s\) URL/);
    expect(() => inv('  kubelet: true\n  timeout: soon')).toThrow(/health\.timeout/);
  });
});
