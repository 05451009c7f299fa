// Command-line options of `npm run bench` (pure: no I/O, unit-testable).

export type Phase = 'plan' | 'apply';

export interface BenchOptions {
  /** Fleet size (startFleet allows 1..240). */
  nodes: number;
  /** Measured runs per tool and phase, after one warm-up. */
  runs: number;
  /** runc-rollout --parallel, Ansible forks, and the plan floor's fan-out. */
  parallel: number;
  /** apply --batch, Ansible serial, and the apply floor's batch size. */
  batch: number;
  phases: Phase[];
  /** Where the JSON result goes (default bench/results/<date>-<nodes>n[-<phase>].json). */
  out: string | null;
  /** Keep the temp folder (logs, playbooks, reports) instead of deleting it. */
  keep: boolean;
  /** Extra arguments for runc-rollout plan and apply (e.g. --ssh-client openssh). */
  rolloutArgs: string[];
}

export const USAGE = `usage: npm run bench -- [--nodes N] [--runs R] [--parallel P] [--batch B] [--only plan|apply] [--out FILE] [--keep]
  --nodes N      fleet size, 1..240 (default 20)
  --runs R       measured runs per tool and phase, after one warm-up (default 3)
  --parallel P   runc-rollout --parallel, Ansible forks, plan floor fan-out (default 20)
  --batch B      apply --batch, Ansible serial, apply floor batch size (default 5)
  --only PHASE   plan or apply (default both)
  --out FILE     result JSON (default bench/results/<date>-<nodes>n.json)
  --keep         keep the temp folder with logs, playbooks and run reports
  --rollout-arg ARG  extra argument for runc-rollout plan and apply, repeatable
                 (e.g. --rollout-arg=--ssh-client --rollout-arg=openssh)`;

export class UsageError extends Error {}

function int(flag: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`${flag}: want an integer, got ${value ?? 'nothing'}`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag}: want ${min}..${max}, got ${n}`);
  return n;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { nodes: 20, runs: 3, parallel: 20, batch: 5, phases: ['plan', 'apply'], out: null, keep: false, rolloutArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--nodes': o.nodes = int(flag, value(), 1, 240); break;
      case '--runs': o.runs = int(flag, value(), 1, 100); break;
      case '--parallel': o.parallel = int(flag, value(), 1, 500); break;
      case '--batch': o.batch = int(flag, value(), 1, 240); break;
      case '--only': {
        const v = value();
        if (v !== 'plan' && v !== 'apply') throw new UsageError(`--only: want plan or apply, got ${v ?? 'nothing'}`);
        o.phases = [v];
        break;
      }
      case '--out': {
        const v = value();
        if (!v) throw new UsageError('--out: want a file name');
        o.out = v;
        break;
      }
      case '--keep': o.keep = true; break;
      case '--rollout-arg': {
        const v = value();
        if (v === undefined) throw new UsageError('--rollout-arg: want an argument');
        o.rolloutArgs.push(v);
        break;
      }
      case '-h': case '--help': throw new UsageError(USAGE);
      default: throw new UsageError(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}

/** bench/results/<YYYY-MM-DD>-<nodes>n[-<phase>].json, relative to the repository. */
export function defaultResultName(o: Pick<BenchOptions, 'nodes' | 'phases'>, now = new Date()): string {
  const only = o.phases.length === 1 ? `-${o.phases[0]}` : '';
  return `${now.toISOString().slice(0, 10)}-${o.nodes}n${only}.json`;
}
