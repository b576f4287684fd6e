import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { TransferError } from '../../src/model/errors.js';
import { renameStreamHead } from '../../src/sendstream/rename-subvolume.js';
import { pipeSendToReceive } from '../../src/stores/btrfs/pipe-send-to-receive.js';
import { readStreamHead } from '../../src/stores/btrfs/read-stream-head.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { treeDigest } from '../support/tree-digest.js';

const suite = btrfsSuite();

describe('the local fast path: btrfs send | (rename) | btrfs receive', suite, () => {
  let pool: BtrfsPool;
  before(() => {
    pool = createPool(256);
    sh(
      `btrfs -q subvolume create data && head -c 3000000 /dev/urandom > data/a && mkdir -p snaps dst bad && btrfs -q subvolume snapshot -r data snaps/one`,
      pool.mountPoint,
    );
  });
  after(() => pool?.destroy());

  test('receives under the new name, byte for byte, and reports the bytes copied', async () => {
    const sendArgs = ['-q', `${pool.mountPoint}/snaps/one`];
    const head = await readStreamHead(sendArgs);
    assert.ok(head);
    const totals: number[] = [];
    const renamedHead = renameStreamHead(head, 'renamed');
    const bytes = await pipeSendToReceive({
      sendArgs,
      originalHead: head,
      renamedHead,
      receiveDirectory: `${pool.mountPoint}/dst`,
      onBytes: (t) => totals.push(t),
      what: 'test',
    });
    const real = Number(sh(`btrfs send -q ${pool.mountPoint}/snaps/one | wc -c`).trim());
    // The bytes of the send stream (as the plan measures it), not the longer renamed one receive read.
    assert.equal(bytes, real);
    assert.notEqual(renamedHead.length, head.length);
    assert.equal(totals.at(-1), bytes - head.length);
    assert.deepEqual(readdirSync(`${pool.mountPoint}/dst`), ['renamed']);
    assert.deepEqual(treeDigest(`${pool.mountPoint}/dst/renamed`), treeDigest(`${pool.mountPoint}/snaps/one`));
  });

  test('a stream that does not start as expected is refused and nothing is received', async () => {
    const sendArgs = ['-q', `${pool.mountPoint}/snaps/one`];
    const head = (await readStreamHead(sendArgs))!;
    const wrong = Buffer.from(head);
    wrong[wrong.length - 1] = wrong[wrong.length - 1]! ^ 0xff;
    await assert.rejects(
      pipeSendToReceive({
        sendArgs,
        originalHead: wrong,
        renamedHead: renameStreamHead(head, 'never'),
        receiveDirectory: `${pool.mountPoint}/bad`,
        onBytes: () => {},
        what: 'test',
      }),
      (e: unknown) => e instanceof TransferError && /did not start as expected/.test(e.message),
    );
    assert.deepEqual(readdirSync(`${pool.mountPoint}/bad`), []);
    // No stage of the pipeline is left running.
    assert.equal(spawnSync('pgrep', ['-f', 'buttersink-pipe']).status, 1);
  });
});
