// Which value of fs.pipe-user-pages-soft holds after a reboot, resolved the way
// systemd-sysctl (and procps `sysctl --system`) read their configuration, and
// which lines apply must comment out so our drop-in is the one that wins.
import { SYSCTL_DROPIN, SYSCTL_KEY, SYSCTL_TARGET, type SysctlFile, type SysctlPlan, type SysctlSetting } from './types.js';

/** systemd-sysctl search dirs, highest priority first: a name in an earlier dir masks it in later ones. */
export const SYSCTL_DIRS = ['/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d'] as const;
/** Read after every sysctl.d file by `sysctl --system`; systemd reaches it through a 99-sysctl.conf symlink. */
export const SYSCTL_CONF = '/etc/sysctl.conf';
/** The kernel's own value when nothing sets it (fs/pipe.c: PIPE_DEF_BUFFERS * INR_OPEN_CUR). */
export const SYSCTL_KERNEL_DEFAULT = 16384;

const KEY_PATH = toSysctlPath(SYSCTL_KEY);

/** systemd's sysctl_normalize: the first separator decides; `a.b/c` means path `a/b.c`. */
function toSysctlPath(key: string): string {
  const first = /[./]/.exec(key);
  if (!first || first[0] === '/') return key;
  return key.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The value a sysctl.d line assigns to fs.pipe-user-pages-soft, or null when the
 * line is a comment, not an assignment, or about another key.
 */
export function parseSysctlLine(line: string): { value: string; glob: boolean } | null {
  const text = line.trim();
  if (text === '' || text.startsWith('#') || text.startsWith(';')) return null;
  const eq = text.indexOf('=');
  if (eq < 0) return null;
  let key = text.slice(0, eq).trim();
  if (key.startsWith('-')) key = key.slice(1).trim(); // "ignore failure" marker
  const value = text.slice(eq + 1).trim();
  if (key === '') return null;
  const path = toSysctlPath(key);
  if (path === KEY_PATH) return { value, glob: false };
  if (/[*?[]/.test(path) && globToRegExp(path).test(KEY_PATH)) return { value, glob: true };
  return null;
}

/** The settings of our key in a whole file's text (1-based line numbers). */
export function settingsInText(text: string): SysctlSetting[] {
  const out: SysctlSetting[] = [];
  text.split('\n').forEach((line, i) => {
    const s = parseSysctlLine(line);
    if (s) out.push(s.glob ? { line: i + 1, value: s.value, glob: true } : { line: i + 1, value: s.value });
  });
  return out;
}

export interface AppliedFile {
  /** Path as found (a sysctl.d entry, or /etc/sysctl.conf). */
  path: string;
  /** The file actually read and edited: the symlink target when `path` is a link. */
  realPath: string;
  settings: SysctlSetting[];
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
function dirname(p: string): string {
  return p.slice(0, p.lastIndexOf('/')) || '/';
}

/**
 * The files in the order they are applied at boot: unmasked sysctl.d files by
 * name, then /etc/sysctl.conf. A sysctl.d entry that is a link to
 * /etc/sysctl.conf is skipped, since that file is applied last anyway.
 */
export function applicationOrder(files: SysctlFile[], names: { dir: string; names: string[] }[]): AppliedFile[] {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const chosen = new Map<string, string>(); // name -> path in the highest-priority dir
  for (const dir of SYSCTL_DIRS) {
    const listed = names.filter((n) => n.dir === dir).flatMap((n) => n.names);
    const present = files.filter((f) => dirname(f.path) === dir).map((f) => basename(f.path));
    for (const name of [...listed, ...present]) {
      if (name.endsWith('.conf') && !chosen.has(name)) chosen.set(name, `${dir}/${name}`);
    }
  }
  const conf = byPath.get(SYSCTL_CONF);
  const confReal = conf?.realPath ?? SYSCTL_CONF;
  const ordered: AppliedFile[] = [];
  // Byte order, like strcmp in systemd and procps; JS string comparison matches it for ASCII names.
  for (const name of [...chosen.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const path = chosen.get(name)!;
    const f = byPath.get(path);
    const realPath = f?.realPath ?? path;
    if (conf && realPath === confReal) continue;
    ordered.push({ path, realPath, settings: f?.settings ?? [] });
  }
  if (conf) ordered.push({ path: SYSCTL_CONF, realPath: confReal, settings: conf.settings });
  return ordered;
}

export interface PersistedValue {
  /** Parsed value; null when nothing sets it or the winning value is not a number. */
  value: number | null;
  /** The winning assignment's text, e.g. `65536`. */
  raw: string | null;
  /** `file:line` of the winning assignment. */
  from: string | null;
}

/** Later assignments win; a glob only counts when no file assigns the key explicitly (systemd-sysctl). */
export function resolveOrdered(ordered: AppliedFile[]): PersistedValue {
  let explicit: PersistedValue | null = null;
  let glob: PersistedValue | null = null;
  for (const f of ordered) {
    for (const s of f.settings) {
      const v: PersistedValue = { value: /^\d+$/.test(s.value) ? Number(s.value) : null, raw: s.value, from: `${f.realPath}:${s.line}` };
      if (s.glob) glob = v;
      else explicit = v;
    }
  }
  return explicit ?? glob ?? { value: null, raw: null, from: null };
}

export function resolvePersisted(files: SysctlFile[], names: { dir: string; names: string[] }[]): PersistedValue {
  return resolveOrdered(applicationOrder(files, names));
}

/**
 * With our drop-in in place, the lines that would still set another value after
 * a reboot: explicit assignments in files applied after it (names sorting after
 * 99-runc-rollout.conf, and /etc/sysctl.conf). Grouped by the real file, each
 * line once, so a symlinked file is edited once through its target.
 */
export function planPersist(
  files: SysctlFile[],
  names: { dir: string; names: string[] }[],
  target: number = SYSCTL_TARGET,
): { commentOut: { path: string; lines: number[] }[]; after: PersistedValue } {
  const dropin: SysctlFile = { path: SYSCTL_DROPIN, settings: [{ line: 1, value: String(target) }] };
  const withDropin = [...files.filter((f) => f.path !== SYSCTL_DROPIN), dropin];
  const dropinNames = names.map((n) =>
    n.dir === dirname(SYSCTL_DROPIN) ? { dir: n.dir, names: [...n.names.filter((x) => x !== basename(SYSCTL_DROPIN)), basename(SYSCTL_DROPIN)] } : n,
  );
  const ordered = applicationOrder(withDropin, dropinNames);
  const at = ordered.findIndex((f) => f.path === SYSCTL_DROPIN);
  const lines = new Map<string, Set<number>>();
  for (const f of ordered.slice(at + 1)) {
    for (const s of f.settings) {
      // A glob never beats an explicit assignment, and an equal value is harmless: leave both alone.
      if (s.glob || (/^\d+$/.test(s.value) && Number(s.value) === target)) continue;
      const set = lines.get(f.realPath) ?? new Set<number>();
      set.add(s.line);
      lines.set(f.realPath, set);
    }
  }
  const commentOut = [...lines].map(([path, set]) => ({ path, lines: [...set].sort((a, b) => a - b) }));
  const commented = new Set(commentOut.flatMap((c) => c.lines.map((l) => `${c.path}:${l}`)));
  const remaining = ordered.map((f) => ({ ...f, settings: f.settings.filter((s) => !commented.has(`${f.realPath}:${s.line}`)) }));
  return { commentOut, after: resolveOrdered(remaining) };
}

/** The sysctl part of a node's plan. */
export function planSysctl(
  sysctl: { live: number | null; files: SysctlFile[]; names: { dir: string; names: string[] }[] },
  target: number = SYSCTL_TARGET,
): SysctlPlan {
  const persisted = resolvePersisted(sysctl.files, sysctl.names);
  const { commentOut } = planPersist(sysctl.files, sysctl.names, target);
  // Nothing set (or an invalid value the kernel rejects) leaves the kernel default in force.
  const effective = persisted.value ?? (persisted.raw === null ? SYSCTL_KERNEL_DEFAULT : null);
  return {
    live: sysctl.live,
    persisted: persisted.value,
    persistedFrom: persisted.from,
    target,
    changeLive: sysctl.live !== target,
    changePersisted: effective !== target || commentOut.length > 0,
    commentOut,
  };
}
