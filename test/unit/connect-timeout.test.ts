// Which connect timeout a node gets: one the user chose (--connect-timeout, or
// connectTimeout in the config file / the inventory's rollout: section) beats
// the host's ssh_config ConnectTimeout, which beats the built-in 15 s.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chosenConnectTimeout, addConnectTimeoutOption, DEFAULT_CONNECT_TIMEOUT } from '../../src/cli/rollout-io.js';
import type { NodeSpec } from '../../src/core/types.js';
import { loadRolloutDefaults } from '../../src/inventory/rollout-defaults.js';
import type { Logger } from '../../src/output/logger.js';
import { resolveConnectTimeout } from '../../src/ssh/connect.js';
import { createSshTransport } from '../../src/ssh/ssh2-transport.js';

describe('resolveConnectTimeout', () => {
  const chosen = { ms: 4_000, source: '--connect-timeout' };

  it('a timeout the user chose beats ssh_config, and says so', () => {
    expect(resolveConnectTimeout({ connectTimeoutMs: 30_000 }, chosen, 15_000)).toEqual({ ms: 4_000, source: '--connect-timeout; beats ssh_config ConnectTimeout 30s' });
    expect(resolveConnectTimeout({}, { ms: 9_000, source: 'connectTimeout in the config' }, 15_000)).toEqual({ ms: 9_000, source: 'connectTimeout in the config' });
  });

  it('without one, the host\'s ssh_config ConnectTimeout beats the default', () => {
    expect(resolveConnectTimeout({ connectTimeoutMs: 30_000 }, undefined, 15_000)).toEqual({ ms: 30_000, source: 'ssh_config ConnectTimeout' });
  });

  it('with neither, the default', () => {
    expect(resolveConnectTimeout({}, undefined, 15_000)).toEqual({ ms: 15_000, source: 'default' });
  });
});

describe('--connect-timeout', () => {
  const parse = (args: string[]) => {
    const cmd = addConnectTimeoutOption(new Command('plan').exitOverride());
    cmd.parse(args, { from: 'user' });
    return { cmd, value: cmd.opts<{ connectTimeout?: string }>().connectTimeout };
  };

  it('has no commander default, so an absent flag leaves ssh_config in charge', () => {
    const { cmd, value } = parse([]);
    expect(value).toBeUndefined();
    expect(chosenConnectTimeout(value, cmd)).toBeUndefined();
    expect(cmd.helpInformation().replace(/\s+/g, ' ')).toContain(`beats ssh_config ConnectTimeout; default: that, else ${DEFAULT_CONNECT_TIMEOUT}`);
  });

  it('typed on the command line is the user\'s choice', () => {
    const { cmd, value } = parse(['--connect-timeout', '3s']);
    expect(chosenConnectTimeout(value, cmd)).toEqual({ ms: 3_000, source: '--connect-timeout' });
  });

  it('a value the config supplied (not typed) is named as the config\'s', () => {
    const { cmd } = parse([]);
    expect(chosenConnectTimeout('20s', cmd)).toEqual({ ms: 20_000, source: 'connectTimeout in the config' });
  });

  it('the config file and the inventory rollout: section may set it; zero is refused', async () => {
    const d = mkdtempSync(join(tmpdir(), 'rr-ct-'));
    writeFileSync(join(d, 'runc-rollout.config.yaml'), 'connectTimeout: 20s\n');
    expect(await loadRolloutDefaults({ cwd: d })).toEqual({ connectTimeout: '20s' });
    writeFileSync(join(d, 'inv.yaml'), 'rollout:\n  connectTimeout: 0s\nnodes: []\n');
    await expect(loadRolloutDefaults({ cwd: d, inventoryPath: join(d, 'inv.yaml') })).rejects.toMatchObject({ issues: [expect.stringMatching(/rollout: connectTimeout: must be longer than 0/)] });
  });
});

describe('the transport applies it', () => {
  // A server that accepts TCP and never speaks SSH: only the deadline ends the connect.
  let server: Server;
  let port = 0;
  const sockets: Socket[] = [];
  let key: string;

  beforeAll(async () => {
    server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    const d = mkdtempSync(join(tmpdir(), 'rr-ct-'));
    key = join(d, 'id');
    writeFileSync(key, ssh2.utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
    writeFileSync(join(d, 'known_hosts'), '');
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  const node = (connectTimeoutMs?: number): NodeSpec => ({
    name: 'n1',
    ssh: { host: '127.0.0.1', port, user: 'root', identityFile: key, knownHosts: `${key}.kh`, hostKeyPolicy: 'strict', sudo: false, ...(connectTimeoutMs ? { connectTimeoutMs } : {}) },
    labels: {},
  } as NodeSpec);
  const logged = () => {
    const lines: string[] = [];
    const log: Logger = { colour: false, info() {}, warn() {}, error() {}, debug: (m) => lines.push(m) };
    return { lines, log };
  };

  it('--connect-timeout 0.3s beats the host\'s ssh_config ConnectTimeout 30', async () => {
    const { lines, log } = logged();
    const t = createSshTransport({ explicitConnectTimeout: { ms: 300, source: '--connect-timeout' }, log });
    const started = Date.now();
    await expect(t.connect(node(30_000))).rejects.toThrow(/connect timed out after 0\.3s/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(lines).toContain('n1: connect timeout 0.3s (--connect-timeout; beats ssh_config ConnectTimeout 30s)');
  });

  it('without a chosen one, ssh_config ConnectTimeout beats the transport default', async () => {
    const { lines, log } = logged();
    const t = createSshTransport({ connectTimeoutMs: 30_000, log });
    await expect(t.connect(node(400))).rejects.toThrow(/connect timed out after 0\.4s/);
    expect(lines).toContain('n1: connect timeout 0.4s (ssh_config ConnectTimeout)');
  });
});
