import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TransferError } from '../../src/model/errors.js';
import { silentObserver } from '../../src/progress/transfer-observer.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { MeasurementCache } from '../../src/stores/cache/measurement-cache.js';
import { runSync } from '../../src/sync/run-sync.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';

// Bad input that arrives late: the parent a plan relies on disappears from the source after
// planning, before its diff is sent. The send must fail cleanly, leaving the destination as it was.
describe('a parent that vanishes between plan and transfer', btrfsSuite(), () => {
  let pool: BtrfsPool;
  before(() => {
    pool = createPool(256);
    sh(
      `btrfs -q subvolume create data && head -c 2000000 /dev/urandom > data/a && mkdir src dst &&
       btrfs -q subvolume snapshot -r data src/s1 && head -c 500000 /dev/urandom > data/b &&
       btrfs -q subvolume snapshot -r data src/s2 && btrfs send -q src/s1 | btrfs receive -q dst/`,
      pool.mountPoint,
    );
  });
  after(() => pool?.destroy());

  const listing = (): string => execFileSync('btrfs', ['subvolume', 'list', pool.mountPoint], { encoding: 'utf8' });

  test('the send fails with a transfer error naming the parent; the destination is unchanged', async () => {
    const cacheDir = mkdtempSync(path.join(pool.mountPoint, 'cache-'));
    mkdirSync(cacheDir, { recursive: true });
    const store = (dir: string): BtrfsStore => new BtrfsStore({ url: `${dir}/`, directory: dir, cache: new MeasurementCache(cacheDir) });
    const src = store(`${pool.mountPoint}/src`);
    const dst = store(`${pool.mountPoint}/dst`);
    const before = listing()
      .split('\n')
      .filter((l) => l.includes(' path dst/'));
    let planned = '';
    await assert.rejects(
      runSync(
        { store: src, selection: null },
        { store: dst, selection: null },
        {
          dryRun: false,
          delete: false,
          estimate: false,
          excludes: [],
          now: new Date(),
          onPlan: (plan) => {
            planned = plan.steps.map((s) => (s.kind === 'send' ? `${s.snapshot.name}<${s.parent?.name ?? 'full'}` : s.kind)).join();
            // The parent goes away after planning, before anything is sent.
            sh('btrfs -q subvolume delete src/s1', pool.mountPoint);
            return silentObserver;
          },
        },
      ),
      (error: unknown) => error instanceof TransferError && /s1/.test(error.message) && !error.message.includes('\n'),
    );
    assert.equal(planned, 's2<s1');
    const afterwards = listing()
      .split('\n')
      .filter((l) => l.includes(' path dst/'));
    assert.deepEqual(afterwards, before, 'nothing new (and no partial) in the destination');
  });
});
