// Lays out one node's folder on the machine and writes the script that runs as
// pid 1 of the node's fresh mount+pid namespaces. Every mount happens inside
// that namespace (propagation private), so the machine's own /etc, /usr,
// /run and sysctls are never written: the node sees private copies instead.
import { copyFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import { q } from '../../../src/core/shell.js';
import { DEFAULT_LIVE_SYSCTL, DEFAULT_RUNC_PATH, type FleetNodeSpec } from './types.js';

export const STATE_DIR = '/var/lib/runc-rollout';
const DEBIAN_RUNC = '/usr/sbin/runc';
const SYSCTL_DIRS = ['/etc/sysctl.d/', '/run/sysctl.d/', '/usr/lib/sysctl.d/'];
const BUSYBOX = '/usr/bin/busybox';

export interface NodeLayout {
  dir: string;
  host: string;
  port: number;
  /** The fleet's temp folder (parent of dir). */
  fleetDir: string;
  /** Shared authorized_keys of the fleet. */
  authorizedKeys: string;
  /** uid/gid for a non-root user. */
  uid: number;
  /** HostCertificate for sshd (the host key signed by the fleet's host CA). */
  hostCertificate?: string;
  /** TrustedUserCAKeys for sshd (the fleet's user CA public key). */
  trustedUserCaKeys?: string;
  /** Keep the machine's root rc files (FleetOptions.hostRcFiles). */
  hostRcFiles?: boolean;
}

// Debian's stock root ~/.bashrc does nothing for the non-interactive shell
// sshd starts per command. This build machine's runs `pyenv init` (~0.6 s of
// CPU per SSH command): a node must not inherit that, nor any other quirk of
// the machine's root home.
const STOCK_ROOT_BASHRC = `# ~/.bashrc: executed by bash(1) for non-login shells (stock Debian root).
[ -z "$PS1" ] && return
`;
const ROOT_RC_FILES = ['.bashrc', '.profile', '.bash_profile', '.bash_login'];

export function checkSpec(spec: FleetNodeSpec): void {
  const fail = (why: string) => { throw new Error(`fleet node ${spec.name}: ${why}`); };
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(spec.name)) fail('name must be [A-Za-z0-9._-]');
  const path = spec.runc?.path;
  if (path !== undefined) {
    if (!path.startsWith('/') || posix.normalize(path) !== path || path.endsWith('/')) fail(`runc.path ${path} must be absolute and normalized`);
    if (!existsSync(dirname(path))) fail(`runc.path's folder ${dirname(path)} must exist on the machine (it is overlaid, not created)`);
    if (path === DEBIAN_RUNC && spec.runc && !readFileSync(spec.runc.binary).equals(readFileSync(DEBIAN_RUNC))) {
      fail(`stand-ins exec ${DEBIAN_RUNC}, so only Debian's own runc can sit there`);
    }
  }
  for (const file of Object.keys(spec.sysctl?.files ?? {})) {
    const ok = file === '/etc/sysctl.conf' || SYSCTL_DIRS.some((d) => file.startsWith(d) && !file.slice(d.length).includes('/') && file.length > d.length);
    if (!ok) fail(`sysctl file ${file}: only /etc/sysctl.conf or a file directly under ${SYSCTL_DIRS.join(', ')}`);
  }
  for (const tool of spec.busybox ?? []) if (!/^[a-z0-9]+$/.test(tool)) fail(`busybox tool ${tool}: want a program name`);
  if (spec.busybox?.length && !existsSync(BUSYBOX)) fail(`busybox tools need ${BUSYBOX} (busybox-static)`);
  if (spec.diskSize !== undefined && !/^\d+[kmg]?$/i.test(spec.diskSize)) fail(`diskSize ${spec.diskSize}: want e.g. 2m`);
  if (typeof spec.user === 'object' && !/^[a-z_][a-z0-9_-]*$/.test(spec.user.name)) fail(`user name ${spec.user.name}: not a valid login`);
  const live = spec.sysctl?.live;
  if (live !== undefined && (!Number.isInteger(live) || live < 0)) fail(`sysctl.live ${live}: want a non-negative integer`);
}

export function runcPathOf(spec: FleetNodeSpec): string | null {
  return spec.runc ? spec.runc.path ?? DEFAULT_RUNC_PATH : null;
}

function sshdConfig(l: NodeLayout): string {
  return [
    `ListenAddress ${l.host}:${l.port}`,
    `HostKey ${l.dir}/hostkey`,
    ...(l.hostCertificate ? [`HostCertificate ${l.hostCertificate}`] : []),
    ...(l.trustedUserCaKeys ? [`TrustedUserCAKeys ${l.trustedUserCaKeys}`] : []),
    `AuthorizedKeysFile ${l.authorizedKeys}`,
    `PidFile ${l.dir}/sshd.pid`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // authorized_keys lives in the fleet's temp folder, not in a home the user owns.
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    'LogLevel VERBOSE',
    // The tool keeps one connection per node and opens many channels on it.
    'MaxSessions 100',
    'MaxStartups 100:30:200',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

/** Writes the node's files and returns the pid-1 script. */
export function prepareNode(spec: FleetNodeSpec, l: NodeLayout): string {
  const d = l.dir;
  const stage = `${d}/stage`;
  for (const sub of ['stage', 'sbin', 'state', 'sysctl.d', 'run-sysctl.d', 'disk']) mkdirSync(`${d}/${sub}`, { recursive: true });
  writeFileSync(`${d}/sshd_config`, sshdConfig(l));
  writeFileSync(`${d}/pipe-user-pages-soft`, `${spec.sysctl?.live ?? DEFAULT_LIVE_SYSCTL}\n`);

  const lines: string[] = ['set -euo pipefail', 'umask 022'];
  const sh = (...parts: string[]) => lines.push(parts.join(' '));
  const overlay = (target: string, base: string) => {
    sh('mkdir -p', q(`${base}/upper`), q(`${base}/work`));
    sh('mount -t overlay overlay -o', q(`lowerdir=${target},upperdir=${base}/upper,workdir=${base}/work`), q(target));
  };

  // A booted host has its own /run; sshd needs /run/sshd for privilege separation.
  sh('mount -t tmpfs -o mode=0755,size=16m tmpfs /run');
  sh('mkdir -p /run/sshd /run/runc /run/lock /run/sudo');
  if (Object.keys(spec.sysctl?.files ?? {}).some((f) => f.startsWith('/run/sysctl.d/'))) sh('mkdir -p /run/sysctl.d');

  // A private /tmp too, except the fleet's own folder (keys, homes, this script), moved back in at its path.
  const inTmp = l.fleetDir.startsWith('/tmp/');
  if (inTmp) sh('mkdir /run/.fleet && mount --bind', q(l.fleetDir), '/run/.fleet');
  sh('mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp');
  if (inTmp) sh('mkdir -p', q(l.fleetDir), '&& mount --move /run/.fleet', q(l.fleetDir), '&& rmdir /run/.fleet');

  if (!l.hostRcFiles) {
    // root's home is the machine's: hide its rc files behind stock ones (bind mounts over existing files only).
    writeFileSync(`${d}/root-bashrc`, STOCK_ROOT_BASHRC);
    writeFileSync(`${d}/root-empty-rc`, '');
    for (const f of ROOT_RC_FILES) {
      const src = f === '.bashrc' ? `${d}/root-bashrc` : `${d}/root-empty-rc`;
      sh(`if [ -f /root/${f} ]; then mount --bind`, q(src), `/root/${f}; fi`);
    }
  }
  overlay('/etc', `${d}/ovl/etc`);
  // Start from an empty sysctl.d so the persisted value does not depend on this machine's files.
  sh('mount --bind', q(`${d}/sysctl.d`), '/etc/sysctl.d');
  overlay('/usr/lib/sysctl.d', `${d}/ovl/usr-lib-sysctl.d`);

  // One small filesystem for the runc folder and the state folder, when asked.
  const disk = spec.diskSize ? `${d}/disk` : d;
  if (spec.diskSize) {
    sh('mount -t tmpfs -o', q(`size=${spec.diskSize},mode=0755`), 'tmpfs', q(disk));
    sh('mkdir -p', q(`${disk}/sbin`), q(`${disk}/state`));
  }
  sh('mount --bind', q(`${disk}/sbin`), '/usr/local/sbin');
  sh('mount --bind', q(`${disk}/state`), STATE_DIR);

  const runcPath = runcPathOf(spec);
  const runcDir = runcPath ? dirname(runcPath) : null;
  if (runcDir && runcDir !== '/usr/local/sbin' && runcDir !== STATE_DIR) overlay(runcDir, `${disk}/ovl/${runcDir.slice(1).replace(/\//g, '_')}`);
  if (spec.runc && runcPath) {
    copyFileSync(spec.runc.binary, `${stage}/runc`);
    sh('install -m 0755', q(`${stage}/runc`), q(runcPath));
  } else if (spec.runc === null && existsSync(DEBIAN_RUNC)) {
    // "No runc at all": hide Debian's from PATH on this node (a whiteout in a private overlay).
    overlay(dirname(DEBIAN_RUNC), `${d}/ovl/usr_sbin`);
    sh('rm -f', DEBIAN_RUNC);
  }

  // Every sysctl read-only, so nothing on a node can change the machine's; then our own writable entry on top.
  sh('mount --bind /proc/sys /proc/sys');
  sh('mount -o remount,bind,ro /proc/sys');
  sh('mount --bind', q(`${d}/pipe-user-pages-soft`), '/proc/sys/fs/pipe-user-pages-soft');
  if (spec.sysctl?.readOnly) sh('mount -o remount,bind,ro /proc/sys/fs/pipe-user-pages-soft');

  Object.entries(spec.sysctl?.files ?? {}).forEach(([target, content], i) => {
    writeFileSync(`${stage}/sysctl-${i}`, content);
    sh('install -D -m 0644', q(`${stage}/sysctl-${i}`), q(target));
  });
  if (spec.containerdConfig !== undefined) {
    writeFileSync(`${stage}/containerd.toml`, spec.containerdConfig);
    sh('install -D -m 0644', q(`${stage}/containerd.toml`), '/etc/containerd/config.toml');
  }
  if (typeof spec.user === 'object') addUser(spec.user, l, stage, sh);
  if (spec.fakeSelinux) {
    sh('mkdir /run/.cgroup && mount --rbind /sys/fs/cgroup /run/.cgroup');
    sh('mount -t tmpfs -o mode=0755,size=1m tmpfs /sys/fs');
    sh('mkdir /sys/fs/cgroup /sys/fs/selinux && echo 1 >/sys/fs/selinux/enforce');
    sh('mount --move /run/.cgroup /sys/fs/cgroup && rmdir /run/.cgroup');
  }
  // An Alpine-like userland: these names run BusyBox's applets, wherever PATH finds them.
  for (const tool of spec.busybox ?? []) sh(`mount --bind ${BUSYBOX} "$(command -v ${tool})"`);

  sh('echo ready');
  // Stay pid 1 (reaping orphans such as detached container inits) until the
  // harness closes our stdin: when it stops, or when its process dies.
  sh('read -r _ || true');
  return `${lines.join('\n')}\n`;
}

function addUser(user: { name: string; sudo: 'nopasswd' | 'password' | 'none' }, l: NodeLayout, stage: string, sh: (...p: string[]) => void): void {
  const home = `${l.dir}/home/${user.name}`;
  mkdirSync(home, { recursive: true, mode: 0o755 });
  chownSync(home, l.uid, l.uid);
  // '*' (no password, not locked): sshd without PAM refuses locked ('!') accounts.
  sh('printf "%s\\n"', q(`${user.name}:x:${l.uid}:${l.uid}::${home}:/bin/bash`), '>> /etc/passwd');
  sh('printf "%s\\n"', q(`${user.name}:*:19000:0:99999:7:::`), '>> /etc/shadow');
  sh('printf "%s\\n"', q(`${user.name}:x:${l.uid}:`), '>> /etc/group');
  sh('printf "%s\\n"', q(`${user.name}:!::`), '>> /etc/gshadow');
  if (user.sudo === 'none') return;
  const rule = user.sudo === 'nopasswd' ? `${user.name} ALL=(ALL:ALL) NOPASSWD: ALL\n` : `${user.name} ALL=(ALL:ALL) ALL\n`;
  writeFileSync(`${stage}/sudoers`, rule);
  chmodSync(`${stage}/sudoers`, 0o440);
  sh('install -m 0440 -o root -g root', q(`${stage}/sudoers`), '/etc/sudoers.d/90-runc-rollout-fleet');
}
