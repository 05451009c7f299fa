// What CI pipelines use, end to end on the real fleet: an Ansible INI
// inventory with command-line SSH overrides, --shard splitting the fleet
// between controllers, JUnit and GitHub step-summary output, and the library
// API imported from the built package by its own name.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlanFile } from '../../src/core/plan-schema.js';
import { fleetUnsupportedReason } from '../harness/fleet.js';
import { useFleet } from '../harness/fleet/use-fleet.js';
import { sharedReleaseFixtures, type ReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';

const ROOT = resolve(import.meta.dirname, '../..');
const unsupported = fleetUnsupportedReason();
if (unsupported) console.warn(`skipping the pipelines e2e test: ${unsupported}`);

type Run = { code: number; stdout: string; stderr: string };
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Run> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd, env: { ...process.env, CI: '1', SSH_AUTH_SOCK: '', ...env }, timeout: 120_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

describe.skipIf(unsupported)('pipelines: Ansible inventory, shards, JUnit, step summary, library API', () => {
  let fx: ReleaseFixtures;
  let server: ReleaseServer;
  let work: string;
  let ini: string;
  const bin = (tag: string) => join(fx.releaseDir('test/runc', tag), `runc.${fx.arch}`);
  const names = ['web-1', 'web-2', 'db-1', 'db-2', 'db-3'];

  const f = useFleet(() => {
    fx = sharedReleaseFixtures();
    return { nodes: names.map((name) => ({ name, runc: { binary: bin(name.startsWith('web') ? 'v1.1.12' : 'v1.2.8') } })) };
  });

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/index.js'))) throw new Error('dist/ is not built: run `npm run build` (npm test does)');
    server = await startReleaseServer(fx.releases);
    work = mkdtempSync(join(tmpdir(), 'rr-pipelines-'));
    // As a platform team's playbooks have it: groups, children, vars; no key or known_hosts (they come from flags).
    const host = (n: string) => f.fleet.node(n).host;
    ini = join(work, 'hosts.ini');
    writeFileSync(
      ini,
      [
        '[web]',
        ...['web-1', 'web-2'].map((n) => `${n} ansible_host=${host(n)} ansible_user=nobody`),
        '[db]',
        ...['db-1', 'db-2', 'db-3'].map((n) => `${n} ansible_host=${host(n)}`),
        '[web:vars]',
        'runc_path=/usr/local/sbin/runc',
        '[k8s:children]',
        'web',
        'db',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const globals = () => ['--github-api-url', server.url, '--keyring', fx.keyringPath, '--cache-dir', join(work, 'cache')];
  const overrides = () => ['--ssh-user', 'root', '--identity', f.fleet.identityFile, '--known-hosts', f.fleet.knownHosts];
  const planArgs = (extra: string[]) => [join(ROOT, 'bin/runc-rollout'), ...globals(), 'plan', '-i', ini, '--repo', 'test/runc', '--version', '1.2.9', ...overrides(), '--json', ...extra];

  it('plans an Ansible INI inventory with --ssh-user/--identity/--known-hosts overriding it, --limit by group', async () => {
    const r = await run(process.execPath, planArgs(['--limit', 'db']));
    expect(r.code, r.stderr).toBe(0);
    const plan = parsePlanFile(r.stdout, 'stdout');
    expect(plan.nodes.map((n) => n.name)).toEqual(['db-1', 'db-2', 'db-3']);
    expect(plan.nodes.every((n) => n.action === 'upgrade' && n.current?.version === '1.2.8')).toBe(true);
  });

  it('--shard i/n splits the fleet into disjoint shards that cover every node, and records it in the plan', async () => {
    const seen: string[] = [];
    for (const s of ['1/2', '2/2']) {
      const r = await run(process.execPath, planArgs(['--shard', s]));
      expect(r.code, r.stderr).toBe(0);
      const plan = parsePlanFile(r.stdout, 'stdout');
      expect(plan.shard).toBe(s);
      seen.push(...plan.nodes.map((n) => n.name));
    }
    expect([...seen].sort()).toEqual([...names].sort());
    expect(new Set(seen).size).toBe(names.length);
  });

  it('writes JUnit XML a parser reads back and appends a Markdown table to GITHUB_STEP_SUMMARY', async () => {
    const junit = join(work, 'plan.xml');
    const summary = join(work, 'summary.md');
    writeFileSync(summary, '# earlier step\n');
    const r = await run(process.execPath, planArgs(['--report-junit', junit]), { GITHUB_STEP_SUMMARY: summary });
    expect(r.code, r.stderr).toBe(0);
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8')) as Record<string, unknown>;
    const text = JSON.stringify(xml);
    for (const n of names) expect(text).toContain(n);
    const md = readFileSync(summary, 'utf8');
    expect(md.startsWith('# earlier step\n')).toBe(true);
    expect(md).toMatch(/\|\s*web-1\s*\|/);
  });

  it('takes --version and --repo from ./runc-rollout.config.yaml; a flag on the command line wins; a bad value is refused by name', async () => {
    const cwd = mkdtempSync(join(work, 'cfg-'));
    writeFileSync(join(cwd, 'runc-rollout.config.yaml'), 'version: 1.2.8\nrepo: test/runc\n');
    const base = [join(ROOT, 'bin/runc-rollout'), ...globals(), 'plan', '-i', ini, ...overrides(), '--json', '--limit', 'web'];
    const fromConfig = await run(process.execPath, base, {}, cwd);
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(parsePlanFile(fromConfig.stdout, 'stdout').release.tag).toBe('v1.2.8');
    const flagWins = await run(process.execPath, [...base, '--version', '1.2.9'], {}, cwd);
    expect(flagWins.code, flagWins.stderr).toBe(0);
    expect(parsePlanFile(flagWins.stdout, 'stdout').release.tag).toBe('v1.2.9');
    writeFileSync(join(cwd, 'runc-rollout.config.yaml'), 'version: 1.2.9\nparallel: none\n');
    const bad = await run(process.execPath, base, {}, cwd);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/runc-rollout\.config\.yaml: parallel: /);
  });

  it('the library API, imported from the built package by name, plans the fleet without touching process state', async () => {
    const script = `
      import { plan, loadInventory } from 'runc-rollout';
      const inv = await loadInventory(${JSON.stringify(f.fleet.inventoryPath)});
      const p = await plan({
        inventory: inv.path,
        limit: ['web-*'],
        release: { repo: 'test/runc', version: '1.2.9', githubApiUrl: ${JSON.stringify(server.url)}, cacheDir: ${JSON.stringify(join(work, 'cache'))}, keyringPath: ${JSON.stringify(fx.keyringPath)} },
      });
      process.stdout.write(JSON.stringify({ nodes: p.nodes.map((n) => [n.name, n.action]), total: inv.nodes.length }));
    `;
    const r = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ nodes: [['web-1', 'upgrade'], ['web-2', 'upgrade']], total: 5 });
    // the library logs nothing unless given a logger
    expect(r.stderr).toBe('');
  });
});
