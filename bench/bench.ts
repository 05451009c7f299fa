// `npm run bench`: runc-rollout vs Ansible vs the floor on one local test
// fleet, in one run (issue #8). See docs/BENCHMARKS.md for what is measured.
//
//   npm run bench -- --nodes 20 --runs 3 --parallel 20 --batch 5 [--only plan|apply]
//
// Needs root (the test fleet). Tears everything down (fleet, release server,
// nftables table, temp folder) on success, error and Ctrl-C.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runAnsible, writeAnsibleProject, type AnsibleProject } from './ansible.js';
import { execRoundTripMs, runApplyFloor, runPlanFloor, SMOKES_PER_NODE, type ApplyFloorRun, type SshTarget } from './floor.js';
import { codeInfo, machineInfo } from './machine.js';
import { createCounters, stopActive, type Counters, type MeasuredRun } from './measure.js';
import { defaultResultName, parseBenchArgs, UsageError, type BenchOptions, type Phase } from './options.js';
import { hasAnsiblePosix, ensureBenchPrerequisites } from './prereqs.js';
import { breakdownTable, figures, median, phaseTable, ratio, targets, targetTable, TOOLS, type Figures, type Tool } from './report.js';
import { applyBreakdown, ROOT, snapshotCli, runRolloutApply, runRolloutPlan, runRolloutRelease, runRolloutStartup, type ApplyBreakdown, type RolloutSetup } from './rollout.js';
import { nodesNotUpgraded, resetFleet, RELEASE, startTestbed, type Testbed } from './testbed.js';

const say = (s: string) => process.stdout.write(`${s}\n`);

class Interrupted extends Error {}

let interrupted = false;
const bed: Partial<Testbed> = {};
let counters: Counters | null = null;
let work: string | undefined;

function onSignal(sig: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  say(`\nbench: ${sig}; stopping after the running command, then tearing down`);
  // Ctrl-C reaches the measured command through the process group; SIGTERM does not.
  if (sig === 'SIGTERM') stopActive();
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function teardown(keep: boolean): Promise<void> {
  counters?.remove();
  await bed.fleet?.stop().catch((e: unknown) => console.error(`fleet stop: ${String(e)}`));
  await bed.server?.stop().catch(() => undefined);
  if (work && !keep) rmSync(work, { recursive: true, force: true });
  else if (work) say(`kept ${work}`);
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function check(what: string, r: MeasuredRun): MeasuredRun {
  if (interrupted) throw new Interrupted();
  if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode ?? `on signal ${r.signal}`}; the end of ${r.log}:\n${tail(r.log)}`);
  return r;
}

/** Round i runs the tools in a rotated order, so none always goes first on a cooling or warming machine. */
const rotated = <T>(xs: T[], i: number): T[] => xs.map((_, k) => xs[(k + i) % xs.length]!);

const secs = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

interface Ctx {
  o: BenchOptions;
  tb: Testbed;
  rr: RolloutSetup;
  ansible: AnsibleProject;
  ssh: SshTarget;
  hasLib64: boolean;
}

async function benchPlan(c: Ctx) {
  const raw: Record<Tool, MeasuredRun[]> = { rollout: [], ansible: [], floor: [] };
  const probes = { startupMs: [] as number[], startupCpuS: [] as number[], releaseMs: [] as number[] };
  const hosts = c.tb.fleet.nodes.map((n) => n.host);
  for (let i = 0; i <= c.o.runs; i++) {
    const label = i === 0 ? 'warm-up' : `run ${i}/${c.o.runs}`;
    const got: Partial<Record<Tool, MeasuredRun>> = {};
    for (const tool of rotated(TOOLS, i)) {
      const tag = `plan-${tool}-${i}`;
      if (tool === 'rollout') got.rollout = check('runc-rollout plan', await runRolloutPlan(c.rr, tag, counters));
      if (tool === 'ansible') got.ansible = check('ansible-playbook plan.yml --check', await runAnsible(work!, tag, c.ansible, 'plan', counters));
      if (tool === 'floor') got.floor = check('plan floor', await runPlanFloor(work!, tag, hosts, c.o.parallel, c.ssh, counters));
    }
    const up = check('runc-rollout --version', await runRolloutStartup(c.rr, `startup-${i}`));
    probes.startupMs.push(up.wallMs);
    probes.startupCpuS.push(up.userS + up.sysS);
    probes.releaseMs.push(check('runc-rollout release fetch', await runRolloutRelease(c.rr, `release-${i}`)).wallMs);
    say(`plan ${label}: ${TOOLS.map((t) => `${t} ${secs(got[t]!.wallMs)}`).join(', ')}`);
    if (i > 0) for (const t of TOOLS) raw[t].push(got[t]!);
  }
  probes.startupMs.shift();
  probes.startupCpuS.shift();
  probes.releaseMs.shift();
  const f = Object.fromEntries(TOOLS.map((t) => [t, figures(raw[t])])) as Record<Tool, Figures>;
  return { figures: f, probes: { startupMs: median(probes.startupMs), startupCpuS: median(probes.startupCpuS), releaseMs: median(probes.releaseMs) }, raw };
}

async function benchApply(c: Ctx) {
  const raw: Record<Tool, MeasuredRun[]> = { rollout: [], ansible: [], floor: [] };
  const breakdowns: ApplyBreakdown[] = [];
  const floors: ApplyFloorRun[] = [];
  const roundTripMs: number[] = [];
  const fleet = c.tb.fleet;
  for (let i = 0; i <= c.o.runs; i++) {
    const label = i === 0 ? 'warm-up' : `run ${i}/${c.o.runs}`;
    const got: Partial<Record<Tool, MeasuredRun>> = {};
    for (const tool of rotated(TOOLS, i)) {
      await resetFleet(fleet);
      if (interrupted) throw new Interrupted();
      const tag = `apply-${tool}-${i}`;
      if (tool === 'rollout') {
        const r = await runRolloutApply(c.rr, tag, counters);
        check('runc-rollout apply', r);
        const b = applyBreakdown(r, r.report);
        const bad = await nodesNotUpgraded(fleet, c.tb.binarySha256);
        if (bad.length || Object.keys(b.statuses).some((s) => s !== 'upgraded')) throw new Error(`runc-rollout apply: not every node upgraded (${JSON.stringify(b.statuses)}; ${bad.join(', ')}); see ${r.log}`);
        got.rollout = r;
        if (i > 0) breakdowns.push(b);
      }
      if (tool === 'ansible') {
        const r = check('ansible-playbook apply.yml', await runAnsible(work!, tag, c.ansible, 'apply', counters));
        const bad = await nodesNotUpgraded(fleet, c.tb.binarySha256);
        if (bad.length) throw new Error(`ansible apply: nodes not upgraded: ${bad.join(', ')}; see ${r.log}`);
        got.ansible = r;
      }
      if (tool === 'floor') {
        const r = await runApplyFloor(work!, tag, fleet.nodes, c.o.batch, c.tb.binary, c.hasLib64, c.ssh, counters);
        check('apply floor', r);
        if (r.nodes.some((n) => n === null)) throw new Error(`apply floor: some node did not finish its work; see ${work}/floor-node-*.out`);
        got.floor = r;
        if (i > 0) floors.push(r);
      }
    }
    roundTripMs.push(execRoundTripMs(work!, fleet.nodes[0]!.host, c.ssh));
    say(`apply ${label}: ${TOOLS.map((t) => `${t} ${secs(got[t]!.wallMs)}`).join(', ')}`);
    if (i > 0) for (const t of TOOLS) raw[t].push(got[t]!);
  }
  await resetFleet(fleet);
  const f = Object.fromEntries(TOOLS.map((t) => [t, figures(raw[t])])) as Record<Tool, Figures>;
  const steps: Record<string, number[]> = {};
  for (const b of breakdowns) for (const [k, v] of Object.entries(b.stepMs)) (steps[k] ??= []).push(...v);
  const breakdown = {
    beforeBatchesMs: breakdowns.map((b) => b.beforeBatchesMs),
    batchMs: breakdowns.map((b) => b.batchMs),
    betweenBatchesMs: breakdowns.map((b) => b.betweenBatchesMs),
    afterBatchesMs: breakdowns.map((b) => b.afterBatchesMs),
    stepMs: steps,
  };
  const floorDetail = {
    batchMs: floors.map((r) => r.batchMs),
    connectMs: floors.flatMap((r) => r.connectMs),
    uploadMs: floors.flatMap((r) => r.nodes.map((n) => n!.uploadMs)),
    smokeMs: floors.flatMap((r) => r.nodes.flatMap((n) => n!.smokeMs)),
    roundTripMs,
  };
  return { figures: f, breakdown, floorDetail, raw };
}

const round = (v: unknown): unknown =>
  typeof v === 'number' ? Math.round(v * 1000) / 1000 : Array.isArray(v) ? v.map(round) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, round(x)])) : v;

function stepMedians(stepMs: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(stepMs).map(([k, v]) => [k, median(v)]));
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const pre = ensureBenchPrerequisites(say);
  for (const w of pre.warnings) say(`warning: ${w}`);
  if (pre.problems.length) {
    for (const p of pre.problems) process.stderr.write(`${p}\n`);
    return 1;
  }
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)');
  const machine = machineInfo();
  work = mkdtempSync(join(tmpdir(), 'runc-rollout-bench-'));
  say(`bench: ${o.nodes} nodes, parallel ${o.parallel}, batch ${o.batch}, ${o.runs} runs + 1 warm-up, ${o.phases.join(' + ')}; work folder ${work}`);
  say(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGB} GB, kernel ${machine.kernel}, load ${machine.loadAvgAtStart.join(' ')}`);
  const t0 = Date.now();
  const tb = await startTestbed(o.nodes, work, (t) => Object.assign(bed, t));
  say(`fleet of ${o.nodes} nodes on 127.0.${tb.fleet.subnet}.0/24 up in ${secs(Date.now() - t0)}; release binary ${tb.binarySize} bytes`);
  if (interrupted) throw new Interrupted();
  try {
    counters = createCounters(tb.fleet.nodes.map((n) => n.host));
  } catch (e) {
    say(`warning: no nftables counters (${(e as Error).message.split('\n')[0]}); connections and bytes per node will not be reported`);
  }
  const hasLib64 = existsSync('/lib64');
  const ssh: SshTarget = { user: 'root', identityFile: tb.fleet.identityFile, knownHosts: tb.fleet.knownHosts };
  const ansible = writeAnsibleProject(
    join(work, 'ansible'),
    { hosts: tb.fleet.nodes.map((n) => ({ name: n.name, host: n.host })), ...ssh, forks: o.parallel, controlPathDir: join(work, 'ansible', 'cp'), localTmp: join(work, 'ansible', 'tmp') },
    { serial: o.batch, binary: tb.binary, posixSysctl: hasAnsiblePosix() },
    hasLib64,
  );
  const snap = snapshotCli(work);
  const rr: RolloutSetup = { cliRoot: snap.root, work, apiUrl: tb.server.url, keyring: tb.fixtures.keyringPath, cacheDir: join(work, 'cache'), inventory: tb.fleet.inventoryPath, parallel: o.parallel, batch: o.batch, extraArgs: o.rolloutArgs };
  const ctx: Ctx = { o, tb, rr, ansible, ssh, hasLib64 };

  const result: Record<string, unknown> = {
    schema: 1,
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { nodes: o.nodes, runs: o.runs, warmups: 1, parallel: o.parallel, batch: o.batch, phases: o.phases, rolloutArgs: o.rolloutArgs },
    machine,
    code: { ...codeInfo(ROOT), distSha256: snap.distSha256 },
    release: { repo: RELEASE.repo, tag: RELEASE.tag, binaryBytes: tb.binarySize, sha256: tb.binarySha256 },
    assumptions: {
      smokesPerNode: SMOKES_PER_NODE.length,
      smokes: 'runc-rollout runs 3 smoke containers on an upgraded node (staged-smoke, smoke after the swap, smoke-after-sysctl; a 4th, "restored", only on rollback); the apply floor runs 3 lifecycles (create, start, exec, kill, delete)',
      ansibleSmokes: 1,
      bytes: 'IP packets (headers included) the controller sent to each node address, TCP port 22, counted by nftables in the output hook',
      connections: 'TCP SYNs to port 22 per node address',
      cpu: 'user+sys of the whole process tree (RUSAGE_CHILDREN of a subreaper supervisor; Ansible: ansible-playbook, its forks, ssh clients and ControlPersist masters)',
    },
  };
  const printed: string[] = [];
  if (o.phases.includes('plan')) {
    say('\n== plan');
    const p = await benchPlan(ctx);
    const ts = targets('plan', p.figures, tb.binarySize);
    const text = `${phaseTable('plan', p.figures)}\n\nrunc-rollout plan: start-up (--version) ${secs(p.probes.startupMs)} (CPU ${p.probes.startupCpuS.toFixed(2)} s); \`release fetch\` from the warm cache alone ${secs(p.probes.releaseMs)} (plan may overlap it with the fact gathering); plan wall minus start-up ${secs(p.figures.rollout.wallMs - p.probes.startupMs)}\n\n${targetTable(ts)}`;
    printed.push(text);
    result.plan = {
      figures: p.figures,
      ratios: { rolloutVsAnsible: ratio(p.figures.rollout.wallMs, p.figures.ansible.wallMs), rolloutVsFloor: ratio(p.figures.rollout.wallMs, p.figures.floor.wallMs), cpuRolloutVsAnsible: ratio(p.figures.rollout.cpuS, p.figures.ansible.cpuS) },
      targets: ts,
      rollout: p.probes,
      raw: strip(p.raw),
    };
  }
  if (o.phases.includes('apply')) {
    say('\n== apply');
    const a = await benchApply(ctx);
    const ts = targets('apply', a.figures, tb.binarySize);
    const text = `${phaseTable('apply', a.figures)}\n\n${breakdownTable(a.breakdown, a.floorDetail)}\n\n${targetTable(ts)}`;
    printed.push(text);
    result.apply = {
      figures: a.figures,
      ratios: { rolloutVsAnsible: ratio(a.figures.rollout.wallMs, a.figures.ansible.wallMs), rolloutVsFloor: ratio(a.figures.rollout.wallMs, a.figures.floor.wallMs), cpuRolloutVsAnsible: ratio(a.figures.rollout.cpuS, a.figures.ansible.cpuS) },
      targets: ts,
      breakdown: { ...a.breakdown, stepMedianMs: stepMedians(a.breakdown.stepMs) },
      floor: { ...a.floorDetail, connectMedianMs: median(a.floorDetail.connectMs), roundTripMedianMs: median(a.floorDetail.roundTripMs), uploadMedianMs: median(a.floorDetail.uploadMs), smokeMedianMs: median(a.floorDetail.smokeMs) },
      raw: strip(a.raw),
    };
  }
  result.loadAvgAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const out = resolve(o.out ?? join(ROOT, 'bench', 'results', defaultResultName(o)));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(round(result), null, 2)}\n`);
  say(`\n${printed.join('\n\n')}\n\nmedians of ${o.runs} runs after 1 warm-up; ${o.nodes} nodes, parallel ${o.parallel}, batch ${o.batch}; load ${machine.loadAvgAtStart.join(' ')} -> ${(result.loadAvgAtEnd as number[]).join(' ')}\nwritten: ${out}`);
  return 0;
}

function strip(raw: Record<Tool, MeasuredRun[]>) {
  return Object.fromEntries(Object.entries(raw).map(([t, runs]) => [t, runs.map(({ log: _log, ...r }) => r)]));
}

let code = 1;
const keep = process.argv.includes('--keep');
try {
  code = await main();
} catch (err) {
  if (err instanceof Interrupted || interrupted) {
    code = 130;
  } else {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
} finally {
  await teardown(keep);
}
process.exitCode = code;
