// Rollout policies beyond batching: what an unreachable node means, what
// happens once the failure budget is exceeded, and the per-node record of
// which policy decided a node's fate. Pure.
import { InputError } from '../errors.js';
import { describeBudget, type FailureBudget } from './batching.js';
import { describeWindows, type RolloutWindow } from './window.js';

export const ON_UNREACHABLE = ['fail', 'skip'] as const;
export type OnUnreachable = (typeof ON_UNREACHABLE)[number];

export const ON_BUDGET_EXCEEDED = ['stop', 'rollback-all'] as const;
export type OnBudgetExceeded = (typeof ON_BUDGET_EXCEEDED)[number];

/**
 * Which policy decided a node's fate, when it was not simply its own upgrade:
 * - `budget`: not attempted because the failure budget was exceeded
 * - `window`: not attempted because no rollout window was open
 * - `unreachable-skip`: unreachable, left out of the budget by `--on-unreachable skip`
 * - `rollback-all`: upgraded, then rolled back by `--on-budget-exceeded rollback-all`
 * - `interrupted`: not attempted because the run was interrupted
 */
export const NODE_POLICIES = ['budget', 'window', 'unreachable-skip', 'rollback-all', 'interrupted'] as const;
export type NodePolicy = (typeof NODE_POLICIES)[number];

function oneOf<T extends string>(values: readonly T[], text: string, flag: string): T {
  const s = text.trim();
  if ((values as readonly string[]).includes(s)) return s as T;
  throw new InputError(`${flag} ${JSON.stringify(text)}: expected one of ${values.join(', ')}`);
}

export function parseOnUnreachable(text: string, flag = '--on-unreachable'): OnUnreachable {
  return oneOf(ON_UNREACHABLE, text, flag);
}

export function parseOnBudgetExceeded(text: string, flag = '--on-budget-exceeded'): OnBudgetExceeded {
  return oneOf(ON_BUDGET_EXCEEDED, text, flag);
}

export interface RolloutPolicies {
  maxFailures: FailureBudget;
  onUnreachable: OnUnreachable;
  onBudgetExceeded: OnBudgetExceeded;
  windows: readonly RolloutWindow[];
}

/** The policies in words, one line each, for the apply header and the change ticket. */
export function describePolicies(p: RolloutPolicies, selected: number): string[] {
  return [
    `Failure budget: ${describeBudget(p.maxFailures, selected)} (one budget for the whole run, checked after each batch).`,
    p.onUnreachable === 'skip'
      ? 'Unreachable nodes: skipped, not counted against the budget, listed at the end (--on-unreachable skip).'
      : 'Unreachable nodes: refused before the run; a node lost during the run counts as a failure (--on-unreachable fail).',
    p.onBudgetExceeded === 'rollback-all'
      ? 'When the budget is exceeded: no further batch starts and every node upgraded in this run is rolled back, newest first (--on-budget-exceeded rollback-all).'
      : 'When the budget is exceeded: no further batch starts; upgraded nodes stay upgraded (--on-budget-exceeded stop).',
    p.windows.length === 0
      ? 'Windows: none (batches may start at any time).'
      : `Windows: batches start only within ${describeWindows(p.windows)}; outside them the run stops cleanly and the rest is left for the next run.`,
  ];
}
