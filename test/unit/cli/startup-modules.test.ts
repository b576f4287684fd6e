import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Start-up time is mostly loading modules (issue 15): what a command loads is countable and
// stable where its time is not. A loader hook prints every module the CLI loads. Both builds
// are checked: tsc's output (dist/src/, what the tests run) module by module, and the bundle
// that the installed command runs (bin/buttersink.js loads dist/bundle/main.js and the chunks
// it imports) through esbuild's metafile, which says which sources each chunk holds.
const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../../../bin/buttersink.js', import.meta.url));
const BUNDLE_META = fileURLToPath(new URL('../../../bundle-meta.json', import.meta.url));

/** Dependencies that only some commands need, and cost tens of milliseconds each to load. */
const STORE_DEPENDENCIES = ['@aws-sdk/client-s3', '@aws-sdk/credential-providers', 'ssh2', 'fuse-native'];
const ACTION_DEPENDENCIES = ['execa', 'smol-toml', 'cli-progress', 'lru-cache', 'p-limit'];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  /** Every module loaded through the ESM loader (CommonJS requires inside packages are not). */
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
    const child = spawn(process.execPath, ['--import', register, entry, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
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

interface Metafile {
  /** Output files (paths relative to the repository) and the sources (inputs) each holds. */
  readonly outputs: Record<string, { readonly inputs: Record<string, unknown> }>;
}

/**
 * The sources (`src/...ts`, `node_modules/...`) inside the bundle files a run loaded. Fails if the
 * run loaded none, or one the metafile does not know (a stale metafile would prove nothing).
 */
async function bundledSourcesLoaded(run: Run): Promise<string[]> {
  const meta = JSON.parse(await readFile(BUNDLE_META, 'utf8')) as Metafile;
  const byName = new Map(Object.entries(meta.outputs).map(([file, output]) => [path.basename(file), Object.keys(output.inputs)]));
  const chunks = run.modules.filter((url) => url.includes('/dist/bundle/')).map((url) => path.basename(fileURLToPath(url)));
  assert.ok(chunks.includes('main.js'), `the bundle ran: ${run.modules.join(' ')}`);
  return chunks.flatMap((chunk) => {
    const inputs = byName.get(chunk);
    assert.ok(inputs, `dist/bundle/${chunk} is in dist/bundle-meta.json (rebuild: npm run build)`);
    return inputs;
  });
}

/** Sources of ours that only some commands need (stores, sync, FUSE, the server, the actions). */
const COMMAND_SOURCES = /^src\/(stores|sync|fuse|progress|sendstream|planner)\/|^src\/remote\/server|^src\/cli\/[^/]*-action\.ts$/;

function bundledPackages(sources: readonly string[], names: readonly string[]): string[] {
  return names.filter((name) => sources.some((source) => source.includes(`node_modules/${name}/`)));
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

  test('the server sends its hello without loading S3, ssh2, FUSE or the progress bar', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'buttersink-startup-snaps-'));
    try {
      const run = await runCli(['server', '--mode', 'r', directory], true);
      assert.ok(run.stdout.includes('"program":"buttersink"'), `the hello, got ${JSON.stringify(run.stdout)}`);
      assert.deepEqual(packagesIn(run.modules, [...STORE_DEPENDENCIES, 'smol-toml', 'cli-progress']), []);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  describe('through the bundle the installed command runs (bin/buttersink.js)', () => {
    for (const args of [['--version'], ['--help']]) {
      test(`${args.join(' ')} loads no store, server, mount or action code, nor their libraries`, async () => {
        const run = await runCli(args, false, BIN);
        assert.equal(run.code, 0);
        assert.match(run.stdout, args[0] === '--version' ? /^\d+\.\d+\.\d+\n$/ : /Usage: buttersink/);
        assert.deepEqual(
          run.modules.filter((url) => url.includes('/dist/src/')),
          [],
          'nothing of the unbundled build',
        );
        const sources = await bundledSourcesLoaded(run);
        assert.ok(sources.includes('src/cli/run-cli.ts'), 'the metafile names the sources');
        assert.deepEqual(
          sources.filter((source) => COMMAND_SOURCES.test(source)),
          [],
        );
        assert.deepEqual(bundledPackages(sources, ACTION_DEPENDENCIES), []);
        // The store libraries are not bundled: they would be loaded from node_modules.
        assert.deepEqual(packagesIn(run.modules, STORE_DEPENDENCIES), []);
      });
    }

    test('the server sends its hello without loading S3, ssh2, FUSE or the progress bar', async () => {
      const directory = await mkdtemp(path.join(os.tmpdir(), 'buttersink-startup-snaps-'));
      try {
        const run = await runCli(['server', '--mode', 'r', directory], true, BIN);
        assert.ok(run.stdout.includes('"program":"buttersink"'), `the hello, got ${JSON.stringify(run.stdout)}`);
        const sources = await bundledSourcesLoaded(run);
        assert.ok(sources.includes('src/remote/server.ts'));
        assert.deepEqual(
          sources.filter((source) => /^src\/(stores\/(s3|ssh)|fuse|progress)\/|^src\/cli\/(sync|mount)-action\.ts$/.test(source)),
          [],
        );
        assert.deepEqual(bundledPackages(sources, ['smol-toml', 'cli-progress']), []);
        assert.deepEqual(packagesIn(run.modules, STORE_DEPENDENCIES), []);
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    });
  });
});
