import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

// bin/buttersink.js starts the bundle from V8's code cache, kept per user. Compiled code is
// code: a cache someone else could have written must never be run. What is observable: which
// cache files a run writes, and whether it replaces one (a cache it did not use is written anew).
const BIN = fileURLToPath(new URL('../../../../bin/buttersink.js', import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../../../../package.json', import.meta.url)), 'utf8')) as { version: string }
).version;

describe('the installed command keeps a code cache of its bundle', () => {
  let home: string;
  before(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'buttersink-code-cache-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  /** Runs `buttersink --version` with the cache in DIR; returns what it printed. */
  function version(directory: string | undefined, env: NodeJS.ProcessEnv = {}): string {
    const base: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: '', ...env };
    if (directory === undefined) delete base.BUTTERSINK_CODE_CACHE_DIR;
    else base.BUTTERSINK_CODE_CACHE_DIR = directory;
    return execFileSync(process.execPath, [BIN, '--version'], { env: base, encoding: 'utf8' });
  }
  const cacheFiles = (directory: string): string[] => readdirSync(directory).filter((f) => f.endsWith('.bin'));
  /** The one cache file a --version run made in DIR. */
  function onlyCacheFile(directory: string): string {
    const files = cacheFiles(directory);
    assert.equal(files.length, 1, files.join(' '));
    assert.match(files[0]!, new RegExp(`^[0-9a-f]{32}-${process.version.replaceAll('.', '\\.')}-${process.arch}-info\\.bin$`));
    return path.join(directory, files[0]!);
  }

  test('the first run writes it (only the user may read it), the next runs use it as it is', () => {
    const directory = path.join(home, 'first');
    assert.equal(version(directory), `${VERSION}\n`);
    const file = onlyCacheFile(directory);
    assert.equal(statSync(directory).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const before = statSync(file);
    assert.equal(version(directory), `${VERSION}\n`);
    const later = statSync(file);
    assert.equal(later.ino, before.ino, 'a usable cache is not written again');
    assert.equal(later.mtimeMs, before.mtimeMs);
  });

  test('by default under ~/.cache/buttersink/code (or $XDG_CACHE_HOME/buttersink/code)', () => {
    version(undefined);
    onlyCacheFile(path.join(home, '.cache', 'buttersink', 'code'));
    const xdg = path.join(home, 'xdg');
    version(undefined, { XDG_CACHE_HOME: xdg });
    onlyCacheFile(path.join(xdg, 'buttersink', 'code'));
  });

  test('BUTTERSINK_CODE_CACHE_DIR= (empty) turns it off', () => {
    const empty = mkdtempSync(path.join(home, 'off-'));
    assert.equal(version('', { HOME: empty }), `${VERSION}\n`);
    assert.deepEqual(readdirSync(empty), []);
  });

  test('a cache file others may write is not run: it is replaced', () => {
    const directory = path.join(home, 'writable');
    version(directory);
    const file = onlyCacheFile(directory);
    chmodSync(file, 0o666);
    const before = statSync(file);
    assert.equal(version(directory), `${VERSION}\n`);
    const after = statSync(file);
    assert.notEqual(after.ino, before.ino, 'the group- and world-writable cache was used');
    assert.equal(after.mode & 0o777, 0o600);
  });

  test('a symbolic link in its place is not followed', () => {
    const directory = path.join(home, 'link');
    version(directory);
    const file = onlyCacheFile(directory);
    const target = path.join(home, 'elsewhere.bin');
    writeFileSync(target, readFileSync(file), { mode: 0o600 });
    rmSync(file);
    symlinkSync(target, file);
    assert.equal(version(directory), `${VERSION}\n`);
    assert.equal(lstatSync(file).isFile(), true, 'the link was kept');
  });

  test('garbage in the cache file is refused by V8: the run is right, the cache made anew', () => {
    const directory = path.join(home, 'garbage');
    version(directory);
    const file = onlyCacheFile(directory);
    const good = readFileSync(file);
    const garbage = Buffer.alloc(good.length, 0x5a);
    writeFileSync(file, garbage);
    assert.equal(version(directory), `${VERSION}\n`);
    const made = readFileSync(file);
    assert.equal(made.equals(garbage), false, 'the garbage was kept');
    // V8's header (magic number, version and flags hash) as in the cache made the first time.
    assert.deepEqual(made.subarray(0, 8), good.subarray(0, 8));
  });

  test('a directory others may write gets no cache', () => {
    const directory = path.join(home, 'shared');
    mkdirSync(directory, { mode: 0o777 });
    chmodSync(directory, 0o777);
    assert.equal(version(directory), `${VERSION}\n`);
    assert.deepEqual(cacheFiles(directory), []);
  });
});
