// `apply --resume RUN_REPORT`: continue an earlier apply. Its node list and
// release come from the report; nodes it finished (upgraded or unchanged) are
// left out; everything else is planned afresh and retried. A release that is
// not byte-for-byte the one the report installed is refused: a fleet must
// never end up half on one build and half on another under the same name.
import type { RunReport } from '../apply/report.js';
import type { VerifiedRelease } from '../core/types.js';
import { ExitCode, InputError, RolloutError } from '../errors.js';

/** Statuses a resumed run does not touch again. */
export const FINISHED_STATUSES = ['upgraded', 'unchanged'] as const;

export interface ResumeSource {
  path: string;
  report: RunReport;
}

export interface ResumeSelection {
  runId: string;
  path: string;
  inventory: string | null;
  repo: string;
  tag: string;
  allowDowngrade: boolean;
  /** Nodes to plan and retry, in the earlier run's order. */
  remaining: string[];
  /** Nodes the earlier run finished: left alone. */
  finished: string[];
}

const bareTag = (t: string) => t.trim().replace(/^v/, '');

/** What to resume; refuses a report that is not an apply's, or flags that contradict it. */
export function resumeSelection(src: ResumeSource, given: { version?: string; repo?: string }): ResumeSelection {
  const r = src.report;
  if (r.command !== 'apply' || !r.release) throw new InputError(`--resume ${src.path}: a report of \`${r.command}\`, not of apply; nothing to resume`);
  const release = r.release;
  if (given.version !== undefined && bareTag(given.version) !== bareTag(release.tag)) {
    throw new RolloutError(`--resume ${src.path}: that run installed ${release.repo} ${release.tag}, not --version ${given.version}; nothing was changed`, { exitCode: ExitCode.refused });
  }
  if (given.repo !== undefined && given.repo !== release.repo) {
    throw new RolloutError(`--resume ${src.path}: that run installed from ${release.repo}, not --repo ${given.repo}; nothing was changed`, { exitCode: ExitCode.refused });
  }
  const finished = r.nodes.filter((n) => (FINISHED_STATUSES as readonly string[]).includes(n.status)).map((n) => n.name);
  const remaining = r.nodes.filter((n) => !finished.includes(n.name)).map((n) => n.name);
  return { runId: r.runId, path: src.path, inventory: r.inventory, repo: release.repo, tag: release.tag, allowDowngrade: r.options.allowDowngrade, remaining, finished };
}

/** Refuses (exit 3) when the freshly verified release differs from the one the report installed. */
export function checkResumeRelease(src: ResumeSource, release: VerifiedRelease): void {
  const was = src.report.release;
  if (!was) return;
  const problems: string[] = [];
  if (was.repo !== release.repo || was.tag !== release.tag) problems.push(`release: was ${was.repo} ${was.tag}, now ${release.repo} ${release.tag}`);
  for (const [arch, asset] of Object.entries(release.assets)) {
    const before = was.assets[arch as keyof typeof was.assets];
    if (before && asset && before.sha256 !== asset.sha256) problems.push(`${asset.name}: sha256 was ${before.sha256}, now ${asset.sha256}`);
  }
  if (problems.length > 0) {
    throw new RolloutError(`--resume ${src.path}: the release differs from the one run ${src.report.runId} installed; nothing was changed`, {
      exitCode: ExitCode.refused,
      details: problems,
    });
  }
}
