// What an Ansible inventory says, before any runc-rollout meaning is given to
// it: groups (hosts, children, vars) and hosts (vars), each value remembering
// the file line it came from so every message can point at it. Filled by
// ansible-ini.ts and ansible-yaml.ts, read by ansible.ts. Pure.

/** A value and where it was written, `hosts.ini:12`. */
export interface Located<T = unknown> {
  value: T;
  where: string;
}

export type Vars = Record<string, Located>;

export interface AnsibleGroup {
  name: string;
  /** Hosts listed directly in the group, in file order. */
  hosts: string[];
  children: string[];
  vars: Vars;
  /** Where the group was declared (first seen), for messages. */
  where: string;
}

export interface AnsibleHost {
  name: string;
  vars: Vars;
  /** Where the host was first listed. */
  where: string;
}

export interface AnsibleModel {
  file: string;
  groups: Map<string, AnsibleGroup>;
  /** In the order first listed, which becomes the node order. */
  hosts: Map<string, AnsibleHost>;
  errors: string[];
  warnings: string[];
}

export function newModel(file: string): AnsibleModel {
  const model: AnsibleModel = { file, groups: new Map(), hosts: new Map(), errors: [], warnings: [] };
  // Every Ansible inventory has these two, declared or not.
  ensureGroup(model, 'all', `${file}`);
  ensureGroup(model, 'ungrouped', `${file}`);
  return model;
}

export function ensureGroup(model: AnsibleModel, name: string, where: string): AnsibleGroup {
  let group = model.groups.get(name);
  if (!group) {
    group = { name, hosts: [], children: [], vars: {}, where };
    model.groups.set(name, group);
  }
  return group;
}

export function addChild(model: AnsibleModel, parent: string, child: string, where: string): void {
  const p = ensureGroup(model, parent, where);
  ensureGroup(model, child, where);
  if (!p.children.includes(child)) p.children.push(child);
}

/** Adds the host to the group; vars given here override earlier ones for the same host (Ansible merges them). */
export function addHost(model: AnsibleModel, group: string, name: string, vars: Vars, where: string): void {
  const g = ensureGroup(model, group, where);
  if (!g.hosts.includes(name)) g.hosts.push(name);
  let host = model.hosts.get(name);
  if (!host) {
    host = { name, vars: {}, where };
    model.hosts.set(name, host);
  }
  Object.assign(host.vars, vars);
}

/** Group names runc-rollout accepts: what `--limit` can select, and what Ansible accepts without a warning. */
export const GROUP_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Groups whose names have `-` or `.` still load in Ansible (with a warning); they are kept as written. */
export const LOOSE_GROUP_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const MAX_EXPANSION = 10_000;
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * Expand Ansible host ranges: `worker-[01:20]` (zero-padded when the start is),
 * `db-[a:c]`, `web[1:9:2]` (with a step), several ranges in one name.
 * Mirrors ansible.inventory.helpers' expand_hostname_range, with a cap on the
 * number of names so a typo cannot allocate millions. Returns an error string
 * when the pattern is not valid.
 */
export function expandHostRange(pattern: string): string[] | string {
  const open = pattern.indexOf('[');
  if (open < 0) return [pattern];
  const close = pattern.indexOf(']', open);
  if (close < 0) return `"${pattern}": "[" without a matching "]"`;
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const bounds = pattern.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3) return `"${pattern}": a host range must be [begin:end] or [begin:end:step]`;
  const beg = bounds[0] || '0';
  const end = bounds[1] ?? '';
  const stepText = bounds[2] ?? '1';
  if (end === '') return `"${pattern}": a host range must have an end value`;
  if (!/^[1-9]\d*$/.test(stepText)) return `"${pattern}": the step of a host range must be a positive integer`;
  const step = Number(stepText);

  let seq: string[];
  const isLetter = (s: string) => s.length === 1 && LETTERS.includes(s);
  if (isLetter(beg) && isLetter(end)) {
    const a = LETTERS.indexOf(beg);
    const b = LETTERS.indexOf(end);
    if (a > b) return `"${pattern}": a host range must have begin <= end`;
    seq = [];
    for (let i = a; i <= b; i += step) seq.push(LETTERS[i]!);
  } else if (/^\d+$/.test(beg) && /^\d+$/.test(end)) {
    const padded = beg.length > 1 && beg.startsWith('0');
    if (padded && beg.length !== end.length) return `"${pattern}": a zero-padded host range needs begin and end of equal length`;
    const a = Number(beg);
    const b = Number(end);
    if (a > b) return `"${pattern}": a host range must have begin <= end`;
    if ((b - a) / step + 1 > MAX_EXPANSION) return `"${pattern}": the range expands to more than ${MAX_EXPANSION} hosts`;
    seq = [];
    for (let i = a; i <= b; i += step) seq.push(padded ? String(i).padStart(beg.length, '0') : String(i));
  } else {
    return `"${pattern}": a host range must be numbers ([01:20]) or single letters ([a:f])`;
  }

  const out: string[] = [];
  for (const part of seq) {
    const rest = expandHostRange(`${head}${part}${tail}`);
    if (typeof rest === 'string') return rest;
    out.push(...rest);
    if (out.length > MAX_EXPANSION) return `"${pattern}": the range expands to more than ${MAX_EXPANSION} hosts`;
  }
  return out;
}

/**
 * A host entry as written: ranges expanded, and an optional `:port` suffix
 * (`db.example.com:2222`, `web[1:3]:2222`; a bare IPv6 address has no port).
 * Anything else that makes it a pattern rather than a name is refused.
 */
export function parseHostEntry(entry: string): { names: string[]; port?: number } | string {
  let pattern = entry;
  let port: number | undefined;
  const m = /^(.+):(\d+)$/.exec(entry);
  if (m) {
    const prefix = m[1]!;
    const balanced = (prefix.match(/\[/g) ?? []).length === (prefix.match(/\]/g) ?? []).length;
    if (balanced && !prefix.replace(/\[[^\]]*\]/g, '').includes(':')) {
      pattern = prefix;
      port = Number(m[2]);
    }
  }
  const bad = /[*?!&,~{}|^$\\'"@\s]/.exec(pattern.replace(/\[[^\]]*\]/g, ''));
  if (bad) return `"${entry}": host patterns other than ranges are not supported (found "${bad[0]}"); list the hosts by name or as a range like web-[01:20]`;
  const names = expandHostRange(pattern);
  if (typeof names === 'string') return names;
  return port === undefined ? { names } : { names, port };
}
