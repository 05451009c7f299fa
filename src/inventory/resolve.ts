// From parsed YAML to NodeSpecs: schema check, defaults, path resolution and
// the rules that span fields or nodes. Pure: the caller supplies the
// inventory's folder and the home directory.
import { isAbsolute, normalize, resolve } from 'node:path';
import type { z } from 'zod';
import type { HostKeyPolicy, JumpHost, NodeSpec } from '../core/types.js';
import { formatPath, inventoryErrorMap, unknownKeys, zodIssues } from './issues.js';
import { inventorySchema, nodeSchema, sshSchema, runcSchema, smokeSchema, type RawNode, type RawSsh } from './schema.js';

export const SSH_DEFAULTS = {
  user: 'root',
  port: 22,
  knownHosts: '~/.ssh/known_hosts',
  hostKeyPolicy: 'strict' as HostKeyPolicy,
  sudo: false,
};

export interface ResolveContext {
  /** Folder of the inventory file: relative local paths resolve from here. */
  dir: string;
  home: string;
  /** Command-line SSH settings (--ssh-user, --ssh-port, --identity, --known-hosts); they beat the inventory. */
  overrides?: SshOverrides;
}

export interface SshOverrides {
  user?: string;
  port?: number;
  /** Absolute paths. */
  identityFile?: string;
  knownHosts?: string;
}

export interface ResolveResult {
  nodes: NodeSpec[];
  /** Fatal problems, `path: message`. */
  issues: string[];
  warnings: string[];
}

/** `~` and `~/x` expand to home; other relative paths are taken from the inventory's folder. */
export function resolveLocalPath(p: string, ctx: ResolveContext): string | { error: string } {
  if (p === '~' || p.startsWith('~/')) return normalize(ctx.home + p.slice(1));
  if (p.startsWith('~')) return { error: `${JSON.stringify(p)}: "~user" paths are not supported; write the path out` };
  return isAbsolute(p) ? normalize(p) : resolve(ctx.dir, p);
}

function section<S extends z.ZodType>(schema: S, value: unknown): z.output<S> | undefined {
  const r = schema.safeParse(value, { error: inventoryErrorMap });
  return r.success ? r.data : undefined;
}

function hostKey(host: string, port: number): string {
  return `${host.toLowerCase().replace(/\.$/, '')}:${port}`;
}

export function resolveInventory(raw: unknown, ctx: ResolveContext): ResolveResult {
  const issues: string[] = [];
  const warnings = unknownKeys(raw);
  const whole = inventorySchema.safeParse(raw, { error: inventoryErrorMap });
  if (!whole.success) issues.push(...zodIssues(whole.error));

  // Cross-field rules still run over the parts that did parse, so one run reports everything.
  const top = (raw ?? {}) as Record<string, unknown>;
  const topSsh: RawSsh = section(sshSchema.nullish(), top.ssh) ?? {};
  const topRunc = section(runcSchema.nullish(), top.runc) ?? {};
  const topSmoke = section(smokeSchema.nullish(), top.smoke) ?? {};
  const rawNodes = Array.isArray(top.nodes) ? (top.nodes as unknown[]) : [];

  const nodes: NodeSpec[] = [];
  issues.push(...duplicates(rawNodes, topSsh));
  rawNodes.forEach((value, i) => {
    const node: RawNode | undefined = section(nodeSchema, value);
    if (!node) return;
    const at = (...p: (string | number)[]) => formatPath(['nodes', i, ...p]);

    const ssh = { ...SSH_DEFAULTS, ...strip(topSsh), ...strip(node.ssh ?? {}), ...definedOnly(ctx.overrides ?? {}) };
    const local = (field: 'identityFile' | 'knownHosts', p: string | undefined): string | undefined => {
      if (p === undefined) return undefined;
      const r = resolveLocalPath(p, ctx);
      if (typeof r === 'string') return r;
      const where = node.ssh?.[field] !== undefined ? at('ssh', field) : formatPath(['ssh', field]);
      if (!issues.some((s) => s.startsWith(`${where}:`))) issues.push(`${where}: ${r.error}`);
      return undefined;
    };
    const identityFile = local('identityFile', ssh.identityFile);
    const knownHosts = local('knownHosts', ssh.knownHosts) ?? '';

    let jumpHost: JumpHost | undefined;
    const jump = node.ssh?.jumpHost === null ? undefined : (node.ssh?.jumpHost ?? topSsh.jumpHost ?? undefined);
    if (jump) jumpHost = { host: jump.host, port: jump.port, user: jump.user ?? ssh.user };

    if (ssh.user !== 'root' && !ssh.sudo) {
      warnings.push(`${at('ssh')}: user ${ssh.user} is not root and sudo is false; commands that need root will fail`);
    }

    const spec: NodeSpec = {
      name: node.name,
      ssh: {
        host: node.host,
        port: ssh.port,
        user: ssh.user,
        knownHosts,
        hostKeyPolicy: ssh.hostKeyPolicy,
        sudo: ssh.sudo,
        ...(identityFile ? { identityFile } : {}),
        ...(jumpHost ? { jumpHost } : {}),
      },
      labels: node.labels ?? {},
    };
    if (node.groups?.length) spec.groups = [...node.groups];
    const runcPath = node.runc?.path ?? topRunc.path;
    if (runcPath) spec.runcPath = runcPath;
    const smoke = node.smoke?.command ?? topSmoke.command;
    if (smoke) spec.smokeCommand = smoke;
    nodes.push(spec);
  });

  return { nodes, issues: byNodeOrder(issues), warnings };
}

/** Top-level problems first, then node by node, each in the order found. */
function byNodeOrder(issues: string[]): string[] {
  const index = (s: string) => Number(/^nodes\[(\d+)\]/.exec(s)?.[1] ?? -1);
  return issues.map((s, i) => ({ s, i, n: index(s) })).sort((a, b) => a.n - b.n || a.i - b.i).map((x) => x.s);
}

/**
 * Unique names and host:port pairs, checked on the raw values so a duplicate
 * is reported even when the node has other problems too.
 */
function duplicates(rawNodes: unknown[], topSsh: RawSsh): string[] {
  const issues: string[] = [];
  const byName = new Map<string, number>();
  const byHost = new Map<string, number>();
  rawNodes.forEach((value, i) => {
    if (typeof value !== 'object' || value === null) return;
    const { name, host, ssh } = value as { name?: unknown; host?: unknown; ssh?: { port?: unknown } | null };
    if (typeof name === 'string') {
      const first = byName.get(name);
      if (first !== undefined) issues.push(`nodes[${i}].name: duplicate name ${JSON.stringify(name)} (also nodes[${first}])`);
      else byName.set(name, i);
    }
    if (typeof host === 'string') {
      const nodePort = ssh?.port;
      const port = typeof nodePort === 'number' ? nodePort : (topSsh.port ?? SSH_DEFAULTS.port);
      const key = hostKey(host, port);
      const first = byHost.get(key);
      if (first !== undefined) issues.push(`nodes[${i}].host: ${host} port ${port} is already used by nodes[${first}]`);
      else byHost.set(key, i);
    }
  });
  return issues;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Drop undefined (and the jumpHost, handled separately) so spreading keeps defaults. */
function strip(ssh: RawSsh): Partial<Omit<RawSsh, 'jumpHost'>> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ssh)) if (v !== undefined && k !== 'jumpHost') out[k] = v;
  return out as Partial<Omit<RawSsh, 'jumpHost'>>;
}
