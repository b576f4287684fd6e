#!/usr/bin/env node
/**
 * npm's `prepare`: builds the package (`npm run build`) when it is installed from a git URL or
 * packed from a clone, so that the command and man pages exist.
 *
 * Building needs the dev dependencies (typescript, esbuild). npm installs them into the clone
 * before `prepare`, except for `npm install -g <git URL>`: there npm 10-11 runs that install
 * with the global settings it inherits (npm_config_global, the prefix), so it installs the
 * clone into the global prefix instead of its dependencies into the clone (npm/cli#8440), and
 * `tsc` is not found. Then the dev dependencies are installed here, locally, and the build goes
 * on; npm packs the built clone and installs that.
 *
 * Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];

function run(args, env = process.env) {
  const result = spawnSync(npm[0], [...npm.slice(1), ...args], { cwd: repo, stdio: 'inherit', env });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(path.join(repo, 'node_modules', 'typescript', 'package.json'))) {
  process.stderr.write('buttersink prepare: the build tools are missing (a global install from git): installing them here\n');
  // Local settings, not the global install's that npm handed down.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_config_(global|location|prefix)$/i.test(key)),
  );
  run(['install', '--include=dev', '--ignore-scripts', '--no-save', '--no-audit', '--no-fund', '--location=project'], env);
}
run(['run', 'build']);
