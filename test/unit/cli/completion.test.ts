import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { completionScript } from '../../../src/cli/completion.js';
import { Output } from '../../../src/cli/output.js';
import { buildProgram } from '../../../src/cli/run-cli.js';
import { UsageError } from '../../../src/model/errors.js';

const program = () =>
  buildProgram({ output: new Output({ quiet: 2, verbose: false }), verbose: false, signal: new AbortController().signal });

/** What bash's completion offers for the words typed (the last one being completed), run in a real bash. */
function complete(words: string[], cwd: string): string[] {
  const script = completionScript(program(), 'bash');
  const line = ['buttersink', ...words].map((w) => `'${w}'`).join(' ');
  const res = spawnSync(
    'bash',
    ['-c', `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length}; _buttersink; printf '%s\\n' "\${COMPREPLY[@]}"`],
    { cwd, encoding: 'utf8', env: { PATH: process.env.PATH } },
  );
  assert.equal(res.status, 0, res.stderr);
  return res.stdout.split('\n').filter(Boolean).sort();
}

describe('buttersink completion: made from the same definitions as --help', () => {
  test('bash: commands, each command its own options, sync options by default, directories for URLs', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-completion-'));
    try {
      mkdirSync(path.join(dir, 'snaps'));
      assert.deepEqual(complete(['ru'], dir), ['run']);
      assert.deepEqual(complete(['--ke'], dir), ['--keep'], 'sync, the default command, completes its options');
      assert.deepEqual(complete(['mount', '--no-'], dir), ['--no-check-stores']);
      assert.deepEqual(complete(['run', '--l'], dir), ['--list', '--logfile']);
      assert.deepEqual(complete(['sn'], dir), ['snaps/']);
      assert.deepEqual(complete(['-n', 'snaps/', 'sn'], dir), ['snaps/']);
      assert.deepEqual(complete(['completion', 'f'], dir), ['fish']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('zsh wraps the bash one; fish names every command and option; another shell is a usage error', () => {
    const zsh = completionScript(program(), 'zsh');
    assert.match(zsh, /^#compdef buttersink\n/);
    assert.match(zsh, /complete -F _buttersink buttersink/);
    const fish = completionScript(program(), 'fish');
    for (const name of ['sync', 'run', 'mount', 'umount', 'server', 'completion']) assert.match(fish, new RegExp(`-a ${name} -d `));
    assert.match(fish, /-n '__fish_seen_subcommand_from run' -s n -l dry-run -d 'print each plan with sizes and reasons'/);
    assert.match(
      fish,
      /-l keep -r -d 'retention on DST instead of mirroring: keep only what POLICY keeps, delete the rest after sending, send nothing it would not keep'/,
    );
    assert.equal(spawnSync('bash', ['-n'], { input: completionScript(program(), 'bash') }).status, 0, 'bash parses it');
    assert.throws(
      () => completionScript(program(), 'tcsh'),
      (e: unknown) => e instanceof UsageError && /no completion for the shell "tcsh"/.test(e.message),
    );
  });
});
