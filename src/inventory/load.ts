// Reading an inventory file: size cap, UTF-8, YAML, then the schema and rules
// (resolve.ts). Every failure is one InputError naming the file.
import { readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import type { Inventory } from '../core/types.js';
import { InputError, errorMessage } from '../errors.js';
import { detectInventoryFormat, parseAnsibleInventory, withOrigins } from './ansible.js';
import { parseSshConfig, type SshConfigFile } from '../ssh/ssh-config.js';
import { resolveInventory, resolveLocalPath, type SshOverrides } from './resolve.js';

/** A real fleet's inventory is kilobytes; anything near this is a mistake (or an attack on the parser). */
export const MAX_INVENTORY_BYTES = 5 * 1024 * 1024;

export interface LoadOptions {
  /** Home directory for `~` expansion (default: the current user's). */
  home?: string;
  /** Command-line SSH settings that beat the inventory's (both formats). */
  overrides?: SshOverrides;
  /**
   * ssh_config to read (`--ssh-config`): beats the inventory's `ssh.config`,
   * which beats `~/.ssh/config`; `none` reads none. Inventory values beat the config's.
   */
  sshConfig?: string;
  /** Local user name for `%u` in ssh_config paths. */
  localUser?: string;
}

export async function loadInventory(path: string, opts: LoadOptions = {}): Promise<Inventory> {
  const abs = resolve(path);
  const text = await readCapped(abs);
  return parseInventory(text, abs, opts);
}

/**
 * Parse inventory text as if read from `path` (absolute). Native runc-rollout
 * YAML and Ansible's INI and YAML inventories are told apart by content; an
 * Ansible inventory is mapped onto the native shape and then meets the same
 * validation, with each problem traced back to its line in the Ansible file.
 */
export function parseInventory(text: string, path: string, opts: LoadOptions = {}): Inventory {
  const fail = (message: string, issues: string[] = []) => new InputError(`inventory ${path}: ${message}`, issues);
  if (text.trim() === '') throw fail('the file is empty; it needs at least a `nodes:` list');
  const format = detectInventoryFormat(path, text);
  if (format !== 'native') return parseAnsible(text, path, format, opts);

  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
      return `${where}: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
    });
    throw fail(`YAML syntax error at ${lines[0]}`, lines);
  }
  if (doc.contents === null) throw fail('the file is empty (only comments); it needs at least a `nodes:` list');

  let raw: unknown;
  try {
    // The alias cap stops "billion laughs" documents from expanding in memory.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw fail(`YAML could not be read: ${errorMessage(err)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    const got = Array.isArray(raw) ? 'a list' : raw === null ? 'null' : `a ${typeof raw}`;
    throw fail(`the top level must be a mapping with a \`nodes:\` list, got ${got}`);
  }

  const { nodes, issues, warnings, source, sshSources } = resolveInventory(raw, { dir: dirname(path), home: opts.home ?? homedir(), overrides: opts.overrides, ...sshConfigContext(raw, path, opts, fail) });
  const yamlWarnings = doc.warnings.map((w) => `line ${w.linePos?.[0]?.line ?? '?'}: ${(w.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`);
  if (issues.length > 0) {
    throw fail(`${issues.length} problem${issues.length === 1 ? '' : 's'}: ${issues[0]}${issues.length > 1 ? ' ...' : ''}`, issues);
  }
  return { path, nodes, warnings: [...yamlWarnings, ...warnings], ...(source ? { source } : {}), ...(sshSources ? { sshSources } : {}) };
}

function parseAnsible(text: string, path: string, format: 'ansible-ini' | 'ansible-yaml', opts: LoadOptions): Inventory {
  const conv = parseAnsibleInventory(text, path, format, { sshUser: opts.overrides?.user });
  const sshCtx = sshConfigContext(conv.raw, path, opts, (m) => new InputError(`inventory ${path} (${format}): ${m}`));
  const { nodes, issues, warnings, sshSources } = resolveInventory(conv.raw, { dir: dirname(path), home: opts.home ?? homedir(), overrides: opts.overrides, ...sshCtx });
  if (issues.length > 0) {
    const traced = withOrigins(issues, conv.origins);
    throw new InputError(`inventory ${path} (${format}): ${traced.length} problem${traced.length === 1 ? '' : 's'}: ${traced[0]}${traced.length > 1 ? ' ...' : ''}`, traced);
  }
  return { path, nodes, warnings: [...conv.warnings, ...withOrigins(warnings, conv.origins)], ...(sshSources ? { sshSources } : {}) };
}

async function readCapped(abs: string): Promise<string> {
  let handle;
  try {
    handle = await open(abs, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new InputError(`inventory ${abs}: cannot read it: ${why}`);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new InputError(`inventory ${abs}: is a directory, expected a YAML file`);
    if (st.size > MAX_INVENTORY_BYTES) throw tooLarge(abs, st.size);
    // Read one byte past the cap: the file may be a pipe or may grow after stat.
    const buf = Buffer.alloc(MAX_INVENTORY_BYTES + 1);
    let len = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
      if (len > MAX_INVENTORY_BYTES) throw tooLarge(abs, len);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, len));
    } catch {
      throw new InputError(`inventory ${abs}: is not UTF-8 text`);
    }
  } finally {
    await handle.close();
  }
}

function tooLarge(abs: string, size: number): InputError {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return new InputError(`inventory ${abs}: is too large (${size > MAX_INVENTORY_BYTES + 1 ? mib(size) : `over ${mib(MAX_INVENTORY_BYTES)}`}); the limit is ${mib(MAX_INVENTORY_BYTES)}`);
}

/** ssh_config files are small; a bigger one is a mistake. */
const MAX_SSH_CONFIG_BYTES = 1024 * 1024;

/**
 * The ssh_config that applies: `--ssh-config` (opts.sshConfig), else the
 * inventory's `ssh.config` (relative to the inventory), else ~/.ssh/config if
 * it exists. A file named explicitly must be readable.
 */
function sshConfigContext(raw: unknown, path: string, opts: LoadOptions, fail: (message: string) => InputError): { sshConfig?: SshConfigFile; localUser?: string } {
  const home = opts.home ?? homedir();
  const fromInventory = (raw as { ssh?: { config?: unknown } | null } | null)?.ssh?.config;
  let file: string | undefined;
  let explicit = true;
  if (opts.sshConfig !== undefined) file = opts.sshConfig === 'none' ? undefined : resolve(opts.sshConfig);
  else if (typeof fromInventory === 'string') {
    const r = fromInventory === 'none' ? undefined : resolveLocalPath(fromInventory, { dir: dirname(path), home });
    if (r !== undefined && typeof r !== 'string') throw fail(`ssh.config: ${r.error}`);
    file = r;
  } else {
    file = join(home, '.ssh', 'config');
    explicit = false;
  }
  if (file === undefined) return {};
  let text: string;
  try {
    if (statSync(file).size > MAX_SSH_CONFIG_BYTES) throw fail(`ssh_config ${file} is larger than 1 MiB`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return {};
    throw fail(`cannot read ssh_config ${file}: ${code === 'ENOENT' ? 'no such file' : errorMessage(err)}`);
  }
  return { sshConfig: parseSshConfig(text, file), ...(opts.localUser ? { localUser: opts.localUser } : {}) };
}
