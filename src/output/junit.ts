// JUnit XML for `--report-junit FILE`: one test case per node, so CI systems
// (GitLab test reports, GitHub test-report actions, Jenkins) show failed nodes
// natively. Pure: the CLI writes the string.
import type { NodeOutcome, NodeStatus } from '../apply/types.js';
import type { NodePlan, PlanAction } from '../core/types.js';
import { stuckLines } from './run-summary.js';

/** The parts of a run report (src/apply/report.ts) this needs; a full RunReport fits. */
export interface JUnitRunInput {
  command?: 'apply' | 'rollback' | 'unstick';
  runId: string;
  release: { repo: string; tag: string; version: string } | null;
  startedAt?: string;
  nodes: NodeOutcome[];
}

/** The parts of a plan this needs; a full Plan fits. */
export interface JUnitPlanInput {
  createdAt: string;
  release: { repo: string; tag: string; version: string };
  nodes: NodePlan[];
}

const FAILED: ReadonlySet<NodeStatus> = new Set(['failed', 'rolled-back', 'unknown', 'unreachable']);
const PLAN_FAILED: ReadonlySet<PlanAction> = new Set(['blocked', 'unreachable']);

/**
 * Characters XML 1.0 cannot carry at all (not even as `&#..;`): C0 controls
 * other than tab/LF/CR, U+FFFE/U+FFFF and lone surrogates. Remote stderr can
 * hold any of them (ANSI colour escapes are common), so they are written as
 * visible `\xHH` / `\uHHHH` text instead of making the file unparseable.
 */
// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDFFF]/gu;

function visible(ch: string): string {
  const code = ch.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Escape for element text. CR is kept as a character reference so parsers do not fold it into LF. */
export function xmlText(value: string): string {
  return value
    .replace(INVALID_XML, visible)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r/g, '&#13;');
}

/** Escape for a double-quoted attribute; tab and line breaks as references, since attribute normalisation would turn them into spaces. */
export function xmlAttr(value: string): string {
  return xmlText(value).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

function attrs(pairs: Record<string, string | number | undefined>): string {
  return Object.entries(pairs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`)
    .join('');
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

interface Case {
  name: string;
  classname: string;
  timeMs: number;
  failure?: { message: string; type: string; text: string };
  skipped?: string;
  out: string;
}

function render(suite: { name: string; timestamp?: string; id: string }, cases: Case[]): string {
  const failures = cases.filter((c) => c.failure).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const time = seconds(cases.reduce((sum, c) => sum + c.timeMs, 0));
  const counts = { tests: cases.length, failures, errors: 0, skipped, time };
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites${attrs({ name: 'runc-rollout', ...counts })}>`];
  lines.push(`  <testsuite${attrs({ name: suite.name, id: suite.id, timestamp: suite.timestamp, ...counts })}>`);
  for (const c of cases) {
    lines.push(`    <testcase${attrs({ classname: c.classname, name: c.name, time: seconds(c.timeMs) })}>`);
    if (c.failure) {
      lines.push(`      <failure${attrs({ message: c.failure.message, type: c.failure.type })}>${xmlText(c.failure.text)}</failure>`);
    }
    if (c.skipped !== undefined) lines.push(`      <skipped${attrs({ message: c.skipped })}/>`);
    if (c.out) lines.push(`      <system-out>${xmlText(c.out)}</system-out>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

/** First line, shortened: CI systems show `message` in one-line lists. */
function headline(text: string): string {
  const first = (text.split(/\r\n|\r|\n/).find((l) => l.trim() !== '') ?? '').trimEnd();
  return first.length > 200 ? `${first.slice(0, 197)}...` : first;
}

const ver = (v: { version: string | null } | null) => v?.version ?? '?';

function outcomeCase(o: NodeOutcome, classname: string): Case {
  const steps = o.steps.map((s) => `${s.name}: ${s.status} (${s.durationMs} ms)${s.message ? ` ${s.message}` : ''}`);
  const out = [`${o.name} (${o.host}): ${o.status}, runc ${ver(o.from)} -> ${ver(o.to)}`, ...steps, ...stuckLines(o)].join('\n');
  const c: Case = { name: o.name, classname, timeMs: o.steps.reduce((sum, s) => sum + s.durationMs, 0), out };
  const what = `${o.status}${o.failedStep ? ` at step ${o.failedStep}` : ''}`;
  if (FAILED.has(o.status)) {
    const text = [what, ...(o.error ? ['', o.error] : [])];
    if (o.rollback) {
      text.push('', `rollback: ${o.rollback.ok ? 'ok' : 'FAILED'}${o.rollback.error ? `: ${o.rollback.error}` : ''}`);
      if (o.rollback.manualCommands.length) text.push(`to finish by hand on ${o.host}:`, ...o.rollback.manualCommands.map((m) => `  ${m}`));
    }
    c.failure = { message: `${what}${o.error ? `: ${headline(o.error)}` : ''}`, type: o.status, text: text.join('\n') };
  } else if (o.status === 'not-attempted') {
    c.skipped = `not attempted${o.error ? `: ${headline(o.error)}` : ''}`;
  }
  return c;
}

/** JUnit XML of an apply or rollback run: a test suite for the run, a test case per node. */
export function toJUnitXml(report: JUnitRunInput): string {
  const command = report.command ?? 'apply';
  const what = report.release ? `${command} ${report.release.tag}` : command;
  const cases = report.nodes.map((o) => outcomeCase(o, `runc-rollout.${command}`));
  return render({ name: `runc-rollout ${what} (run ${report.runId})`, id: report.runId, timestamp: report.startedAt }, cases);
}

/** JUnit XML of a plan: a test case per node, failing when the node is blocked or unreachable. */
export function planToJUnitXml(plan: JUnitPlanInput): string {
  const cases = plan.nodes.map((n): Case => {
    const target = n.target ? ` -> ${n.target.version}` : '';
    const out = [`${n.name} (${n.host}:${n.port}): ${n.action}, runc ${ver(n.current)}${target}`, ...n.warnings.map((w) => `warning: ${w}`)].join('\n');
    const c: Case = { name: n.name, classname: 'runc-rollout.plan', timeMs: 0, out };
    if (PLAN_FAILED.has(n.action)) {
      const error = n.error ?? 'no detail';
      c.failure = { message: `${n.action}: ${headline(error)}`, type: n.action, text: `${n.action}\n\n${error}` };
    }
    return c;
  });
  return render({ name: `runc-rollout plan ${plan.release.tag}`, id: `plan-${plan.createdAt}`, timestamp: plan.createdAt }, cases);
}
