import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { locate, nameInStore, rootEntries, splitPath, StoreTree, type Resolution } from '../../../src/fuse/path-tree.js';
import { isValidStoreName } from '../../../src/model/store-name.js';

const STORES = ['local', 'backup'];

function inStore(tree: StoreTree, mountPath: string): Resolution {
  const area = locate(mountPath, STORES);
  assert.equal(area.kind, 'store', `${mountPath} should be below a store`);
  if (area.kind !== 'store') throw new Error('unreachable');
  assert.equal(area.store, tree.store);
  return tree.resolve(area.names);
}

describe('locate: the mount areas that need no inventory', () => {
  test('/ is the root; it lists the control directory, then the stores in order', () => {
    assert.deepEqual(locate('/', STORES), { kind: 'resolved', resolution: { kind: 'found', node: { kind: 'root' } } });
    assert.deepEqual(rootEntries(STORES), ['.buttersink', 'local', 'backup']);
  });

  test('/.buttersink and its two files', () => {
    assert.deepEqual(locate('/.buttersink', STORES), { kind: 'resolved', resolution: { kind: 'found', node: { kind: 'control' } } });
    assert.deepEqual(locate('/.buttersink/status', STORES), {
      kind: 'resolved',
      resolution: { kind: 'found', node: { kind: 'control-file', file: 'status' } },
    });
    assert.deepEqual(locate('/.buttersink/log', STORES), {
      kind: 'resolved',
      resolution: { kind: 'found', node: { kind: 'control-file', file: 'log' } },
    });
    assert.deepEqual(locate('/.buttersink/other', STORES), {
      kind: 'resolved',
      resolution: { kind: 'missing', parent: { kind: 'control' }, name: 'other' },
    });
    assert.deepEqual(locate('/.buttersink/status/x', STORES), { kind: 'resolved', resolution: { kind: 'invalid', reason: 'ENOTDIR' } });
    assert.deepEqual(locate('/.buttersink/nope/x', STORES), { kind: 'resolved', resolution: { kind: 'invalid', reason: 'ENOENT' } });
  });

  test('an unknown store is missing at the root, and nothing below it exists', () => {
    assert.deepEqual(locate('/elsewhere', STORES), {
      kind: 'resolved',
      resolution: { kind: 'missing', parent: { kind: 'root' }, name: 'elsewhere' },
    });
    assert.deepEqual(locate('/elsewhere/s1', STORES), { kind: 'resolved', resolution: { kind: 'invalid', reason: 'ENOENT' } });
  });

  test('paths below a store go to its tree, names split without empty parts', () => {
    assert.deepEqual(locate('/local/a/b', STORES), { kind: 'store', store: 'local', names: ['a', 'b'] });
    assert.deepEqual(locate('/local/', STORES), { kind: 'store', store: 'local', names: [] });
    assert.deepEqual(splitPath('//a/./b/'), ['a', 'b']);
    assert.deepEqual(splitPath('/'), []);
  });

  test('store names are single visible path components', () => {
    assert.ok(isValidStoreName('backup-1'));
    assert.ok(isValidStoreName('with space'));
    for (const bad of ['', '.hidden', '.buttersink', 'a/b', 'nul\0']) assert.ok(!isValidStoreName(bad), bad);
  });
});

describe('StoreTree: one store inventory as directories', () => {
  const tree = new StoreTree('local', ['daily/2026-11-28', 'daily/2026-11-29', 'home', 'deep/er/est']);

  test('the store lists top-level snapshots and group directories, sorted', () => {
    assert.deepEqual(tree.childrenOf(''), ['daily', 'deep', 'home']);
    assert.deepEqual(tree.childrenOf('daily'), ['2026-11-28', '2026-11-29']);
    assert.deepEqual(tree.childrenOf('deep'), ['er']);
    assert.equal(tree.childrenOf('home'), undefined, 'a snapshot is no group');
    assert.deepEqual(inStore(tree, '/local'), { kind: 'found', node: { kind: 'store', store: 'local' } });
  });

  test('snapshots, groups and paths inside snapshots', () => {
    assert.deepEqual(inStore(tree, '/local/home'), { kind: 'found', node: { kind: 'snapshot', store: 'local', snapshot: 'home' } });
    assert.deepEqual(inStore(tree, '/local/daily'), { kind: 'found', node: { kind: 'group', store: 'local', prefix: 'daily' } });
    assert.deepEqual(inStore(tree, '/local/daily/2026-11-29'), {
      kind: 'found',
      node: { kind: 'snapshot', store: 'local', snapshot: 'daily/2026-11-29' },
    });
    assert.deepEqual(inStore(tree, '/local/daily/2026-11-29/etc/passwd'), {
      kind: 'found',
      node: { kind: 'inside', store: 'local', snapshot: 'daily/2026-11-29', relative: 'etc/passwd' },
    });
    assert.deepEqual(inStore(tree, '/local/deep/er/est/x'), {
      kind: 'found',
      node: { kind: 'inside', store: 'local', snapshot: 'deep/er/est', relative: 'x' },
    });
  });

  test('a missing last name knows its parent and its full snapshot name (for mkdir)', () => {
    const top = inStore(tree, '/local/new');
    assert.deepEqual(top, { kind: 'missing', parent: { kind: 'store', store: 'local' }, name: 'new' });
    assert.equal(top.kind === 'missing' ? nameInStore(top) : undefined, 'new');
    const nested = inStore(tree, '/local/daily/2026-11-30');
    assert.deepEqual(nested, { kind: 'missing', parent: { kind: 'group', store: 'local', prefix: 'daily' }, name: '2026-11-30' });
    assert.equal(nested.kind === 'missing' ? nameInStore(nested) : undefined, 'daily/2026-11-30');
    assert.deepEqual(inStore(tree, '/local/nope/deeper'), { kind: 'invalid', reason: 'ENOENT' });
  });

  test('missing names inside a snapshot are found as inside (the store decides if they exist)', () => {
    assert.deepEqual(inStore(tree, '/local/home/not-there'), {
      kind: 'found',
      node: { kind: 'inside', store: 'local', snapshot: 'home', relative: 'not-there' },
    });
  });

  test('a snapshot whose name is also a group hides the deeper one (it is inside it, as btrfs shows it)', () => {
    const t = new StoreTree('local', ['a/b', 'a', 'a/c/d']);
    assert.deepEqual(t.snapshots, ['a']);
    assert.deepEqual(t.childrenOf(''), ['a']);
    assert.equal(t.childrenOf('a'), undefined);
    assert.deepEqual(inStore(t, '/local/a/b'), { kind: 'found', node: { kind: 'inside', store: 'local', snapshot: 'a', relative: 'b' } });
    assert.ok(t.hasSnapshot('a') && !t.hasSnapshot('a/b'));
  });

  test('extra directories (made by mkdir on the way to a nested name) show as empty groups', () => {
    const t = new StoreTree('local', ['home'], ['weekly', 'daily/2026', 'home/inside']);
    assert.deepEqual(t.childrenOf(''), ['daily', 'home', 'weekly']);
    assert.deepEqual(t.childrenOf('weekly'), []);
    assert.deepEqual(t.childrenOf('daily'), ['2026']);
    assert.ok(t.hasGroup('daily/2026') && t.hasGroup('weekly') && !t.hasGroup('home/inside') && !t.hasGroup(''));
  });

  test('1,000 snapshots build and resolve fast', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `snap-${String(i).padStart(4, '0')}`);
    const started = performance.now();
    const big = new StoreTree('local', names);
    for (const n of names) assert.equal(inStore(big, `/local/${n}`).kind, 'found');
    assert.equal(big.childrenOf('')!.length, 1000);
    assert.ok(performance.now() - started < 500, 'took too long');
  });
});
