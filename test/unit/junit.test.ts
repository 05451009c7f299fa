import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { NodeOutcome } from '../../src/apply/types.js';
import type { RunReport } from '../../src/apply/report.js';
import type { NodePlan, Plan } from '../../src/core/types.js';
import { planToJUnitXml, toJUnitXml, xmlAttr, xmlText } from '../../src/output/junit.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function outcome(name: string, status: NodeOutcome['status'], extra: Partial<NodeOutcome> = {}): NodeOutcome {
  return {
    name,
    host: `${name}.example`,
    status,
    from: { version: '1.0.0-rc93', sha256: A },
    to: status === 'upgraded' ? { version: '1.2.9', sha256: B } : null,
    failedStep: null,
    error: null,
    backupPath: null,
    sysctl: { before: null, after: null },
    steps: [],
    rollback: null,
    ...extra,
  };
}

interface ParsedCase {
  '@_name': string;
  '@_classname': string;
  '@_time': string;
  failure?: { '#text'?: string; '@_message': string; '@_type': string };
  skipped?: { '@_message': string };
  'system-out'?: string;
}

function parse(xml: string) {
  const valid = XMLValidator.validate(xml);
  expect(valid).toBe(true);
  const parser = new XMLParser({
    ignoreAttributes: false,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    htmlEntities: true,
    isArray: (tag) => tag === 'testcase' || tag === 'testsuite',
  });
  const doc = parser.parse(xml) as { testsuites: { testsuite: { testcase: ParsedCase[]; [k: string]: unknown }[]; [k: string]: unknown } };
  const suite = doc.testsuites.testsuite[0]!;
  return { root: doc.testsuites, suite, cases: suite.testcase };
}

const run = {
  command: 'apply' as const,
  runId: '20261128T180203Z-3fa9c1',
  startedAt: '2026-11-28T18:02:03.000Z',
  release: { repo: 'opencontainers/runc', tag: 'v1.2.9', version: '1.2.9' },
  nodes: [
    outcome('web-1', 'upgraded', {
      steps: [
        { name: 'lock', status: 'ok', startedAt: '2026-11-28T18:02:03.000Z', durationMs: 1500 },
        { name: 'swap', status: 'ok', startedAt: '2026-11-28T18:02:05.000Z', durationMs: 250, message: 'sha256 bbbbbbbb' },
      ],
    }),
    outcome('web-2', 'rolled-back', {
      failedStep: 'smoke',
      error: 'web-2: remote command failed (exit code 1): runc run smoke\n    container_linux.go: <init> failed & "quoted"',
      rollback: { ok: true, smokeOk: true, error: null, manualCommands: [] },
    }),
    outcome('web-3', 'failed', {
      failedStep: 'swap',
      error: 'mv failed',
      rollback: { ok: false, smokeOk: null, error: 'connection lost', manualCommands: ['mv /var/lib/runc-rollout/backup/runc /usr/local/sbin/runc'] },
    }),
    outcome('web-4', 'unknown', { failedStep: 'verify', error: 'connection lost during verify' }),
    outcome('web-5', 'unreachable', { error: 'connect ECONNREFUSED 10.0.0.15:22' }),
    outcome('web-6', 'not-attempted', { error: 'failure budget exceeded' }),
    outcome('web-7', 'unchanged'),
  ] satisfies NodeOutcome[],
};

describe('toJUnitXml', () => {
  it('is valid XML with one suite per run and one case per node, counted', () => {
    const { root, suite, cases } = parse(toJUnitXml(run));
    expect(cases.map((c) => c['@_name'])).toEqual(run.nodes.map((n) => n.name));
    expect(new Set(cases.map((c) => c['@_classname']))).toEqual(new Set(['runc-rollout.apply']));
    for (const s of [root, suite]) {
      expect(s['@_tests']).toBe('7');
      expect(s['@_failures']).toBe('4');
      expect(s['@_skipped']).toBe('1');
      expect(s['@_errors']).toBe('0');
    }
    expect(suite['@_name']).toBe('runc-rollout apply v1.2.9 (run 20261128T180203Z-3fa9c1)');
    expect(suite['@_timestamp']).toBe(run.startedAt);
  });

  it('fails rolled-back, failed, unknown and unreachable nodes, skips not-attempted, passes the rest', () => {
    const { cases } = parse(toJUnitXml(run));
    const kind = (c: ParsedCase) => (c.failure ? `failure:${c.failure['@_type']}` : c.skipped ? 'skipped' : 'passed');
    expect(cases.map(kind)).toEqual(['passed', 'failure:rolled-back', 'failure:failed', 'failure:unknown', 'failure:unreachable', 'skipped', 'passed']);
    expect(cases[5]!.skipped!['@_message']).toBe('not attempted: failure budget exceeded');
  });

  it('carries the failed step, the error and the rollback in the failure, escaped and read back intact', () => {
    const { cases } = parse(toJUnitXml(run));
    const rolled = cases[1]!.failure!;
    expect(rolled['@_message']).toBe('rolled-back at step smoke: web-2: remote command failed (exit code 1): runc run smoke');
    expect(rolled['#text']).toContain('container_linux.go: <init> failed & "quoted"');
    expect(rolled['#text']).toContain('rollback: ok');
    const failed = cases[2]!.failure!;
    expect(failed['#text']).toContain('rollback: FAILED: connection lost');
    expect(failed['#text']).toContain('to finish by hand on web-3.example:\n  mv /var/lib/runc-rollout/backup/runc /usr/local/sbin/runc');
  });

  it('sums step durations into the case time and lists the steps in system-out', () => {
    const { cases } = parse(toJUnitXml(run));
    expect(cases[0]!['@_time']).toBe('1.750');
    expect(cases[0]!['system-out']).toBe('web-1 (web-1.example): upgraded, runc 1.0.0-rc93 -> 1.2.9\nlock: ok (1500 ms)\nswap: ok (250 ms) sha256 bbbbbbbb');
  });

  it('survives control characters, quotes and markup in any field', () => {
    const nasty = 'bad\u001b[31mred\u001b[0m \u0000nul\u0007 "q" \'s\' <x> & ]]> \r\n\tend \uD800 lone';
    const xml = toJUnitXml({ ...run, runId: `id"<&>`, nodes: [outcome('n"<1>&', 'failed', { failedStep: 'stage', error: nasty })] });
    const { suite, cases } = parse(xml);
    expect(suite['@_name']).toBe('runc-rollout apply v1.2.9 (run id"<&>)');
    expect(cases[0]!['@_name']).toBe('n"<1>&');
    const text = cases[0]!.failure!['#text']!;
    expect(text).toContain('bad\\x1b[31mred\\x1b[0m \\x00nul\\x07 "q" \'s\' <x> & ]]> \r\n\tend \\ud800 lone');
    // The one-line message keeps the text up to the first line break.
    expect(cases[0]!.failure!['@_message']).toBe('failed at step stage: bad\\x1b[31mred\\x1b[0m \\x00nul\\x07 "q" \'s\' <x> & ]]>');
  });

  it('uses the rollback class name for a rollback run without a release', () => {
    const { suite, cases } = parse(toJUnitXml({ command: 'rollback', runId: 'r1', release: null, nodes: [outcome('a', 'unchanged')] }));
    expect(suite['@_name']).toBe('runc-rollout rollback (run r1)');
    expect(cases[0]!['@_classname']).toBe('runc-rollout.rollback');
  });

  it('is valid for a run with no nodes', () => {
    const { suite, cases } = parse(toJUnitXml({ ...run, nodes: [] }));
    expect(suite['@_tests']).toBe('0');
    expect(cases).toBeUndefined();
  });
});

describe('escaping helpers', () => {
  it('escapes markup, keeps tab/LF in text and encodes them in attributes', () => {
    expect(xmlText('a<b>&c\r\n\t')).toBe('a&lt;b&gt;&amp;c&#13;\n\t');
    expect(xmlAttr('"a"\n\tb')).toBe('&quot;a&quot;&#10;&#9;b');
    expect(xmlText('\u0001\uFFFE')).toBe('\\x01\\ufffe');
  });
});

function planNode(name: string, action: NodePlan['action'], error: string | null = null): NodePlan {
  return {
    name,
    host: `${name}.example`,
    port: 22,
    arch: 'amd64',
    runcPath: '/usr/local/sbin/runc',
    action,
    current: action === 'unreachable' ? null : { version: '1.1.0', sha256: A },
    target: action === 'upgrade' ? { version: '1.2.9', sha256: B } : null,
    sysctl: null,
    warnings: action === 'upgrade' ? ['runc is owned by package runc'] : [],
    error,
  };
}

describe('planToJUnitXml', () => {
  it('fails blocked and unreachable nodes and passes the others', () => {
    const xml = planToJUnitXml({
      createdAt: '2026-11-28T18:00:00.000Z',
      release: run.release,
      nodes: [planNode('a', 'upgrade'), planNode('b', 'none'), planNode('c', 'blocked', 'downgrade from 1.3.0 refused'), planNode('d', 'unreachable', 'timed out')],
    });
    const { suite, cases } = parse(xml);
    expect(suite['@_name']).toBe('runc-rollout plan v1.2.9');
    expect(suite['@_failures']).toBe('2');
    expect(cases.map((c) => c['@_classname'])).toEqual(Array(4).fill('runc-rollout.plan'));
    expect(cases.map((c) => c.failure?.['@_message'] ?? null)).toEqual([null, null, 'blocked: downgrade from 1.3.0 refused', 'unreachable: timed out']);
    expect(cases[0]!['system-out']).toBe('a (a.example:22): upgrade, runc 1.1.0 -> 1.2.9\nwarning: runc is owned by package runc');
  });
});

// Compile-time: a full run report and a full plan are accepted as they are (checked by tsc).
export const acceptsFullReport = (r: RunReport): string => toJUnitXml(r);
export const acceptsFullPlan = (p: Plan): string => planToJUnitXml(p);
