import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StoreError, TransferError } from '../../../src/model/errors.js';
import { confineToDirectory, toWireError } from '../../../src/remote/wire-errors.js';

const DIR = '/srv/backup/snaps';

describe('errors as the server sends them', () => {
  test('paths below the directory become names inside it; the directory itself stays as the client named it', () => {
    assert.equal(confineToDirectory(`${DIR}/daily/one already exists`, DIR), 'daily/one already exists');
    assert.equal(confineToDirectory(`receiving one into ${DIR} failed`, DIR), `receiving one into ${DIR} failed`);
    assert.equal(
      confineToDirectory(`ERROR: cannot access '${DIR}/a b/c': No such file`, DIR),
      "ERROR: cannot access 'a b/c': No such file",
    );
    assert.equal(
      confineToDirectory(`refusing to delete ${DIR}/x: it is no longer the snapshot`, DIR),
      'refusing to delete x: it is no longer the snapshot',
    );
  });

  test('any other absolute path is hidden: a sibling with the same prefix, the mount point, a link target', () => {
    for (const leak of [`${DIR}-old/x`, '/srv/backup', '/root/.cache/buttersink/measurements.json', `${DIR}.bak`]) {
      const said = confineToDirectory(`cannot read ${leak}: EACCES`, DIR);
      assert.equal(said, 'cannot read <path outside the directory>: EACCES', leak);
    }
    assert.equal(confineToDirectory("lstat '/etc/shadow'", DIR), "lstat '<path outside the directory>'");
  });

  test('text without paths is unchanged: URLs, fractions, separators', () => {
    for (const text of ['3/4 done', 'a | b', 'see ssh://host/dir', 'and/or', 'ERROR: empty stream is not considered valid']) {
      assert.equal(confineToDirectory(text, DIR), text);
    }
  });

  test('property: nothing absolute survives but the directory itself', () => {
    const segment = fc.stringMatching(/^[a-z0-9._-]{1,8}$/);
    const absolute = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
    const word = fc.oneof(absolute, segment, fc.constantFrom(DIR, `${DIR}/x`, ' ', "'", ': '));
    fc.assert(
      fc.property(fc.array(word, { maxLength: 12 }), (words) => {
        const said = confineToDirectory(words.join(' '), DIR).replaceAll(DIR, '');
        assert.doesNotMatch(said, /(^|[\s'"(=`[])\/[^\s'"`)\],;:|]/, said);
      }),
    );
  });

  test('message, hint and stderr tail are all confined', () => {
    const wire = toWireError(
      new TransferError(`btrfs send of ${DIR}/a failed`, { hint: `look at /var/log/x`, stderrTail: `ERROR: ${DIR}/a/f` }),
      DIR,
    );
    assert.deepEqual(wire, {
      kind: 'transfer',
      message: 'btrfs send of a failed',
      hint: 'look at <path outside the directory>',
      stderrTail: 'ERROR: a/f',
    });
    assert.deepEqual(toWireError(new StoreError(`${DIR} is not on a btrfs filesystem`), DIR), {
      kind: 'store',
      message: `${DIR} is not on a btrfs filesystem`,
    });
    assert.equal(toWireError(new Error(`ENOENT: lstat '${DIR}/q'`), DIR).message, "internal error in buttersink server: ENOENT: lstat 'q'");
  });
});
