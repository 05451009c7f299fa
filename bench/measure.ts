// How one timed command is measured: wall time, CPU seconds of its whole
// process tree, peak RSS (rusage), and per-node SSH connections and bytes from
// nftables counters on the controller's packets to the nodes' port 22.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// A tiny python3 supervisor. It makes itself a child subreaper, so processes
// that daemonize under the command (OpenSSH ControlPersist masters that
// Ansible leaves behind) are re-parented to it; after the command exits they
// are sent SIGTERM and reaped, so RUSAGE_CHILDREN covers the whole tree. Wall
// time ends when the command itself exits. Peak summed PSS of the tree is
// sampled every 250 ms (ru_maxrss is the largest single process only).
const SUPERVISOR = String.raw`
import ctypes, json, os, resource, signal, sys, threading, time
out, cmd = sys.argv[1], sys.argv[2:]
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
me = os.getpid()
def tree():
    res, stack = [], [me]
    while stack:
        p = stack.pop()
        try:
            for t in os.listdir('/proc/%d/task' % p):
                with open('/proc/%d/task/%s/children' % (p, t)) as f:
                    kids = [int(x) for x in f.read().split()]
                res += kids
                stack += kids
        except OSError:
            pass
    return res
def pss(p):
    try:
        with open('/proc/%d/smaps_rollup' % p) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
state = {'peak': 0, 'done': False}
def sample():
    while not state['done']:
        state['peak'] = max(state['peak'], sum(pss(p) for p in tree()))
        time.sleep(0.25)
t0 = time.monotonic()
started = time.time()
pid = os.posix_spawnp(cmd[0], cmd, os.environ)
def forward(sig, _frame):
    try:
        os.kill(pid, sig)
    except OSError:
        pass
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, lambda s, f: None)  # Ctrl-C reaches the command itself (same process group)
threading.Thread(target=sample, daemon=True).start()
_, status = os.waitpid(pid, 0)
wall = time.monotonic() - t0
state['done'] = True
left = tree()
for p in left:
    try:
        os.kill(p, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + 5
while True:
    try:
        r, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if r == 0:
        if time.monotonic() > deadline:
            for p in tree():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.02)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, 'w') as f:
    json.dump({'wallMs': wall * 1000, 'startedAtMs': started * 1000, 'userS': ru.ru_utime, 'sysS': ru.ru_stime, 'maxRssKB': ru.ru_maxrss, 'peakTreePssKB': state['peak'],
               'exitCode': os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
               'signal': os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, 'orphansReaped': len(left)}, f)
`;

export interface Usage {
  wallMs: number;
  /** Epoch ms when the command was spawned (its end: startedAtMs + wallMs). */
  startedAtMs: number;
  userS: number;
  sysS: number;
  /** Largest single process of the tree (ru_maxrss), KiB. */
  maxRssKB: number;
  /** Peak of the tree's summed PSS, sampled every 250 ms, KiB. */
  peakTreePssKB: number;
  exitCode: number | null;
  signal: number | null;
  orphansReaped: number;
}

export interface MeasuredRun extends Usage {
  /** Per node address: TCP SYNs (connections opened) and bytes (IP packets, headers included) the controller sent to port 22. */
  perNode: Record<string, { conns: number; bytes: number }> | null;
  log: string;
}

const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

let active: ReturnType<typeof spawn> | null = null;

/** SIGTERM the running measured command (the supervisor forwards it). */
export function stopActive(): void {
  active?.kill('SIGTERM');
}

/** Runs `cmd` under the supervisor; stdout and stderr go to `log`. */
export async function measured(work: string, tag: string, cmd: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; counters?: Counters | null }): Promise<MeasuredRun> {
  const supervisor = join(work, 'supervisor.py');
  if (!existsSync(supervisor)) writeFileSync(supervisor, SUPERVISOR);
  const resultFile = join(work, `${tag}.usage.json`);
  const log = join(work, `${tag}.log`);
  const fd = openSync(log, 'w');
  const before = opts.counters?.read() ?? null;
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(python, [supervisor, resultFile, ...cmd], { stdio: ['ignore', fd, fd], env: opts.env ?? process.env, cwd: opts.cwd ?? work });
      active = child;
      child.once('error', reject);
      child.once('close', () => resolve());
    });
  } finally {
    active = null;
    closeSync(fd);
  }
  const after = opts.counters?.read() ?? null;
  if (!existsSync(resultFile)) throw new Error(`${tag}: the measuring supervisor wrote no result; see ${log}`);
  const usage = JSON.parse(readFileSync(resultFile, 'utf8')) as Usage;
  return { ...usage, perNode: before && after ? diffCounters(before, after) : null, log };
}

type CounterSnapshot = Map<string, { conns: number; bytes: number }>;

function diffCounters(a: CounterSnapshot, b: CounterSnapshot): Record<string, { conns: number; bytes: number }> {
  const out: Record<string, { conns: number; bytes: number }> = {};
  for (const [addr, v] of b) {
    const p = a.get(addr) ?? { conns: 0, bytes: 0 };
    out[addr] = { conns: v.conns - p.conns, bytes: v.bytes - p.bytes };
  }
  return out;
}

export interface Counters {
  table: string;
  read(): CounterSnapshot;
  remove(): void;
}

const TABLE_PREFIX = 'runc_rollout_bench_';

function nft(args: string[], input?: string): string {
  return execFileSync('nft', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes tables of earlier bench runs whose process is gone (a SIGKILLed bench). */
function removeStaleTables(): void {
  const tables = nft(['list', 'tables', 'ip']).split('\n');
  for (const line of tables) {
    const m = new RegExp(`^table ip (${TABLE_PREFIX}(\\d+))$`).exec(line.trim());
    if (m && !pidAlive(Number(m[2]))) nft(['delete', 'table', 'ip', m[1]!]);
  }
}

/**
 * A private nftables table (ip family, named after our pid) whose output
 * chain counts, per node address, the controller's TCP SYNs and bytes to
 * port 22. It matches only the given addresses (the fleet's 127.0.x.y), never
 * drops anything, and is deleted by remove(), also from the exit handler.
 */
export function createCounters(addresses: string[]): Counters {
  for (const a of addresses) if (!/^127\.0\.\d{1,3}\.\d{1,3}$/.test(a)) throw new Error(`counters: ${a} is not a fleet loopback address`);
  removeStaleTables();
  const table = `${TABLE_PREFIX}${process.pid}`;
  const size = Math.max(16, addresses.length * 2);
  nft(['-f', '-'], `table ip ${table} {
  set fleet { type ipv4_addr; elements = { ${addresses.join(', ')} } }
  set bytes { type ipv4_addr; size ${size}; flags dynamic; counter; }
  set syns { type ipv4_addr; size ${size}; flags dynamic; counter; }
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr @fleet tcp dport 22 update @bytes { ip daddr }
    ip daddr @fleet tcp dport 22 tcp flags & (syn | ack) == syn update @syns { ip daddr }
  }
}
`);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      nft(['delete', 'table', 'ip', table]);
    } catch {
      /* already gone */
    }
  };
  process.on('exit', remove);
  const readSet = (name: string): Map<string, { packets: number; bytes: number }> => {
    const doc = JSON.parse(nft(['-j', 'list', 'set', 'ip', table, name])) as { nftables: { set?: { elem?: { elem: { val: string; counter: { packets: number; bytes: number } } }[] } }[] };
    const set = doc.nftables.find((x) => x.set)?.set;
    return new Map((set?.elem ?? []).map((e) => [e.elem.val, e.elem.counter]));
  };
  return {
    table,
    read: () => {
      const bytes = readSet('bytes');
      const syns = readSet('syns');
      return new Map(addresses.map((a) => [a, { conns: syns.get(a)?.packets ?? 0, bytes: bytes.get(a)?.bytes ?? 0 }]));
    },
    remove,
  };
}
