// What the facts script costs a node: the processes it starts (strace -f -c),
// with few and with many sysctl files. (The stuck runc init scan at its end
// starts none where nothing is stuck: test/e2e/stuck-scan.test.ts counts it on
// a node with 1,200 processes.)
// The sysctl folders are replaced inside a private mount namespace (bind
// mounts that vanish with it), so this machine's /etc is never touched.
// Needs root, strace and unshare.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { q } from '../../src/core/shell.js';
import { parseFacts } from '../../src/facts/parse.js';
import { buildFactsScript } from '../../src/facts/script.js';
import { parseProcessCount, processCountCommand } from '../harness/process-count.js';

const has = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const ready = process.getuid?.() === 0 && has('strace') && has('unshare');
if (!ready) console.warn('skipping the facts script cost test: needs root, strace and unshare');

// Processes any run needs: uname, sha256sum, the dpkg file lists (grep), timeout + runc, df,
// readlink for the one linked sysctl file, awk: 8 forks, 9 execs with the shell itself
// (the script used to start 58 with two sysctl files and 134 with forty). Two spare.
const MAX_FORKS = 10;
const MAX_EXECS = 11;

describe.skipIf(!ready)('the facts script’s process count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rr-facts-cost-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // a runc that is one process (a real one starts Go threads, which strace counts as clones)
  const runc = join(dir, 'bin', 'runc');
  mkdirSync(join(dir, 'bin'));
  writeFileSync(runc, '#!/bin/sh\necho "runc version 1.0.0-rc93"\necho "commit: v1.0.0-rc93-0-g12644e61"\n');
  chmodSync(runc, 0o755);

  /** A node with `files` sysctl.d files (one the rc93 workaround) plus the usual 99-sysctl.conf link. */
  function node(name: string, files: number): { etc: string; conf: string } {
    const etc = join(dir, name, 'etc-sysctl.d');
    mkdirSync(etc, { recursive: true });
    const conf = join(dir, name, 'sysctl.conf');
    writeFileSync(conf, '# /etc/sysctl.conf\nkernel.x = 1\n');
    symlinkSync('../sysctl.conf', join(etc, '99-sysctl.conf'));
    writeFileSync(join(etc, '90-rc93.conf'), '# workaround for runc rc93\nfs.pipe-user-pages-soft = 65536\n');
    // a name and a line that must travel encoded
    writeFileSync(join(etc, "91-odd name 'x' $(id)\t.conf"), '# réglage\nfs.pipe-user-pages-soft=32768 # ça\n');
    for (let i = 1; i < files; i++) writeFileSync(join(etc, `${10 + i}-setting-${i}.conf`), `# file ${i}\nnet.core.somaxconn = ${1000 + i}\nvm.max_map_count = 262144\n`);
    return { etc, conf };
  }

  function count(n: { etc: string; conf: string }) {
    const script = buildFactsScript({ runcPath: runc });
    const scriptFile = join(dir, 'facts.sh');
    const outFile = join(dir, 'out');
    writeFileSync(scriptFile, script);
    const binds = [
      [n.etc, '/etc/sysctl.d'],
      [n.conf, '/etc/sysctl.conf'],
    ]
      .map(([from, to]) => `mount --bind ${q(from!)} ${q(to!)}`)
      .join(' && ');
    // no containerd config here, whatever this machine has; the other sysctl folders stay as they are
    const hide = '{ [ ! -d /etc/containerd ] || mount -t tmpfs none /etc/containerd; }';
    const inner = `mount --make-rprivate / && ${binds} && ${hide} && ${processCountCommand({ scriptFile, outFile, summaryFile: join(dir, 'summary') })}`;
    // a private pid space too: the stuck runc init scan must see no other test's processes
    const text = execFileSync('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'sh', '-c', inner], { encoding: 'utf8' });
    const c = parseProcessCount(text);
    expect(c.exitCode).toBe(0);
    const out = execFileSync('cat', [outFile], { encoding: 'utf8' });
    return { ...c, facts: parseFacts(out, 'local') };
  }

  it('starts the same few processes for 2 sysctl files and for 40', () => {
    const few = count(node('few', 2));
    const many = count(node('many', 40));
    // it read them all: 40 files, the odd one and the link, and the rc93 setting
    expect(many.facts.sysctl.files.filter((f) => f.path.startsWith('/etc/sysctl.d/')).length).toBe(42);
    expect(many.facts.sysctl.files.find((f) => f.path === "/etc/sysctl.d/91-odd name 'x' $(id)\t.conf")?.settings).toEqual([{ line: 2, value: '32768 # ça' }]);
    expect(many.facts.sysctl.files.find((f) => f.path === '/etc/sysctl.d/90-rc93.conf')?.settings).toEqual([{ line: 2, value: '65536' }]);
    expect(many.facts.sysctl.files.find((f) => f.path === '/etc/sysctl.d/99-sysctl.conf')?.realPath).toBe('/etc/sysctl.conf');
    expect(many.facts.runc.version).toBe('1.0.0-rc93');
    expect({ forks: many.forks, execs: many.execs }).toEqual({ forks: few.forks, execs: few.execs });
    expect(many.forks).toBeLessThanOrEqual(MAX_FORKS);
    expect(many.execs).toBeLessThanOrEqual(MAX_EXECS);
  });
});
