// The human view of a plan: one aligned row per node, then per-node reasons and
// warnings, then a summary line. Plain text unless `colour` is set, so CI logs
// and change tickets get exactly what a terminal shows.
import type { NodePlan, Plan } from '../core/types.js';
import { pendingChanges } from '../core/plan.js';

export interface PlanTableOptions {
  colour: boolean;
}

const ACTION_LABEL: Record<NodePlan['action'], string> = {
  upgrade: 'upgrade',
  downgrade: 'downgrade',
  none: 'unchanged',
  blocked: 'BLOCKED',
  unreachable: 'UNREACHABLE',
};
const ACTION_COLOUR: Record<NodePlan['action'], string> = { upgrade: '32', downgrade: '35', none: '2', blocked: '31', unreachable: '31' };

export function shortDigest(sha256: string | null | undefined): string {
  return sha256 ? sha256.slice(0, 8) : '?';
}

function runcCell(n: NodePlan): string {
  const cur = n.current ? `${n.current.version ?? '?'} ${shortDigest(n.current.sha256)}` : '-';
  if (n.action === 'none' || !n.target) return cur;
  return `${cur} -> ${n.target.version} ${shortDigest(n.target.sha256)}`;
}

function sysctlCell(n: NodePlan): string {
  const s = n.sysctl;
  if (!s) return '-';
  const now = `${s.live ?? '?'}/${s.persisted ?? '-'}`;
  return s.changeLive || s.changePersisted ? `${now} -> ${s.target}` : now;
}

/** Stuck `runc init` processes: how many, and how many of another runc than the current one (`3 (1 old)`). */
function stuckCell(n: NodePlan): string {
  const list = n.stuck ?? [];
  if (list.length === 0) return '';
  const old = list.filter((p) => !p.current).length;
  return old ? `${list.length} (${old} old)` : String(list.length);
}

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  const parts = [
    [s.upgrade, 'to upgrade'],
    [s.downgrade, 'to downgrade'],
    [s.unchanged, 'unchanged'],
    [s.blocked, 'blocked'],
    [s.unreachable, 'unreachable'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, label]) => `${n} ${label}`);
  const sysctlOnly = pendingChanges(plan).filter((n) => n.action === 'none').length;
  let line = parts.length ? parts.join(', ') : 'no nodes';
  if (sysctlOnly) line += `; sysctl to fix on ${sysctlOnly} unchanged node${sysctlOnly === 1 ? '' : 's'}`;
  return line;
}

export function renderPlanTable(plan: Plan, opts: PlanTableOptions): string {
  const paint = (code: string, s: string) => (opts.colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const r = plan.release;
  const out: string[] = [];
  out.push(
    `runc ${r.version} from ${r.repo}@${r.tag} (${r.signatureVerified ? 'signature verified' : paint('31', 'SIGNATURE NOT VERIFIED')}), ` +
      `${plan.nodes.length} node${plan.nodes.length === 1 ? '' : 's'}` +
      (plan.limit.length ? ` (limit: ${plan.limit.join(' ')})` : ''),
  );
  out.push('');

  // STUCK only when a node has stuck `runc init` processes: the ordinary table stays within 100 columns.
  const stuck = plan.nodes.some((n) => (n.stuck?.length ?? 0) > 0);
  const header = ['NODE', 'ARCH', 'ACTION', 'RUNC (current -> target)', `SYSCTL (live/boot)`, ...(stuck ? ['STUCK'] : []), 'WARN'];
  const rows = plan.nodes.map((n) => [n.name, n.arch ?? '-', ACTION_LABEL[n.action], runcCell(n), sysctlCell(n), ...(stuck ? [stuckCell(n)] : []), n.warnings.length ? String(n.warnings.length) : '']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[], colourOf?: (i: number) => string | undefined) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        const code = colourOf?.(i);
        return code && c ? paint(code, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  out.push(line(header, () => '1'));
  plan.nodes.forEach((n, idx) => {
    out.push(line(rows[idx]!, (i) => (i === 2 ? ACTION_COLOUR[n.action] : i >= 5 ? '33' : undefined)));
  });

  const notes: string[] = [];
  for (const n of plan.nodes) {
    if (n.error) notes.push(`${n.name}: ${paint('31', `${ACTION_LABEL[n.action].toLowerCase()}: ${n.error}`)}`);
    for (const c of n.sysctl?.commentOut ?? []) notes.push(`${n.name}: sysctl: apply comments out ${c.path} line${c.lines.length === 1 ? '' : 's'} ${c.lines.join(', ')}`);
    for (const w of n.warnings) notes.push(`${n.name}: ${paint('33', w)}`);
  }
  if (notes.length) {
    out.push('');
    out.push(...notes);
  }
  out.push('');
  out.push(summaryLine(plan));
  return `${out.join('\n')}\n`;
}
