import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { globToRegex } from '../../../src/cli/sync-command.js';
import { editDistance } from '../../../src/stores/btrfs/locate-directory.js';

describe('hints for what users mistype', () => {
  test('globToRegex: the regular expression a shell glob means, which then matches what the glob would', () => {
    assert.equal(globToRegex('*.4'), '^.*\\.4$');
    assert.equal(globToRegex('daily/202?-*'), '^daily/202.-.*$');
    assert.equal(globToRegex('a+b(c)[d]'), '^a\\+b\\(c\\)\\[d\\]$');
    const re = new RegExp(globToRegex('*.4'));
    assert.ok(re.test('snap.4'));
    assert.ok(!re.test('snap.40'));
    assert.ok(!re.test('snapx4'));
  });

  test('editDistance: exact up to 2 (a typo), above 2 for anything further', () => {
    assert.equal(editDistance('snaps', 'snaps'), 0);
    assert.equal(editDistance('snpas', 'snaps'), 2, 'two letters swapped');
    assert.equal(editDistance('bakup', 'backup'), 1);
    assert.equal(editDistance('mian', 'main'), 2);
    assert.ok(editDistance('snapshots', 'snaps') > 2);
    assert.ok(editDistance('daily', 'weekly') > 2);
  });
});
