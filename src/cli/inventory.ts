// `runc-rollout inventory ...`: inventory helpers. `from-kubectl` writes a
// native inventory from the cluster's node list (src/inventory/kubectl.ts).
import { execFile } from 'node:child_process';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../core/batching.js';
import { InputError, RolloutError, ExitCode, errorMessage, tailLines } from '../errors.js';
import { ADDRESS_TYPES, convertKubectlNodes, parseKubectlNodes, parseSelector, type AddressType } from '../inventory/kubectl.js';
import { parseInventory } from '../inventory/load.js';
import type { CliContext } from './context.js';
import type { Runner } from './main.js';
import { checked } from './flag-parsers.js';

interface FromKubectlFlags {
  selector?: string;
  address: string;
  fromFile?: string;
  output?: string;
  sshUser?: string;
  sudo: boolean;
  identity?: string;
  knownHosts?: string;
  context?: string;
  kubeconfig?: string;
  kubectlTimeout: string;
}

/** kubectl's node list of a large cluster is megabytes; this is far above any real one. */
const MAX_KUBECTL_OUTPUT = 256 * 1024 * 1024;

function parseAddress(s: string): AddressType {
  const hit = ADDRESS_TYPES.find((t) => t.toLowerCase() === s.toLowerCase());
  if (!hit) throw new InputError(`--address ${s}: expected one of ${ADDRESS_TYPES.join(', ')}`);
  return hit;
}

/** Runs `kubectl get nodes -o json` with the user's context (or the one named), bounded in time and size. */
export function runKubectl(ctx: CliContext, flags: Pick<FromKubectlFlags, 'selector' | 'context' | 'kubeconfig'>, timeoutMs: number): Promise<string> {
  const args = ['get', 'nodes', '-o', 'json'];
  if (flags.selector) args.push('-l', flags.selector);
  if (flags.context) args.push('--context', flags.context);
  if (flags.kubeconfig) args.push('--kubeconfig', resolve(ctx.cwd, flags.kubeconfig));
  return new Promise((res, rej) => {
    execFile('kubectl', args, { env: ctx.env, cwd: ctx.cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_KUBECTL_OUTPUT, signal: ctx.signal, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return res(stdout);
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number | null };
      const shown = `kubectl ${args.join(' ')}`;
      if (e.code === 'ENOENT') return rej(new InputError('kubectl not found on PATH: install it, or save `kubectl get nodes -o json` to a file and pass --from-file FILE'));
      if (ctx.signal.aborted) return rej(new RolloutError(`${shown}: interrupted`, { exitCode: ExitCode.interrupted }));
      if (e.killed) return rej(new InputError(`${shown}: no answer within ${timeoutMs / 1000}s (--kubectl-timeout); is the cluster reachable?`));
      if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return rej(new InputError(`${shown}: output larger than ${MAX_KUBECTL_OUTPUT / 1024 / 1024} MiB`));
      const tail = tailLines(String(stderr ?? ''), 10).trim();
      rej(new InputError(`${shown} failed (exit ${String(e.code ?? '?')})${tail ? `: ${tail}` : ''}`));
    });
  });
}

export async function fromKubectlAction(ctx: CliContext, flags: FromKubectlFlags): Promise<number> {
  const address = parseAddress(flags.address);
  if (flags.selector) parseSelector(flags.selector);
  let text: string;
  let origin: string;
  if (flags.fromFile) {
    const path = resolve(ctx.cwd, flags.fromFile);
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new InputError(`--from-file ${path}: cannot read it: ${errorMessage(err)}`);
    }
    origin = path;
  } else {
    text = await runKubectl(ctx, flags, parseDuration(flags.kubectlTimeout, '--kubectl-timeout'));
    origin = `kubectl get nodes${flags.context ? ` --context ${flags.context}` : ' (current context)'}`;
  }
  const items = parseKubectlNodes(text, origin);
  const local = (p: string | undefined) => (p === undefined ? undefined : p.startsWith('~') ? p : resolve(ctx.cwd, p));
  const result = convertKubectlNodes(items, {
    address,
    ...(flags.selector ? { selector: flags.selector } : {}),
    ssh: { user: flags.sshUser, sudo: flags.sudo, identityFile: local(flags.identity), knownHosts: local(flags.knownHosts) },
    origin,
  });
  for (const w of result.warnings) ctx.log.warn(w);

  const outPath = flags.output ? resolve(ctx.cwd, flags.output) : join(ctx.cwd, 'kubernetes-inventory.yaml');
  // What we write must load: checked here, before anything is written, with the same rules as -i.
  parseInventory(result.yaml, outPath);
  if (flags.output) {
    const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.tmp`);
    try {
      await writeFile(tmp, result.yaml, { mode: 0o644 });
      await rename(tmp, outPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new InputError(`-o ${outPath}: cannot write it: ${errorMessage(err)}`);
    }
    ctx.log.info(`wrote ${result.nodes.length} node${result.nodes.length === 1 ? '' : 's'} to ${outPath}${result.skipped.length ? ` (${result.skipped.length} left out, see the warnings)` : ''}`);
    if (ctx.globals().json) {
      ctx.stdout.write(`${JSON.stringify({ path: outPath, nodes: result.nodes, skipped: result.skipped, warnings: result.warnings }, null, 2)}\n`);
    }
  } else {
    ctx.stdout.write(result.yaml);
  }
  return ExitCode.ok;
}

export function register(program: Command, run: Runner): void {
  const inventory = program.command('inventory').description('inventory helpers: write an inventory from what a cluster knows');
  inventory
    .command('from-kubectl')
    .description('write a native inventory from `kubectl get nodes -o json` (names, labels, addresses); marks it `source: kubernetes`')
    .option('--selector <k=v,...>', 'only nodes matching this label selector (kubectl -l syntax: k=v, k!=v, k, !k)')
    .option('--address <type>', `node address used as the SSH host: ${ADDRESS_TYPES.join(', ')}`, checked(parseAddress), 'InternalIP')
    .option('--from-file <nodes.json>', 'read saved `kubectl get nodes -o json` output instead of running kubectl')
    .option('-o, --output <file>', 'write the inventory here (default: stdout)')
    .option('--ssh-user <user>', 'SSH user for every node')
    .option('--sudo', 'run remote commands through sudo -n', false)
    .option('--identity <file>', 'SSH private key file')
    .option('--known-hosts <file>', 'known_hosts file to check host keys against')
    .option('--context <name>', 'kubectl context (default: the current one)')
    .option('--kubeconfig <file>', 'kubeconfig file for kubectl')
    .option('--kubectl-timeout <duration>', 'give up on kubectl after this long', checked((s) => parseDuration(s, '--kubectl-timeout')), '30s')
    .action(run(async (ctx, flags) => fromKubectlAction(ctx, flags as FromKubectlFlags)));
}
