import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { sshSuite } from '../support/prerequisites.js';
import { BIN, cliAt } from '../support/run-cli.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { treeDigest } from '../support/tree-digest.js';

const suite = sshSuite();

/**
 * The other tests run tsc's output (dist/src/cli/main.js); the installed command runs the
 * bundle (bin/buttersink.js → dist/bundle/main.cjs, esbuild: one CommonJS file, started from
 * V8's code cache, native and AWS packages left in node_modules). This runs real commands
 * through it: a local sync between two pools and a listing, then a push over SSH where the
 * remote `buttersink server` is the bundle as well (ssh2, an external, loaded from node_modules).
 */
describe('the installed command (the bundle) syncs between pools, locally and over SSH', suite, () => {
  let sshd: TestSshd;
  let src: BtrfsPool;
  let dst: BtrfsPool;
  /** The SSH test's own: received copies of the same snapshots on one filesystem are refused. */
  let remoteDst: BtrfsPool;
  let data: string;
  let cache: string;
  let env: NodeJS.ProcessEnv;

  const bin = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}) => cliAt(BIN, args, [], { ...env, ...extraEnv });
  const names = (listing: string) => (JSON.parse(listing) as { name: string }[]).map((s) => s.name);

  before(async () => {
    assert.ok(existsSync(path.resolve(path.dirname(BIN), '../dist/bundle/main.cjs')), 'the bundle is built (npm run build)');
    sshd = await startSshd();
    src = createPool(512);
    dst = createPool(512);
    remoteDst = createPool(512);
    data = makeRichSubvolume(src.mountPoint);
    snapshot(data, `${src.mountPoint}/snaps/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${src.mountPoint}/snaps/s2`);
    cache = mkdtempSync(path.join(os.tmpdir(), 'buttersink-cache-'));
    env = { BUTTERSINK_CACHE_DIR: cache };
  });
  after(async () => {
    await sshd?.stop();
    src?.destroy();
    dst?.destroy();
    remoteDst?.destroy();
    if (cache) rmSync(cache, { recursive: true, force: true });
  });

  test('local: a full sync, then an incremental one, byte for byte; the listing shows them', () => {
    const target = `${dst.mountPoint}/local`;
    mkdirSync(target);
    const first = bin(['-q', `${src.mountPoint}/snaps/`, `${target}/`]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /done: sent 2 snapshots/);
    assert.deepEqual(treeDigest(`${target}/s2`), treeDigest(`${src.mountPoint}/snaps/s2`));

    changeRichSubvolume(data, 2);
    snapshot(data, `${src.mountPoint}/snaps/s3`);
    const second = bin([`${src.mountPoint}/snaps/`, `${target}/`]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /sent s3 \(from s2\)/);
    assert.deepEqual(treeDigest(`${target}/s3`), treeDigest(`${src.mountPoint}/snaps/s3`));
    const show = execFileSync('btrfs', ['subvolume', 'show', `${target}/s3`], { encoding: 'utf8' });
    assert.match(show, /Flags:\s+readonly/);

    const listing = bin(['--json', `${target}/`]);
    assert.equal(listing.code, 0, listing.stderr);
    assert.deepEqual(names(listing.stdout), ['s1', 's2', 's3']);
  });

  test('over SSH: the remote server is the bundle too', () => {
    const target = `${remoteDst.mountPoint}/remote`;
    mkdirSync(target);
    const remote = { ...sshd.env, BUTTERSINK_REMOTE_COMMAND: `env BUTTERSINK_CACHE_DIR=${cache}/remote ${process.execPath} ${BIN}` };
    const push = bin(['-q', `${src.mountPoint}/snaps/`, `ssh://buttersink-test${target}/`], remote);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, /done: sent 3 snapshots/);
    assert.deepEqual(treeDigest(`${target}/s3`), treeDigest(`${src.mountPoint}/snaps/s3`));
    const listing = bin(['--json', `ssh://buttersink-test${target}/`], remote);
    assert.equal(listing.code, 0, listing.stderr);
    assert.deepEqual(names(listing.stdout), ['s1', 's2', 's3']);
  });

  test('an error is reported as by the unbundled build: message, exit code, no stack trace', () => {
    const missing = bin([`${src.mountPoint}/no-such-dir/`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /^buttersink: .*no-such-dir/m);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
  });
});
