import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Start-up time is mostly loading modules (issue 15): what a command loads is countable and
// stable where its time is not. Hooks print every module the CLI loads. Both builds are
// checked: tsc's output (dist/src/, what the tests run) module by module, and the bundle that
// the installed command runs (bin/buttersink.js runs dist/bundle/main.cjs) by the packages
// outside it that it requires.
const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../../../bin/buttersink.js', import.meta.url));

/** Dependencies that only some commands need, and cost tens of milliseconds each to load. */
const STORE_DEPENDENCIES = ['@aws-sdk/client-s3', '@aws-sdk/credential-providers', 'ssh2', 'fuse-native'];
const ACTION_DEPENDENCIES = ['execa', 'smol-toml', 'cli-progress', 'lru-cache', 'p-limit'];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  /** Every module loaded: through the ESM loader (URLs) and through require (paths). */
  readonly modules: readonly string[];
}

async function runCli(args: readonly string[], untilFirstByte = false, entry = MAIN): Promise<Run> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'buttersink-startup-'));
  try {
    const hooks = path.join(directory, 'hooks.mjs');
    const register = path.join(directory, 'register.mjs');
    await writeFile(
      hooks,
      "import { writeSync } from 'node:fs';\n" +
        'export async function load(url, context, next) { writeSync(2, "LOADED " + url + "\\n"); return next(url, context); }\n',
    );
    await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    // The bundle is CommonJS: what it requires goes through Module._load, not the ESM loader.
    const requireHook = path.join(directory, 'require-hook.cjs');
    await writeFile(
      requireHook,
      "const Module = require('node:module'); const { writeSync } = require('node:fs'); const load = Module._load;\n" +
        'Module._load = function (request, parent, isMain) {\n' +
        '  try { writeSync(2, "LOADED " + Module._resolveFilename(request, parent, isMain) + "\\n"); } catch {}\n' +
        '  return load.apply(this, arguments);\n' +
        '};\n',
    );
    const child = spawn(process.execPath, ['--require', requireHook, '--import', register, entry, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Each run compiles from scratch: no code cache of the bundle is read or left behind.
      env: { ...process.env, BUTTERSINK_CODE_CACHE_DIR: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (untilFirstByte) child.stdin.end(); // the server exits once its client has gone
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    if (!untilFirstByte) child.stdin.end();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const modules = stderr
      .split('\n')
      .filter((line) => line.startsWith('LOADED '))
      .map((line) => line.slice('LOADED '.length));
    return { code, stdout, modules };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function packagesIn(modules: readonly string[], names: readonly string[]): string[] {
  return names.filter((name) => modules.some((url) => url.includes(`/node_modules/${name}/`)));
}

describe('start-up loads only what the command needs', () => {
  test('--version prints the version and loads no store, no child-process or progress library', async () => {
    const run = await runCli(['--version']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^\d+\.\d+\.\d+/);
    assert.ok(
      run.modules.some((url) => url.includes('/node_modules/commander/')),
      'the hook saw the modules loaded',
    );
    assert.deepEqual(packagesIn(run.modules, [...STORE_DEPENDENCIES, ...ACTION_DEPENDENCIES]), []);
    // Ours: main, run-cli, the command definitions and the little they need (not the actions).
    const ours = run.modules.filter((url) => url.includes('/dist/src/'));
    assert.deepEqual(
      ours.filter((url) => /\/dist\/src\/(stores|sync|fuse|progress|sendstream|planner)\/|\/remote\/server/.test(url)),
      [],
    );
  });

  test('--help loads none of them either', async () => {
    const run = await runCli(['--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /Usage: buttersink/);
    assert.deepEqual(packagesIn(run.modules, [...STORE_DEPENDENCIES, ...ACTION_DEPENDENCIES]), []);
  });

  test('the server sends its hello without loading S3, ssh2, FUSE, execa or the progress bar', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'buttersink-startup-snaps-'));
    try {
      const run = await runCli(['server', '--mode', 'r', directory], true);
      assert.ok(run.stdout.includes('"program":"buttersink"'), `the hello, got ${JSON.stringify(run.stdout)}`);
      assert.deepEqual(packagesIn(run.modules, [...STORE_DEPENDENCIES, 'execa', 'smol-toml', 'cli-progress']), []);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  describe('through the bundle the installed command runs (bin/buttersink.js)', () => {
    // The bundle is one file: what a command does not import is in it, but never run (esbuild
    // makes each dynamic import a lazy initializer), so what is left to see is which packages
    // outside it a run requires. The tests above check what the sources import when.
    for (const args of [['--version'], ['--help']]) {
      test(`${args.join(' ')} requires none of the store libraries and nothing of the unbundled build`, async () => {
        const run = await runCli(args, false, BIN);
        assert.equal(run.code, 0);
        assert.match(run.stdout, args[0] === '--version' ? /^\d+\.\d+\.\d+\n$/ : /Usage: buttersink/);
        assert.ok(
          run.modules.some((file) => file.endsWith('/bin/buttersink.js')),
          `the hook saw the run: ${run.modules.join(' ')}`,
        );
        assert.deepEqual(
          run.modules.filter((file) => file.includes('/dist/src/') || file.includes('/node_modules/')),
          [],
          'nothing but the bundle',
        );
      });
    }

    test('the server sends its hello without requiring S3, ssh2, FUSE or the CRC library', async () => {
      const directory = await mkdtemp(path.join(os.tmpdir(), 'buttersink-startup-snaps-'));
      try {
        const run = await runCli(['server', '--mode', 'r', directory], true, BIN);
        assert.ok(run.stdout.includes('"program":"buttersink"'), `the hello, got ${JSON.stringify(run.stdout)}`);
        assert.deepEqual(packagesIn(run.modules, [...STORE_DEPENDENCIES, '@node-rs/crc32']), []);
        assert.deepEqual(
          run.modules.filter((file) => file.includes('/dist/src/')),
          [],
        );
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    });
  });
});
