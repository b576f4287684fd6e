#!/usr/bin/env node
// The installed `buttersink` command. It runs the bundle, dist/bundle/main.cjs (made by
// scripts/bundle.mjs in `npm run build`: the prepare script on npm ci, npm pack and installs
// from git): one file instead of ~200 small modules to read and compile at every start
// (issue 15). The tests and scripts run tsc's output, `node dist/src/cli/main.js`, which
// behaves the same.
//
// It starts from V8's code cache: the compiled code of an earlier run of the same command
// (sync, server, mount, run) with this very bundle and node, kept per user in
// $BUTTERSINK_CODE_CACHE_DIR, else $XDG_CACHE_HOME/buttersink/code, else
// ~/.cache/buttersink/code (BUTTERSINK_CODE_CACHE_DIR= turns it off). Compiled code is code:
// a cache file is used only when it is the user's own and nobody else can write it, and only
// for the bundle whose hash names it. A cache that cannot be read or written only costs time.
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const bundle = fileURLToPath(new URL('../dist/bundle/main.cjs', import.meta.url));

// With -v/--verbose a stack trace names the lines of src/*.ts through the bundle's source map:
// then node's own loader runs it (node:vm applies no source maps on Node 20), without the code
// cache. Only then: reading the map costs start-up time (measured: 25-40 ms of CPU).
if (process.argv.includes('-v') || process.argv.includes('--verbose')) {
  process.setSourceMapsEnabled(true);
  createRequire(import.meta.url)(bundle);
} else {
  const source = readFileSync(bundle, 'utf8');
  const cache = codeCache(source);
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    cachedData: cache?.data,
  });
  if (cache && (cache.data === undefined || script.cachedDataRejected)) {
    // At the end, so that it holds everything this command compiled, not only the first lines.
    process.once('exit', () => saveCodeCache(cache, script));
  }
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
}

/** Where this command's cache is, and its contents when they may be used. */
function codeCache(text) {
  const setting = process.env.BUTTERSINK_CODE_CACHE_DIR;
  const id = /^\/\/ buttersink-build ([0-9a-f]{64})\n/.exec(text)?.[1];
  if (setting === '' || id === undefined || typeof process.geteuid !== 'function') return undefined;
  const directory = setting ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'buttersink', 'code');
  // One per command: each holds what that command compiles (the server never loads the mount's
  // code, --version nothing but the command definitions).
  const [first] = process.argv.slice(2);
  const info = first === undefined || ['-V', '--version', '-h', '--help', 'help', 'completion'].includes(first);
  const command = info ? 'info' : ['server', 'mount', 'umount', 'run'].includes(first) ? first : 'sync';
  const file = path.join(directory, `${id.slice(0, 32)}-${process.version}-${process.arch}-${command}.bin`);
  return { directory, file, data: readOwnFile(file) };
}

/** The file's contents when it is a regular file of this user that no one else may write. */
function readOwnFile(file) {
  let fd;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.uid !== process.geteuid() || (stat.mode & 0o022) !== 0) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function saveCodeCache({ directory, file }, compiled) {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    const stat = lstatSync(directory);
    if (!stat.isDirectory() || stat.uid !== process.geteuid() || (stat.mode & 0o022) !== 0) return;
    writeFileSync(temporary, compiled.createCachedData(), { mode: 0o600, flag: 'wx' });
    renameSync(temporary, file);
  } catch {
    rmSync(temporary, { force: true });
  }
}
