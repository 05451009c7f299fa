// Ansible's YAML inventory format, read with the `yaml` package:
//   all:
//     hosts: { name: { var: value } }
//     vars: { var: value }
//     children: { group: { hosts: ..., vars: ..., children: ... } }
// Walked on the document's nodes (not plain JS) so every message names its line.
import YAML, { LineCounter, isAlias, isMap, isNode, isScalar, type Document, type Node, type Pair, type ScalarTag } from 'yaml';
import { addChild, addHost, ensureGroup, LOOSE_GROUP_NAME_RE, newModel, parseHostEntry, type AnsibleModel, type Vars } from './ansible-model.js';

/** A value Ansible reads with ansible-vault; kept as its ciphertext and refused if used (see ansible.ts). */
export const VAULT_MARK = '$ANSIBLE_VAULT;';

// Ansible's own tags: `!vault` (encrypted) and `!unsafe` (not templated). Known
// to the parser so they load without "unresolved tag" warnings; a vaulted
// value keeps its ciphertext, which starts with VAULT_MARK.
export const ANSIBLE_TAGS: ScalarTag[] = [
  { tag: '!vault', resolve: (s: string) => (s.startsWith(VAULT_MARK) ? s : `${VAULT_MARK}${s}`) },
  { tag: '!unsafe', resolve: (s: string) => s },
];

export function parseAnsibleYaml(text: string, file: string): AnsibleModel {
  const model = newModel(file);
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, customTags: ANSIBLE_TAGS, prettyErrors: false });
  const at = (node: unknown) => {
    const offset = isNode(node) && node.range ? node.range[0] : 0;
    return `${file}:${lines.linePos(offset).line || 1}`;
  };
  const err = (node: unknown, message: string) => model.errors.push(`${at(node)}: ${message}`);
  for (const e of doc.errors) model.errors.push(`${file}:${e.linePos?.[0]?.line ?? '?'}: YAML syntax error: ${e.message.split('\n')[0]}`);
  if (doc.errors.length) return model;

  const deref = (v: unknown): unknown => (isAlias(v) ? v.resolve(doc as Document) : v);
  const toJS = (v: unknown): unknown => (isNode(v) ? v.toJS(doc as Document, { maxAliasCount: 100 }) : v);
  const keyOf = (pair: Pair): string | null => {
    const k = deref(pair.key);
    return isScalar(k) && (typeof k.value === 'string' || typeof k.value === 'number') ? String(k.value) : null;
  };

  function readVars(node: unknown, owner: string): Vars {
    const vars: Vars = {};
    const value = deref(node);
    if (value === null || (isScalar(value) && value.value === null)) return vars;
    if (!isMap(value)) {
      err(value, `vars of ${owner} must be a mapping`);
      return vars;
    }
    for (const pair of value.items) {
      const key = keyOf(pair);
      if (key === null) err(pair.key, `a variable name of ${owner} must be a string`);
      else vars[key] = { value: toJS(deref(pair.value)), where: at(pair.key) };
    }
    return vars;
  }

  function readGroup(name: string, node: unknown, parent: string | null, keyNode: unknown): void {
    if (!LOOSE_GROUP_NAME_RE.test(name)) return void err(keyNode, `"${name}" is not a usable group name (letters, digits, "_", "-", ".")`);
    if (parent) addChild(model, parent, name, at(keyNode));
    const group = ensureGroup(model, name, at(keyNode));
    const value = deref(node);
    if (value === null || value === undefined || (isScalar(value) && value.value === null)) return;
    if (!isMap(value)) return void err(value, `group "${name}" must be a mapping with hosts, children and vars`);
    for (const pair of value.items) {
      const key = keyOf(pair);
      const v = deref(pair.value);
      const empty = v === null || (isScalar(v) && v.value === null);
      if (key === 'vars') {
        Object.assign(group.vars, readVars(v, `group "${name}"`));
      } else if (key === 'hosts') {
        if (empty) continue;
        if (!isMap(v)) {
          err(v ?? pair.key, `hosts of group "${name}" must be a mapping of host names (a list is not Ansible's format)`);
          continue;
        }
        for (const h of v.items) readHost(name, h);
      } else if (key === 'children') {
        if (empty) continue;
        if (!isMap(v)) {
          err(v ?? pair.key, `children of group "${name}" must be a mapping of group names`);
          continue;
        }
        for (const c of v.items) {
          const child = keyOf(c);
          if (child === null) err(c.key, `a group name under "${name}" must be a string`);
          else readGroup(child, c.value, name, c.key);
        }
      } else {
        model.warnings.push(`${at(pair.key)}: group "${name}": key "${key ?? '?'}" is not hosts, children or vars; ignored (as Ansible does)`);
      }
    }
  }

  function readHost(group: string, pair: Pair): void {
    const entry = keyOf(pair);
    if (entry === null) return void err(pair.key, `a host name in group "${group}" must be a string`);
    const parsed = parseHostEntry(entry);
    if (typeof parsed === 'string') return void err(pair.key, parsed);
    const vars: Vars = {};
    if (parsed.port !== undefined) vars.ansible_port = { value: parsed.port, where: at(pair.key) };
    Object.assign(vars, readVars(pair.value, `host "${entry}"`));
    for (const name of parsed.names) addHost(model, group, name, vars, at(pair.key));
  }

  const root = deref(doc.contents as Node | null);
  if (!isMap(root)) {
    model.errors.push(`${file}:1: an Ansible YAML inventory must be a mapping of groups (usually starting with "all:")`);
    return model;
  }
  for (const pair of root.items) {
    const name = keyOf(pair);
    if (name === 'plugin') {
      const plugin = toJS(deref(pair.value));
      err(pair.key, `inventory plugins (plugin: ${String(plugin)}) are dynamic inventories and are not supported; export a static one with \`ansible-inventory -i FILE --list --yaml > hosts.yml\``);
      continue;
    }
    if (name === null) err(pair.key, 'a group name must be a string');
    // Top-level groups other than `all` are children of `all`, as in Ansible.
    else readGroup(name, pair.value, name === 'all' ? null : 'all', pair.key);
  }
  return model;
}
