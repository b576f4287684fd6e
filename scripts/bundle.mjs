#!/usr/bin/env node
/**
 * Bundles the CLI for the installed `buttersink` command (bin/buttersink.js loads it): the
 * sources and the small pure-JS dependencies in a few ES module files in dist/bundle/, instead
 * of ~200 small files that Node 20 reads, resolves and compiles one by one at every start
 * (issue 15: that was most of `buttersink --version`'s time over bare node).
 *
 *   dist/bundle/main.js          what every command loads: main, run-cli, the command definitions,
 *                                commander
 *   dist/bundle/*-HASH.js        chunks of what the dynamic import()s load when a command runs
 *                                (sync/mount/server actions, stores, execa, ...), shared code too
 *   dist/bundle-meta.json        esbuild's metafile: which sources went into which output file
 *                                (the start-up test reads it; not shipped)
 *
 * Packages with native code or their own optional native parts (fuse-native, @node-rs/crc32,
 * ssh2 with cpu-features) and the big AWS SDK stay external: imported from node_modules at run
 * time, only where the code imports them (all behind dynamic imports of the commands that need
 * them). Source maps are written beside the files and shipped with them, without the sources'
 * text: with -v a stack trace names src/*.ts lines (bin/buttersink.js turns them on only then).
 *
 *   node scripts/bundle.mjs [DIST]   (default: dist/ of this repository)
 *
 * Plain JavaScript, run by `npm run build` after tsc; esbuild does not type-check.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The output folder: dist/ of the repository unless named (benchmarks build a private copy).
const dist = path.resolve(process.argv[2] ?? path.join(repo, 'dist'));
const outdir = path.join(dist, 'bundle');
const { version } = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: repo,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  external: ['fuse-native', '@node-rs/crc32', 'ssh2', 'cpu-features', '@aws-sdk/*'],
  // The CommonJS packages bundled (commander, ini, cli-progress) require Node's modules; an ES
  // module has no `require`, so every output file gets one of its own.
  banner: { js: "import { createRequire as __bsCreateRequire } from 'node:module';\nconst require = __bsCreateRequire(import.meta.url);" },
  // The version is known now: the bundle does not read package.json at run time (from
  // dist/bundle/, the relative path the tsc build uses would miss it).
  define: { BUTTERSINK_VERSION: JSON.stringify(version) },
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(path.join(dist, 'bundle-meta.json'), JSON.stringify(result.metafile, null, 1));
