// The benchmark's pure parts (bench/): how figures become medians, ratios and
// target verdicts, its arguments, the floor's timeline parser and the Ansible
// playbooks it writes. Timings themselves are never asserted.
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { applyPlaybook, planPlaybook } from '../../bench/ansible.js';
import { batchesOf, parseNodeFloor } from '../../bench/floor.js';
import type { MeasuredRun } from '../../bench/measure.js';
import { UsageError, parseBenchArgs } from '../../bench/options.js';
import { figures, median, ratio, targets, type Figures, type Tool } from '../../bench/report.js';

const run = (wallMs: number, cpuS: number, perNode: Record<string, { conns: number; bytes: number }> | null = null): MeasuredRun =>
  ({ wallMs, userS: cpuS, sysS: 0, maxRssKB: 100 * 1024, peakTreePssKB: 50 * 1024, perNode }) as unknown as MeasuredRun;

describe('bench figures', () => {
  it('median of odd and even counts, ignoring non-finite values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(3, 2)).toBe(1.5);
  });

  it('figures: medians per run, connection range and bytes over nodes', () => {
    const f = figures([run(10, 1, { a: { conns: 1, bytes: 100 }, b: { conns: 2, bytes: 300 } }), run(30, 3, { a: { conns: 1, bytes: 200 }, b: { conns: 1, bytes: 400 } }), run(20, 2, null)]);
    expect(f).toMatchObject({ runs: 3, wallMs: 20, cpuS: 2, connsPerNode: { min: 1, max: 2 }, bytesPerNode: { median: 250, max: 400 } });
  });

  it('targets: each verdict flips at its bound', () => {
    const fig = (wallMs: number, cpuS: number, extra: Partial<Figures> = {}): Figures => ({ ...figures([run(wallMs, cpuS)]), ...extra });
    const verdicts = (f: Record<Tool, Figures>, phase: 'plan' | 'apply' = 'plan') => Object.fromEntries(targets(phase, f, 1000).map((t) => [t.what, t.pass]));
    const ok = verdicts({ rollout: fig(120, 1, { connsPerNode: { min: 1, max: 1 } }), ansible: fig(240, 10), floor: fig(100, 1) });
    expect(ok).toMatchObject({ 'wall <= 1.2x floor': true, '>= 2x faster than Ansible': true, 'controller CPU <= 1/10 of Ansible': true, 'exactly 1 SSH connection per node': true, 'peak RSS < 150 MB': true });
    const bad = verdicts({ rollout: fig(121, 1.01, { connsPerNode: { min: 1, max: 2 } }), ansible: fig(240, 10), floor: fig(100, 1) });
    expect(bad).toMatchObject({ 'wall <= 1.2x floor': false, '>= 2x faster than Ansible': false, 'controller CPU <= 1/10 of Ansible': false, 'exactly 1 SSH connection per node': false });
    const bytes = (max: number) => targets('apply', { rollout: fig(1, 1, { bytesPerNode: { median: max, max } }), ansible: fig(2, 5), floor: fig(1, 1) }, 1000).find((t) => t.what.startsWith('bytes/node'))?.pass;
    expect(bytes(1000 + 8 * 1024)).toBe(true);
    expect(bytes(1000 + 8 * 1024 + 1)).toBe(false);
  });
});

describe('bench arguments', () => {
  it('defaults and every option', () => {
    expect(parseBenchArgs([])).toMatchObject({ nodes: 20, runs: 3, parallel: 20, batch: 5, phases: ['plan', 'apply'], keep: false, rolloutArgs: [] });
    expect(parseBenchArgs(['--nodes', '200', '--only', 'plan', '--runs=5', '--keep', '--rollout-arg=--ssh-client', '--rollout-arg', 'openssh'])).toMatchObject({
      nodes: 200,
      runs: 5,
      phases: ['plan'],
      keep: true,
      rolloutArgs: ['--ssh-client', 'openssh'],
    });
  });

  it('refuses what it cannot run, naming the option', () => {
    expect(() => parseBenchArgs(['--nodes', '241'])).toThrow(/--nodes: want 1..240, got 241/);
    expect(() => parseBenchArgs(['--only', 'both'])).toThrow(UsageError);
    expect(() => parseBenchArgs(['--batch', 'x'])).toThrow(/--batch: want an integer/);
    expect(() => parseBenchArgs(['--fast'])).toThrow(/unknown option --fast/);
  });
});

describe('bench floor and peer', () => {
  it('batches in order, the last one short', () => {
    expect(batchesOf([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('reads a node floor timeline (ns stamps), and refuses an incomplete one', () => {
    const ms = (x: number) => `${BigInt(x) * 1_000_000n}`;
    const out = ['t start ' + ms(1000), 't uploaded ' + ms(1010), 't bundle ' + ms(1020), 't smoke-staged ' + ms(1500), 't smoke-installed ' + ms(2000), 't smoke-sysctl ' + ms(2400)].join('\n');
    expect(parseNodeFloor(out)).toEqual({ startAtMs: 1000, uploadMs: 10, smokeMs: [480, 500, 400], endAtMs: 2400 });
    expect(parseNodeFloor(out.split('\n').slice(0, 4).join('\n'))).toBeNull();
  });

  it('the Ansible plan runs its fact commands even under --check; apply is serial with a rescue', () => {
    const plan = YAML.parse(planPlaybook()) as { gather_facts: boolean; tasks: Record<string, unknown>[] }[];
    expect(plan[0]?.gather_facts).toBe(false);
    const commands = plan[0]!.tasks.filter((t) => 'ansible.builtin.command' in t || 'command' in t);
    expect(commands.length).toBe(4);
    for (const t of commands) expect(t.check_mode).toBe(false);
    const apply = YAML.parse(applyPlaybook({ binary: '/tmp/runc', serial: 5, bundleConfig: '/tmp/config.json', posixSysctl: true })) as { serial: number; tasks: { block?: unknown[]; rescue?: unknown[] }[] }[];
    expect(apply[0]?.serial).toBe(5);
    const block = apply[0]!.tasks.find((t) => t.block);
    expect(block?.block?.length).toBeGreaterThan(3);
    expect(block?.rescue?.length).toBeGreaterThan(0);
  });
});
