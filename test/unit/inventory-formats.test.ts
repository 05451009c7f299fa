// The loader takes Ansible inventories as they are, through the same
// validation as native ones, and command-line SSH settings beat both.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { selectNodes } from '../../src/core/limit.js';
import { InputError } from '../../src/errors.js';
import { loadInventory } from '../../src/inventory/load.js';

const fixtures = fileURLToPath(new URL('../fixtures/ansible/', import.meta.url));

describe('loadInventory with Ansible inventories', () => {
  it('maps an INI inventory with ranges, children and group vars onto nodes', async () => {
    const inv = await loadInventory(join(fixtures, 'prod.ini'), { home: '/home/ops' });
    const byName = Object.fromEntries(inv.nodes.map((n) => [n.name, n]));
    expect(Object.keys(byName)).toContain('worker-04');
    expect(byName['worker-gpu-a']!.runcPath).toBe('/usr/bin/runc');
    expect(byName['worker-gpu-a']!.ssh.identityFile).toBe('/home/ops/.ssh/gpu_ed25519');
    expect(byName['cp-2.k8s.example.com']!.ssh).toMatchObject({ user: 'ubuntu', sudo: true });
    expect(byName['edge-02']!.ssh.port).toBe(2200);
    expect(selectNodes(inv.nodes, ['control_plane']).map((n) => n.name)).toEqual(['cp-1.k8s.example.com', 'cp-2.k8s.example.com', 'cp-3.k8s.example.com']);
  });

  it('lets --ssh-user, --ssh-port, --identity and --known-hosts override the file', async () => {
    const inv = await loadInventory(join(fixtures, 'staging.yml'), {
      home: '/home/ops',
      overrides: { user: 'root', port: 2022, identityFile: '/keys/ci', knownHosts: '/keys/known_hosts' },
    });
    for (const n of inv.nodes) expect(n.ssh).toMatchObject({ user: 'root', port: 2022, identityFile: '/keys/ci', knownHosts: '/keys/known_hosts' });
  });

  it('traces a bad value back to its line in the Ansible file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inv-'));
    const file = join(dir, 'hosts.ini');
    writeFileSync(file, '[web]\nweb-1 ansible_host=10.0.0.1\nweb-2 ansible_host="$(touch /tmp/pwned)"\n');
    const err = await loadInventory(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues.join('\n')).toMatch(/nodes\[1\]\.host \(\S*hosts\.ini:3\)/);
  });
});
