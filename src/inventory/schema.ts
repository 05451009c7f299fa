// The inventory file's shape (zod), field by field. Values that end up on a
// remote command line or in a file name are held to strict character sets
// here, at load time, so hostile input is refused before any node is touched;
// every remote command is still quoted with q()/cmd() on top of that.
import { isIP } from 'node:net';
import { z } from 'zod';

/** Why a value could be read by a shell, or null. Named so the message says what to remove. */
export function shellHazard(value: string, opts: { allowSpaces?: boolean } = {}): string | null {
  if (/[\n\r]/.test(value)) return 'a line break';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value)) return 'a control character';
  if (value.includes('$(')) return '"$("';
  if (value.includes('`')) return 'a backtick';
  if (value.includes(';')) return '";"';
  if (/['"]/.test(value)) return 'a quote';
  if (/[|&<>]/.test(value)) return `"${/[|&<>]/.exec(value)![0]}"`;
  if (value.includes('$')) return '"$"';
  if (value.includes('\\')) return 'a backslash';
  if (!opts.allowSpaces && /\s/.test(value)) return 'a space';
  return null;
}

function safeString(check: (value: string) => string | null, opts: { allowSpaces?: boolean } = {}) {
  return z.string().superRefine((value, ctx) => {
    const hazard = shellHazard(value, opts);
    const problem = hazard
      ? `${JSON.stringify(value)} contains ${hazard}, which is not allowed here`
      : check(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

const HOST_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*\\.?$`);

/** Hostname (RFC 1123, underscores tolerated) or IPv4/IPv6 literal. */
export function hostProblem(value: string): string | null {
  if (value === '') return 'must not be empty';
  if (isIP(value)) return null;
  if (/^[0-9.]+$/.test(value)) return `${JSON.stringify(value)} is not a valid IPv4 address`;
  if (value.includes(':')) return `${JSON.stringify(value)} is not a valid IPv6 address (write it without brackets)`;
  if (value.length > 253 || !HOSTNAME_RE.test(value)) return `${JSON.stringify(value)} is not a valid hostname or IP address`;
  return null;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const USER_RE = /^[A-Za-z_][A-Za-z0-9._-]{0,31}$/;
const REMOTE_PATH_RE = /^\/[A-Za-z0-9._+@%,:=/-]*$/;
const LABEL_KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^[A-Za-z0-9._-]{0,63}$/;

export const nodeNameField = safeString((v) =>
  NAME_RE.test(v) ? null : `${JSON.stringify(v)} is not a valid node name (letters, digits, ".", "_", "-"; at most 63; starting with a letter or digit)`,
);

export const hostField = safeString(hostProblem);

export const userField = safeString((v) =>
  USER_RE.test(v) ? null : `${JSON.stringify(v)} is not a valid user name`,
);

export const portField = z.number().superRefine((v, ctx) => {
  if (!Number.isInteger(v) || v < 1 || v > 65535) {
    ctx.addIssue({ code: 'custom', message: `must be an integer from 1 to 65535, got ${v}` });
  }
});

/** Paths on this machine: never given to a shell, so spaces are fine; `~` and relative paths are resolved later. */
export const localPathField = safeString((v) => (v === '' ? 'must not be empty' : null), { allowSpaces: true });

/** Paths on the node: absolute, normalised, and plain enough to read at a glance in a command line. */
export const remotePathField = safeString((v) => {
  if (!v.startsWith('/')) return `${JSON.stringify(v)} must be an absolute path (starting with "/")`;
  if (!REMOTE_PATH_RE.test(v)) return `${JSON.stringify(v)} may only contain letters, digits and . _ + @ % , : = / -`;
  if (v === '/' || v.endsWith('/')) return `${JSON.stringify(v)} must name a file, not a directory`;
  if (v.split('/').some((seg, i) => i > 0 && (seg === '' || seg === '.' || seg === '..'))) {
    return `${JSON.stringify(v)} must be a normalised path (no "//", "." or ".." segments)`;
  }
  return null;
});

/**
 * A site smoke command is shell by design (it runs with `sh -c` on the node),
 * so `;` and `$(` are legitimate; only what could split it into several
 * lines or hide characters is refused.
 */
export const smokeCommandField = z.string().superRefine((v, ctx) => {
  // eslint-disable-next-line no-control-regex
  const problem = v.trim() === '' ? 'must not be empty' : /[\x00-\x1f\x7f]/.test(v) ? 'must be one line without control characters' : v.length > 4096 ? 'is longer than 4096 characters' : null;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export interface ParsedJumpHost {
  user?: string;
  host: string;
  port: number;
}

/** `[user@]host[:port]`, IPv6 as `[::1]:2222`. */
export function parseJumpHost(value: string): ParsedJumpHost | string {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/.exec(value);
  if (!m) return `${JSON.stringify(value)} is not of the form user@host:port`;
  const [, user, rawHost = '', rawPort] = m;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  if (user !== undefined && !USER_RE.test(user)) return `${JSON.stringify(user)} is not a valid user name`;
  const hostIssue = hostProblem(host);
  if (hostIssue) return hostIssue;
  const port = rawPort === undefined ? 22 : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `port must be from 1 to 65535, got ${rawPort}`;
  return user === undefined ? { host, port } : { user, host, port };
}

export const jumpHostField = safeString((v) => {
  const parsed = parseJumpHost(v);
  return typeof parsed === 'string' ? parsed : null;
}).transform((v) => parseJumpHost(v) as ParsedJumpHost);

export const sshSchema = z.object({
  user: userField.optional(),
  port: portField.optional(),
  identityFile: localPathField.optional(),
  knownHosts: localPathField.optional(),
  hostKeyPolicy: z.enum(['strict', 'accept-new']).optional(),
  sudo: z.boolean().optional(),
  /** null on a node turns off a default jump host. */
  jumpHost: jumpHostField.nullable().optional(),
  /** Top level only: the ssh_config file to read instead of ~/.ssh/config ("none": read none). */
  config: localPathField.optional(),
});

export const runcSchema = z.object({ path: remotePathField.optional() });
export const smokeSchema = z.object({ command: smokeCommandField.optional() });

export const labelsSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).superRefine((labels, ctx) => {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY_RE.test(key)) {
      ctx.addIssue({ code: 'custom', path: [key], message: `${JSON.stringify(key)} is not a valid label name (letters, digits, . _ / -; at most 63)` });
    }
    if (!LABEL_VALUE_RE.test(String(value))) {
      ctx.addIssue({ code: 'custom', path: [key], message: `${JSON.stringify(String(value))} is not a valid label value (letters, digits, . _ -; at most 63)` });
    }
  }
}).transform((labels) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])));

/** `30s`, `2m`, `500ms` (or a number of seconds). */
export const durationField = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const problem = typeof v === 'number' ? (Number.isFinite(v) && v >= 0 ? null : `must be a duration like 30s, got ${v}`) : durationProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export function durationProblem(v: string): string | null {
  return /^(\d+(\.\d+)?(ms|s|m|h))+$|^0$/.test(v.trim()) ? null : `${JSON.stringify(v)} is not a duration like 500ms, 30s, 2m or 1h`;
}

const URL_RE = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?(\/[A-Za-z0-9._~\/%=&?-]*)?$/;

/** Health gates run on the node: kubelet's healthz and custom commands (see src/apply/health.ts). */
export const healthSchema = z.object({
  kubelet: z.boolean().optional(),
  kubeletUrl: z.string().superRefine((v, ctx) => {
    if (!URL_RE.test(v) || /['"`$;\\|<>\s]/.test(v)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a plain http(s) URL like http://127.0.0.1:10248/healthz` });
  }).optional(),
  timeout: durationField.optional(),
  settle: durationField.optional(),
  commands: z.array(smokeCommandField).optional(),
});

// Sections may be written empty (`ssh:`), which YAML reads as null.
export const nodeSchema = z.object({
  name: nodeNameField,
  host: hostField,
  ssh: sshSchema.nullish(),
  runc: runcSchema.nullish(),
  smoke: smokeSchema.nullish(),
  labels: labelsSchema.nullish(),
  groups: z.array(nodeNameField).nullish(),
  health: healthSchema.nullish(),
});

export const inventorySchema = z.object({
  /** Set by `inventory from-kubectl`: control-plane nodes go last by default. */
  source: z.enum(['kubernetes']).nullish(),
  health: healthSchema.nullish(),
  ssh: sshSchema.nullish(),
  runc: runcSchema.nullish(),
  smoke: smokeSchema.nullish(),
  nodes: z.array(nodeSchema).min(1, { message: 'at least one node is required' }),
  /** Flag defaults for plan/apply (src/inventory/rollout-defaults.ts validates them). */
  rollout: z.record(z.string(), z.unknown()).nullish(),
});

export type RawSsh = z.infer<typeof sshSchema>;
export type RawNode = z.infer<typeof nodeSchema>;
export type RawInventory = z.infer<typeof inventorySchema>;
