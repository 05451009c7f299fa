// The human summary after an apply or rollback: for every node, what happened
// and what state it is in now, so nobody has to read the JSON to know whether
// to act. Failures come with their error tail and any manual commands.
import type { RunReport } from '../apply/report.js';
import type { NodeOutcome, StepName } from '../apply/types.js';
import { short } from './apply-view.js';
import { formatDuration } from '../core/batching.js';
import { describeStuck } from '../core/stuck.js';

const BEFORE_SWAP = new Set<StepName | null>(['lock', 'stage', 'staged-smoke', 'backup']);

/** Which policy decided the node's fate, in a few words (empty: its own upgrade did). */
export function policyText(o: NodeOutcome): string {
  switch (o.policy) {
    case 'budget':
      return 'policy: failure budget exceeded (--max-failures)';
    case 'window':
      return 'policy: no rollout window open (--window)';
    case 'unreachable-skip':
      return 'policy: skipped, outside the budget (--on-unreachable skip)';
    case 'rollback-all':
      return o.status === 'rolled-back'
        ? 'policy: rolled back after the budget was exceeded (--on-budget-exceeded rollback-all)'
        : 'policy: --on-budget-exceeded rollback-all could NOT roll it back; see below';
    case 'interrupted':
      return 'policy: run interrupted';
    default:
      return '';
  }
}

function sysctlText(o: NodeOutcome): string {
  const b = o.sysctl.before?.live;
  const a = o.sysctl.after?.live;
  if (a === undefined || a === null) return '';
  return b === a ? `sysctl ${a}` : `sysctl ${b ?? '?'} -> ${a}`;
}

/** Where the node stands now, in words. */
export function nodeState(o: NodeOutcome, command: RunReport['command'] = 'apply'): string {
  const from = `${o.from?.version ?? '?'} (sha256 ${short(o.from?.sha256)})`;
  if (command === 'unstick') {
    const ended = (o.unstuck ?? []).filter((p) => p.outcome === 'ended').length;
    const what = o.unstuck?.length ? `ended ${ended} of ${o.unstuck.length} stuck runc init` : 'nothing to end';
    if (o.status === 'unchanged') return `${what}; runs ${o.from?.version ?? '?'}`;
    if (o.status === 'failed') return `${what}; NEEDS ATTENTION: see below`;
  }
  if (command === 'rollback') {
    if (o.status === 'rolled-back') return `restored: runs ${o.to?.version ?? '?'} (sha256 ${short(o.to?.sha256)})`;
    if (o.status === 'unchanged') return 'nothing to restore';
    if (o.status === 'failed' && o.rollback?.ok) return `restored ${o.to?.version ?? '?'}, BUT its smoke test FAILED`;
  }
  switch (o.status) {
    case 'upgraded':
      return `runs ${o.to?.version ?? '?'} (sha256 ${short(o.to?.sha256)})`;
    case 'unchanged':
      return `runs ${from}, as before`;
    case 'rolled-back':
      if (BEFORE_SWAP.has(o.failedStep)) return `untouched: runs ${from}, staged file cleaned up`;
      return `original restored: runs ${from}` + (o.rollback?.smokeOk === false ? '; BUT the smoke test of the restored binary FAILED' : '');
    case 'failed':
      if (BEFORE_SWAP.has(o.failedStep) && !o.rollback) return `runc not replaced: runs ${from}`;
      if (o.failedStep === 'unlock') return `runs ${o.to?.version ?? '?'} (sha256 ${short(o.to?.sha256)}), verified; BUT state.json or the lock could not be updated: check the node`;
      if (o.failedStep === 'unstick') return `runs ${o.to?.version ?? '?'} (sha256 ${short(o.to?.sha256)}), verified; BUT stuck runc init processes could not all be ended: check the node`;
      if (o.failedStep === 'health-after-unstick') return `runs ${o.to?.version ?? '?'} (sha256 ${short(o.to?.sha256)}), verified, stuck processes ended; BUT its health gate still fails`;
      return 'NEEDS ATTENTION: the node may not have a working runc; see the commands below';
    case 'unknown':
      return 'UNKNOWN: the connection was lost while the node was being changed; check it by hand';
    case 'not-attempted':
      return `untouched: runs ${from}`;
    case 'unreachable':
      return 'untouched (could not connect)';
  }
}

/** What --unstick did (each process it set out to end), and what is still stuck after the change. */
export function stuckLines(o: Pick<NodeOutcome, 'unstuck' | 'stuck'>, stuckAfterSeconds?: number): string[] {
  const out: string[] = [];
  if (o.unstuck?.length) {
    out.push(`unstick: ${o.unstuck.filter((p) => p.outcome === 'ended').length} of ${o.unstuck.length} stuck runc init ended`);
    for (const p of o.unstuck) out.push(`  pid ${p.pid} (age ${formatDuration(p.ageSeconds * 1000)}${p.containerId ? `, container ${p.containerId}` : ''}): ${p.outcome}${p.detail ? ` (${p.detail})` : ''}`);
  }
  if (o.stuck?.length) out.push(`still stuck: ${describeStuck(o.stuck, stuckAfterSeconds)}`);
  return out;
}

export function renderSummary(report: RunReport, reportPath: string | null): string {
  const lines: string[] = [];
  const width = Math.max(4, ...report.nodes.map((n) => n.name.length));
  const counts = Object.entries(report.summary)
    .filter(([k, v]) => k !== 'total' && v > 0)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  const what = report.command !== 'apply' ? report.command : `apply of ${report.release?.repo ?? ''} ${report.release?.tag ?? ''}`.trim();
  lines.push('', `Summary of ${what}, run ${report.runId}: ${counts || 'no nodes'}`);
  for (const o of report.nodes) {
    const step = o.failedStep ? ` at ${o.failedStep}` : '';
    const sysctl = sysctlText(o);
    const policy = policyText(o);
    lines.push(`  ${o.name.padEnd(width)}  ${(o.status + step).padEnd(34)} ${nodeState(o, report.command)}${sysctl ? `; ${sysctl}` : ''}${policy ? ` [${policy}]` : ''}`);
    if (o.backupPath && o.status === 'upgraded') lines.push(`  ${' '.repeat(width)}  backup: ${o.backupPath}`);
    for (const l of stuckLines(o, report.options.stuckAfterSeconds)) lines.push(`  ${' '.repeat(width)}  ${l}`);
    if (o.error && ((o.status !== 'upgraded' && o.status !== 'unchanged') || o.policy === 'rollback-all')) {
      for (const l of o.error.split('\n').slice(-8)) lines.push(`  ${' '.repeat(width)}  | ${l}`);
    }
    if (o.rollback && !o.rollback.ok) {
      lines.push(`  ${' '.repeat(width)}  rollback FAILED: ${o.rollback.error ?? 'no detail'}`);
      if (o.rollback.manualCommands.length) {
        lines.push(`  ${' '.repeat(width)}  to finish by hand on ${o.host}:`);
        for (const c of o.rollback.manualCommands) lines.push(`  ${' '.repeat(width)}    ${c}`);
      }
    }
  }
  if (report.stoppedReason === 'budget-exceeded') {
    const rolled = report.nodes.filter((n) => n.policy === 'rollback-all' && n.status === 'rolled-back');
    const notRolled = report.nodes.filter((n) => n.policy === 'rollback-all' && n.status !== 'rolled-back');
    lines.push(
      `Stopped: more nodes failed than --max-failures ${report.options.maxFailures} allows; the rest were not attempted` +
        (rolled.length ? `; ${rolled.length} node(s) this run upgraded were rolled back (--on-budget-exceeded rollback-all): ${rolled.map((n) => n.name).join(', ')}.` : '.'),
    );
    if (notRolled.length) lines.push(`NOT rolled back despite --on-budget-exceeded rollback-all: ${notRolled.map((n) => `${n.name} (${n.status})`).join(', ')}.`);
  }
  const skipped = report.nodes.filter((n) => n.policy === 'unreachable-skip');
  if (skipped.length) lines.push(`Unreachable, skipped (--on-unreachable skip), not upgraded: ${skipped.map((n) => n.name).join(', ')}.`);
  if (report.stoppedReason === 'window') {
    const left = report.nodes.filter((n) => n.policy === 'window').map((n) => n.name);
    lines.push(`Stopped cleanly: no rollout window open (--window ${(report.options.windows ?? []).join('; ')}); left for the next window: ${left.join(', ')}.`);
    if (reportPath) lines.push(`Continue in the next window with: runc-rollout apply --resume ${reportPath}`);
  }
  if (report.interrupted) lines.push('Interrupted: no new node was started; nodes in progress finished or rolled back.');
  if (reportPath) lines.push(`Report: ${reportPath}`);
  const next =
    report.exitCode === 0
      ? report.stoppedReason === 'window'
        ? ''
        : 'All nodes are in the desired state.'
      : report.command === 'apply'
        ? `Re-running the same apply is safe: finished nodes are left as they are${reportPath ? ` (or: runc-rollout apply --resume ${reportPath})` : ''}.`
        : report.command === 'unstick'
          ? 'Re-running unstick is safe: it ends only stuck processes of another runc that are still there.'
          : '';
  if (next) lines.push(next);
  return `${lines.join('\n')}\n`;
}
