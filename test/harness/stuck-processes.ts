// Stuck `runc init` processes on a fleet node, for the unstick tests: started
// detached inside the node (so they outlive the command that starts them), and
// found again by their command line. The stand-in's `runc init` blocks for
// ever writing into a full pipe; with STANDIN_CREATE=stuck-init, `runc create
// ID` starts one and waits for it, as a real `runc create` does.
import { q } from '../../src/core/shell.js';
import type { Fleet } from './fleet.js';

/**
 * Starts `cmd` detached in the node; resolves with the pid of the first
 * process that appears whose command line (NULs as spaces) is `want` and that
 * is not in `known`.
 */
export async function startInNode(fleet: Fleet, node: string, cmd: string, want: string, known: readonly number[] = []): Promise<number> {
  const r = await fleet.exec(node, `setsid sh -c ${q(`exec ${cmd}`)} </dev/null >/dev/null 2>&1 &`);
  if (r.code !== 0) throw new Error(`${node}: ${cmd}: exit ${r.code}: ${r.stderr}`);
  for (let i = 0; i < 100; i++) {
    const out = (await fleet.exec(node, `for p in /proc/[0-9]*; do c=$(tr '\\000' ' ' <$p/cmdline 2>/dev/null) && echo "\${p#/proc/} $c"; done`)).stdout;
    const line = out.split('\n').find((l) => l.endsWith(` ${want} `) && !known.includes(Number(l.split(' ')[0])));
    if (line) return Number(line.split(' ')[0]);
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${node}: ${cmd}: no process \`${want}\` appeared`);
}

/** Running, and not a zombie. */
export async function aliveInNode(fleet: Fleet, node: string, pid: number): Promise<boolean> {
  return (await fleet.exec(node, `test -d /proc/${pid} && ! grep -q '^State:.*Z' /proc/${pid}/status`)).code === 0;
}
