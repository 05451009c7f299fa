// Turning zod's findings into `nodes[3].host: message` lines, and finding keys
// the schema does not know (warnings, so a newer inventory still loads).
import type { z } from 'zod';
import { healthSchema, inventorySchema, nodeSchema, runcSchema, smokeSchema, sshSchema } from './schema.js';

export type PathPart = string | number | symbol;

/** `nodes[3].ssh.port`; keys that are not identifiers are quoted. */
export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = String(part);
      const word = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
      out += out === '' ? word : `.${word}`;
    }
  }
  return out === '' ? '(top level)' : out;
}

export function describeValue(input: unknown): string {
  if (input === null) return 'nothing (null)';
  if (Array.isArray(input)) return 'a list';
  switch (typeof input) {
    case 'string':
      return `a string (${JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input)})`;
    case 'number':
      return `a number (${input})`;
    case 'boolean':
      return `${input}`;
    case 'object':
      return 'a mapping';
    default:
      return typeof input;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/** Per-parse error map: plain words instead of zod's defaults. */
export const inventoryErrorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'is required';
    return `expected ${EXPECTED[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
  }
  if (iss.code === 'invalid_value') {
    return `must be one of ${iss.values.map((v) => String(v)).join(', ')}; got ${describeValue(iss.input)}`;
  }
  if (iss.code === 'invalid_union') return `expected a string, number or boolean, got ${describeValue(iss.input)}`;
  return undefined;
};

export function zodIssues(error: z.ZodError, prefix: PathPart[] = []): string[] {
  return error.issues.map((i) => `${formatPath([...prefix, ...i.path])}: ${i.message}`);
}

// Known keys per section, taken from the schema itself so the two cannot drift.
const KNOWN = {
  top: Object.keys(inventorySchema.shape),
  node: Object.keys(nodeSchema.shape),
  ssh: Object.keys(sshSchema.shape),
  runc: Object.keys(runcSchema.shape),
  smoke: Object.keys(smokeSchema.shape),
  health: Object.keys(healthSchema.shape),
};

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function checkKeys(value: unknown, known: string[], path: PathPart[], out: string[]): void {
  if (!isMapping(value)) return;
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => distance(k.toLowerCase(), key.toLowerCase()) <= 2);
    out.push(`${formatPath([...path, key])}: unknown key, ignored${near ? ` (did you mean "${near}"?)` : ''}`);
  }
}

export function unknownKeys(raw: unknown): string[] {
  const out: string[] = [];
  if (!isMapping(raw)) return out;
  checkKeys(raw, KNOWN.top, [], out);
  checkKeys(raw.ssh, KNOWN.ssh, ['ssh'], out);
  checkKeys(raw.runc, KNOWN.runc, ['runc'], out);
  checkKeys(raw.smoke, KNOWN.smoke, ['smoke'], out);
  checkKeys(raw.health, KNOWN.health, ['health'], out);
  if (Array.isArray(raw.nodes)) {
    raw.nodes.forEach((node: unknown, i) => {
      checkKeys(node, KNOWN.node, ['nodes', i], out);
      if (!isMapping(node)) return;
      checkKeys(node.ssh, KNOWN.ssh, ['nodes', i, 'ssh'], out);
      checkKeys(node.runc, KNOWN.runc, ['nodes', i, 'runc'], out);
      checkKeys(node.smoke, KNOWN.smoke, ['nodes', i, 'smoke'], out);
      checkKeys(node.health, KNOWN.health, ['nodes', i, 'health'], out);
    });
  }
  return out;
}
