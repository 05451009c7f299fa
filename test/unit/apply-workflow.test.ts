import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SshError } from '../../src/errors.js';
import { silentLogger } from '../../src/output/logger.js';
import type { Transport } from '../../src/ssh/transport.js';
import { runApply, type ApplyOptions } from '../../src/workflows/apply.js';

const dir = mkdtempSync(join(tmpdir(), 'rr-apply-workflow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runApply', () => {
  it('reads the --ssh-config it is given, as plan does (the nodes are reached at its HostName)', async () => {
    writeFileSync(join(dir, 'ssh_config'), 'Host web-1\n  HostName 127.0.9.9\n  Port 2222\n');
    writeFileSync(join(dir, 'known_hosts'), '');
    writeFileSync(join(dir, 'inventory.yaml'), `ssh:\n  user: root\n  knownHosts: ./known_hosts\nnodes:\n  - name: web-1\n    host: web-1\n`);
    const seen: string[] = [];
    const transport: Transport = {
      async connect(node) {
        seen.push(`${node.ssh.host}:${node.ssh.port}`);
        throw new SshError(node.name, 'connection refused');
      },
    };
    const opts = {
      inventoryPath: join(dir, 'inventory.yaml'),
      limit: [],
      sshConfig: join(dir, 'ssh_config'),
      release: { repo: 'opencontainers/runc', version: '1.2.9' },
      transport,
      log: silentLogger,
    } as unknown as ApplyOptions;
    await expect(runApply(opts)).rejects.toThrow(/no selected node answered/);
    expect(seen).toEqual(['127.0.9.9:2222']);
  });
});
