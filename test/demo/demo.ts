// `npm run demo`: a local fleet of 6 test nodes and a GitHub stand-in serving
// signed stand-in runc releases; runs the real CLI's `plan`, then
// `apply --batch 2 --canary 1 --yes`, shows the report, and tears it all down
// (also on Ctrl-C). Nothing on the machine itself is changed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseReport } from '../../src/apply/report.js';
import { startFleet, type Fleet, type FleetNodeSpec } from '../harness/fleet.js';
import { sharedReleaseFixtures } from '../harness/release-fixtures.js';
import { startReleaseServer, type ReleaseServer } from '../harness/release-server.js';
import { buildStandIn } from '../harness/standin.js';
import { ensurePrerequisites } from './prerequisites.js';

const ROOT = resolve(import.meta.dirname, '../..');
const say = (s: string) => process.stdout.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

let fleet: Fleet | undefined;
let server: ReleaseServer | undefined;
let work: string | undefined;
let child: ReturnType<typeof spawn> | undefined;
let interrupted = false;

async function teardown(): Promise<void> {
  say('tearing down the fleet and the release server');
  await fleet?.stop().catch((e: unknown) => console.error(`fleet stop: ${String(e)}`));
  await server?.stop().catch(() => undefined);
  if (work) rmSync(work, { recursive: true, force: true });
  fleet = undefined;
  server = undefined;
}

// Ctrl-C reaches the running CLI too (same process group): it stops starting
// nodes and exits 130 on its own; we then tear down instead of dying mid-way.
process.on('SIGINT', () => {
  if (interrupted) return;
  interrupted = true;
  process.stdout.write('\ndemo: interrupted; finishing the current step, then tearing down\n');
});

function cli(args: string[]): Promise<number> {
  process.stdout.write(`\n$ runc-rollout ${args.join(' ')}\n`);
  return new Promise((done) => {
    child = spawn(process.execPath, [join(ROOT, 'bin/runc-rollout'), ...args], { stdio: 'inherit', cwd: work });
    child.on('close', (code) => {
      child = undefined;
      done(code ?? 130);
    });
  });
}

function nodes(bins: string): FleetNodeSpec[] {
  const standIn = (v: string) => buildStandIn(join(bins, `runc-${v}`), { version: v });
  const rc93 = standIn('1.0.0-rc93');
  return [
    // The classic rc93 host: the hang's workaround raised the sysctl and persisted it.
    { name: 'node-1', runc: { binary: rc93 }, sysctl: { live: 65536, files: { '/etc/sysctl.d/90-pipe.conf': '# workaround for the runc rc93 hang\nfs.pipe-user-pages-soft = 65536\n' } } },
    { name: 'node-2', runc: { binary: standIn('1.1.12') } },
    { name: 'node-3', runc: { binary: rc93 } },
    { name: 'node-4', runc: { binary: standIn('1.2.8') } },
    { name: 'node-5', runc: { binary: standIn('1.1.12') } },
    { name: 'node-6', runc: { binary: standIn('1.2.8') } },
  ];
}

function showReport(): void {
  const dir = join(work as string, '.runc-rollout', 'runs');
  const file = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().at(-1);
  if (!file) return;
  const path = join(dir, file);
  const r = parseReport(readFileSync(path, 'utf8'), path);
  say(`the run report, abridged (the full file, with per-step timings, is ${path}; it goes with the teardown)`);
  const brief = {
    runId: r.runId,
    release: `${r.release?.repo} ${r.release?.tag}`,
    exitCode: r.exitCode,
    summary: r.summary,
    nodes: r.nodes.map((n) => ({
      name: n.name,
      status: n.status,
      from: n.from?.version,
      to: n.to?.version,
      sysctl: `${n.sysctl.before?.live ?? '?'} -> ${n.sysctl.after?.live ?? '?'}`,
      backup: n.backupPath,
      failedStep: n.failedStep,
    })),
  };
  process.stdout.write(`${JSON.stringify(brief, null, 2)}\n`);
}

async function main(): Promise<number> {
  const problems = ensurePrerequisites((s) => process.stdout.write(`${s}\n`));
  if (problems) {
    for (const p of problems) process.stderr.write(`${p}\n`);
    return 1;
  }
  work = mkdtempSync(join(tmpdir(), 'runc-rollout-demo-'));
  say('building and signing stand-in runc releases (cached after the first run)');
  const fx = sharedReleaseFixtures();
  server = await startReleaseServer(fx.dir);
  say('starting 6 test nodes (sshd in private namespaces on 127.0.x.y)');
  fleet = await startFleet({ nodes: nodes(work) });
  if (interrupted) return 130;
  for (const n of fleet.nodes) {
    const v = (await fleet.exec(n.name, `${n.runcPath} --version | head -1`)).stdout.trim();
    process.stdout.write(`  ${n.name}  ${n.host}  ${v}  fs.pipe-user-pages-soft=${await fleet.liveSysctl(n.name)}\n`);
  }
  const globals = ['--github-api-url', server.url, '--keyring', fx.keyringPath, '--cache-dir', join(work, 'cache')];
  const release = ['--repo', 'test/runc', '--version', '1.2.9'];

  say('plan: what apply would change (changes nothing)');
  const planCode = await cli([...globals, 'plan', '-i', fleet.inventoryPath, ...release]);
  if (interrupted) return 130;
  if (planCode !== 0) return planCode;

  say('apply: a canary node first, then batches of 2');
  const code = await cli([...globals, 'apply', '-i', fleet.inventoryPath, ...release, '--batch', '2', '--canary', '1', '--yes']);
  showReport();
  return code;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  if (child) child.kill('SIGTERM');
  await teardown();
}
process.exitCode = code;
