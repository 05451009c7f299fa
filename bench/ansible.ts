// The peer: Debian's Ansible with the playbook an SRE would write for the same
// job. The text generators are pure (unit-testable); writeAnsibleProject puts
// them in a folder and runAnsible times one ansible-playbook run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSmokeConfig } from '../src/apply/smoke.js';
import { measured, type Counters, type MeasuredRun } from './measure.js';

export const RUNC_PATH = '/usr/local/sbin/runc';
export const SMOKE_OK = 'ansible-smoke-ok';

export interface AnsibleHost {
  name: string;
  host: string;
}

export interface AnsibleSettings {
  hosts: AnsibleHost[];
  user: string;
  identityFile: string;
  knownHosts: string;
  forks: number;
  /** Where OpenSSH ControlPersist sockets go (one master connection per node). */
  controlPathDir: string;
  localTmp: string;
}

/** Values go through YAML/INI as they are: refuse anything that would need quoting. */
function plain(what: string, v: string): string {
  if (!/^[A-Za-z0-9._/@:+-]+$/.test(v)) throw new Error(`ansible ${what}: ${JSON.stringify(v)} has characters the generated files do not quote`);
  return v;
}

export function inventoryIni(s: Pick<AnsibleSettings, 'hosts' | 'user' | 'identityFile'>): string {
  const lines = ['[fleet]', ...s.hosts.map((h) => `${plain('host name', h.name)} ansible_host=${plain('address', h.host)}`), '', '[fleet:vars]'];
  lines.push(`ansible_user=${plain('user', s.user)}`, `ansible_ssh_private_key_file=${plain('key', s.identityFile)}`, 'ansible_python_interpreter=/usr/bin/python3', '');
  return lines.join('\n');
}

/**
 * ansible.cfg: pipelining on, forks = our --parallel, host keys checked
 * against the same known_hosts as runc-rollout, no user ssh_config (the bench
 * passes --ssh-config none to runc-rollout too), and Ansible's own default
 * ControlMaster/ControlPersist so each node gets one connection per playbook.
 */
export function ansibleCfg(s: AnsibleSettings, inventoryPath: string): string {
  const sshArgs = ['-F /dev/null', '-o ControlMaster=auto', '-o ControlPersist=60s', `-o UserKnownHostsFile=${plain('known_hosts', s.knownHosts)}`, '-o StrictHostKeyChecking=yes', '-o BatchMode=yes'];
  return `[defaults]
inventory = ${plain('inventory', inventoryPath)}
forks = ${s.forks}
host_key_checking = True
gathering = explicit
interpreter_python = /usr/bin/python3
remote_tmp = /tmp/.ansible-bench
local_tmp = ${plain('local_tmp', s.localTmp)}
retry_files_enabled = False
deprecation_warnings = False
nocolor = True

[ssh_connection]
pipelining = True
ssh_args = ${sshArgs.join(' ')}
control_path_dir = ${plain('control_path_dir', s.controlPathDir)}
`;
}

const factTask = (name: string, register: string, command: string) => `    - name: ${name}
      ansible.builtin.command: ${command}
      check_mode: false
      changed_when: false
      register: ${register}
`;

/** The facts runc-rollout plan gathers, one command task each, run with --check. */
export function planPlaybook(runcPath = RUNC_PATH): string {
  return `- name: what an upgrade of runc would change
  hosts: fleet
  gather_facts: false
  tasks:
${factTask('architecture', 'arch', 'uname -m')}${factTask('runc version', 'runc_version', `${runcPath} --version`)}${factTask('runc digest', 'runc_sha', `sha256sum ${runcPath}`)}${factTask('fs.pipe-user-pages-soft', 'pipe_pages', 'cat /proc/sys/fs/pipe-user-pages-soft')}    - name: plan
      ansible.builtin.debug:
        msg: "{{ arch.stdout }} {{ runc_version.stdout_lines[0] }} {{ runc_sha.stdout.split()[0][:12] }} sysctl {{ pipe_pages.stdout }}"
`;
}

export interface ApplyPlaybookOptions {
  serial: number;
  /** The release binary on the controller. */
  binary: string;
  /** The smoke bundle's config.json on the controller. */
  bundleConfig: string;
  /** ansible.posix.sysctl when the collection is there, else sysctl -w plus a drop-in. */
  posixSysctl: boolean;
  runcPath?: string;
}

/**
 * serial: B; copy the binary to a temp name next to runc, back up, move into
 * place, run one container (the smoke bundle: empty rootfs, read-only host
 * binds, the same seccomp profile), set the sysctl; rescue restores the backup.
 */
export function applyPlaybook(o: ApplyPlaybookOptions): string {
  const runc = o.runcPath ?? RUNC_PATH;
  const sysctl = o.posixSysctl
    ? `        - name: fs.pipe-user-pages-soft back to its default
          ansible.posix.sysctl:
            name: fs.pipe-user-pages-soft
            value: "16384"
            sysctl_file: /etc/sysctl.d/99-runc.conf
            reload: true
`
    : `        - name: fs.pipe-user-pages-soft back to its default
          ansible.builtin.shell: sysctl -w fs.pipe-user-pages-soft=16384 && echo 'fs.pipe-user-pages-soft = 16384' > /etc/sysctl.d/99-runc.conf
`;
  return `- name: upgrade runc
  hosts: fleet
  gather_facts: false
  serial: ${o.serial}
  vars:
    runc_path: ${plain('runc path', runc)}
    staged: ${plain('staged', runc.replace(/[^/]+$/, '.runc.ansible-new'))}
    backup: ${plain('backup', `${runc}.ansible-backup`)}
    bundle: /tmp/ansible-smoke
    smoke_root: /run/ansible-smoke
  tasks:
    - block:
        - name: copy the release binary to a temp name next to runc
          ansible.builtin.copy:
            src: ${plain('binary', o.binary)}
            dest: "{{ staged }}"
            mode: "0755"
        - name: back up the current runc
          ansible.builtin.copy:
            src: "{{ runc_path }}"
            dest: "{{ backup }}"
            remote_src: true
            mode: preserve
        - name: move the new runc into place
          ansible.builtin.command: mv -f {{ staged }} {{ runc_path }}
        - name: smoke bundle root
          ansible.builtin.file:
            path: "{{ bundle }}/rootfs"
            state: directory
        - name: smoke bundle config
          ansible.builtin.copy:
            src: ${plain('bundle config', o.bundleConfig)}
            dest: "{{ bundle }}/config.json"
        - name: run a container with the new runc
          ansible.builtin.command: "{{ runc_path }} --root {{ smoke_root }} run --bundle {{ bundle }} ansible-smoke-{{ inventory_hostname }}"
          register: smoke
          failed_when: smoke.rc != 0 or '${SMOKE_OK}' not in smoke.stdout
${sysctl}      rescue:
        - name: restore the backup
          ansible.builtin.shell: test -f {{ backup }} && cp -p {{ backup }} {{ staged }} && mv -f {{ staged }} {{ runc_path }}
        - name: fail the host
          ansible.builtin.fail:
            msg: runc upgrade failed; the backup was restored
`;
}

/** The smoke container for Ansible: runc-rollout's bundle (same mounts and seccomp profile), run once in the foreground. */
export function ansibleSmokeConfig(hasLib64: boolean): string {
  const c = buildSmokeConfig({ hasLib64, cgroupName: 'unused' }) as Record<string, unknown> & { process: Record<string, unknown>; linux: Record<string, unknown> };
  c.process = { ...c.process, args: ['/bin/sh', '-c', `echo ${SMOKE_OK}`] };
  // No cgroupsPath: runc names the cgroup after the container id, which is per node.
  const { cgroupsPath: _unused, ...linux } = c.linux;
  c.linux = linux;
  return JSON.stringify(c);
}

export interface AnsibleProject {
  dir: string;
  cfg: string;
  plan: string;
  apply: string;
}

export function writeAnsibleProject(dir: string, s: AnsibleSettings, apply: Omit<ApplyPlaybookOptions, 'bundleConfig'>, hasLib64: boolean): AnsibleProject {
  mkdirSync(dir, { recursive: true });
  mkdirSync(s.controlPathDir, { recursive: true, mode: 0o700 });
  mkdirSync(s.localTmp, { recursive: true, mode: 0o700 });
  const inv = join(dir, 'inventory.ini');
  writeFileSync(inv, inventoryIni(s));
  const cfg = join(dir, 'ansible.cfg');
  writeFileSync(cfg, ansibleCfg(s, inv));
  const bundleConfig = join(dir, 'smoke-config.json');
  writeFileSync(bundleConfig, ansibleSmokeConfig(hasLib64));
  const plan = join(dir, 'plan.yml');
  writeFileSync(plan, planPlaybook());
  const applyPath = join(dir, 'apply.yml');
  writeFileSync(applyPath, applyPlaybook({ ...apply, bundleConfig }));
  return { dir, cfg, plan, apply: applyPath };
}

export function runAnsible(work: string, tag: string, project: AnsibleProject, phase: 'plan' | 'apply', counters: Counters | null): Promise<MeasuredRun> {
  const args = ['ansible-playbook', phase === 'plan' ? project.plan : project.apply, ...(phase === 'plan' ? ['--check'] : [])];
  const env = { ...process.env, ANSIBLE_CONFIG: project.cfg, ANSIBLE_NOCOLOR: '1', ANSIBLE_HOST_KEY_CHECKING: 'True' };
  return measured(work, tag, args, { env, cwd: project.dir, counters });
}
