// The after-upgrade report of stuck `runc init` processes: parsing, wording,
// and the script itself on this machine's /proc (read-only).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildStuckRuncInitScript, describeStuck, parseStuckRuncInit } from '../../src/apply/stuck-runc-init.js';

describe('stuck runc init report', () => {
  it('parses pid, age and parent, and says what they mean', () => {
    const list = parseStuckRuncInit('stuck 4242 3725 4200 containerd-shim\nnoise\nstuck 77 400 1 systemd\n');
    expect(list).toEqual([
      { pid: 4242, ageSeconds: 3725, ppid: 4200, parent: 'containerd-shim' },
      { pid: 77, ageSeconds: 400, ppid: 1, parent: 'systemd' },
    ]);
    const text = describeStuck(list);
    expect(text).toMatch(/^2 `runc init` processes older than 5m, started by the old runc/);
    expect(text).toContain('pid 4242 (age 62m5s');
    expect(text).toContain('parent 4200 containerd-shim');
    expect(describeStuck([])).toBe('no `runc init` process older than 5m');
  });

  it('runs on a real /proc and prints only records (none here: no process is named runc init)', () => {
    const r = spawnSync('sh', ['-c', buildStuckRuncInitScript(0)], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l && !l.startsWith('stuck '))).toEqual([]);
  });
});
