// From parsed YAML to NodeSpecs: schema check, defaults, path resolution and
// the rules that span fields or nodes. Pure: the caller supplies the
// inventory's folder and the home directory.
import { isAbsolute, normalize, resolve } from 'node:path';
import type { z } from 'zod';
import { parseDuration } from '../core/batching.js';
import type { HealthSpec, HostKeyPolicy, JumpHost, NodeSpec } from '../core/types.js';
import type { SshTarget } from '../core/types.js';
import { hostSettings, jumpHostFrom, resolveJumpChain, type HostSettings, type SshConfigFile } from '../ssh/ssh-config.js';
import { formatPath, inventoryErrorMap, unknownKeys, zodIssues } from './issues.js';
import { hostProblem, userField } from './schema.js';
import { healthSchema, inventorySchema, nodeSchema, sshSchema, runcSchema, smokeSchema, type RawNode, type RawSsh } from './schema.js';

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
  /** A parsed ssh_config: the inventory (and overrides) beat it, it beats the defaults. */
  sshConfig?: SshConfigFile;
  /** Local user name for `%u` in ssh_config paths. */
  localUser?: string;
}

/** Where each SSH setting of a node came from: `inventory`, `command line`, `ssh_config FILE`, `default`. */
export type SshSources = Record<string, string>;

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
  /** Per node name: which source gave each SSH setting (for --verbose); only when an ssh_config was read. */
  sshSources?: Record<string, SshSources>;
  /** `kubernetes` for inventories written by `inventory from-kubectl`. */
  source?: 'kubernetes';
}

export const HEALTH_DEFAULTS = { kubeletUrl: 'http://127.0.0.1:10248/healthz', timeoutMs: 60_000, settleMs: 0 };

type RawHealth = NonNullable<ReturnType<typeof healthSchema.parse>>;

/** Node `health:` fields over the top-level ones; undefined when neither asks for a check. */
export function resolveHealth(top: RawHealth | undefined, node: RawHealth | undefined): HealthSpec | undefined {
  const h = { ...definedOnly(top ?? {}), ...definedOnly(node ?? {}) };
  const commands = h.commands ?? [];
  if (!h.kubelet && commands.length === 0) return undefined;
  const ms = (v: string | number | undefined, dflt: number) => (v === undefined ? dflt : typeof v === 'number' ? Math.round(v * 1000) : parseDuration(v));
  return {
    kubelet: Boolean(h.kubelet),
    kubeletUrl: h.kubeletUrl ?? HEALTH_DEFAULTS.kubeletUrl,
    timeoutMs: ms(h.timeout, HEALTH_DEFAULTS.timeoutMs),
    settleMs: ms(h.settle, HEALTH_DEFAULTS.settleMs),
    commands,
  };
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
  const topHealth = section(healthSchema.nullish(), top.health) ?? undefined;
  const rawNodes = Array.isArray(top.nodes) ? (top.nodes as unknown[]) : [];

  const nodes: NodeSpec[] = [];
  const sshSources: Record<string, SshSources> = {};
  const configWarnings = new Set<string>(ctx.sshConfig?.warnings ?? []);
  issues.push(...duplicates(rawNodes, topSsh));
  rawNodes.forEach((value, i) => {
    const node: RawNode | undefined = section(nodeSchema, value);
    if (!node) return;
    const at = (...p: (string | number)[]) => formatPath(['nodes', i, ...p]);

    if (node.ssh?.config !== undefined) issues.push(`${at('ssh', 'config')}: ssh.config is only allowed at the top level (one ssh_config for the inventory)`);
    // Which layer set a field: command line, then the node, then the top-level ssh section.
    const layer = (field: keyof SshOverrides | 'hostKeyPolicy'): string | undefined =>
      field in definedOnly(ctx.overrides ?? {}) ? 'command line' : node.ssh?.[field] !== undefined ? 'inventory (node)' : topSsh[field] !== undefined ? 'inventory' : undefined;
    const cfgFile = ctx.sshConfig;
    const cfg: HostSettings | undefined = cfgFile
      ? hostSettings(cfgFile, node.host, { home: ctx.home, ...(ctx.localUser ? { localUser: ctx.localUser } : {}) }, { user: SSH_DEFAULTS.user, port: SSH_DEFAULTS.port })
      : undefined;
    for (const w of cfg?.warnings ?? []) configWarnings.add(w);
    const fromCfg = cfgFile ? `ssh_config ${cfgFile.path}` : '';
    const sources: SshSources = {};
    const ssh = {
      ...SSH_DEFAULTS,
      ...definedOnly({ user: cfg?.user, port: cfg?.port, hostKeyPolicy: cfg?.hostKeyPolicy }),
      ...strip(topSsh),
      ...strip(node.ssh ?? {}),
      ...definedOnly(ctx.overrides ?? {}),
    };
    for (const f of ['user', 'port', 'hostKeyPolicy'] as const) sources[f] = layer(f) ?? (cfg?.[f] !== undefined ? fromCfg : 'default');
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
    const extra: Partial<SshTarget> = {};
    // Inventory (or command-line) files replace the config's lists; otherwise the config's lists stand.
    const idLayer = layer('identityFile');
    if (idLayer) sources.identityFile = idLayer;
    else if (cfg?.identityFiles?.length) {
      extra.identityFiles = cfg.identityFiles;
      sources.identityFile = fromCfg;
    }
    const khLayer = layer('knownHosts');
    sources.knownHosts = khLayer ?? (cfg?.knownHostsFiles?.length ? fromCfg : 'default');
    if (!khLayer && cfg?.knownHostsFiles?.length) extra.knownHostsFiles = cfg.knownHostsFiles;
    if (cfg?.hostName !== undefined) sources.host = `${fromCfg} (HostName ${cfg.hostName} for ${node.host})`;
    for (const [field, value] of [
      ['identitiesOnly', cfg?.identitiesOnly],
      ['agentSocket', cfg?.identityAgent],
      ['connectTimeoutMs', cfg?.connectTimeoutMs],
      ['keepaliveIntervalMs', cfg?.keepaliveIntervalMs],
      ['keepaliveCountMax', cfg?.keepaliveCountMax],
    ] as const) {
      if (value === undefined) continue;
      (extra as Record<string, unknown>)[field] = value;
      sources[field] = fromCfg;
    }

    let jumpHost: JumpHost | undefined;
    const jump = node.ssh?.jumpHost === null ? undefined : (node.ssh?.jumpHost ?? topSsh.jumpHost ?? undefined);
    const hopDefaults = { user: ssh.user, port: SSH_DEFAULTS.port };
    if (jump) {
      // The inventory's jump host, with its own ssh_config settings (the inventory's user and port beat them).
      const own = cfgFile ? hostSettings(cfgFile, jump.host, { home: ctx.home }, hopDefaults) : undefined;
      jumpHost = own
        ? jumpHostFrom({ host: jump.host, port: jump.port, ...(jump.user ? { user: jump.user } : {}) }, own, hopDefaults)
        : { host: jump.host, port: jump.port, user: jump.user ?? ssh.user };
      sources.jumpHost = node.ssh?.jumpHost ? 'inventory (node)' : 'inventory';
    } else if (node.ssh?.jumpHost !== null && cfg?.proxyJump !== undefined && cfgFile) {
      const chain = resolveJumpChain(cfgFile, cfg.proxyJump, { home: ctx.home }, hopDefaults);
      if ('error' in chain) issues.push(`${at('host')}: ${fromCfg}: ${chain.error}`);
      else {
        for (const w of chain.warnings) configWarnings.add(w);
        for (const hop of chain.hops) {
          const problem = hostProblem(hop.host) ?? (userField.safeParse(hop.user).success ? null : `${JSON.stringify(hop.user)} is not a valid user name`);
          if (problem) issues.push(`${at('host')}: ${fromCfg}: ProxyJump hop ${hop.host}: ${problem}`);
        }
        if (chain.hops.length === 1) jumpHost = chain.hops[0];
        else if (chain.hops.length > 1) extra.jumpHosts = chain.hops;
        if (chain.hops.length) sources.jumpHost = `${fromCfg} (ProxyJump ${cfg.proxyJump})`;
      }
    }

    if (ssh.user !== 'root' && !ssh.sudo) {
      warnings.push(`${at('ssh')}: user ${ssh.user} is not root and sudo is false; commands that need root will fail`);
    }

    const spec: NodeSpec = {
      name: node.name,
      ssh: {
        host: cfg?.hostName ?? node.host,
        port: ssh.port,
        user: ssh.user,
        knownHosts: extra.knownHostsFiles?.[0] ?? knownHosts,
        hostKeyPolicy: ssh.hostKeyPolicy,
        sudo: ssh.sudo,
        ...(identityFile ? { identityFile } : extra.identityFiles?.[0] ? { identityFile: extra.identityFiles[0] } : {}),
        ...(jumpHost ? { jumpHost } : {}),
        ...extra,
      },
      labels: node.labels ?? {},
    };
    if (node.groups?.length) spec.groups = [...node.groups];
    const runcPath = node.runc?.path ?? topRunc.path;
    if (runcPath) spec.runcPath = runcPath;
    const smoke = node.smoke?.command ?? topSmoke.command;
    if (smoke) spec.smokeCommand = smoke;
    const health = resolveHealth(topHealth, node.health ?? undefined);
    if (health) spec.health = health;
    if (cfgFile) sshSources[node.name] = sources;
    nodes.push(spec);
  });

  const result: ResolveResult = { nodes, issues: byNodeOrder(issues), warnings: [...warnings, ...configWarnings] };
  if (ctx.sshConfig) result.sshSources = sshSources;
  if (top.source === 'kubernetes') result.source = 'kubernetes';
  return result;
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

/** Drop undefined (and the jumpHost, handled separately, and config, read by the loader) so spreading keeps defaults. */
function strip(ssh: RawSsh): Partial<Omit<RawSsh, 'jumpHost' | 'config'>> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ssh)) if (v !== undefined && k !== 'jumpHost' && k !== 'config') out[k] = v;
  return out as Partial<Omit<RawSsh, 'jumpHost' | 'config'>>;
}
