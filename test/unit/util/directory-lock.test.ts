import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BusyError, StoreError } from '../../../src/model/errors.js';
import { lockDirectory } from '../../../src/util/directory-lock.js';

describe('lockDirectory (flock(2) held by a child process)', () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'buttersink-lock-'));
  const file = path.join(directory, 'lock');
  after(() => rmSync(directory, { recursive: true, force: true }));

  /** Whether another process (flock(1), not us) could take the lock now. */
  const freeForOthers = (): boolean => {
    try {
      execFileSync('flock', ['--nonblock', file, 'true']);
      return true;
    } catch {
      return false;
    }
  };

  test('held until released; a second taker is told who holds it; released twice is harmless', async () => {
    const release = await lockDirectory(file, 'the store');
    assert.equal(freeForOthers(), false);
    await assert.rejects(
      lockDirectory(file, 'the store'),
      (e: unknown) => e instanceof BusyError && /another buttersink is writing to the store/.test(e.message),
    );
    await release();
    await release();
    assert.equal(freeForOthers(), true);
    const again = await lockDirectory(file, 'the store');
    await again();
  });

  test("a lock file that cannot be made: a store error naming flock's reason", async () => {
    await assert.rejects(
      lockDirectory(path.join(directory, 'no', 'such', 'lock'), 'the store'),
      (e: unknown) =>
        e instanceof StoreError && !(e instanceof BusyError) && /cannot lock the store: .*No such file or directory/.test(e.message),
    );
  });
});
