// state.json on the node: what the last apply changed, for rollback and for
// reruns. Pure: parsing, and the decisions of what a run keeps from an earlier
// record. The rule the decisions follow: one record describes one change from
// an original binary (with its sysctl values) to a target; a rerun continuing
// that change keeps the record, so the original's backup and the sysctl values
// before the change are never replaced by values the change itself produced.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { STATE_DIR, type NodeState, type SysctlFileRecord } from '../core/types.js';
import { dropinContent } from './sysctl-scripts.js';
import { runToken } from './run-token.js';

const sha = z.string().regex(/^[0-9a-f]{64}$/);
const stateSchema = z.object({
  schema: z.literal(1),
  runId: z.string(),
  updatedAt: z.string(),
  runcPath: z.string().startsWith('/'),
  phase: z.enum(['staged', 'backed-up', 'swapped', 'sysctl-applied', 'done', 'rolled-back']),
  original: z.object({ version: z.string().nullable(), sha256: sha, backupPath: z.string(), metadata: z.literal('backup').optional() }),
  target: z.object({ version: z.string(), sha256: sha }),
  sysctl: z.object({
    liveBefore: z.number().int().nullable(),
    files: z.array(
      z.object({ path: z.string().startsWith('/'), backupPath: z.string().startsWith('/').nullable(), written: sha.optional(), commented: z.literal(true).optional() }),
    ),
  }),
});

/** Parses state.json text; throws with the reason when it is not a state file of ours. */
export function parseNodeState(text: string): NodeState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`state.json is not JSON: ${(err as Error).message}`);
  }
  const r = stateSchema.safeParse(raw);
  if (!r.success) throw new Error(`state.json has an unexpected shape: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data as NodeState;
}

export function serializeState(s: NodeState): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}

export function backupDir(stateDir = STATE_DIR): string {
  return `${stateDir}/backups`;
}

/** Backup file name: version, digest and time, characters safe for the rotation's word splitting. */
export function backupName(version: string | null, sha256: string, at: Date, stateDir = STATE_DIR): string {
  const v = (version ?? 'unknown').replace(/[^A-Za-z0-9.+~_-]/g, '_').slice(0, 40) || 'unknown';
  const t = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${backupDir(stateDir)}/runc-${v}-${sha256.slice(0, 12)}-${t}`;
}

export function sysctlBackupPath(runId: string, index: number, path: string, stateDir = STATE_DIR): string {
  const base = (path.split('/').pop() ?? 'file').replace(/[^A-Za-z0-9._-]/g, '_');
  return `${stateDir}/sysctl-backups/${runToken(runId)}/${index}-${base}`;
}

export type RecordRelation = 'continues-original' | 'continues-target' | 'fresh';

/**
 * How an existing record relates to a node whose runc (at `realPath`) now has
 * digest `current`: still at the record's original (an earlier run stopped
 * before or was undone at the swap), already at its target (an earlier run got
 * past the swap), or unrelated (a record of an older, finished change).
 */
export function relateRecord(prev: NodeState | null, realPath: string, current: string, target: string): RecordRelation {
  if (!prev || prev.phase === 'rolled-back' || prev.runcPath !== realPath) return 'fresh';
  if (prev.target.sha256 !== target) return 'fresh';
  if (prev.original.sha256 === current) return 'continues-original';
  if (current === target) return 'continues-target';
  return 'fresh';
}

export interface BackupDecision {
  /** An existing backup of the current binary to keep using. */
  reuse: string | null;
  /** Where a new backup goes when none can be reused. */
  create: string | null;
  /** Backups rotation must never delete. */
  protect: string[];
}

export function decideBackup(args: {
  prev: NodeState | null;
  relation: RecordRelation;
  current: { version: string | null; sha256: string };
  backups: { path: string; sha256: string }[];
  now: Date;
  stateDir?: string;
}): BackupDecision {
  const { prev, current, backups } = args;
  const protect = prev?.original.backupPath ? [prev.original.backupPath] : [];
  // Any verified copy of this exact binary will do: never a second backup of it.
  const preferred = args.relation === 'continues-original' ? prev?.original.backupPath : undefined;
  const match = backups.find((b) => b.path === preferred && b.sha256 === current.sha256) ?? backups.find((b) => b.sha256 === current.sha256);
  if (match) return { reuse: match.path, create: null, protect: [...new Set([...protect, match.path])] };
  const create = backupName(current.version, current.sha256, args.now, args.stateDir);
  return { reuse: null, create, protect: [...new Set([...protect, create])] };
}

/** The record written at the backup step. */
export function recordAtBackup(args: {
  prev: NodeState | null;
  relation: RecordRelation;
  runId: string;
  realPath: string;
  current: { version: string | null; sha256: string };
  target: { version: string; sha256: string };
  backupPath: string;
  liveBefore: number | null;
  now: Date;
}): NodeState {
  const keep = args.relation === 'continues-original' && args.prev ? args.prev : null;
  return {
    schema: 1,
    runId: args.runId,
    updatedAt: args.now.toISOString(),
    runcPath: args.realPath,
    phase: 'backed-up',
    // the backup step gives the backup the original's owner, mode, capabilities and label
    original: { version: args.current.version, sha256: args.current.sha256, backupPath: args.backupPath, metadata: 'backup' },
    target: args.target,
    sysctl: keep ? keep.sysctl : { liveBefore: args.liveBefore, files: [] },
  };
}

/**
 * The record for a node already at the target (action none). An earlier run's
 * record of this change is kept whole; otherwise the binary was not ours to
 * change, so the record holds the current binary as original with no backup
 * (backupPath '') and only the sysctl part can be rolled back.
 */
export function recordForUnchanged(args: {
  prev: NodeState | null;
  relation: RecordRelation;
  runId: string;
  realPath: string;
  current: { version: string | null; sha256: string };
  liveBefore: number | null;
  now: Date;
}): NodeState {
  if (args.relation === 'continues-target' && args.prev) return { ...args.prev, runId: args.runId, updatedAt: args.now.toISOString() };
  return {
    schema: 1,
    runId: args.runId,
    updatedAt: args.now.toISOString(),
    runcPath: args.realPath,
    phase: 'swapped',
    original: { version: args.current.version, sha256: args.current.sha256, backupPath: '' },
    target: { version: args.current.version ?? 'unknown', sha256: args.current.sha256 },
    sysctl: { liveBefore: args.liveBefore, files: [] },
  };
}

export interface SysctlChange {
  /** Files to comment lines out of, each with a backup to take now, or null when the record already holds its pristine backup. */
  commentOut: { path: string; lines: number[]; backupPath: string | null }[];
  /** Back up the existing drop-in to this path first (null: nothing to back up). */
  dropinBackup: string | null;
  /** The record naming everything the sysctl step changes, written before it changes anything. */
  state: NodeState;
}

export function planSysctlChange(args: {
  state: NodeState;
  commentOut: { path: string; lines: number[] }[];
  dropin: string;
  dropinExists: boolean;
  runId: string;
  now: Date;
  stateDir?: string;
}): SysctlChange {
  // What this run leaves in each file is recorded with it (written / commented): a rollback restores only files still so.
  const files: SysctlFileRecord[] = args.state.sysctl.files.map((f) => ({ ...f }));
  const known = new Map(files.map((f) => [f.path, f]));
  let n = files.length;
  const commentOut = args.commentOut.map((c) => {
    const had = known.get(c.path);
    if (had) {
      had.commented = true;
      return { ...c, backupPath: null };
    }
    const backupPath = sysctlBackupPath(args.runId, n++, c.path, args.stateDir);
    const f: SysctlFileRecord = { path: c.path, backupPath, commented: true };
    files.push(f);
    known.set(c.path, f);
    return { ...c, backupPath };
  });
  let dropinBackup: string | null = null;
  const written = createHash('sha256').update(dropinContent(args.runId)).digest('hex');
  const dropin = known.get(args.dropin);
  if (dropin) dropin.written = written;
  else {
    dropinBackup = args.dropinExists ? sysctlBackupPath(args.runId, n++, args.dropin, args.stateDir) : null;
    files.push({ path: args.dropin, backupPath: dropinBackup, written });
  }
  return {
    commentOut,
    dropinBackup,
    state: { ...args.state, runId: args.runId, updatedAt: args.now.toISOString(), phase: 'sysctl-applied', sysctl: { ...args.state.sysctl, files } },
  };
}

export function withPhase(s: NodeState, phase: NodeState['phase'], runId: string, now = new Date()): NodeState {
  return { ...s, phase, runId, updatedAt: now.toISOString() };
}
