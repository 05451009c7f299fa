// The preview `unstick` shows before it asks anything or ends anything: per
// node the runc it runs now and how many stuck `runc init` it has, then each
// process with what would happen to it. Plain text, like the plan table.
import { formatDuration } from '../core/batching.js';
import { describeStuckProcess, type UnstickPreview } from '../core/stuck.js';

export function renderUnstickPreview(p: UnstickPreview): string {
  const header = ['NODE', 'RUNC (current)', 'STUCK', 'TO END'];
  const rows = p.nodes.map((n) => [n.name, n.refused ? 'REFUSED' : `${n.version ?? '?'} ${n.runcPath ?? ''}`.trim(), String(n.stuck.length), n.refused ? '-' : String(n.toEnd.length)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [`Stuck runc init (blocked writing into a pipe for longer than ${formatDuration(p.stuckAfterSeconds * 1000)}) on ${p.nodes.length} node${p.nodes.length === 1 ? '' : 's'}`, '', line(header), ...rows.map(line)];
  const notes: string[] = [];
  for (const n of p.nodes) {
    if (n.refused) {
      notes.push(`${n.name}: refused: ${n.refused}`);
      continue;
    }
    for (const s of n.stuck) notes.push(`${n.name}: ${n.toEnd.includes(s) ? 'END (SIGKILL)' : 'left alone, runs the current runc'}: ${describeStuckProcess(s)}`);
  }
  if (notes.length) out.push('', ...notes);
  const total = p.nodes.reduce((sum, n) => sum + n.toEnd.length, 0);
  out.push('', total ? `${total} process${total === 1 ? '' : 'es'} to end on ${p.nodes.filter((n) => n.toEnd.length).length} node(s)` : 'nothing to end');
  return `${out.join('\n')}\n`;
}
