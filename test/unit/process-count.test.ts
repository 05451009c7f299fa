// The process counter the script-cost tests rely on must itself count right.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseProcessCount, processCountCommand } from '../harness/process-count.js';

const dir = mkdtempSync(join(tmpdir(), 'rr-pcount-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function count(script: string) {
  const scriptFile = join(dir, 'script.sh');
  writeFileSync(scriptFile, script);
  const text = execFileSync('sh', ['-c', processCountCommand({ scriptFile, summaryFile: join(dir, 'summary') })], { encoding: 'utf8' });
  return parseProcessCount(text);
}

describe('process count (strace -f -c)', () => {
  it('counts forks and execs of a script, not of builtins', () => {
    // builtins only: the shell itself is the one exec
    expect(count('x=1; : "$x"; [ "$x" = 1 ]; printf "%s" "$x" >/dev/null\n')).toEqual({ forks: 0, execs: 1, exitCode: 0 });
    // a command substitution forks; /bin/true forks and execs; `echo | cat` forks twice, and only cat execs
    expect(count('x=$(echo a)\n/bin/true\necho a | cat >/dev/null\n')).toEqual({ forks: 4, execs: 3, exitCode: 0 });
  });

  it('reports the script’s exit code, and refuses text without a summary', () => {
    expect(count('exit 3\n').exitCode).toBe(3);
    expect(() => parseProcessCount('nothing here')).toThrow(/no strace summary/);
  });
});
