// The plan: a pure function from node facts, the verified release and options
// to what `apply` would do on each node. Nothing here reads a node or a file.
import { advisoriesFor, type AdvisoryTable } from './advisories.js';
import { STUCK_AFTER_SECONDS, stuckWarning } from './stuck.js';
import { planSysctl } from './sysctl.js';
import { STATE_DIR, type NodeFacts, type NodePlan, type NodeSpec, type Plan, type VerifiedRelease } from './types.js';
import { compareRuncVersions } from './version.js';

export interface PlanNodeInput {
  node: NodeSpec;
  facts: NodeFacts | null;
  /** Why facts could not be gathered (connect, host key, sudo, ...): the node is `unreachable`. */
  error: string | null;
}

export interface BuildPlanInput {
  inventoryPath: string;
  limit: string[];
  nodes: PlanNodeInput[];
  release: VerifiedRelease;
  allowDowngrade: boolean;
  toolVersion: string;
  now: Date;
  /** What current versions are checked against (default: the built-in table). */
  advisories?: AdvisoryTable;
  /** --stuck-after the facts were gathered with (default 5 minutes). */
  stuckAfterSeconds?: number;
}

/** Free space below this many times the binary's size is worth a warning (staged copy + backup). */
export const LOW_DISK_FACTOR = 2;

export function buildPlan(input: BuildPlanInput): Plan {
  const stuckAfter = input.stuckAfterSeconds ?? STUCK_AFTER_SECONDS;
  const nodes = input.nodes.map((n) => planNode(n, input.release, input.allowDowngrade, input.advisories, stuckAfter));
  const count = (a: NodePlan['action']) => nodes.filter((n) => n.action === a).length;
  const assets: Plan['release']['assets'] = {};
  for (const a of Object.values(input.release.assets)) {
    if (a) assets[a.arch] = { name: a.name, sha256: a.sha256, size: a.size };
  }
  return {
    schema: 1,
    createdAt: input.now.toISOString(),
    tool: { name: 'runc-rollout', version: input.toolVersion },
    release: {
      repo: input.release.repo,
      tag: input.release.tag,
      version: input.release.version,
      signatureVerified: input.release.signatureVerified,
      assets,
    },
    inventory: input.inventoryPath,
    limit: [...input.limit],
    options: { allowDowngrade: input.allowDowngrade, stuckAfterSeconds: stuckAfter },
    nodes,
    summary: { upgrade: count('upgrade'), downgrade: count('downgrade'), unchanged: count('none'), blocked: count('blocked'), unreachable: count('unreachable') },
  };
}

export function planNode({ node, facts, error }: PlanNodeInput, release: VerifiedRelease, allowDowngrade: boolean, advisories?: AdvisoryTable, stuckAfterSeconds: number = STUCK_AFTER_SECONDS): NodePlan {
  const base: NodePlan = {
    name: node.name,
    host: node.ssh.host,
    port: node.ssh.port,
    arch: facts?.arch ?? null,
    runcPath: facts?.runcPath ?? node.runcPath ?? null,
    action: 'unreachable',
    current: null,
    target: null,
    sysctl: null,
    warnings: [],
    error: null,
    stuck: [],
  };
  if (!facts) return { ...base, error: error ?? 'no facts gathered' };

  const asset = facts.arch ? release.assets[facts.arch] : undefined;
  const plan: NodePlan = {
    ...base,
    current: { version: facts.runc.version, sha256: facts.runc.sha256 },
    target: asset ? { version: release.version, sha256: asset.sha256 } : null,
    sysctl: planSysctl(facts.sysctl),
    warnings: warningsFor(facts, asset?.size ?? null, advisories, stuckAfterSeconds),
    stuck: facts.stuck,
  };
  const blocked = (reason: string): NodePlan => ({ ...plan, action: 'blocked', error: reason });

  if (!facts.arch) return blocked(`unsupported architecture "${facts.machine}" (uname -m)`);
  if (!facts.runcPath) return blocked('no runc found: not set in the inventory, not on PATH, and no containerd BinaryName');
  if (!facts.runcPath.startsWith('/')) return blocked(`runc path "${facts.runcPath}" is not absolute`);
  if (!facts.runc.exists) return blocked(`no runc at ${facts.runcPath} (runc-rollout upgrades an installed runc; it does not install one)`);
  if (!facts.runc.executable) return blocked(`${facts.runcPath} is not executable`);
  if (!asset) return blocked(`release ${release.tag} has no runc.${facts.arch} asset`);
  if (!facts.runc.sha256) return blocked(`cannot compute the SHA-256 of ${facts.runcPath} (is sha256sum installed?)`);

  if (facts.runc.sha256 === asset.sha256) return { ...plan, action: 'none' };

  const current = facts.runc.version;
  let cmp: -1 | 0 | 1 | null = null;
  if (current) {
    try {
      cmp = compareRuncVersions(current, release.version);
    } catch {
      cmp = null;
    }
  }
  if (cmp === null) {
    plan.warnings.push(`current runc version unknown (${facts.runc.versionLine ? `"${facts.runc.versionLine}"` : 'no version output'}): treated as an upgrade`);
    return { ...plan, action: 'upgrade' };
  }
  if (cmp > 0) {
    if (!allowDowngrade) return blocked(`downgrade from ${current} to ${release.version} refused (pass --allow-downgrade to allow it)`);
    return { ...plan, action: 'downgrade' };
  }
  if (cmp === 0) plan.warnings.push(`runs ${current}, the target version, but a different binary (distro or custom build): it will be replaced by the release build`);
  return { ...plan, action: 'upgrade' };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function warningsFor(facts: NodeFacts, binarySize: number | null, table: AdvisoryTable | undefined, stuckAfterSeconds: number): string[] {
  const w: string[] = [];
  const advisories = facts.runc.version ? advisoriesFor(facts.runc.version, table) : [];
  if (advisories.length) {
    // One line: an rc93 node matches nine advisories, and the ids are what people search for.
    w.push(`current ${facts.runc.version} is affected by ${advisories.map((a) => a.id).join(', ')}`);
  }
  if (facts.runc.realPath) {
    w.push(`${facts.runcPath} is a symlink to ${facts.runc.realPath}: apply replaces the link with the new binary and leaves ${facts.runc.realPath} as it is`);
  }
  if (facts.packageOwner) {
    w.push(`${facts.runcPath} belongs to package "${facts.packageOwner}": a package update will overwrite it (hold the package)`);
  }
  if (facts.stuck.length > 0) w.push(stuckWarning(facts.stuck, stuckAfterSeconds));
  if (binarySize !== null) {
    const need = binarySize * LOW_DISK_FACTOR;
    const dir = facts.runcPath ? facts.runcPath.slice(0, facts.runcPath.lastIndexOf('/')) || '/' : null;
    if (dir && facts.freeBytes.runcDir !== null && facts.freeBytes.runcDir < need) {
      w.push(`low disk: ${mib(facts.freeBytes.runcDir)} free in ${dir}, want at least ${mib(need)}`);
    }
    if (facts.freeBytes.stateDir !== null && facts.freeBytes.stateDir < need) {
      w.push(`low disk: ${mib(facts.freeBytes.stateDir)} free for ${STATE_DIR}, want at least ${mib(need)}`);
    }
  }
  const bin = facts.containerdBinaryName;
  if (bin && facts.runcPath && bin !== facts.runcPath) {
    w.push(
      bin.startsWith('/')
        ? `containerd runs ${bin} (BinaryName in /etc/containerd/config.toml), not ${facts.runcPath}: upgrading ${facts.runcPath} does not change what containerd uses`
        : `containerd's BinaryName "${bin}" is not on PATH: cannot tell which runc containerd uses`,
    );
  }
  const s = facts.state;
  if (s && s.phase !== 'done' && s.phase !== 'rolled-back') {
    w.push(`an earlier run (${s.runId}) stopped at "${s.phase}" on ${s.updatedAt}; original binary backed up at ${s.original.backupPath}`);
  }
  for (const n of facts.notes ?? []) w.push(n);
  return w;
}

/** Nodes `apply` would change: a binary swap, or sysctl to bring to the target on a node it will touch. */
export function pendingChanges(plan: Plan): NodePlan[] {
  return plan.nodes.filter(
    (n) =>
      n.action === 'upgrade' ||
      n.action === 'downgrade' ||
      (n.action === 'none' && n.sysctl !== null && (n.sysctl.changeLive || n.sysctl.changePersisted)),
  );
}

/** Nodes the plan refuses: blocked or unreachable. */
export function refusedNodes(plan: Plan): NodePlan[] {
  return plan.nodes.filter((n) => n.action === 'blocked' || n.action === 'unreachable');
}
