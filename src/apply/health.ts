// Health gates (inventory `health:`), run on the node over the pipeline's own
// SSH session: before the first step, after the swap and after the sysctl
// step. A gate passes when kubelet's healthz answers `ok` (through curl or
// wget, whichever the node has) and every custom command exits 0; a failing
// check is retried until `timeout`; after a pass, `settle` waits and checks
// once more, since PLEG problems show only after a relist period.
import { q } from '../core/shell.js';
import type { HealthSpec } from '../core/types.js';
import type { NodeRun } from './node-run.js';
import { StepFailure } from './node-run.js';
import type { HealthStep } from './types.js';

/** Exit code of the gate script when neither curl nor wget exists on the node. */
export const NO_HTTP_CLIENT_EXIT = 3;

export function buildHealthScript(h: HealthSpec): string {
  const timeoutSec = Math.ceil(h.timeoutMs / 1000);
  const settleSec = Math.ceil(h.settleMs / 1000);
  // Each probe gets a bounded slice, so one hung command cannot eat the whole gate.
  const probeSec = Math.max(1, Math.min(timeoutSec || 10, 30));
  const lines = [
    'set -u',
    `rr_deadline=$(( $(date +%s) + ${timeoutSec} ))`,
    'rr_tool=none',
  ];
  if (h.kubelet) {
    lines.push(
      'if command -v curl >/dev/null 2>&1; then rr_tool=curl',
      'elif command -v wget >/dev/null 2>&1; then rr_tool=wget',
      `else echo "neither curl nor wget is installed on the node: cannot check kubelet's healthz (install one, or remove health.kubelet)" >&2; exit ${NO_HTTP_CLIENT_EXIT}; fi`,
    );
  }
  lines.push('rr_check() {', '  rr_why=');
  if (h.kubelet) {
    const url = q(h.kubeletUrl);
    lines.push(
      '  if [ "$rr_tool" = curl ]; then',
      `    rr_body=$(curl -sS --max-time ${probeSec} ${url} 2>&1) || { rr_why="kubelet healthz ${h.kubeletUrl}: $(printf '%s' "$rr_body" | tail -n 1)"; return 1; }`,
      '  else',
      `    rr_body=$(wget -q -T ${probeSec} -O - ${url} 2>&1) || { rr_why="kubelet healthz ${h.kubeletUrl}: $(printf '%s' "$rr_body" | tail -n 1)"; return 1; }`,
      '  fi',
      `  [ "$rr_body" = ok ] || { rr_why="kubelet healthz ${h.kubeletUrl} answered $(printf '%s' "$rr_body" | head -c 200 | tr '\\n' ' ')"; return 1; }`,
    );
  }
  h.commands.forEach((c, i) => {
    lines.push(
      `  rr_out=$(timeout ${probeSec} sh -c ${q(c)} 2>&1 </dev/null); rr_rc=$?`,
      `  [ "$rr_rc" -eq 0 ] || { rr_why="health command ${i + 1} (${c.replace(/["$`\\]/g, '')}) exited $rr_rc: $(printf '%s' "$rr_out" | tail -n 3 | tr '\\n' ' ')"; return 1; }`,
    );
  });
  lines.push(
    '  return 0',
    '}',
    'rr_n=1',
    'until rr_check; do',
    '  if [ "$(date +%s)" -ge "$rr_deadline" ]; then',
    `    echo "unhealthy: $rr_why (${'$'}rr_n check(s) within ${timeoutSec}s)" >&2; exit 1`,
    '  fi',
    '  rr_n=$((rr_n + 1)); sleep 1',
    'done',
  );
  if (settleSec > 0) {
    lines.push(
      `sleep ${settleSec}`,
      `rr_check || { echo "unhealthy ${settleSec}s after passing (settle): $rr_why" >&2; exit 1; }`,
    );
  }
  lines.push('echo "tool $rr_tool"', 'echo "checks $rr_n"');
  return `${lines.join('\n')}\n`;
}

export function describeHealth(h: HealthSpec): string {
  return [h.kubelet ? `kubelet healthz ${h.kubeletUrl}` : '', h.commands.length ? `${h.commands.length} command${h.commands.length === 1 ? '' : 's'}` : ''].filter(Boolean).join(' and ');
}

/** Runs one gate as step `step`; throws a StepFailure (with the reason) when the node is unhealthy. */
export async function runHealthGate(run: NodeRun, step: HealthStep, h: HealthSpec, signal?: AbortSignal): Promise<string> {
  return run.step(step, async () => {
    const r = await run.exec(step, `health check (${describeHealth(h)})`, buildHealthScript(h), {
      timeoutMs: h.timeoutMs + h.settleMs + 60_000,
      ...(signal ? { signal } : {}),
    });
    const tool = /^tool (\S+)$/m.exec(r.stdout)?.[1];
    const checks = Number(/^checks (\d+)$/m.exec(r.stdout)?.[1] ?? 1);
    const parts = [
      h.kubelet ? `kubelet healthz ok (via ${tool})` : '',
      h.commands.length ? `${h.commands.length} health command${h.commands.length === 1 ? '' : 's'} passed` : '',
      checks > 1 ? `after ${checks} checks` : '',
      h.settleMs > 0 ? `still healthy after settling ${Math.ceil(h.settleMs / 1000)}s` : '',
    ];
    const message = parts.filter(Boolean).join(', ');
    return { value: message, message };
  });
}

/**
 * The gate before the first step. Returns null when the node may go on (healthy,
 * no gate, or unhealthy and --include-unhealthy), or the reason to skip it.
 */
export async function healthBefore(run: NodeRun, h: HealthSpec | undefined, includeUnhealthy: boolean, signal?: AbortSignal): Promise<{ skip: string | null; wasUnhealthy: boolean }> {
  if (!h) return { skip: null, wasUnhealthy: false };
  try {
    await runHealthGate(run, 'health', h, signal);
    return { skip: null, wasUnhealthy: false };
  } catch (err) {
    const f = err as StepFailure;
    if (signal?.aborted) return { skip: 'not attempted: interrupted during the health check', wasUnhealthy: false };
    if (includeUnhealthy && !f.lostConnection) return { skip: null, wasUnhealthy: true };
    return { skip: `skipped: unhealthy before the upgrade, nothing was changed (${f.message.split('\n')[0]}); fix the node or pass --include-unhealthy`, wasUnhealthy: true };
  }
}

/**
 * A gate after a change. A failure throws (the pipeline rolls back), unless
 * the node was already unhealthy before and --include-unhealthy let it in:
 * then going back to the old runc would not make it healthy, so the failure
 * is only reported (the step is recorded as failed, the node carries on).
 */
export async function healthAfter(run: NodeRun, step: Exclude<HealthStep, 'health'>, h: HealthSpec | undefined, wasUnhealthy: boolean): Promise<void> {
  if (!h) return;
  try {
    await runHealthGate(run, step, h);
  } catch (err) {
    if (!wasUnhealthy || (err as StepFailure).lostConnection) throw err instanceof StepFailure ? err : new StepFailure(step, String(err));
  }
}
