// The test fleet's public shapes. See fleet.ts for what each option does on a node.
import type { ExecResult } from './proc.js';

export type { ExecResult };

export const DEFAULT_RUNC_PATH = '/usr/local/sbin/runc';
export const DEFAULT_LIVE_SYSCTL = 16384;

export type FleetUser = 'root' | { name: string; sudo: 'nopasswd' | 'password' | 'none' };

export interface FleetNodeSpec {
  name: string;
  /** The node's starting runc: a local file copied to `path`. null: no runc at all (Debian's is hidden too). */
  runc?: { binary: string; path?: string } | null;
  sysctl?: {
    /** Starting live fs.pipe-user-pages-soft (default 16384). */
    live?: number;
    /** Bind the /proc entry read-only, so writing the sysctl fails with EROFS. */
    readOnly?: boolean;
    /** Starting persisted configuration: absolute path -> content, under /etc/sysctl.d/, /run/sysctl.d/, /usr/lib/sysctl.d/, or /etc/sysctl.conf. */
    files?: Record<string, string>;
  };
  /** The SSH user (default root). A non-root user gets its own passwd entry, home and sudoers rule on this node only. */
  user?: FleetUser;
  /** tmpfs size (e.g. '2m') shared by the runc directory and /var/lib/runc-rollout, for disk-full cases. */
  diskSize?: string;
  /** Content of a private /etc/containerd/config.toml. */
  containerdConfig?: string;
  labels?: Record<string, string>;
  /** Listed in the inventory, but nothing listens at its address. */
  down?: true;
  /** Accepts TCP at its address but never speaks SSH. */
  blackhole?: true;
  /** known_hosts holds a different key than the one its sshd serves. */
  hostKeyChanged?: true;
  /**
   * sshd also presents a host certificate (HostCertificate): its host key
   * signed by the fleet's host CA (Fleet.hostCa) for the node's address. The
   * fleet's known_hosts still lists the plain key.
   */
  hostCertificate?: true;
  /** sshd trusts user certificates signed by the fleet's user CA (Fleet.userCa): TrustedUserCAKeys. */
  trustUserCa?: true;
  /**
   * Programs that are BusyBox's applets on this node, as on Alpine hosts
   * (e.g. ['head', 'dd', 'tail']): /usr/bin/busybox is bind-mounted over each
   * inside the node (it picks the applet by the name it is run as).
   */
  busybox?: string[];
  /**
   * The node looks SELinux-enabled (a /sys/fs/selinux/enforce file; /sys/fs
   * is a private tmpfs with the real cgroup tree moved back in) on this
   * kernel, which has no SELinux: every label operation fails. For the path
   * where a label cannot be set; a real SELinux host cannot run here.
   */
  fakeSelinux?: true;
}

export interface FleetOptions {
  nodes: FleetNodeSpec[];
  /** How long one node may take to listen (default 20 s). */
  startTimeoutMs?: number;
  /**
   * Keep this machine's own root rc files on the nodes (its ~/.bashrc runs
   * `pyenv init`, ~0.6 s of CPU for every command sshd runs). Default false:
   * nodes get a stock root `.bashrc`, as real hosts have. Only the bench's
   * "heavy login shell" variant sets it.
   */
  hostRcFiles?: boolean;
}

export interface FleetNode {
  name: string;
  host: string;
  port: number;
  /**
   * The node's folder on the machine: hostkey(.pub) is the key its sshd
   * serves (hostkey-known.pub: the other key known_hosts lists, for
   * hostKeyChanged); sshd_config; ns-init.sh; sbin/ and state/ back the
   * node's /usr/local/sbin and /var/lib/runc-rollout unless diskSize puts
   * them on a tmpfs seen only inside the node. Use exec/readFile to look.
   */
  dir: string;
  /** SSH user name ('root' or the spec's user). */
  user: string;
  /** Whether the inventory asks for `sudo -n`. */
  sudo: boolean;
  /** Where the node's runc lives (null: no runc). */
  runcPath: string | null;
  kind: 'sshd' | 'down' | 'blackhole';
  spec: FleetNodeSpec;
}

export interface InventoryVariant {
  /** Per node name: fields deep-merged into that node's entry; null leaves the node out. */
  nodes?: Record<string, Record<string, unknown> | null>;
  /** File name inside the fleet folder, or an absolute path (default: a fresh inventory-N.yaml). */
  file?: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  /** Kill the command (its whole tree inside the node) after this long; the result is still returned. */
  timeoutMs?: number;
}

export interface BackgroundCommand {
  /** Kills the command and resolves with what it printed. */
  stop(): Promise<ExecResult>;
  /** Resolves when the command ends by itself (or is stopped). */
  done: Promise<ExecResult>;
}

export interface Fleet {
  /** The fleet's temp folder. */
  dir: string;
  /** 127.0.X.0: the loopback subnet this fleet holds. */
  subnet: number;
  nodes: FleetNode[];
  identityFile: string;
  knownHosts: string;
  /** Private key of the host CA (public key: `${hostCa}.pub`); only when a node has hostCertificate. */
  hostCa?: string;
  /** Private key of the user CA (public key: `${userCa}.pub`) for `ssh-keygen -s`; only when a node has trustUserCa. */
  userCa?: string;
  /** The default inventory, written at start. */
  inventoryPath: string;
  node(name: string): FleetNode;
  /** The default inventory as a plain object (a fresh copy each call). */
  inventory(): Record<string, unknown>;
  /** Writes a variant: `extra` is deep-merged over the top level (e.g. { ssh: { hostKeyPolicy: 'accept-new' } }). Returns its path. */
  writeInventory(extra?: Record<string, unknown>, variant?: InventoryVariant): string;
  /** Runs `sh -c command` as root inside the node's namespaces, bypassing SSH. */
  exec(name: string, command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but returns at once: for probes that run while the tool works. stop() kills the command's process tree. */
  background(name: string, command: string): BackgroundCommand;
  readFile(name: string, absPath: string): Promise<string>;
  fileExists(name: string, absPath: string): Promise<boolean>;
  sha256(name: string, absPath: string): Promise<string>;
  liveSysctl(name: string): Promise<number>;
  /** Digest of every file the tool may touch on the node, plus the live sysctl: compare before/after. */
  snapshot(name: string): Promise<Record<string, string>>;
  /** SIGKILLs the node's sshd and its per-connection children: open sessions drop. */
  killSshd(name: string): Promise<void>;
  /** Starts sshd again (killing a running one first) and waits until it listens. */
  restartSshd(name: string): Promise<void>;
  /** sshd's recent stderr for the node (for failure messages). */
  sshdLog(name: string): string;
  stop(): Promise<void>;
}
