import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { XattrReader } from '../../../src/stores/btrfs/local-xattrs.js';
import { isCI } from '../../support/prerequisites.js';

/** Why this machine cannot run the test (no `attr` tools, no user xattrs in the temp dir), or false. */
function missing(directory: string): string | false {
  try {
    writeFileSync(path.join(directory, 'probe'), '');
    execFileSync('setfattr', ['-n', 'user.probe', '-v', '1', path.join(directory, 'probe')], { stdio: 'ignore' });
    execFileSync('getfattr', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    if (isCI) throw new Error('prerequisite missing in CI: setfattr/getfattr (package attr) with user xattrs in the temp dir');
    return 'setfattr/getfattr (package attr) or user xattrs in the temp dir are missing';
  }
}

const directory = mkdtempSync(path.join(os.tmpdir(), 'buttersink-xattrs-'));
after(() => rmSync(directory, { recursive: true, force: true }));

describe('XattrReader: xattrs of local snapshot entries, read per directory', { skip: missing(directory) }, () => {
  test('an entry that appears after its directory was read shows its xattrs (a snapshot made by mkdir)', async () => {
    const reader = new XattrReader();
    const first = path.join(directory, 'first');
    writeFileSync(first, '');
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'one', first]);
    assert.equal((await reader.read(first)).get('user.note')?.toString(), 'one');
    const later = path.join(directory, 'later');
    writeFileSync(later, '');
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'two', later]);
    assert.equal((await reader.read(later)).get('user.note')?.toString(), 'two');
    assert.equal((await reader.read(first)).get('user.note')?.toString(), 'one');
  });

  test('an entry without xattrs reads as none', async () => {
    const plain = path.join(directory, 'plain');
    writeFileSync(plain, '');
    assert.equal((await new XattrReader().read(plain)).size, 0);
  });
});
