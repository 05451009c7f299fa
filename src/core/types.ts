// Shared data shapes of the pure core. The edges (ssh, github, fs) produce or
// consume these; nothing here does I/O.
import type { StuckRuncInit } from './stuck.js';

export const ARCHES = ['amd64', 'arm64', 'armhf', 'armel', 'ppc64le', 's390x', 'riscv64', '386'] as const;
export type Arch = (typeof ARCHES)[number];

/** The sysctl this tool restores, and the kernel's default for it. */
export const SYSCTL_KEY = 'fs.pipe-user-pages-soft';
export const SYSCTL_TARGET = 16384;
/** Where the persisted value is written on each node. */
export const SYSCTL_DROPIN = '/etc/sysctl.d/99-runc-rollout.conf';
/** Node-side state directory (backups, state.json, lock, smoke bundles). */
export const STATE_DIR = '/var/lib/runc-rollout';

export type HostKeyPolicy = 'strict' | 'accept-new';

export interface JumpHost {
  host: string;
  port: number;
  user: string;
  /** This hop's own keys (from its ssh_config); default: the node's. */
  identityFiles?: string[];
  identitiesOnly?: boolean;
  /** This hop's agent socket; null: no agent. Default: the node's. */
  agentSocket?: string | null;
  /** This hop's known_hosts files; default: the node's. */
  knownHostsFiles?: string[];
  hostKeyPolicy?: HostKeyPolicy;
}

/** Everything needed to open an SSH session to one node, fully resolved (no defaults left). */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Absolute path of a private key file, if any. The agent is used too when SSH_AUTH_SOCK is given. */
  identityFile?: string;
  /** Absolute path of the known_hosts file host keys are checked against. */
  knownHosts: string;
  hostKeyPolicy: HostKeyPolicy;
  /** Run remote commands through `sudo -n`. */
  sudo: boolean;
  jumpHost?: JumpHost;
  /** Private key files tried in order (ssh_config IdentityFile); when set, `identityFile` is its first entry. */
  identityFiles?: string[];
  /** Only the identity files, never the agent (ssh_config IdentitiesOnly). */
  identitiesOnly?: boolean;
  /** Agent socket for this node (ssh_config IdentityAgent); null: no agent. Default: the transport's. */
  agentSocket?: string | null;
  /** Every known_hosts file checked (ssh_config UserKnownHostsFile); `knownHosts` is its first entry, where accept-new appends. */
  knownHostsFiles?: string[];
  /** A jump chain, nearest hop first (ssh_config ProxyJump a,b,c); beats `jumpHost` when set. */
  jumpHosts?: JumpHost[];
  /** Per-node connect deadline (ssh_config ConnectTimeout); beats the transport's. */
  connectTimeoutMs?: number;
  /** Per-node keepalive (ssh_config ServerAliveInterval / ServerAliveCountMax). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
}

/** One node of a loaded, validated inventory. */
export interface NodeSpec {
  name: string;
  ssh: SshTarget;
  /** runc path from the inventory; detected on the node when absent. */
  runcPath?: string;
  /** Site-specific smoke command run in addition to the built-in smoke container. */
  smokeCommand?: string;
  labels: Record<string, string>;
  /** Ansible groups the node belongs to (ancestors included); `--limit GROUP` selects by them. */
  groups?: string[];
  /** Health gates (inventory `health:`), when configured: checked before the change, after the swap and after the sysctl step. */
  health?: HealthSpec;
}

/** Resolved `health:` of one node (node fields over top-level ones). */
export interface HealthSpec {
  /** Check kubelet's healthz at `kubeletUrl` (answers `ok`). */
  kubelet: boolean;
  kubeletUrl: string;
  /** Each check is retried until it passes or this much time has gone. */
  timeoutMs: number;
  /** After a pass, wait this long and check once more (PLEG problems show only after a relist). */
  settleMs: number;
  /** Shell commands (`sh -c`) that must exit 0. */
  commands: string[];
}

export interface Inventory {
  /** Absolute path of the file it was loaded from. */
  path: string;
  nodes: NodeSpec[];
  /** Non-fatal problems (unknown keys and the like), `path: message`. */
  warnings: string[];
  /** Per node: which source (inventory, command line, ssh_config FILE, default) gave each SSH setting; only when an ssh_config was read. */
  sshSources?: Record<string, Record<string, string>>;
  /** `kubernetes` when written by `inventory from-kubectl`: control-plane nodes go last by default. */
  source?: 'kubernetes';
}

/** One `KEY = VALUE` line for our sysctl in a sysctl configuration file. */
export interface SysctlSetting {
  line: number; // 1-based
  value: string;
  /** The line names the key by a glob (`fs.pipe-user-*`): systemd-sysctl lets any explicit assignment win over it. */
  glob?: boolean;
}

export interface SysctlFile {
  /** Absolute path, e.g. /etc/sysctl.d/90-pipe.conf or /etc/sysctl.conf. */
  path: string;
  /** Lines that set fs.pipe-user-pages-soft (dotted or slashed form). */
  settings: SysctlSetting[];
  /**
   * Resolved target when `path` is a symlink (e.g. /etc/sysctl.d/99-sysctl.conf -> /etc/sysctl.conf),
   * so one file reached twice is counted and edited once, through its real path.
   */
  realPath?: string;
}

export interface NodeFacts {
  /** Raw `uname -m`. */
  machine: string;
  arch: Arch | null;
  runcPath: string | null;
  runcPathSource: 'inventory' | 'path' | 'containerd' | 'none';
  /** BinaryName of the runc runtime in /etc/containerd/config.toml, when set; resolved on PATH when it is a bare name. */
  containerdBinaryName: string | null;
  runc: {
    exists: boolean;
    executable: boolean;
    /** First line of `runc --version`, raw. */
    versionLine: string | null;
    /** Parsed version, e.g. `1.0.0-rc93`, `1.1.5+ds1`. */
    version: string | null;
    sha256: string | null;
    /** Where the path resolves when it is a symlink (e.g. /usr/bin/runc -> /usr/sbin/runc); absent otherwise. */
    realPath?: string;
  };
  /** Package that owns the binary (dpkg -S / rpm -qf), if any. */
  packageOwner: string | null;
  freeBytes: { runcDir: number | null; stateDir: number | null };
  sysctl: {
    live: number | null;
    /** All sysctl.d *.conf files in systemd-sysctl search order, then /etc/sysctl.conf; only files that exist. */
    files: SysctlFile[];
    /** Every *.conf name found per search dir, for override-by-name resolution. */
    names: { dir: string; names: string[] }[];
  };
  /** `runc init` processes blocked writing into a pipe for longer than --stuck-after: the rc93 hang's symptom. */
  stuck: StuckRuncInit[];
  /** Parsed /var/lib/runc-rollout/state.json, when present. */
  state: NodeState | null;
  /** Oddities met while gathering (unreadable state.json, `runc --version` timed out, ...); shown as warnings. */
  notes?: string[];
}

export interface VersionDigest {
  version: string | null;
  sha256: string | null;
}

/** Persisted on each node at STATE_DIR/state.json: what the last apply changed, for rollback. */
export interface NodeState {
  schema: 1;
  runId: string;
  updatedAt: string;
  runcPath: string;
  phase: 'staged' | 'backed-up' | 'swapped' | 'sysctl-applied' | 'done' | 'rolled-back';
  /**
   * `metadata: 'backup'`: the backup carries the original's owner, group,
   * mode, file capabilities and SELinux label, and a rollback takes them from
   * it (absent in records of older versions: from the runc in place).
   */
  original: { version: string | null; sha256: string; backupPath: string; metadata?: 'backup' };
  target: { version: string; sha256: string };
  sysctl: {
    liveBefore: number | null;
    /** Files this run changed; backupPath null means the file did not exist before. */
    files: SysctlFileRecord[];
  };
}

/**
 * A sysctl file a change wrote, and how to tell it is still as the change
 * left it (a rollback never overwrites a file changed since): `written`, the
 * sha256 of the whole file the change wrote (the drop-in); `commented`, lines
 * commented out with the marker, nothing else (the file minus the markers is
 * its backup). Neither: a record of an older version, restored as before.
 */
export interface SysctlFileRecord {
  path: string;
  backupPath: string | null;
  written?: string;
  commented?: true;
}

/** A verified, locally available release binary for one architecture. */
export interface ReleaseAsset {
  arch: Arch;
  name: string; // runc.<arch>
  sha256: string;
  size: number;
  /** Local path of the verified file (cache or --release-dir). */
  path: string;
}

export interface VerifiedRelease {
  repo: string; // owner/name
  tag: string; // v1.2.9
  version: string; // 1.2.9
  prerelease: boolean;
  /** name -> sha256 from the verified runc.sha256sum. */
  checksums: Record<string, string>;
  assets: Partial<Record<Arch, ReleaseAsset>>;
  /** Fingerprints of the keys whose signatures were verified. */
  signers: string[];
  /** False only with --insecure-skip-signature. */
  signatureVerified: boolean;
}

export type PlanAction = 'upgrade' | 'downgrade' | 'none' | 'blocked' | 'unreachable';

export interface SysctlPlan {
  live: number | null;
  /** Value that would hold after a reboot (null: no file sets it, kernel default). */
  persisted: number | null;
  /** File (and line) that sets the persisted value, e.g. `/etc/sysctl.d/90-pipe.conf:3`. */
  persistedFrom: string | null;
  target: number;
  changeLive: boolean;
  changePersisted: boolean;
  /**
   * Lines that would override the drop-in after a reboot; apply comments them out (with a backup of the file).
   * `path` is the real file (symlinks resolved), each listed once.
   */
  commentOut: { path: string; lines: number[] }[];
}

export interface NodePlan {
  name: string;
  host: string;
  port: number;
  arch: Arch | null;
  runcPath: string | null;
  /** `downgrade` only with --allow-downgrade; otherwise a downgrade is `blocked` with the reason in `error`. */
  action: PlanAction;
  current: VersionDigest | null;
  target: { version: string; sha256: string } | null;
  sysctl: SysctlPlan | null;
  warnings: string[];
  /** Why the node is blocked or unreachable. */
  error: string | null;
  /** `runc init` processes blocked writing into a pipe for longer than --stuck-after (absent in plans of older versions). */
  stuck?: StuckRuncInit[];
}

export interface Plan {
  schema: 1;
  createdAt: string;
  tool: { name: 'runc-rollout'; version: string };
  release: {
    repo: string;
    tag: string;
    version: string;
    signatureVerified: boolean;
    assets: Partial<Record<Arch, { name: string; sha256: string; size: number }>>;
  };
  /** Absolute inventory path the plan was made from. */
  inventory: string;
  limit: string[];
  /** `--shard i/n` the plan was made with, if any. */
  shard?: string | null;
  options: { allowDowngrade: boolean; stuckAfterSeconds?: number };
  nodes: NodePlan[];
  summary: { upgrade: number; downgrade: number; unchanged: number; blocked: number; unreachable: number };
}
