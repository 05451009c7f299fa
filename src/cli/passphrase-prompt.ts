// Passphrases of encrypted identity files, asked on the terminal once per file
// and before anything connects: plan and apply draw a task list while they
// connect, and a prompt in the middle of it would be overdrawn (and one per
// node would be asked again and again). Only here does the CLI read a secret
// from stdin; the ssh layer gets the answers as a map, per file.
import type { Readable, Writable } from 'node:stream';
import { InputError, InterruptedError } from '../errors.js';
import { silentLogger } from '../output/logger.js';
import { encryptedIdentityFiles, passphraseOpens } from '../ssh/identity-keys.js';
import { loadSelection, type NodeSelection } from '../workflows/select.js';
import type { CliContext } from './context.js';

/** How often a wrong passphrase may be typed again (ssh's NumberOfPasswordPrompts default). */
export const PASSPHRASE_TRIES = 3;

export interface SecretIo {
  input: Readable & { isTTY?: boolean; isRaw?: boolean; setRawMode?(raw: boolean): unknown };
  output: Writable;
  signal?: AbortSignal;
}

/**
 * Whether to ask: a person at a terminal (stdin to type on, stderr to see the
 * question; stdout may be a pipe for --json), not CI, not an unattended run
 * (--yes), and no RUNC_ROLLOUT_KEY_PASSPHRASE, which always wins.
 */
export function mayAskPassphrase(o: { stdinTTY: boolean; stderrTTY: boolean; env: NodeJS.ProcessEnv; unattended: boolean }): boolean {
  // The same CI test as the context's `interactive` (context.ts).
  const ci = Boolean(o.env.CI && o.env.CI !== 'false' && o.env.CI !== '0');
  return o.stdinTTY && o.stderrTTY && !ci && !o.unattended && !o.env.RUNC_ROLLOUT_KEY_PASSPHRASE;
}

/** One line typed with echo off (raw mode: the terminal shows nothing); Ctrl-C interrupts, Ctrl-D or Enter ends it. */
export function readSecret(question: string, io: SecretIo): Promise<string> {
  const { input, output, signal } = io;
  const wasRaw = input.isRaw ?? false;
  // Echo off before the question shows: an answer typed (or pasted) at once must not appear.
  input.setRawMode?.(true);
  output.write(question);
  return new Promise<string>((resolve, reject) => {
    let typed = '';
    const finish = (err: Error | null) => {
      input.off('data', onData);
      input.off('end', onEnd);
      signal?.removeEventListener('abort', onAbort);
      input.setRawMode?.(wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const interrupted = () => finish(new InterruptedError('interrupted at the passphrase prompt; nothing was done'));
    const onAbort = () => interrupted();
    const onEnd = () => finish(null);
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(null);
        if (ch === '\u0003') return interrupted();
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch === '\u0015') typed = ''; // Ctrl-U, as at a shell prompt
        else if (ch >= ' ') typed += ch;
      }
    };
    if (signal?.aborted) return interrupted();
    signal?.addEventListener('abort', onAbort, { once: true });
    input.on('data', onData);
    input.on('end', onEnd);
    input.resume();
  });
}

/**
 * Asks for each file in turn; a passphrase is checked at once and a wrong one
 * asked again, at most PASSPHRASE_TRIES times, then refused naming the file.
 * An empty answer skips the key, as with ssh: it is then not used (the agent
 * or another key may still get in; connecting says so if nothing does).
 */
export async function askPassphrases(files: string[], io: SecretIo, opens: (file: string, passphrase: string) => Promise<boolean>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of files) {
    for (let attempt = 1; ; attempt++) {
      const answer = await readSecret(`Enter passphrase for key ${file} (empty to skip it): `, io);
      if (answer === '') break;
      if (await opens(file, answer)) {
        out.set(file, answer);
        break;
      }
      if (attempt >= PASSPHRASE_TRIES) throw new InputError(`identity file ${file}: wrong passphrase (${PASSPHRASE_TRIES} tries); nothing was done`);
      io.output.write(`Wrong passphrase for ${file}, try again.\n`);
    }
  }
  return out;
}

/**
 * For plan, apply and rollback, before the run starts: the passphrases of the
 * encrypted identity files the selected nodes (and their jump hosts) will
 * load, asked on the terminal. Undefined when nobody can be asked: then an
 * encrypted key fails at connect time with the error that names it.
 */
export async function keyPassphrases(ctx: CliContext, inventoryPath: string | undefined, selection: NodeSelection, unattended: boolean): Promise<Map<string, string> | undefined> {
  const stdin = process.stdin;
  const ask = mayAskPassphrase({ stdinTTY: Boolean(stdin.isTTY), stderrTTY: Boolean((ctx.stderr as { isTTY?: boolean }).isTTY), env: ctx.env, unattended });
  if (!ask || !inventoryPath) return undefined;
  // Loaded again by the run itself (which reports its warnings): this pass only reads which key files are in use.
  const { nodes } = await loadSelection(inventoryPath, selection, silentLogger);
  const files = await encryptedIdentityFiles(nodes, ctx.env.SSH_AUTH_SOCK || undefined);
  if (files.length === 0) return undefined;
  return askPassphrases(files, { input: stdin, output: ctx.stderr, signal: ctx.signal }, passphraseOpens);
}
