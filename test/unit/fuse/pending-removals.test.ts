import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PendingRemovals } from '../../../src/fuse/pending-removals.js';

function removals(idleMs = 30_000) {
  const clock = { t: 1_000 };
  return { removals: new PendingRemovals({ now: () => clock.t, idleMs }), clock };
}

describe('PendingRemovals: rm -r of a snapshot, told apart from a lone rm FILE', () => {
  test('a removal whose directory nobody holds open (rm FILE) is refused and hides nothing', () => {
    const { removals: r } = removals();
    assert.equal(r.remove('B/s1', 'file', '/B/s1/file'), false);
    assert.equal(r.isHidden('B/s1', 'file'), false);
    assert.deepEqual(r.visible('B/s1', '', ['file', 'other']), ['file', 'other']);
  });

  test('a walk holding the directory open (rm -r, mv) hides what it removes, below too', () => {
    const { removals: r } = removals();
    r.opened('/B/s1/dir');
    assert.equal(r.remove('B/s1', 'dir/file', '/B/s1/dir/file'), true);
    r.closed('/B/s1/dir');
    r.opened('/B/s1/');
    assert.equal(r.remove('B/s1', 'dir', '/B/s1/dir'), true);
    assert.equal(r.isHidden('B/s1', 'dir/file'), true);
    assert.equal(r.isHidden('B/s1', 'dir/deeper/x'), true, 'everything below a hidden directory');
    assert.deepEqual(r.visible('B/s1', '', ['dir', 'top']), ['top']);
    assert.equal(r.isHidden('B/s2', 'dir'), false, 'per snapshot');
  });

  test('opens are counted: the directory counts as open until its last handle is released', () => {
    const { removals: r } = removals();
    r.opened('/B/s1');
    r.opened('/B/s1');
    r.closed('/B/s1');
    assert.equal(r.isWalking('/B/s1/f'), true);
    r.closed('/B/s1');
    assert.equal(r.isWalking('/B/s1/f'), false);
    r.closed('/B/s1'); // a stray release does not go negative
    r.opened('/B/s1');
    assert.equal(r.isWalking('/B/s1/f'), true);
  });

  test('a walk that stops is forgotten after idleMs: its entries show again; forget ends one at once', () => {
    const { removals: r, clock } = removals(1_000);
    r.opened('/B/s1');
    r.remove('B/s1', 'a', '/B/s1/a');
    r.opened('/B/s2');
    assert.equal(r.remove('B/s2', 'b', '/B/s2/b'), true);
    clock.t += 999;
    assert.deepEqual(r.sweep(), []);
    r.forget('B/s2');
    assert.equal(r.isHidden('B/s2', 'b'), false);
    clock.t += 1;
    assert.deepEqual(r.sweep(), ['B/s1']);
    assert.equal(r.isHidden('B/s1', 'a'), false);
  });
});
