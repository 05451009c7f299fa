// Markdown for GitHub's job summary (`$GITHUB_STEP_SUMMARY`): a per-node table
// of a plan or a run, readable on the workflow run page without opening the
// logs. Pure: the CLI appends the string to the file the variable names.
import type { NodeOutcome, NodeStatus } from '../apply/types.js';
import type { NodePlan, PlanAction } from '../core/types.js';

export interface SummaryRunInput {
  command?: 'apply' | 'rollback' | 'unstick';
  runId: string;
  release: { repo: string; tag: string; version: string } | null;
  nodes: NodeOutcome[];
  interrupted?: boolean;
}

export interface SummaryPlanInput {
  release: { repo: string; tag: string; version: string };
  nodes: NodePlan[];
}

/** Cells this long are cut (from the front: the end of an error says most) so one node cannot flood the page. */
const MAX_CELL = 300;

/**
 * One table cell: `|` would end the cell and a line break the row, so they are
 * escaped; `<`, `>` and `&` become entities so error text such as
 * `<nil>` or `<init>` is shown, not taken as HTML. Backslashes are escaped so
 * a trailing one cannot swallow the `|` that closes the cell.
 */
export function mdCell(value: string | null | undefined): string {
  if (value === null || value === undefined || value === '') return ' ';
  let text = value.replace(/\r\n?/g, '\n').trim();
  if (text.length > MAX_CELL) text = `…${text.slice(-(MAX_CELL - 1))}`;
  return text
    .replace(/\\/g, '\\\\')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/`/g, '\\`')
    .replace(/\n/g, '<br>');
}

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)];
}

const ver = (v: { version: string | null } | null | undefined) => v?.version ?? '?';

function counts<K extends string>(keys: readonly K[], values: K[], label: (k: K) => string = (k) => k): string {
  const parts = keys.map((k) => [k, values.filter((v) => v === k).length] as const).filter(([, n]) => n > 0);
  return parts.length ? parts.map(([k, n]) => `${n} ${label(k)}`).join(', ') : 'no nodes';
}

const STATUS_ORDER: readonly NodeStatus[] = ['upgraded', 'unchanged', 'rolled-back', 'failed', 'unknown', 'unreachable', 'not-attempted'];
const BAD_STATUS: ReadonlySet<NodeStatus> = new Set(['rolled-back', 'failed', 'unknown', 'unreachable']);

/** Markdown summary of an apply or rollback run. */
export function runStepSummary(report: SummaryRunInput): string {
  const command = report.command ?? 'apply';
  const what = report.release ? `${command} of runc ${report.release.version} (${report.release.repo} ${report.release.tag})` : command;
  const statuses = report.nodes.map((n) => n.status);
  const bad = statuses.some((s) => BAD_STATUS.has(s));
  const lines = [
    `### runc-rollout ${what}: ${bad ? 'FAILED' : report.interrupted ? 'interrupted' : 'ok'}`,
    '',
    `Run \`${report.runId.replace(/`/g, '')}\`: ${counts(STATUS_ORDER, statuses)}${report.interrupted ? ' (interrupted)' : ''}.`,
    '',
    ...table(
      ['Node', 'Status', 'runc', 'Failed step', 'Error'],
      report.nodes.map((n) => [
        n.name,
        BAD_STATUS.has(n.status) ? `**${n.status}**` : n.status,
        n.to ? `${ver(n.from)} → ${ver(n.to)}` : ver(n.from),
        n.failedStep ?? '',
        n.rollback && !n.rollback.ok ? `${n.error ?? ''}\nrollback FAILED: ${n.rollback.error ?? 'no detail'}` : (n.error ?? ''),
      ]),
    ),
    '',
  ];
  return lines.join('\n');
}

const ACTION_ORDER: readonly PlanAction[] = ['upgrade', 'downgrade', 'none', 'blocked', 'unreachable'];
const ACTION_LABEL: Record<PlanAction, string> = { upgrade: 'to upgrade', downgrade: 'to downgrade', none: 'unchanged', blocked: 'blocked', unreachable: 'unreachable' };

function sysctlText(n: NodePlan): string {
  const s = n.sysctl;
  if (!s) return '';
  const now = `${s.live ?? '?'} / ${s.persisted ?? 'default'}`;
  return s.changeLive || s.changePersisted ? `${now} → ${s.target}` : now;
}

/** Markdown summary of a plan. */
export function planStepSummary(plan: SummaryPlanInput): string {
  const actions = plan.nodes.map((n) => n.action);
  const refused = actions.some((a) => a === 'blocked' || a === 'unreachable');
  const lines = [
    `### runc-rollout plan: runc ${plan.release.version} (${plan.release.repo} ${plan.release.tag})${refused ? ': REFUSED' : ''}`,
    '',
    `${counts(ACTION_ORDER, actions, (a) => ACTION_LABEL[a])}.`,
    '',
    ...table(
      ['Node', 'Action', 'runc', 'sysctl live / persisted', 'Error / warnings'],
      plan.nodes.map((n) => [
        n.name,
        n.action === 'blocked' || n.action === 'unreachable' ? `**${n.action}**` : ACTION_LABEL[n.action],
        n.target && n.action !== 'none' ? `${ver(n.current)} → ${n.target.version}` : ver(n.current),
        sysctlText(n),
        [n.error ?? '', ...n.warnings.map((w) => `warning: ${w}`)].filter(Boolean).join('\n'),
      ]),
    ),
    '',
  ];
  return lines.join('\n');
}
