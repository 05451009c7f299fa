// `inventory from-kubectl`: from `kubectl get nodes -o json` to a native
// inventory. Pure: the caller runs kubectl (or reads --from-file) and writes
// the result. The inventory is marked `source: kubernetes`, so apply puts
// control-plane nodes last by default.
//
// Rules, each reported rather than guessed:
// - a node without an address of the chosen type is left out with a warning
//   (an inventory entry without a host cannot be written); no node left is an error;
// - a node name that is not a valid inventory name (Kubernetes allows 253
//   characters, the inventory 63) is shortened to a unique valid name, and the
//   original is kept in a comment above the entry and in the warning;
// - labels whose name or value the inventory cannot hold (over 63 characters)
//   are dropped, counted in one warning per label name.
import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { hostProblem } from './schema.js';

export const ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'Hostname'] as const;
export type AddressType = (typeof ADDRESS_TYPES)[number];

const addressSchema = z.object({ type: z.string(), address: z.string() });
const k8sNodeSchema = z.object({
  kind: z.string().optional(),
  metadata: z.object({
    name: z.string().min(1),
    labels: z.record(z.string(), z.string()).nullish(),
  }),
  status: z.object({ addresses: z.array(addressSchema).nullish() }).nullish(),
});
const k8sListSchema = z.object({
  kind: z.string().optional(),
  items: z.array(k8sNodeSchema),
});

export type KubeNode = z.infer<typeof k8sNodeSchema>;

/** Reads `kubectl get nodes -o json` output (a List, or one Node from `kubectl get node X -o json`). */
export function parseKubectlNodes(text: string, source: string): KubeNode[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not JSON (expected the output of \`kubectl get nodes -o json\`): ${(err as Error).message}`);
  }
  const single = typeof raw === 'object' && raw !== null && (raw as { kind?: unknown }).kind === 'Node';
  const r = single ? k8sNodeSchema.safeParse(raw) : k8sListSchema.safeParse(raw);
  if (!r.success) {
    throw new InputError(
      `${source}: not a Kubernetes node list (expected the output of \`kubectl get nodes -o json\`)`,
      r.error.issues.slice(0, 10).map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`),
    );
  }
  if (single) return [r.data as KubeNode];
  const list = r.data as z.infer<typeof k8sListSchema>;
  const wrongKind = list.items.filter((n) => n.kind !== undefined && n.kind !== 'Node');
  if (wrongKind.length) throw new InputError(`${source}: the list holds ${wrongKind[0]?.kind} objects, not Nodes (use \`kubectl get nodes -o json\`)`);
  return list.items;
}

/** One `key=value`, `key!=value`, `key` or `!key` term of a label selector. */
type Term = { key: string; op: 'eq' | 'ne' | 'exists' | 'absent'; value?: string };

/** Equality-based selectors as kubectl takes them (`-l a=b,c!=d,e,!f`); set-based ones (`in (...)`) are refused. */
export function parseSelector(selector: string): Term[] {
  const terms: Term[] = [];
  for (const part of selector.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (/[()]|\s(in|notin)\s/.test(part)) throw new InputError(`--selector ${JSON.stringify(selector)}: set-based selectors (in, notin) are not supported; use key=value, key!=value, key or !key`);
    let m: RegExpExecArray | null;
    if ((m = /^([^=!]+?)\s*!=\s*(.*)$/.exec(part))) terms.push({ key: m[1] as string, op: 'ne', value: m[2] as string });
    else if ((m = /^([^=!]+?)\s*==?\s*(.*)$/.exec(part))) terms.push({ key: m[1] as string, op: 'eq', value: m[2] as string });
    else if ((m = /^!\s*([^=!]+)$/.exec(part))) terms.push({ key: m[1] as string, op: 'absent' });
    else if (/^[^=!]+$/.test(part)) terms.push({ key: part, op: 'exists' });
    else throw new InputError(`--selector ${JSON.stringify(selector)}: cannot read ${JSON.stringify(part)}`);
  }
  return terms;
}

export function matchesSelector(labels: Record<string, string>, terms: Term[]): boolean {
  return terms.every((t) => {
    const has = Object.hasOwn(labels, t.key);
    switch (t.op) {
      case 'eq':
        return has && labels[t.key] === t.value;
      case 'ne':
        return !has || labels[t.key] !== t.value;
      case 'exists':
        return has;
      case 'absent':
        return !has;
    }
  });
}

export interface KubectlSshDefaults {
  user?: string;
  sudo?: boolean;
  identityFile?: string;
  knownHosts?: string;
}

export interface ConvertOptions {
  address: AddressType;
  /** kubectl's `-l` syntax; applied here too, so --from-file filters the same way. */
  selector?: string;
  ssh?: KubectlSshDefaults;
  /** Shown in the header comment: the kubectl context or the file. */
  origin?: string;
  now?: Date;
}

export interface ConvertedNode {
  name: string;
  /** The Kubernetes name when `name` had to be changed. */
  originalName?: string;
  host: string;
  labels: Record<string, string>;
}

export interface ConvertResult {
  nodes: ConvertedNode[];
  /** Nodes left out, with the reason. */
  skipped: { name: string; reason: string }[];
  warnings: string[];
  /** The native inventory, as YAML text. */
  yaml: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LABEL_KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^[A-Za-z0-9._-]{0,63}$/;

/** A valid inventory name for a Kubernetes node name: itself when valid, else a shortened form with a hash that keeps it unique. */
export function inventoryName(k8sName: string): string {
  if (NAME_RE.test(k8sName)) return k8sName;
  const hash = createHash('sha256').update(k8sName).digest('hex').slice(0, 8);
  const cleaned = k8sName.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 54).replace(/[._-]+$/, '');
  return cleaned ? `${cleaned}-${hash}` : `node-${hash}`;
}

export function convertKubectlNodes(items: KubeNode[], opts: ConvertOptions): ConvertResult {
  const terms = opts.selector ? parseSelector(opts.selector) : [];
  const nodes: ConvertedNode[] = [];
  const skipped: ConvertResult['skipped'] = [];
  const warnings: string[] = [];
  const droppedLabels = new Map<string, string[]>();
  const used = new Map<string, string>();

  for (const item of items) {
    const k8sName = item.metadata.name;
    const labels = item.metadata.labels ?? {};
    if (!matchesSelector(labels, terms)) continue;
    const addrs = item.status?.addresses ?? [];
    const addr = addrs.find((a) => a.type === opts.address && a.address.trim() !== '');
    if (!addr) {
      const have = addrs.map((a) => a.type).join(', ');
      skipped.push({ name: k8sName, reason: `no ${opts.address} address${have ? ` (has ${have}; try --address)` : ' (no addresses in its status)'}` });
      continue;
    }
    const host = addr.address.trim();
    const bad = hostProblem(host);
    if (bad) {
      skipped.push({ name: k8sName, reason: `${opts.address} ${bad}` });
      continue;
    }
    const name = inventoryName(k8sName);
    const clash = used.get(name);
    if (clash !== undefined) {
      skipped.push({ name: k8sName, reason: `its inventory name ${name} is already taken by ${clash}` });
      continue;
    }
    used.set(name, k8sName);
    const kept: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) {
      if (LABEL_KEY_RE.test(k) && LABEL_VALUE_RE.test(v)) kept[k] = v;
      else droppedLabels.set(k, [...(droppedLabels.get(k) ?? []), k8sName]);
    }
    const node: ConvertedNode = { name, host, labels: kept };
    if (name !== k8sName) {
      node.originalName = k8sName;
      warnings.push(`node ${k8sName}: not a valid inventory name (at most 63 letters, digits, ".", "_", "-"); written as ${name}, the original kept in a comment`);
    }
    nodes.push(node);
  }

  for (const s of skipped) warnings.push(`node ${s.name}: left out: ${s.reason}`);
  for (const [k, who] of droppedLabels) {
    warnings.push(`label ${k}: dropped on ${who.length} node${who.length === 1 ? '' : 's'} (${who.slice(0, 3).join(', ')}${who.length > 3 ? ', ...' : ''}): name or value longer than 63 characters or with characters the inventory does not allow`);
  }
  if (nodes.length === 0) {
    const why = items.length === 0 ? 'the cluster returned no nodes' : terms.length && skipped.length === 0 ? `no node matches --selector ${opts.selector}` : `no node has a usable ${opts.address} address`;
    throw new InputError(`no inventory written: ${why}`, skipped.map((s) => `${s.name}: ${s.reason}`));
  }
  return { nodes, skipped, warnings, yaml: renderInventory(nodes, opts) };
}

function renderInventory(nodes: ConvertedNode[], opts: ConvertOptions): string {
  const doc = new YAML.Document({});
  const ssh: Record<string, unknown> = {};
  if (opts.ssh?.user) ssh.user = opts.ssh.user;
  if (opts.ssh?.sudo) ssh.sudo = true;
  if (opts.ssh?.identityFile) ssh.identityFile = opts.ssh.identityFile;
  if (opts.ssh?.knownHosts) ssh.knownHosts = opts.ssh.knownHosts;
  const top: Record<string, unknown> = { source: 'kubernetes' };
  if (Object.keys(ssh).length) top.ssh = ssh;
  top.nodes = nodes.map((n) => ({ name: n.name, host: n.host, ...(Object.keys(n.labels).length ? { labels: n.labels } : {}) }));
  doc.contents = doc.createNode(top) as typeof doc.contents;
  const list = (doc.get('nodes', true) as YAML.YAMLSeq).items as YAML.YAMLMap[];
  nodes.forEach((n, i) => {
    if (n.originalName && list[i]) list[i].commentBefore = ` Kubernetes node name: ${n.originalName}`;
  });
  const when = (opts.now ?? new Date()).toISOString();
  doc.commentBefore = [
    ` Generated by \`runc-rollout inventory from-kubectl\` at ${when}${opts.origin ? ` from ${opts.origin}` : ''}.`,
    ` Addresses: ${opts.address}${opts.selector ? `; selector: ${opts.selector}` : ''}.`,
    ' `source: kubernetes` makes apply put control-plane nodes in the last batches (--no-control-plane-last to turn off).',
  ].join('\n');
  return doc.toString({ lineWidth: 0 });
}
