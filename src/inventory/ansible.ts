// Ansible inventories (INI or YAML) as runc-rollout inventories: the groups and
// variables are resolved the way Ansible resolves them, then each host becomes
// a raw native node ({ name, host, ssh, runc, smoke, groups }) so the native
// schema (schema.ts / resolve.ts) validates the result like any inventory. Pure.
import { extname } from 'node:path';
import YAML from 'yaml';
import { InputError } from '../errors.js';
import { parseAnsibleIni } from './ansible-ini.js';
import type { AnsibleModel, Vars } from './ansible-model.js';
import { mapHost, type RawAnsibleNode } from './ansible-vars.js';
import { ANSIBLE_TAGS, VAULT_MARK, parseAnsibleYaml } from './ansible-yaml.js';

export type InventoryFormat = 'native' | 'ansible-ini' | 'ansible-yaml';
export type { RawAnsibleNode } from './ansible-vars.js';

export interface AnsibleOptions {
  /**
   * The user from `--ssh-user`, which overrides `ansible_user`. Given here
   * because `ansible_become` turns into `sudo` only for a user that is not root.
   */
  sshUser?: string;
}

export interface AnsibleConversion {
  /** The same shape as a native YAML inventory, for resolveInventory(). */
  raw: { nodes: RawAnsibleNode[] };
  /** `file:line` where each node (same index) was first listed, to point native issues at the source line. */
  origins: string[];
  warnings: string[];
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const SECTION_LINE = /^\s*\[[^\]\s]+\]\s*(?:[#;].*)?$/m;

/**
 * Which format `text` is in, by content: a mapping with a top-level `nodes:` is
 * native; a mapping with `all:`, `plugin:` or groups holding hosts/children/vars
 * is Ansible YAML; text that is no YAML mapping but has `[group]` lines (or is not
 * named .yaml/.yml/.json) is Ansible INI. Scripts and vault-encrypted files are refused.
 */
export function detectInventoryFormat(path: string, text: string): InventoryFormat {
  if (text.startsWith('#!')) {
    throw new InputError(`inventory ${path}: is a script (dynamic inventory), which runc-rollout does not run; export a static inventory with \`ansible-inventory -i ${path} --list --yaml > hosts.yml\``);
  }
  if (text.trimStart().startsWith(VAULT_MARK)) {
    throw new InputError(`inventory ${path}: is encrypted with ansible-vault; decrypt it first (ansible-vault decrypt --output hosts.plain ${path})`);
  }
  let data: unknown;
  try {
    data = YAML.parse(text, { customTags: ANSIBLE_TAGS, logLevel: 'silent', uniqueKeys: false, maxAliasCount: 100 });
  } catch {
    data = undefined;
  }
  if (isMapping(data)) {
    if ('nodes' in data && !('all' in data)) return 'native';
    const groupLike = (v: unknown) => v === null || (isMapping(v) && ['hosts', 'children', 'vars'].some((k) => k in v));
    if ('all' in data || 'plugin' in data || Object.values(data).some((v) => isMapping(v) && groupLike(v))) return 'ansible-yaml';
    return 'native';
  }
  if (SECTION_LINE.test(text)) return 'ansible-ini';
  return ['.yaml', '.yml', '.json'].includes(extname(path).toLowerCase()) || text.trim() === '' ? 'native' : 'ansible-ini';
}

/** Parse an Ansible inventory and map it to the native raw shape. Throws one InputError with every problem. */
export function parseAnsibleInventory(text: string, path: string, format: 'ansible-ini' | 'ansible-yaml', opts: AnsibleOptions = {}): AnsibleConversion {
  const model = format === 'ansible-ini' ? parseAnsibleIni(text, path) : parseAnsibleYaml(text, path);
  return ansibleToNative(model, opts);
}

/** Groups in Ansible's merge order for a host: by depth from `all`, then ansible_group_priority, then name. */
function groupOrder(model: AnsibleModel): { depth: Map<string, number>; parents: Map<string, Set<string>>; cycle: string | null } {
  const parents = new Map<string, Set<string>>();
  for (const g of model.groups.values()) {
    for (const c of g.children) {
      if (!parents.has(c)) parents.set(c, new Set());
      parents.get(c)!.add(g.name);
    }
  }
  // Groups nobody lists as a child are children of `all`.
  for (const name of model.groups.keys()) {
    if (name !== 'all' && !parents.get(name)?.size) parents.set(name, new Set(['all']));
  }
  const depth = new Map<string, number>([['all', 0]]);
  let cycle: string | null = null;
  const visiting = new Set<string>();
  const depthOf = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    if (visiting.has(name)) {
      cycle ??= name;
      return 0;
    }
    visiting.add(name);
    const d = 1 + Math.max(...[...(parents.get(name) ?? ['all'])].map(depthOf));
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  for (const name of model.groups.keys()) depthOf(name);
  return { depth, parents, cycle };
}

function tally(into: Map<string, string[]>, items: { where: string; message: string }[], host: string): void {
  for (const { where, message } of items) {
    const key = `${where}\u0000${message}`;
    into.set(key, [...(into.get(key) ?? []), host]);
  }
}

/** `file:line: host a: message`, or `hosts a, b, c and 7 more: message` when a group variable hits many hosts. */
function collapse(tallied: Map<string, string[]>): string[] {
  return [...tallied].map(([key, hosts]) => {
    const [where, message] = key.split('\u0000');
    const who = hosts.length === 1 ? `host ${hosts[0]}` : `hosts ${hosts.slice(0, 3).join(', ')}${hosts.length > 3 ? ` and ${hosts.length - 3} more` : ''}`;
    return `${where}: ${who}: ${message}`;
  });
}

export function ansibleToNative(model: AnsibleModel, opts: AnsibleOptions = {}): AnsibleConversion {
  const errors = [...model.errors];
  const warnings = [...model.warnings];
  const { depth, parents, cycle } = groupOrder(model);
  if (cycle) errors.push(`${model.groups.get(cycle)?.where ?? model.file}: group "${cycle}" is its own ancestor (a cycle in children)`);
  if (model.hosts.size === 0 && errors.length === 0) errors.push(`${model.file}: the inventory lists no hosts`);

  const direct = new Map<string, string[]>();
  for (const g of model.groups.values()) for (const h of g.hosts) direct.set(h, [...(direct.get(h) ?? []), g.name]);
  const priority = (name: string) => {
    const p = model.groups.get(name)?.vars.ansible_group_priority?.value;
    const n = Number(p);
    return p === undefined || p === null || Number.isNaN(n) ? 1 : n;
  };

  const nodes: RawAnsibleNode[] = [];
  const origins: string[] = [];
  // Message -> hosts it applies to, in order: a group variable is reported once, not once per host.
  const hostErrors = new Map<string, string[]>();
  const hostWarnings = new Map<string, string[]>();
  let becomeWithoutUser = 0;
  for (const host of model.hosts.values()) {
    // A host in no group but `all` is in `ungrouped`, and only then, as in Ansible.
    const own = (direct.get(host.name) ?? []).filter((g) => g !== 'all' && g !== 'ungrouped');
    const start = own.length ? own : ['ungrouped'];
    const groups = new Set<string>();
    const climb = (g: string) => {
      if (groups.has(g) || g === 'all') return;
      groups.add(g);
      for (const p of parents.get(g) ?? []) climb(p);
    };
    start.forEach(climb);
    const ordered = ['all', ...[...groups].sort((a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0) || priority(a) - priority(b) || (a < b ? -1 : a > b ? 1 : 0))];
    const vars: Vars = {};
    for (const g of ordered) Object.assign(vars, model.groups.get(g)?.vars);
    Object.assign(vars, host.vars);

    const mapped = mapHost(host.name, vars, host.where, opts.sshUser);
    tally(hostErrors, mapped.errors, host.name);
    tally(hostWarnings, mapped.warnings, host.name);
    if (mapped.becomeWithoutUser) becomeWithoutUser += 1;
    nodes.push({ ...mapped.node, groups: [...groups].sort() });
    origins.push(host.where);
  }
  errors.push(...collapse(hostErrors));
  warnings.push(...collapse(hostWarnings));
  if (becomeWithoutUser > 0) {
    warnings.push(`${model.file}: ${becomeWithoutUser} host${becomeWithoutUser === 1 ? ' has' : 's have'} ansible_become but no ansible_user: they are reached as root (the runc-rollout default) without sudo; set ansible_user or --ssh-user to connect as another user with sudo`);
  }
  if (errors.length) {
    throw new InputError(`inventory ${model.file}: ${errors.length} problem${errors.length === 1 ? '' : 's'} in the Ansible inventory: ${errors[0]}${errors.length > 1 ? ' ...' : ''}`, errors);
  }
  return { raw: { nodes }, origins, warnings };
}

/**
 * Point the native validation's `nodes[3].host: message` lines (issues or
 * warnings from resolveInventory) at the Ansible file line the node came from:
 * `nodes[3].host (hosts.ini:12): message`.
 */
export function withOrigins(lines: string[], origins: string[]): string[] {
  return lines.map((line) =>
    line.replace(/^(nodes\[(\d+)\][^:\s]*):/, (whole, path: string, index: string) => {
      const origin = origins[Number(index)];
      return origin ? `${path} (${origin}):` : whole;
    }),
  );
}
