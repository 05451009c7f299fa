// Which identity files will need a passphrase, found before any connection is
// opened: the CLI asks for them once, on the terminal, before the task list
// draws (a prompt in the middle of listr output would be lost or garbled).
// Reads key files and asks agents for their public keys; never prompts and
// never reads the environment (the CLI passes the agent socket in).
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { NodeSpec } from '../core/types.js';

/** The agent one hop tries after its identity files, as connect.ts's hopAuth decides it. */
export function effectiveAgent(files: string[], agent: string | null | undefined, identitiesOnly: boolean, defaultAgent: string | undefined): string | undefined {
  if (identitiesOnly && files.length > 0) return undefined;
  return agent === null ? undefined : (agent ?? defaultAgent);
}

const filesOf = (t: { identityFile?: string; identityFiles?: string[] }): string[] => (t.identityFiles?.length ? t.identityFiles : t.identityFile ? [t.identityFile] : []);

/**
 * Every identity file the nodes' connections would load, with the agent each
 * use of it falls back to (undefined: none). Mirrors openConnection: a jump
 * hop with neither its own files nor its own agent authenticates like the node.
 */
export function identityUses(nodes: NodeSpec[], defaultAgent: string | undefined): Map<string, (string | undefined)[]> {
  const uses = new Map<string, (string | undefined)[]>();
  const add = (files: string[], agent: string | undefined) => {
    for (const f of files) uses.set(f, [...(uses.get(f) ?? []), agent]);
  };
  for (const { ssh: t } of nodes) {
    const nodeFiles = filesOf(t);
    add(nodeFiles, effectiveAgent(nodeFiles, t.agentSocket, t.identitiesOnly ?? false, defaultAgent));
    const chain = t.jumpHosts?.length ? t.jumpHosts : t.jumpHost ? [t.jumpHost] : [];
    for (const j of chain) {
      if (!j.identityFiles?.length && j.agentSocket === undefined) continue;
      const files = j.identityFiles?.length ? j.identityFiles : nodeFiles;
      add(files, effectiveAgent(files, j.agentSocket === undefined ? t.agentSocket : j.agentSocket, j.identitiesOnly ?? false, defaultAgent));
    }
  }
  return uses;
}

export interface KeyFileInfo {
  encrypted: boolean;
  /** The public key (SSH wire format), when it can be had without the passphrase. */
  publicKey?: Buffer;
}

/**
 * The encrypted files that some use cannot do without: an encrypted key is
 * skipped without asking only when every hop that uses it has an agent that
 * holds the same key (ssh(1) would sign with the agent's copy too).
 */
export function filesNeedingPassphrase(uses: Map<string, (string | undefined)[]>, info: Map<string, KeyFileInfo>, agentKeys: Map<string, Buffer[]>): string[] {
  return [...uses].flatMap(([file, agents]) => {
    const i = info.get(file);
    if (!i?.encrypted) return [];
    const pub = i.publicKey;
    const covered = pub !== undefined && agents.every((a) => a !== undefined && (agentKeys.get(a) ?? []).some((k) => k.equals(pub)));
    return covered ? [] : [file];
  });
}

/** ssh2's answer for an encrypted key parsed without a passphrase (OpenSSH and PEM formats alike). */
const NO_PASSPHRASE = /no passphrase/i;

/** The first public key of an `openssh-key-v1` file: stored in clear even when the private part is encrypted. */
export function opensshPublicKey(text: string): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return undefined;
  const b = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (b.subarray(0, magic.length).toString('latin1') !== magic) return undefined;
  let off = magic.length;
  const str = (): Buffer | undefined => {
    if (off + 4 > b.length) return undefined;
    const len = b.readUInt32BE(off);
    if (off + 4 + len > b.length) return undefined;
    const out = b.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    return out;
  };
  for (let i = 0; i < 3; i++) if (!str()) return undefined; // cipher, kdf name, kdf options
  if (off + 4 > b.length || b.readUInt32BE(off) < 1) return undefined;
  off += 4;
  return str();
}

/** Whether `path` is an encrypted key, and its public key. Unreadable or unparsable files count as not encrypted: connecting reports them. */
export async function inspectKeyFile(path: string): Promise<KeyFileInfo> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch {
    return { encrypted: false };
  }
  const parsed = ssh2.utils.parseKey(data);
  if (!(parsed instanceof Error) || !NO_PASSPHRASE.test(parsed.message)) return { encrypted: false };
  // The .pub next to it (as ssh reads it), else the clear public part of the OpenSSH format.
  const pub = await readFile(`${path}.pub`).then(
    (d) => {
      const k = ssh2.utils.parseKey(d);
      return k instanceof Error ? undefined : (Array.isArray(k) ? k[0] : k)?.getPublicSSH();
    },
    () => undefined,
  );
  const publicKey = pub ?? opensshPublicKey(data.toString('latin1'));
  return { encrypted: true, ...(publicKey ? { publicKey } : {}) };
}

/** Whether `passphrase` decrypts the key at `path` (bcrypt: tens to hundreds of milliseconds). */
export async function passphraseOpens(path: string, passphrase: string): Promise<boolean> {
  return !(ssh2.utils.parseKey(await readFile(path), passphrase) instanceof Error);
}

/** The public keys an agent holds; none when it cannot be reached in time. */
export function agentPublicKeys(socket: string, timeoutMs = 3_000): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve([]), timeoutMs);
    new ssh2.OpenSSHAgent(socket).getIdentities((err, keys) => {
      clearTimeout(timer);
      // ssh2 answers with parsed keys (its types also allow a wrapped entry).
      resolve(err || !keys ? [] : keys.flatMap((k) => ('getPublicSSH' in k ? [k.getPublicSSH()] : [])));
    });
  });
}

/** The encrypted identity files these nodes will load and cannot do without, in first-use order. */
export async function encryptedIdentityFiles(nodes: NodeSpec[], defaultAgent: string | undefined): Promise<string[]> {
  const uses = identityUses(nodes, defaultAgent);
  const info = new Map(await Promise.all([...uses.keys()].map(async (f) => [f, await inspectKeyFile(f)] as const)));
  const agents = new Set([...uses].filter(([f]) => info.get(f)?.encrypted).flatMap(([, a]) => a.filter((x): x is string => x !== undefined)));
  const agentKeys = new Map(await Promise.all([...agents].map(async (a) => [a, await agentPublicKeys(a)] as const)));
  return filesNeedingPassphrase(uses, info, agentKeys);
}
