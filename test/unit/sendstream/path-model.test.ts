import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PathModel, PathModelError, type EntryKind, type SourceTree } from '../../../src/sendstream/path-model.js';

/** A parent snapshot as a map of path -> kind (directories on the way must be listed too). */
function tree(entries: Record<string, EntryKind>): SourceTree & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    lookups,
    async kindOf(relative: string) {
      lookups.push(relative);
      return relative === '' ? 'directory' : (entries[relative] ?? 'missing');
    },
  };
}

const p = (path: string): string[] => (path === '' ? [] : path.split('/'));
const throughLink = (error: unknown): boolean => error instanceof PathModelError && /symbolic link/.test(error.message);

describe('PathModel: which path components are symbolic links', () => {
  test('a link the stream made cannot be a prefix; as the last component it is reported as a link', async () => {
    const model = new PathModel(undefined);
    await model.create(p('lnk'), 'symlink');
    assert.equal(await model.kindOf(p('lnk')), 'symlink');
    await assert.rejects(model.kindOf(p('lnk/x')), throughLink);
    await assert.rejects(model.create(p('lnk/x'), 'file'), throughLink);
  });

  test('a link keeps being one after it is renamed, and inside a directory that is renamed', async () => {
    const model = new PathModel(undefined);
    await model.create(p('d'), 'directory');
    await model.create(p('d/lnk'), 'symlink');
    await model.rename(p('d'), p('e'));
    await assert.rejects(model.kindOf(p('e/lnk/x')), throughLink);
    assert.equal(await model.kindOf(p('d/lnk')), 'missing'); // d is gone
    await model.rename(p('e/lnk'), p('moved'));
    await assert.rejects(model.kindOf(p('moved/x')), throughLink);
    assert.notEqual(await model.kindOf(p('e/lnk')), 'symlink');
  });

  test('a hard link of a link is a link; of a file, a file', async () => {
    const model = new PathModel(undefined);
    await model.create(p('lnk'), 'symlink');
    await model.create(p('f'), 'file');
    await model.link(p('lnk'), p('hard'));
    await model.link(p('f'), p('hard-f'));
    await assert.rejects(model.kindOf(p('hard/x')), throughLink);
    assert.equal(await model.kindOf(p('hard-f')), 'file');
  });

  test('links the parent snapshot holds count, also inside directories the stream renames', async () => {
    const model = new PathModel(tree({ etc: 'symlink', d: 'directory', 'd/inner': 'symlink', f: 'file' }));
    await assert.rejects(model.kindOf(p('etc/passwd')), throughLink);
    assert.equal(await model.kindOf(p('etc')), 'symlink');
    await model.rename(p('d'), p('o257-5-0'));
    await assert.rejects(model.kindOf(p('o257-5-0/inner/x')), throughLink);
    assert.equal(await model.kindOf(p('f')), 'file');
  });

  test("a link the stream removes or replaces no longer counts, and the parent's link shows again nowhere", async () => {
    const model = new PathModel(tree({ lnk: 'symlink', other: 'symlink' }));
    await model.remove(p('lnk'));
    await model.create(p('lnk'), 'directory');
    assert.equal(await model.kindOf(p('lnk/x')), 'file');
    await model.create(p('f'), 'file');
    await model.rename(p('f'), p('other'));
    assert.equal(await model.kindOf(p('other')), 'file');
    await model.remove(p('other'));
    assert.equal(await model.kindOf(p('other')), 'missing');
  });

  test('a link created and then replaced by a rename of a file is a file', async () => {
    const model = new PathModel(undefined);
    await model.create(p('lnk'), 'symlink');
    await model.create(p('f'), 'file');
    await model.rename(p('f'), p('lnk'));
    assert.equal(await model.kindOf(p('lnk')), 'file');
  });

  test('orphan names that the parent never had leave nothing behind once renamed into place', async () => {
    const parent = tree({ d: 'directory' });
    const model = new PathModel(parent);
    for (let i = 0; i < 1000; i++) {
      await model.create(p(`o${300 + i}-7-0`), 'file');
      await model.rename(p(`o${300 + i}-7-0`), p(`d/file${i}`));
    }
    // The root, d (a directory from the parent, kept), and the files it now hides parent names with.
    assert.ok(model.nodeCount <= 2 + 1000, `${model.nodeCount} nodes`);
    assert.equal(await model.kindOf(p('o300-7-0')), 'missing');
    assert.equal(await model.kindOf(p('d/file0')), 'file');
  });

  test('in a full stream, files cost no memory: only directories and links are kept', async () => {
    const model = new PathModel(undefined);
    await model.create(p('d'), 'directory');
    for (let i = 0; i < 1000; i++) await model.create(p(`d/f${i}`), 'file');
    assert.equal(model.nodeCount, 2);
  });
});
