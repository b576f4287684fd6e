#!/usr/bin/env node
/**
 * Bundles the CLI for the installed `buttersink` command (bin/buttersink.js runs it): the
 * sources and the pure-JS dependencies in one CommonJS file, instead of ~200 small ES modules
 * that Node 20 reads, resolves and compiles one by one at every start (issue 15).
 *
 *   dist/bundle/main.cjs         the whole CLI. What only some commands need (the actions, the
 *                                stores, execa, ...) is still only run when a command imports it
 *                                (esbuild turns those dynamic imports into lazy initializers).
 *                                Its first line names the build: a hash of the rest.
 *   dist/bundle/main.cjs.map     its source map
 *   dist/bundle-meta.json        esbuild's metafile: which sources went in (not shipped)
 *
 * One CommonJS file because it can start from V8's code cache on Node 20: bin/buttersink.js
 * compiles it with node:vm and keeps V8's compiled code per user (see there). ES modules get
 * that only from Node 22.1 (module.enableCompileCache); measured on Node 20 (2026-12-03), the
 * cached single file started a nightly no-op in ~50 ms less wall time and ~60 ms less CPU
 * than the ES module chunks, and `--version` in ~30 ms less.
 *
 * Packages with native code or their own optional native parts (fuse-native, @node-rs/crc32,
 * ssh2 with cpu-features) and the big AWS SDK stay external: required from node_modules at run
 * time, only where a command needs them. The source map is written beside the file and shipped
 * with it, without the sources' text: with -v a stack trace names src/*.ts lines
 * (bin/buttersink.js turns them on only then).
 *
 *   node scripts/bundle.mjs [DIST]   (default: dist/ of this repository)
 *
 * Plain JavaScript, run by `npm run build` after tsc; esbuild does not type-check.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['fuse-native', '@node-rs/crc32', 'ssh2', 'cpu-features', '@aws-sdk/*'],
  define: {
    // The version is known now: the bundle does not read package.json at run time (from
    // dist/bundle/, the relative path the tsc build uses would miss it).
    BUTTERSINK_VERSION: JSON.stringify(version),
    // CommonJS has no import.meta: the sources use its url to require packages beside them.
    'import.meta.url': '__bsImportMetaUrl',
  },
  inject: ['scripts/bundle/import-meta-url.js'],
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
  write: false,
});
mkdirSync(outdir, { recursive: true });
for (const file of result.outputFiles) {
  if (!file.path.endsWith('.cjs')) {
    writeFileSync(file.path, file.contents);
    continue;
  }
  // bin/buttersink.js keys its code cache by this line: a cache made for other code is never
  // used. It takes the place of main.ts's #! line, so that the source map's lines still match.
  const text = Buffer.from(file.contents).toString('utf8');
  if (!text.startsWith('#!')) throw new Error(`${file.path} does not start with main.ts's #! line`);
  const code = text.slice(text.indexOf('\n') + 1);
  const id = createHash('sha256').update(code).digest('hex');
  writeFileSync(file.path, `// buttersink-build ${id}\n${code}`);
}
writeFileSync(path.join(dist, 'bundle-meta.json'), JSON.stringify(result.metafile, null, 1));
