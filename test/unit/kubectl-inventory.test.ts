// `inventory from-kubectl`: the pure conversion on a realistic node list, and
// the command itself with --from-file and with a stand-in `kubectl` on PATH.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { makeContext, type CliContext } from '../../src/cli/context.js';
import { selectNodes } from '../../src/core/limit.js';
import { InputError } from '../../src/errors.js';
import { convertKubectlNodes, inventoryName, matchesSelector, parseKubectlNodes, parseSelector } from '../../src/inventory/kubectl.js';
import { parseInventory } from '../../src/inventory/load.js';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/kubernetes/nodes.json');
const text = readFileSync(FIXTURE, 'utf8');
const LONG = 'ip-10-0-3-45.eu-west-1.compute.internal.with-a-very-long-suffix.example.com';
const tmp = mkdtempSync(join(tmpdir(), 'rr-kubectl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const load = (yaml: string) => parseInventory(yaml, join(tmp, 'k8s.yaml'), { home: tmp });

describe('convertKubectlNodes', () => {
  const items = parseKubectlNodes(text, FIXTURE);

  it('keeps names, labels and InternalIPs; leaves out the node without one; marks the inventory as from Kubernetes', () => {
    const r = convertKubectlNodes(items, { address: 'InternalIP', now: new Date('2026-01-01T00:00:00Z') });
    expect(r.nodes.map((n) => [n.name, n.host])).toEqual([
      ['cp-1', '10.0.1.10'],
      ['cp-2', '10.0.2.10'],
      ['worker-a1', '10.0.1.21'],
      ['worker-b1', '10.0.2.21'],
      ['worker-c1', 'fd00:10:0:3::21'],
      [inventoryName(LONG), '10.0.3.45'],
    ]);
    expect(r.skipped).toEqual([{ name: 'worker-noaddr', reason: 'no InternalIP address (has Hostname; try --address)' }]);
    expect(r.warnings).toContain('node worker-noaddr: left out: no InternalIP address (has Hostname; try --address)');

    const inv = load(r.yaml);
    expect(inv.source).toBe('kubernetes');
    const cp1 = inv.nodes.find((n) => n.name === 'cp-1');
    expect(cp1?.labels).toMatchObject({ 'node-role.kubernetes.io/control-plane': '', 'topology.kubernetes.io/zone': 'eu-west-1a', 'kubernetes.io/hostname': 'cp-1' });
    // --limit by label works on what was written.
    expect(selectNodes(inv.nodes, ['topology.kubernetes.io/zone=eu-west-1a']).map((n) => n.name)).toEqual(['cp-1', 'worker-a1']);
    expect(selectNodes(inv.nodes, ['node-role.kubernetes.io/master=']).map((n) => n.name)).toEqual(['cp-2']);
    expect(selectNodes(inv.nodes, ['pool=gpu']).map((n) => n.name)).toEqual(['worker-c1']);
  });

  it('shortens a name the inventory cannot hold to a unique valid one and keeps the original in a comment', () => {
    const name = inventoryName(LONG);
    expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
    expect(name).not.toBe(inventoryName(`${LONG}x`));
    expect(name.startsWith('ip-10-0-3-45.eu-west-1.compute')).toBe(true);
    const r = convertKubectlNodes(items, { address: 'InternalIP' });
    expect(r.yaml).toContain(`# Kubernetes node name: ${LONG}`);
    expect(r.warnings.some((w) => w.startsWith(`node ${LONG}: not a valid inventory name`) && w.includes(name))).toBe(true);
    expect(r.nodes.find((n) => n.name === name)?.originalName).toBe(LONG);
  });

  it('drops labels the inventory cannot hold, with one warning per label name', () => {
    const r = convertKubectlNodes(items, { address: 'InternalIP' });
    const c1 = r.nodes.find((n) => n.name === 'worker-c1');
    expect(Object.keys(c1?.labels ?? {}).some((k) => k.startsWith('feature.node'))).toBe(false);
    expect(r.warnings.filter((w) => w.startsWith('label feature.node.kubernetes.io/'))).toHaveLength(1);
  });

  it('uses the address type asked for; nodes without it are left out', () => {
    const r = convertKubectlNodes(items, { address: 'ExternalIP' });
    expect(r.nodes.map((n) => `${n.name}=${n.host}`)).toEqual(['cp-2=34.250.1.20', 'worker-a1=34.250.1.21']);
    expect(r.skipped.map((s) => s.name)).toEqual(['cp-1', 'worker-b1', 'worker-c1', 'worker-noaddr', LONG]);
    const h = convertKubectlNodes(items, { address: 'Hostname' });
    expect(h.nodes.find((n) => n.name === 'worker-noaddr')?.host).toBe('worker-noaddr');
  });

  it('filters by an equality selector, and writes SSH defaults', () => {
    const r = convertKubectlNodes(items, { address: 'InternalIP', selector: 'pool=general,!node-role.kubernetes.io/control-plane', ssh: { user: 'ubuntu', sudo: true, identityFile: '/keys/id', knownHosts: '/keys/kh' } });
    expect(r.nodes.map((n) => n.name)).toEqual(['worker-a1', 'worker-b1', inventoryName(LONG)]);
    const inv = load(r.yaml);
    expect(inv.nodes[0]?.ssh).toMatchObject({ user: 'ubuntu', sudo: true, identityFile: '/keys/id', knownHosts: '/keys/kh' });
  });

  it('refuses to write an empty inventory, saying why', () => {
    expect(() => convertKubectlNodes(items, { address: 'InternalIP', selector: 'pool=none' })).toThrow(/no node matches --selector pool=none/);
    const noaddr = items.filter((i) => i.metadata.name === 'worker-noaddr');
    expect(() => convertKubectlNodes(noaddr, { address: 'InternalIP' })).toThrow(/no node has a usable InternalIP address/);
    expect(() => convertKubectlNodes([], { address: 'InternalIP' })).toThrow(/returned no nodes/);
  });

  it('refuses JSON that is not a node list, with where it went wrong', () => {
    expect(() => parseKubectlNodes('{', 'x.json')).toThrow(InputError);
    expect(() => parseKubectlNodes('{"items":[{"metadata":{}}]}', 'x.json')).toThrow(/not a Kubernetes node list/);
    expect(() => parseKubectlNodes('{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"p"}}]}', 'x.json')).toThrow(/Pod objects, not Nodes/);
    // One node, as `kubectl get node NAME -o json` prints it.
    expect(parseKubectlNodes(JSON.stringify(JSON.parse(text).items[0]), 'one.json').map((n) => n.metadata.name)).toEqual(['cp-1']);
  });

  it('reads selectors the way kubectl -l does, and refuses set-based ones', () => {
    const t = parseSelector('a=1, b!=2,c,!d,e==5');
    expect(matchesSelector({ a: '1', c: '', e: '5' }, t)).toBe(true);
    expect(matchesSelector({ a: '1', b: '2', c: '', e: '5' }, t)).toBe(false);
    expect(matchesSelector({ a: '1', c: '', d: 'x', e: '5' }, t)).toBe(false);
    expect(matchesSelector({ a: '1', e: '5' }, t)).toBe(false);
    expect(() => parseSelector('env in (a,b)')).toThrow(/set-based/);
  });
});

describe('runc-rollout inventory from-kubectl', () => {
  const run = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    let stdout = '';
    let stderr = '';
    const sink = (f: (s: string) => void) => new Writable({ write(chunk, _enc, cb) { f(String(chunk)); cb(); } });
    let code = -1;
    const abort = new AbortController();
    let ctx: CliContext | undefined;
    const program = buildProgram(
      () => (ctx ??= makeContext(program, { env: { PATH: process.env.PATH, ...env }, cwd: tmp, stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), stdinIsTTY: false, signal: abort.signal })),
      (c) => { code = c; },
      {},
    );
    const quiet = (c: typeof program) => { c.configureOutput({ writeErr: (s) => (stderr += s), writeOut: (s) => (stdout += s) }); c.commands.forEach(quiet); };
    quiet(program);
    let error: unknown;
    try {
      await program.parseAsync(['inventory', 'from-kubectl', ...args], { from: 'user' });
    } catch (err) {
      error = err;
    }
    return { code, stdout, stderr, error };
  };

  const fakeKubectl = (body: string) => {
    const dir = mkdtempSync(join(tmp, 'bin-'));
    const file = join(dir, 'kubectl');
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return dir;
  };

  it('--from-file -o FILE writes an inventory that loads, and warns about the node left out', async () => {
    const r = await run(['--from-file', FIXTURE, '-o', 'inv.yaml', '--ssh-user', 'ubuntu', '--sudo', '--identity', 'id_ed25519']);
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('worker-noaddr: left out: no InternalIP address');
    expect(r.stderr).toContain('wrote 6 nodes');
    const inv = load(readFileSync(join(tmp, 'inv.yaml'), 'utf8'));
    expect(inv.source).toBe('kubernetes');
    expect(inv.nodes).toHaveLength(6);
    expect(inv.nodes[0]?.ssh).toMatchObject({ user: 'ubuntu', sudo: true, identityFile: join(tmp, 'id_ed25519') });
  });

  it('runs the kubectl on PATH with the selector and context, and prints to stdout without -o', async () => {
    const log = join(tmp, 'kubectl-args');
    const dir = fakeKubectl(`echo "$@" > '${log}'; cat '${FIXTURE}'`);
    const r = await run(['--selector', 'pool=general', '--context', 'prod'], { PATH: `${dir}:${process.env.PATH}` });
    expect(r.error).toBeUndefined();
    expect(readFileSync(log, 'utf8').trim()).toBe('get nodes -o json -l pool=general --context prod');
    // The stand-in ignores -l; the selector is applied here as well.
    expect(load(r.stdout).nodes.map((n) => n.name)).toEqual(['worker-a1', 'worker-b1', inventoryName(LONG)]);
  });

  it('reports kubectl failures, a missing kubectl and a kubectl that does not answer in time', async () => {
    const failing = fakeKubectl('echo "error: You must be logged in to the server (Unauthorized)" >&2; exit 1');
    const r1 = await run([], { PATH: `${failing}:/nonexistent` });
    expect(String(r1.error)).toMatch(/kubectl get nodes -o json failed \(exit 1\): error: You must be logged in/);
    const r2 = await run([], { PATH: mkdtempSync(join(tmp, 'empty-')) });
    expect(String(r2.error)).toMatch(/kubectl not found on PATH/);
    const slow = fakeKubectl('exec sleep 30');
    const r3 = await run(['--kubectl-timeout', '300ms'], { PATH: `${slow}:${process.env.PATH}` });
    expect(String(r3.error)).toMatch(/no answer within 0.3s/);
    expect(r3.error).toBeInstanceOf(InputError);
  });

  it('refuses an unknown --address type', async () => {
    const r = await run(['--from-file', FIXTURE, '--address', 'LoadBalancer']);
    expect(String(r.error)).toMatch(/expected one of InternalIP, ExternalIP, Hostname/);
    expect(r.code).toBe(-1);
  });
});
