// Whether a saved plan still describes the fleet and the release. A plan is
// approved as a whole; if anything it was based on changed, applying it would
// do something nobody reviewed, so every difference is listed and apply refuses.
import type { NodePlan, Plan } from './types.js';

const short = (s: string | null | undefined) => (s ? s.slice(0, 12) : 'none');

function sysctlKey(n: NodePlan): string {
  const s = n.sysctl;
  if (!s) return 'unknown';
  const lines = s.commentOut.map((c) => `${c.path}:${c.lines.join(',')}`).join(' ');
  return `live ${s.live ?? '?'}, persisted ${s.persisted ?? 'default'}${s.persistedFrom ? ` from ${s.persistedFrom}` : ''}${lines ? `, overrides ${lines}` : ''}`;
}

function nodeDrift(saved: NodePlan, fresh: NodePlan): string[] {
  const out: string[] = [];
  const say = (what: string, was: string, now: string) => out.push(`${saved.name}: ${what} was ${was}, now ${now}`);
  if (fresh.action === 'unreachable') return [`${saved.name}: unreachable now (${fresh.error ?? 'no detail'}); its runc cannot be checked`];
  if ((saved.current?.sha256 ?? null) !== (fresh.current?.sha256 ?? null)) {
    say('runc digest', `${short(saved.current?.sha256)} (${saved.current?.version ?? '?'})`, `${short(fresh.current?.sha256)} (${fresh.current?.version ?? '?'})`);
  } else if ((saved.current?.version ?? null) !== (fresh.current?.version ?? null)) {
    say('runc version', saved.current?.version ?? 'none', fresh.current?.version ?? 'none');
  }
  if (saved.runcPath !== fresh.runcPath) say('runc path', saved.runcPath ?? 'none', fresh.runcPath ?? 'none');
  if (saved.arch !== fresh.arch) say('arch', saved.arch ?? 'unknown', fresh.arch ?? 'unknown');
  if (saved.host !== fresh.host || saved.port !== fresh.port) say('address', `${saved.host}:${saved.port}`, `${fresh.host}:${fresh.port}`);
  if (saved.action !== fresh.action && out.length === 0) say('planned action', saved.action, fresh.action);
  if (sysctlKey(saved) !== sysctlKey(fresh)) say('sysctl', sysctlKey(saved), sysctlKey(fresh));
  return out;
}

/**
 * Differences between a saved plan and one made now from fresh facts and the
 * re-verified release, one line each, naming the node (or `release`). Empty
 * when the saved plan may be applied as is.
 */
export function planDrift(saved: Plan, fresh: Plan): string[] {
  const out: string[] = [];
  if (saved.release.repo !== fresh.release.repo || saved.release.tag !== fresh.release.tag) {
    out.push(`release: was ${saved.release.repo} ${saved.release.tag}, now ${fresh.release.repo} ${fresh.release.tag}`);
  }
  for (const [arch, asset] of Object.entries(saved.release.assets)) {
    const now = fresh.release.assets[arch as keyof Plan['release']['assets']];
    if (!asset) continue;
    if (!now) out.push(`release: ${asset.name} is no longer available/verified`);
    else if (now.sha256 !== asset.sha256) out.push(`release: ${asset.name} digest was ${short(asset.sha256)}, now ${short(now.sha256)}`);
  }
  if (saved.release.signatureVerified && !fresh.release.signatureVerified) out.push('release: signatures were verified for the plan, not now');
  const freshByName = new Map(fresh.nodes.map((n) => [n.name, n]));
  const savedNames = new Set(saved.nodes.map((n) => n.name));
  for (const s of saved.nodes) {
    const f = freshByName.get(s.name);
    if (!f) out.push(`${s.name}: in the saved plan but no longer selected in the inventory`);
    else out.push(...nodeDrift(s, f));
  }
  for (const f of fresh.nodes) if (!savedNames.has(f.name)) out.push(`${f.name}: selected now but not in the saved plan`);
  return out;
}
