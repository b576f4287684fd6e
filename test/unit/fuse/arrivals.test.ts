import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Arrivals } from '../../../src/fuse/arrivals.js';
import { FsError } from '../../../src/fuse/fs-error.js';

function started() {
  let finish: () => void = () => {};
  let fail: (error: Error) => void = () => {};
  const transfer = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
  return { transfer, finish: () => finish(), fail: (error: Error) => fail(error) };
}

describe('Arrivals: transfers mkdir started, and what waits for them', () => {
  test('one transfer per snapshot and store: a second is EEXIST until the first settles', async () => {
    const arrivals = new Arrivals();
    const one = started();
    arrivals.add('B', 's1', one.transfer);
    assert.ok(arrivals.has('B', 's1'));
    assert.throws(
      () => arrivals.refuseSecond('B', 's1'),
      (e: unknown) => e instanceof FsError && e.errno === 'EEXIST',
    );
    arrivals.refuseSecond('C', 's1'); // another store: fine
    one.finish();
    await one.transfer;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(arrivals.size, 0);
    arrivals.refuseSecond('B', 's1');
  });

  test('paths below the new snapshot wait for it; its root only when asked; other snapshots never', async () => {
    const arrivals = new Arrivals();
    const one = started();
    arrivals.add('B', 'daily/d1', one.transfer);
    assert.equal(arrivals.below('B', ['daily', 'd1', 'file'], false)?.name, 'daily/d1');
    assert.equal(arrivals.below('B', ['daily', 'd1'], false), undefined, 'the lookup right after mkdir answers at once');
    assert.ok(arrivals.below('B', ['daily', 'd1'], true) !== undefined, 'ls of it waits');
    assert.equal(arrivals.below('B', ['daily', 'd2', 'file'], false), undefined);
    assert.equal(arrivals.below('A', ['daily', 'd1', 'file'], false), undefined);
    const waiting = arrivals.below('B', ['daily', 'd1', 'file'], false)!.transfer;
    one.fail(new FsError('EIO', 'receive failed'));
    await assert.rejects(waiting, /receive failed/);
  });

  test('the source side waits for transfers of that snapshot into other stores only', async () => {
    const arrivals = new Arrivals();
    const one = started();
    arrivals.add('B', 's1', one.transfer);
    assert.deepEqual(arrivals.elsewhere('B', 's1'), [], 'the destination itself does not wait');
    assert.deepEqual(arrivals.elsewhere('A', 's2'), []);
    const [source, ...more] = arrivals.elsewhere('A', 's1');
    assert.equal(more.length, 0);
    assert.equal(source!.store, 'B');
    let done = false;
    const waiting = source!.transfer.then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(done, false);
    one.finish();
    await waiting;
    assert.equal(done, true);
  });

  test('a transfer that fails with nobody waiting answers for its name for a second from its first answer (below it too), within rememberMs; a waiter hears it instead', async () => {
    let clock = 0;
    const arrivals = new Arrivals({ now: () => clock, rememberMs: 30_000 });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
    const one = started();
    arrivals.add('B', 'daily/d1', one.transfer);
    assert.equal(arrivals.failure('B', ['daily', 'd1']), undefined, 'running: no failure');
    one.fail(new FsError('EBUSY', 'locked by another buttersink'));
    await settle();
    assert.equal(arrivals.has('B', 'daily/d1'), false);
    assert.equal(arrivals.failure('B', ['daily', 'd2']), undefined);
    assert.equal(arrivals.failure('A', ['daily', 'd1']), undefined);
    assert.match(String((arrivals.failure('B', ['daily', 'd1', 'file']) as Error).message), /locked/, 'below it too');
    clock = 999;
    // One stat can ask twice (the kernel revalidates its cached entry, then looks it up again).
    assert.match(String((arrivals.failure('B', ['daily', 'd1']) as Error).message), /locked/, 'asked again at once: the same answer');
    clock = 1000;
    assert.equal(arrivals.failure('B', ['daily', 'd1']), undefined, 'a second after the first answer: a retry finds the name free');
    assert.equal(arrivals.failure('B', ['daily', 'd1']), undefined);

    const waited = started();
    arrivals.add('B', 's2', waited.transfer);
    const waiting = arrivals.below('B', ['s2', 'file'], false)!.transfer;
    waited.fail(new FsError('EINTR', 'cancelled'));
    await assert.rejects(waiting, /cancelled/);
    await settle();
    assert.equal(arrivals.failure('B', ['s2']), undefined, 'the waiter was told: not kept');

    const late = started();
    arrivals.add('B', 's3', late.transfer);
    late.fail(new FsError('EIO', 'receive failed'));
    await settle();
    clock = 31_000; // it failed at 1000
    assert.equal(arrivals.failure('B', ['s3']), undefined, 'forgotten after rememberMs');
    const again = started();
    arrivals.add('B', 's3', again.transfer);
    again.fail(new FsError('EIO', 'receive failed'));
    await settle();
    arrivals.add('B', 's3', started().transfer);
    assert.equal(arrivals.failure('B', ['s3']), undefined, 'a new transfer of the name forgets the failure');
  });
});
