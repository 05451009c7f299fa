import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { completionScript } from '../../src/cli/completion.js';
import type { CliContext } from '../../src/cli/context.js';
import { buildProgram } from '../../src/cli/main.js';

const realProgram = () => buildProgram(() => { throw new Error('no command runs in these tests'); }, () => {}, {});
const hasZsh = spawnSync('zsh', ['-c', 'true']).status === 0;

const dir = mkdtempSync(join(tmpdir(), 'rr-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'inv-prod.yaml'), '');
writeFileSync(join(dir, 'inv-stage.ini'), '');
mkdirSync(join(dir, 'inv-dir'));

function check(shell: 'bash' | 'zsh', script: string): { status: number | null; stderr: string } {
  const r = spawnSync(shell, ['-n'], { input: script, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** Source the script in bash, set COMP_WORDS as readline would for `line` (cursor at the end), and return COMPREPLY. */
function complete(script: string, line: string, fn = '_runc_rollout'): string[] {
  const words = line.split(' ');
  const driver = [
    script,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    `cd '${dir}'`,
    fn,
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '').sort();
}

describe('bash completion of the real program', () => {
  const script = completionScript(realProgram(), 'bash');

  it('is valid bash and registers the function for the command', () => {
    expect(check('bash', script)).toEqual({ status: 0, stderr: '' });
    expect(script).toContain('complete -F _runc_rollout runc-rollout');
  });

  it.each([
    ['runc-rollout pl', ['plan']],
    ['runc-rollout ', ['apply', 'completion', 'help', 'inventory', 'plan', 'release', 'rollback', 'unstick']],
    ['runc-rollout --cache-dir /tmp pl', ['plan']],
    ['runc-rollout --json r', ['release', 'rollback']],
    ['runc-rollout release ', ['fetch', 'help', 'list']],
    ['runc-rollout release fetch --rel', ['--release-dir']],
    ['runc-rollout completion ', ['bash', 'zsh']],
    ['runc-rollout plan --inv', ['--inventory']],
    ['runc-rollout plan --detailed', ['--detailed-exitcode']],
    ['runc-rollout plan -i inv-prod.yaml --detailed', ['--detailed-exitcode']],
    ['runc-rollout plan --version ', []],
    ['runc-rollout apply --y', ['--yes']],
    ['runc-rollout plan -i inv', ['inv-dir', 'inv-prod.yaml', 'inv-stage.ini']],
    ['runc-rollout apply --release-dir inv', ['inv-dir']],
    ['runc-rollout --ke', ['--keyring']],
  ])('%j completes to %j', (line, expected) => {
    expect(complete(script, line)).toEqual(expected);
  });

  it('offers global options after a command too', () => {
    expect(complete(script, 'runc-rollout plan --verb')).toEqual(['--verbose']);
  });
});

describe('generation from the commander program', () => {
  function program(): Command {
    const p = new Command('tool').option('--json', 'json output').option('--cache-dir <dir>', 'cache');
    p.command('deploy')
      .description("roll it out [carefully]: it's fine")
      .option('-f, --file <file>', 'input file')
      .addOption(new Option('--mode <mode>', 'how').choices(['fast', 'safe', 'bad word', "it's"]))
      .option('--tag <t>', 'tag (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
      .addOption(new Option('--secret', 'hidden').hideHelp());
    p.command('later', { hidden: true });
    return p;
  }

  it('follows commands and options added to the program', () => {
    const p = program();
    const before = completionScript(p, 'bash');
    expect(complete(before, 'tool ', '_tool')).toEqual(['deploy', 'help']);
    p.command('status').option('--watch', 'keep watching');
    const after = completionScript(p, 'bash');
    expect(complete(after, 'tool ', '_tool')).toEqual(['deploy', 'help', 'status']);
    expect(complete(after, 'tool status --w', '_tool')).toEqual(['--watch']);
  });

  it('completes choices (dropping unsafe ones), skips hidden options and commands', () => {
    const script = completionScript(program(), 'bash');
    expect(check('bash', script).status).toBe(0);
    expect(complete(script, 'tool deploy --mode ', '_tool')).toEqual(['fast', 'safe']);
    expect(complete(script, 'tool deploy --', '_tool')).toEqual(['--cache-dir', '--file', '--help', '--json', '--mode', '--tag']);
    expect(complete(script, 'tool deploy -f inv-p', '_tool')).toEqual(['inv-prod.yaml']);
    expect(complete(script, 'tool l', '_tool')).toEqual([]);
  });

  it.skipIf(!hasZsh)('writes valid zsh, with quotes and brackets in descriptions escaped', () => {
    const script = completionScript(program(), 'zsh');
    expect(check('zsh', script)).toEqual({ status: 0, stderr: '' });
    expect(script.split('\n')[0]).toBe('#compdef tool');
    expect(script).toContain("'deploy:roll it out \\[carefully\\]\\: it'\\''s fine'");
    expect(script).toContain("'(-f --file)'{-f,--file}'[input file]:file:_files'");
    expect(script).toContain("'*--tag[tag (repeatable)]:t: '");
    expect(script).toContain("'--mode[how]:mode:(fast safe)'");
    expect(script).not.toContain('--secret');
  });

  it.skipIf(!hasZsh)('writes valid zsh for the real program, nested commands included', () => {
    const script = completionScript(realProgram(), 'zsh');
    expect(check('zsh', script)).toEqual({ status: 0, stderr: '' });
    expect(script).toContain('_runc-rollout__release__fetch() {');
    // Sourced after compinit (the documented way), it registers itself for the command.
    const file = join(dir, '_runc-rollout');
    writeFileSync(file, script);
    const r = spawnSync('zsh', ['-f', '-c', `autoload -U compinit; compinit -u -d '${join(dir, 'zcompdump')}'; source '${file}'; print -r -- \${_comps[runc-rollout]}`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('_runc-rollout');
  });
});

describe('the completion command', () => {
  it('prints the script for the shell named, and refuses other shells', async () => {
    let out = '';
    const ctx = { stdout: { write: (s: string) => { out += s; return true; } } } as unknown as CliContext;
    let code = -1;
    const p = buildProgram(() => ctx, (c) => { code = c; }, {});
    await p.parseAsync(['completion', 'bash'], { from: 'user' });
    expect(code).toBe(0);
    expect(out).toBe(completionScript(p, 'bash'));
    const q = buildProgram(() => ctx, () => {}, {});
    q.configureOutput({ writeErr: () => {} });
    await expect(q.parseAsync(['completion', 'fish'], { from: 'user' })).rejects.toThrow(/fish/);
  });
});
