// Turns the facts script's output (src/facts/script.ts) into NodeFacts.
// Garbage is an error naming the node, the line and the field: a half-read
// node must never look like a node with nothing to do.
import { archFromUname } from '../core/arch.js';
import { SYSCTL_CONF, SYSCTL_DIRS, settingsInText } from '../core/sysctl.js';
import type { NodeFacts, NodeState, SysctlFile } from '../core/types.js';
import { parseVersionLine } from '../core/version.js';
import { RolloutError } from '../errors.js';
import { FACTS_BEGIN, FACTS_END } from './script.js';
import { SCAN_BEGIN, SCAN_END, parseStuckScan } from './stuck-scan.js';

export class FactsParseError extends RolloutError {
  readonly node: string;
  constructor(node: string, message: string) {
    super(`${node}: cannot read node facts: ${message}`);
    this.node = node;
  }
}

function decodeField(field: string): string | null {
  // plain: only characters the script lets through unencoded
  if (field.startsWith('r:')) return /^[A-Za-z0-9._/:@+=,%~-]*$/.test(field.slice(2)) ? field.slice(2) : null;
  if (field.startsWith('b:')) {
    const body = field.slice(2);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) return null;
    return Buffer.from(body, 'base64').toString('utf8');
  }
  if (field.startsWith('x:')) {
    const body = field.slice(2);
    if (!/^([0-9a-f]{2})*$/i.test(body)) return null;
    return Buffer.from(body, 'hex').toString('utf8');
  }
  return null;
}

/** df -Pk output -> available bytes. Finds `blocks used avail cap%` so spaces in names do not shift columns. */
export function parseDfAvailable(text: string): number | null {
  const line = text.split('\n')[1];
  if (!line) return null;
  const m = /\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s/.exec(` ${line} `);
  return m ? Number(m[3]) * 1024 : null;
}

/** `dpkg -S` prints `pkg[, pkg2]: /path` (and diversion lines); `rpm -qf` prints the package NVRA. */
export function parsePackageOwner(dpkg: string | undefined, rpm: string | undefined): string | null {
  for (const line of (dpkg ?? '').split('\n')) {
    if (/^diversion /.test(line)) continue;
    // `pkg: /path`, or `pkg:arch: /path` for a multi-arch package
    const m = /^([^:\s][^:]*)(?::[^:\s]+)?: \//.exec(line);
    if (m?.[1]) return m[1].trim();
  }
  const first = (rpm ?? '').split('\n')[0]?.trim();
  return first && !/not owned|^error/i.test(first) ? first : null;
}

const PHASES = new Set(['staged', 'backed-up', 'swapped', 'sysctl-applied', 'done', 'rolled-back']);

function parseState(text: string, notes: string[]): NodeState | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    notes.push(`state file is not valid JSON (${(err as Error).message}); ignored`);
    return null;
  }
  const o = v as Partial<NodeState> | null;
  if (!o || typeof o !== 'object' || o.schema !== 1 || typeof o.phase !== 'string' || !PHASES.has(o.phase) || typeof o.runcPath !== 'string') {
    notes.push('state file has an unknown shape; ignored');
    return null;
  }
  return o as NodeState;
}

function int(node: string, lineNo: number, key: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new FactsParseError(node, `line ${lineNo}: ${key}: expected a number, got ${JSON.stringify(value.slice(0, 60))}`);
  return Number(value.trim());
}

export function parseFacts(output: string, node: string): NodeFacts {
  const lines = output.split('\n').map((l) => l.replace(/\r$/, ''));
  const begin = lines.indexOf(FACTS_BEGIN);
  if (begin < 0) throw new FactsParseError(node, `no "${FACTS_BEGIN}" line in the output (is the remote shell POSIX sh?)`);
  const end = lines.indexOf(FACTS_END, begin);
  if (end < 0) throw new FactsParseError(node, 'output ends early (no end marker): the facts script was cut off');

  const rec = new Map<string, string[][]>();
  const recLine = new Map<string, number>();
  // The stuck runc init scan prints its own block (stuck-scan.ts), read by parseStuckScan.
  const scanAt = lines.indexOf(SCAN_BEGIN, begin);
  const scanEnd = scanAt >= 0 && scanAt < end ? lines.indexOf(SCAN_END, scanAt) : -1;
  if (scanEnd < 0 || scanEnd > end) throw new FactsParseError(node, 'the stuck runc init scan is missing or cut off');
  for (let i = begin + 1; i < end; i++) {
    if (i >= scanAt && i <= scanEnd) continue;
    const line = lines[i]!;
    if (line === '') continue;
    const [key, ...raw] = line.split('\t');
    if (!key || !/^[a-z_0-9]+$/.test(key)) throw new FactsParseError(node, `line ${i + 1}: unexpected text ${JSON.stringify(line.slice(0, 60))}`);
    const fields = raw.map((f, j) => {
      const d = decodeField(f);
      if (d === null) throw new FactsParseError(node, `line ${i + 1}: ${key}: field ${j + 1} is not encoded (${JSON.stringify(f.slice(0, 40))})`);
      return d;
    });
    rec.set(key, [...(rec.get(key) ?? []), fields]);
    if (!recLine.has(key)) recLine.set(key, i + 1);
  }
  const lineOf = (key: string) => recLine.get(key) ?? 0;
  const one = (key: string): string[] | undefined => rec.get(key)?.[0];
  const need = (key: string): string[] => {
    const r = one(key);
    if (!r) throw new FactsParseError(node, `missing "${key}" record`);
    return r;
  };
  const notes: string[] = [];

  const machine = (need('machine')[0] ?? '').trim();
  if (!machine) throw new FactsParseError(node, 'machine: empty `uname -m`');

  const [cbinRaw = '', cbinPath = ''] = one('containerd_binary') ?? [];
  const [runcPathRaw = '', source = ''] = need('runc_path');
  if (!['inventory', 'path', 'containerd', 'none'].includes(source)) throw new FactsParseError(node, `runc_path: unknown source ${JSON.stringify(source)}`);
  const runcPath = runcPathRaw.trim() || null;

  const [existsF = '0', execF = '0'] = one('runc_file') ?? [];
  const sumLine = one('runc_sha256')?.[0]?.trim() ?? '';
  let sha256: string | null = null;
  if (sumLine) {
    const m = /^([0-9a-f]{64})\s/i.exec(`${sumLine} `);
    if (!m?.[1]) throw new FactsParseError(node, `runc_sha256: not sha256sum output: ${JSON.stringify(sumLine.slice(0, 80))}`);
    sha256 = m[1].toLowerCase();
  }
  let versionLine: string | null = null;
  let version: string | null = null;
  const ver = one('runc_version');
  if (ver) {
    const [out = '', rc = ''] = ver;
    versionLine = out.split('\n')[0]?.trim() || null;
    version = versionLine ? parseVersionLine(versionLine) : null;
    if (rc.trim() === '137') notes.push('`runc --version` did not answer in time and was killed');
    else if (rc.trim() !== '0') notes.push(`\`runc --version\` exited with ${rc.trim()}`);
    else if (!version) notes.push(`cannot parse the runc version from ${JSON.stringify(versionLine ?? '')}`);
  }

  const state = one('state') ? parseState(one('state')![0] ?? '', notes) : null;

  const live = (one('sysctl_live')?.[0] ?? '').trim();
  const files: SysctlFile[] = [];
  for (const [path = '', real = '', grep = ''] of rec.get('sysctl_file') ?? []) {
    const settings = settingsInText(grepToText(grep));
    const f: SysctlFile = { path, settings };
    if (real && real !== path) f.realPath = real;
    files.push(f);
  }
  const dirs = (rec.get('sysctl_dir') ?? []).map((r) => r[0] ?? '');
  const names = dirs
    .filter((d) => (SYSCTL_DIRS as readonly string[]).includes(d))
    .map((dir) => ({ dir, names: files.filter((f) => f.path.startsWith(`${dir}/`)).map((f) => f.path.slice(dir.length + 1)) }));
  files.sort((a, b) => order(a.path) - order(b.path));

  return {
    machine,
    arch: archFromUname(machine),
    runcPath,
    runcPathSource: source as NodeFacts['runcPathSource'],
    containerdBinaryName: cbinPath.trim() || cbinRaw.trim() || null,
    runc: { exists: existsF === '1', executable: execF === '1', versionLine, version, sha256, ...realPathOf(one('runc_realpath')?.[0], runcPath) },
    packageOwner: parsePackageOwner(one('owner_dpkg')?.[0], one('owner_rpm')?.[0]),
    freeBytes: {
      runcDir: parseDfAvailable(one('df_runc_dir')?.[0] ?? ''),
      stateDir: parseDfAvailable(one('df_state_dir')?.[0] ?? ''),
    },
    sysctl: { live: live === '' ? null : int(node, lineOf('sysctl_live'), 'sysctl_live', live), files, names },
    stuck: parseStuckScan(lines.slice(scanAt, scanEnd + 1).join('\n'), sha256) ?? [],
    state,
    ...(notes.length ? { notes } : {}),
  };
}

function realPathOf(real: string | undefined, path: string | null): { realPath?: string } {
  const r = real?.trim();
  return r && r !== path ? { realPath: r } : {};
}

function order(path: string): number {
  if (path === SYSCTL_CONF) return SYSCTL_DIRS.length;
  const i = SYSCTL_DIRS.findIndex((d) => path.startsWith(`${d}/`));
  return i < 0 ? SYSCTL_DIRS.length + 1 : i;
}

/** `grep -n` output back to sparse file text, so line numbers survive. */
function grepToText(grep: string): string {
  const out: string[] = [];
  for (const l of grep.split('\n')) {
    const m = /^(\d+):(.*)$/.exec(l);
    if (m) out[Number(m[1]) - 1] = m[2]!;
  }
  return Array.from(out, (l) => l ?? '').join('\n');
}
