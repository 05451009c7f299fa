// Ansible's INI inventory dialect, read line by line. Not the `ini` package:
// Ansible's host lines are `name key=value key=value` (no `=` after the name),
// sections repeat and merge, `[group:children]` / `[group:vars]` carry meaning
// in the header, and every message must name its line. The `ini` package reads
// `web1 ansible_host=10.0.0.1 ansible_port=2222` as the key "web1 ansible_host"
// with the value "10.0.0.1 ansible_port=2222" and keeps no line numbers, so a
// small parser that follows ansible/plugins/inventory/ini.py is used instead.
import {
  GROUP_NAME_RE,
  LOOSE_GROUP_NAME_RE,
  addChild,
  addHost,
  ensureGroup,
  newModel,
  parseHostEntry,
  type AnsibleModel,
  type Vars,
} from './ansible-model.js';

const SECTION_RE = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$/;
const CHILD_RE = /^([^:\]\s#;]+)\s*(?:[#;].*)?$/;
const VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A value as Ansible's INI plugin reads it (Python's ast.literal_eval, else the
 * text): integers and floats become numbers, True/False booleans, None null,
 * a quoted string its contents. `yes`/`true` stay strings, as in Ansible.
 */
export function parseIniValue(text: string): unknown {
  const v = text.trim();
  if (/^-?(0|[1-9]\d*)$/.test(v)) return Number(v);
  if (/^-?\d+\.\d*$/.test(v)) return Number(v);
  if (v === 'True') return true;
  if (v === 'False') return false;
  if (v === 'None') return null;
  const q = /^'((?:[^'\\]|\\.)*)'$|^"((?:[^"\\]|\\.)*)"$/.exec(v);
  if (q) return (q[1] ?? q[2] ?? '').replace(/\\(.)/g, '$1');
  return v;
}

/**
 * Split a host line like POSIX shlex with comments (what ansible uses):
 * whitespace separates words, quotes group, a backslash escapes, and an
 * unquoted `#` starts a comment. Returns an error string for an open quote.
 */
export function shellWords(line: string): string[] | string {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '#') break;
    if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '\\') {
      word += line[++i] ?? '';
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return 'unterminated single quote';
      word += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && /["\\$`]/.test(line[j + 1] ?? '')) j++;
        word += line[j];
      }
      if (j >= line.length) return 'unterminated double quote';
      i = j;
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}

type State = 'hosts' | 'children' | 'vars';

export function parseAnsibleIni(text: string, file: string): AnsibleModel {
  const model = newModel(file);
  const err = (line: number, message: string) => model.errors.push(`${file}:${line}: ${message}`);
  // Ansible refuses [x:vars] for a group declared nowhere and [x:children] naming an undeclared group.
  const declared = new Set<string>(['all', 'ungrouped']);
  const pending: { group: string; line: number; message: string }[] = [];

  let state: State = 'hosts';
  let group = 'ungrouped';
  text.split(/\r?\n/).forEach((raw, index) => {
    const n = index + 1;
    const where = `${file}:${n}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;

    if (line.startsWith('[')) {
      const m = SECTION_RE.exec(line);
      if (!m) return void err(n, `invalid section header ${JSON.stringify(line)}; expected [group], [group:children] or [group:vars]`);
      const [, name = '', kind = 'hosts'] = m;
      if (kind !== 'hosts' && kind !== 'children' && kind !== 'vars') {
        return void err(n, `section [${name}:${kind}] has an unknown type "${kind}"; expected children or vars`);
      }
      if (!LOOSE_GROUP_NAME_RE.test(name)) return void err(n, `"${name}" is not a usable group name (letters, digits, "_", "-", ".")`);
      if (!GROUP_NAME_RE.test(name)) model.warnings.push(`${where}: group name "${name}" has characters Ansible warns about; it is kept as written`);
      state = kind;
      group = name;
      ensureGroup(model, name, where);
      if (kind === 'vars') pending.push({ group: name, line: n, message: `section [${name}:vars] is for a group that is never declared` });
      else declared.add(name);
      return;
    }

    if (state === 'children') {
      const m = CHILD_RE.exec(line);
      if (!m) return void err(n, `expected one group name per line in [${group}:children], got ${JSON.stringify(line)}`);
      const child = m[1]!;
      if (!LOOSE_GROUP_NAME_RE.test(child)) return void err(n, `"${child}" is not a usable group name`);
      addChild(model, group, child, where);
      pending.push({ group: child, line: n, message: `section [${group}:children] names group "${child}", which is never declared` });
      return;
    }

    if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) return void err(n, `expected key=value in [${group}:vars], got ${JSON.stringify(line)}`);
      const key = line.slice(0, eq).trim();
      if (!VAR_NAME_RE.test(key)) return void err(n, `"${key}" is not a valid variable name`);
      ensureGroup(model, group, where).vars[key] = { value: parseIniValue(line.slice(eq + 1)), where };
      return;
    }

    const words = shellWords(line);
    if (typeof words === 'string') return void err(n, `${words} in host line ${JSON.stringify(line)}`);
    if (words.length === 0) return; // only a comment after whitespace
    const [entry = '', ...assignments] = words;
    const vars: Vars = {};
    const entryParsed = parseHostEntry(entry);
    if (typeof entryParsed === 'string') return void err(n, entryParsed);
    if (entryParsed.port !== undefined) vars.ansible_port = { value: entryParsed.port, where };
    for (const a of assignments) {
      const eq = a.indexOf('=');
      const key = eq < 0 ? '' : a.slice(0, eq);
      if (!VAR_NAME_RE.test(key)) return void err(n, `expected key=value host variable after "${entry}", got ${JSON.stringify(a)}`);
      vars[key] = { value: parseIniValue(a.slice(eq + 1)), where };
    }
    for (const name of entryParsed.names) addHost(model, group, name, vars, where);
  });

  for (const p of pending) if (!declared.has(p.group)) err(p.line, p.message);
  return model;
}
