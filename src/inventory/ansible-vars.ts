// One Ansible host's resolved variables -> one raw native node. What has a
// native meaning is mapped; what would make runc-rollout connect differently
// from Ansible (another connection type, ProxyCommand) is refused; what it
// cannot honour but can safely do without (passwords, extra ssh args) is warned
// about. Every message names the host and the file line of the variable.
import type { Located, Vars } from './ansible-model.js';
import { shellWords } from './ansible-ini.js';
import { VAULT_MARK } from './ansible-yaml.js';

export interface RawAnsibleNode {
  name: string;
  host: string;
  ssh?: { user?: unknown; port?: unknown; identityFile?: unknown; sudo?: boolean; jumpHost?: string };
  runc?: { path: unknown };
  smoke?: { command: unknown };
  /** Every group the host is in, ancestors included (not `all`), sorted: what `--limit GROUP` matches. */
  groups: string[];
}

export interface MappedHost {
  node: Omit<RawAnsibleNode, 'groups'>;
  /** Kept apart from the host so a group variable's problem can be given once for all its hosts. */
  errors: { where: string; message: string }[];
  warnings: { where: string; message: string }[];
  /** ansible_become is on but no user is known: reached as root, so no sudo. */
  becomeWithoutUser: boolean;
}

const SSH_CONNECTIONS = new Set(['ssh', 'smart', 'paramiko', 'paramiko_ssh', 'ansible.builtin.ssh', 'ansible.builtin.paramiko_ssh']);
/** Ansible variables with no bearing on how runc-rollout reaches or changes a node. */
const IRRELEVANT = new Set(['ansible_python_interpreter', 'ansible_group_priority', 'ansible_pipelining', 'ansible_ssh_pipelining', 'ansible_shell_type', 'ansible_shell_executable', 'ansible_ssh_retries', 'ansible_facts']);
const MAPPED = new Set([
  'ansible_host', 'ansible_ssh_host', 'ansible_port', 'ansible_ssh_port', 'ansible_user', 'ansible_ssh_user',
  'ansible_ssh_private_key_file', 'ansible_private_key_file', 'ansible_become', 'ansible_sudo', 'ansible_become_method',
  'ansible_become_user', 'ansible_connection', 'ansible_ssh_common_args', 'ansible_ssh_extra_args',
]);
const PASSWORDS = ['ansible_password', 'ansible_ssh_pass', 'ansible_ssh_password'];
const BECOME_PASSWORDS = ['ansible_become_password', 'ansible_become_pass', 'ansible_sudo_pass', 'ansible_sudo_password'];

/** Ansible's boolean reading (yes/no, true/false, on/off, 1/0, any case). */
export function ansibleBool(value: unknown): boolean | null {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value !== 'string') return null;
  const v = value.trim().toLowerCase();
  if (['yes', 'y', 'true', 't', 'on', '1'].includes(v)) return true;
  if (['no', 'n', 'false', 'f', 'off', '0'].includes(v)) return false;
  return null;
}

export function mapHost(name: string, vars: Vars, where: string, sshUser?: string): MappedHost {
  const errors: MappedHost['errors'] = [];
  const warnings: MappedHost['warnings'] = [];
  const at = (v: Located | undefined) => v?.where ?? where;
  const fail = (v: Located | undefined, message: string) => errors.push({ where: at(v), message });
  const warn = (v: Located | undefined, message: string) => warnings.push({ where: at(v), message });
  const first = (...keys: string[]): [string, Located] | undefined => {
    for (const k of keys) if (vars[k] !== undefined) return [k, vars[k]];
    return undefined;
  };

  /** A variable runc-rollout uses: must be a plain value it can read. */
  const plain = (key: string, v: Located): unknown => {
    const value = v.value;
    if (typeof value === 'string' && value.startsWith(VAULT_MARK)) {
      fail(v, `${key} is encrypted with ansible-vault, which runc-rollout cannot decrypt; write the value in clear (it is not a secret) or pass it as a flag`);
      return undefined;
    }
    if (typeof value === 'string' && /\{\{|\{%/.test(value)) {
      fail(v, `${key} is a Jinja template (${JSON.stringify(value)}), which runc-rollout does not evaluate; write the value out`);
      return undefined;
    }
    if (value !== null && typeof value === 'object') {
      fail(v, `${key} must be a single value, not a ${Array.isArray(value) ? 'list' : 'mapping'}`);
      return undefined;
    }
    return value;
  };
  const get = (...keys: string[]): [unknown, Located | undefined] => {
    const hit = first(...keys);
    return hit ? [plain(hit[0], hit[1]), hit[1]] : [undefined, undefined];
  };

  const [connection, connectionAt] = get('ansible_connection');
  if (connection !== undefined && connection !== null && !SSH_CONNECTIONS.has(String(connection))) {
    fail(connectionAt, `ansible_connection=${String(connection)} is not supported: runc-rollout reaches nodes over SSH only`);
  }

  const [host] = get('ansible_host', 'ansible_ssh_host');
  const [portValue, portAt] = get('ansible_port', 'ansible_ssh_port');
  let port: unknown = portValue;
  if (typeof portValue === 'string' && /^\d+$/.test(portValue.trim())) port = Number(portValue);
  else if (portValue !== undefined && typeof portValue !== 'number') fail(portAt, `ansible_port=${JSON.stringify(portValue)} is not a port number`);
  const [inventoryUser] = get('ansible_user', 'ansible_ssh_user');
  const user = sshUser ?? (inventoryUser === undefined || inventoryUser === null ? undefined : String(inventoryUser));
  const [identityFile] = get('ansible_ssh_private_key_file', 'ansible_private_key_file');

  let sudo: boolean | undefined;
  let becomeWithoutUser = false;
  const [becomeValue, becomeAt] = get('ansible_become', 'ansible_sudo');
  if (becomeValue !== undefined) {
    const become = ansibleBool(becomeValue);
    if (become === null) fail(becomeAt, `ansible_become=${JSON.stringify(becomeValue)} is not a boolean`);
    else {
      // sudo to root is the only escalation runc-rollout does, and only a non-root user needs it.
      sudo = become && user !== undefined && user !== 'root';
      becomeWithoutUser = become && user === undefined;
      if (become) {
        const [method, methodAt] = get('ansible_become_method');
        if (method !== undefined && method !== 'sudo') fail(methodAt, `ansible_become_method=${String(method)} is not supported: runc-rollout escalates with sudo -n only`);
        const [becomeUser, becomeUserAt] = get('ansible_become_user');
        if (becomeUser !== undefined && becomeUser !== 'root') fail(becomeUserAt, `ansible_become_user=${String(becomeUser)} is not supported: runc-rollout needs root`);
        const pass = first(...BECOME_PASSWORDS);
        if (pass) warn(pass[1], `${pass[0]} is not used: runc-rollout runs sudo -n, which needs passwordless sudo for ${user ?? 'the user'}`);
      }
    }
  }

  const password = first(...PASSWORDS);
  if (password) warn(password[1], `${password[0]} is not used: password authentication is not supported; the key file, --identity or the SSH agent is used`);

  let jumpHost: string | undefined;
  for (const key of ['ansible_ssh_common_args', 'ansible_ssh_extra_args']) {
    const v = vars[key];
    if (!v) continue;
    const value = plain(key, v);
    if (typeof value !== 'string') continue;
    const parsed = parseSshArgs(value);
    if (parsed.error) fail(v, `${key}: ${parsed.error}`);
    if (parsed.jumpHost) jumpHost = parsed.jumpHost;
    if (parsed.ignored.length) warn(v, `${key}: ${parsed.ignored.map((a) => JSON.stringify(a)).join(' ')} ignored (only ProxyJump / -J is understood)`);
  }

  for (const [key, v] of Object.entries(vars)) {
    if (!key.startsWith('ansible_') || MAPPED.has(key) || IRRELEVANT.has(key) || PASSWORDS.includes(key) || BECOME_PASSWORDS.includes(key)) continue;
    if (/host_key_checking$/.test(key)) warn(v, `${key} is ignored: host keys are always checked against known_hosts (use --known-hosts)`);
    else warn(v, `${key} is not supported by runc-rollout and is ignored`);
  }

  const node: MappedHost['node'] = { name, host: host === undefined || host === null ? name : String(host) };
  const ssh: NonNullable<RawAnsibleNode['ssh']> = {};
  if (user !== undefined) ssh.user = user;
  if (port !== undefined) ssh.port = port;
  if (identityFile !== undefined && identityFile !== null) ssh.identityFile = String(identityFile);
  if (sudo !== undefined) ssh.sudo = sudo;
  if (jumpHost) ssh.jumpHost = jumpHost;
  if (Object.keys(ssh).length) node.ssh = ssh;
  const runcPath = vars.runc_path && plain('runc_path', vars.runc_path);
  if (runcPath !== undefined && runcPath !== null) node.runc = { path: runcPath };
  const smoke = vars.runc_smoke_command && plain('runc_smoke_command', vars.runc_smoke_command);
  if (smoke !== undefined && smoke !== null) node.smoke = { command: smoke };
  return { node, errors, warnings, becomeWithoutUser };
}

/**
 * `ansible_ssh_common_args`: a single-hop ProxyJump (`-J x`, `-o ProxyJump=x`)
 * becomes the node's jump host; ProxyCommand is refused (runc-rollout cannot
 * run it); anything else is reported as ignored.
 */
export function parseSshArgs(args: string): { jumpHost?: string; error?: string; ignored: string[] } {
  const words = shellWords(args.replace(/#/g, '\\#'));
  if (typeof words === 'string') return { error: words, ignored: [] };
  const ignored: string[] = [];
  let jumpHost: string | undefined;
  let error: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let option: string | undefined;
    if (w === '-o') option = words[++i];
    else if (w.startsWith('-o')) option = w.slice(2);
    else if (w === '-J') option = `ProxyJump=${words[++i] ?? ''}`;
    if (option === undefined) {
      ignored.push(w);
      continue;
    }
    const [key = '', ...rest] = option.split(/=|\s+/);
    const value = rest.join('=').trim();
    if (/^proxyjump$/i.test(key)) {
      if (value.includes(',')) error = `ProxyJump with several hops (${value}) is not supported; one jump host only`;
      else jumpHost = value;
    } else if (/^proxycommand$/i.test(key)) {
      error = `ProxyCommand is not supported; use a single ProxyJump host (ssh.jumpHost in a native inventory)`;
    } else {
      ignored.push(`-o ${option}`);
    }
  }
  return { ...(jumpHost ? { jumpHost } : {}), ...(error ? { error } : {}), ignored };
}
