// A run id as it appears in node-side file names, container ids and cgroup
// names: those accept fewer characters than a run id may hold.
import { createHash } from 'node:crypto';

export function runToken(runId: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/.test(runId)) return runId;
  const clean = runId.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 32);
  // The hash keeps two odd run ids that clean to the same text apart.
  return `${clean || 'run'}-${createHash('sha256').update(runId).digest('hex').slice(0, 8)}`;
}
