import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { CONFIG_FILE, loadRolloutDefaults } from '../../src/inventory/rollout-defaults.js';
import { parseInventory } from '../../src/inventory/load.js';

const dir = () => mkdtempSync(join(tmpdir(), 'rr-config-'));

describe('loadRolloutDefaults', () => {
  it('reads ./runc-rollout.config.yaml, and the inventory rollout: section wins over it', async () => {
    const d = dir();
    writeFileSync(join(d, CONFIG_FILE), 'version: 1.2.9\nbatch: 5\ncanary: 1\nmaxFailures: 10%\n');
    writeFileSync(join(d, 'inv.yaml'), 'rollout:\n  batch: 20%\n  pause: 30s\nnodes:\n  - name: a\n    host: 10.0.0.1\n');
    expect(await loadRolloutDefaults({ cwd: d, inventoryPath: join(d, 'inv.yaml') })).toEqual({ version: '1.2.9', batch: '20%', canary: '1', maxFailures: '10%', pause: '30s' });
  });

  it('is empty without a config file, and a missing --config file is an error', async () => {
    const d = dir();
    expect(await loadRolloutDefaults({ cwd: d })).toEqual({});
    await expect(loadRolloutDefaults({ cwd: d, configPath: join(d, 'nope.yaml') })).rejects.toThrow(/nope\.yaml: cannot read it/);
  });

  it('reports every bad value at once, with the file and key', async () => {
    const d = dir();
    writeFileSync(join(d, CONFIG_FILE), 'batch: 0\npause: soon\nonUnreachable: ignore\nbatchsize: 3\n');
    const err = (await loadRolloutDefaults({ cwd: d }).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    const text = err.issues.join('\n');
    expect(text).toMatch(/runc-rollout\.config\.yaml: batch: /);
    expect(text).toMatch(/runc-rollout\.config\.yaml: pause: /);
    expect(text).toMatch(/runc-rollout\.config\.yaml: onUnreachable: /);
    expect(text).toMatch(/unknown key batchsize/);
  });

  it('the inventory accepts a rollout: section without an unknown-key warning', () => {
    const inv = parseInventory('rollout:\n  batch: 2\nnodes:\n  - name: a\n    host: 10.0.0.1\n', '/inv/inv.yaml', { home: '/home/x' });
    expect(inv.warnings).toEqual([]);
  });
});
