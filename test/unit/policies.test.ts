import { describe, expect, it } from 'vitest';
import { describePolicies, parseOnBudgetExceeded, parseOnUnreachable } from '../../src/core/policies.js';
import { parseWindows } from '../../src/core/window.js';
import { InputError } from '../../src/errors.js';

describe('policy flags', () => {
  it('accept their values and refuse others, naming the flag', () => {
    expect(parseOnUnreachable('skip')).toBe('skip');
    expect(parseOnUnreachable('fail')).toBe('fail');
    expect(parseOnBudgetExceeded('rollback-all')).toBe('rollback-all');
    expect(() => parseOnUnreachable('ignore')).toThrow(InputError);
    expect(() => parseOnUnreachable('ignore')).toThrow(/^--on-unreachable "ignore": expected one of fail, skip/);
    expect(() => parseOnBudgetExceeded('rollback')).toThrow(/^--on-budget-exceeded "rollback": expected one of stop, rollback-all/);
  });
  it('are stated in words: one budget for the whole run', () => {
    const lines = describePolicies(
      { maxFailures: { kind: 'count', count: 1 }, onUnreachable: 'skip', onBudgetExceeded: 'rollback-all', windows: parseWindows(['Sat 01:00-05:00 Europe/Berlin']) },
      40,
    );
    expect(lines[0]).toBe('Failure budget: stops after 2 failed nodes out of 40 (one budget for the whole run, checked after each batch).');
    expect(lines[1]).toMatch(/skipped, not counted against the budget/);
    expect(lines[2]).toMatch(/rolled back, newest first/);
    expect(lines[3]).toMatch(/Sat 01:00-05:00 Europe\/Berlin/);
    const d = describePolicies({ maxFailures: { kind: 'percent', percent: 10 }, onUnreachable: 'fail', onBudgetExceeded: 'stop', windows: [] }, 40);
    expect(d[0]).toMatch(/stops after 5 failed nodes out of 40/);
    expect(d[1]).toMatch(/counts as a failure/);
    expect(d[3]).toMatch(/any time/);
  });
});
