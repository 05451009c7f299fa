// The fleet's inventory, in the documented format (inventories/example.yaml),
// plus variants that tests write to exercise other settings.
import { writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_RUNC_PATH, type FleetNode, type InventoryVariant } from './types.js';

type Doc = Record<string, unknown>;

export function baseInventory(nodes: FleetNode[], ssh: { port: number; identityFile: string; knownHosts: string }): Doc {
  return {
    ssh: { user: 'root', port: ssh.port, identityFile: ssh.identityFile, knownHosts: ssh.knownHosts, hostKeyPolicy: 'strict' },
    nodes: nodes.map((n) => {
      const entry: Doc = { name: n.name, host: n.host };
      if (n.user !== 'root') entry.ssh = { user: n.user, sudo: n.sudo };
      if (n.runcPath && n.runcPath !== DEFAULT_RUNC_PATH) entry.runc = { path: n.runcPath };
      if (n.spec.labels && Object.keys(n.spec.labels).length) entry.labels = { ...n.spec.labels };
      return entry;
    }),
  };
}

const isPlain = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; anything else replaces; null deletes the key. */
export function deepMerge(base: Doc, extra: Doc): Doc {
  const out: Doc = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else if (isPlain(v) && isPlain(out[k])) out[k] = deepMerge(out[k] as Doc, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

export function variantDoc(base: Doc, extra: Doc = {}, variant: InventoryVariant = {}): Doc {
  const doc = deepMerge(structuredClone(base), extra);
  if (variant.nodes) {
    const known = new Set((base.nodes as Doc[]).map((n) => n.name as string));
    for (const name of Object.keys(variant.nodes)) if (!known.has(name)) throw new Error(`writeInventory: no fleet node ${name}`);
    doc.nodes = (doc.nodes as Doc[]).flatMap((n) => {
      const change = variant.nodes![n.name as string];
      if (change === null) return [];
      return [change ? deepMerge(n, change) : n];
    });
  }
  return doc;
}

let counter = 0;

export function writeInventoryFile(fleetDir: string, doc: Doc, file?: string): string {
  const path = file ? (isAbsolute(file) ? file : join(fleetDir, file)) : join(fleetDir, `inventory-${++counter}.yaml`);
  writeFileSync(path, stringify(doc));
  return path;
}
