import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPool, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';

const suite = btrfsSuite();

/**
 * What the nightly run and the no-op run cost, counted in `btrfs` processes (a PATH shim logs
 * every invocation): counts, not times, so that a busy machine cannot make this flaky. Each
 * process is ~10-30 ms of a run that should take a fraction of a second.
 */
describe('a nightly sync starts few btrfs processes', suite, () => {
  let src: BtrfsPool;
  let dst: BtrfsPool;
  let work: string;
  let logFile: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    src = createPool(256);
    dst = createPool(256);
    work = mkdtempSync(path.join(os.tmpdir(), 'buttersink-nightly-'));
    logFile = path.join(work, 'btrfs.log');
    const bin = path.join(work, 'bin');
    mkdirSync(bin);
    const real = execFileSync('sh', ['-c', 'command -v btrfs'], { encoding: 'utf8' }).trim();
    writeFileSync(path.join(bin, 'btrfs'), `#!/bin/sh\nprintf '%s\\n' "$*" >>"$BTRFS_LOG"\nexec ${real} "$@"\n`);
    chmodSync(path.join(bin, 'btrfs'), 0o755);
    env = { BUTTERSINK_CACHE_DIR: path.join(work, 'cache'), BTRFS_LOG: logFile, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const data = makeRichSubvolume(src.mountPoint);
    for (let i = 1; i <= 4; i++) {
      if (i > 1) changeRichSubvolume(data, i);
      snapshot(data, `${src.mountPoint}/snaps/s${i}`);
    }
  });

  after(() => {
    src?.destroy();
    dst?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Runs `buttersink -q ARGS` and returns the btrfs command lines it ran. */
  function run(args: readonly string[]): string[] {
    writeFileSync(logFile, '');
    const res = cli(['-q', ...args], { env });
    assert.equal(res.code, 0, res.stderr);
    return readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  }
  const count = (lines: readonly string[], re: RegExp): number => lines.filter((l) => re.test(l)).length;
  const MEASURE = /^send --no-data /;
  const SEND = /^send (?!--no-data)/;
  const RECEIVE = /(^|\s)receive\s/;
  const LIST = /^subvolume list /;

  test('the nightly run sends one diff; a no-op run lists each side once, measures and sends nothing', () => {
    const from = `${src.mountPoint}/snaps/`;
    const to = `${dst.mountPoint}/backup/`;
    mkdirSync(to);
    run(['--exclude', '^s4$', from, to]); // earlier nights: s1..s3

    const nightly = run([from, to]);
    const shown = nightly.join('\n');
    assert.equal(count(nightly, SEND), 1, shown);
    assert.equal(count(nightly, RECEIVE), 1, shown);
    // Candidates for s4: a full send, from s3, from s2.
    assert.ok(count(nightly, MEASURE) <= 3, shown);
    // Three cross-checked listings per side, one for partials left by crashed runs.
    assert.ok(count(nightly, LIST) <= 7, shown);

    const noop = run([from, to]);
    const said = noop.join('\n');
    assert.equal(count(noop, SEND) + count(noop, RECEIVE) + count(noop, MEASURE), 0, said);
    assert.ok(count(noop, LIST) <= 7, said);
    // And where each directory is (rootid); the received full's creation time is cached, so no
    // `subvolume show` of it.
    assert.ok(noop.length <= 9, `${noop.length} btrfs processes:\n${said}`);
  });
});
