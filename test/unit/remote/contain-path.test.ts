import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PermissionError } from '../../../src/model/errors.js';
import { checkNoSymlinks, checkSnapshotName } from '../../../src/remote/contain-path.js';

describe('snapshot names a server accepts', () => {
  test('relative names at any depth are fine', () => {
    for (const name of ['s1', 'daily/2026-11-28', 'a b/ü..x', '.hidden']) checkSnapshotName(name);
  });

  test('anything that could leave the directory is refused', () => {
    for (const name of ['', '/etc', '../x', 'a/../../x', 'a/..', './a', 'a//b', 'a/', 'a\0b']) {
      assert.throws(() => checkSnapshotName(name), PermissionError, JSON.stringify(name));
    }
  });

  test('control characters are refused (a newline forges `btrfs subvolume list` lines), with a one-line message', () => {
    const forged = 'x\nID 999 gen 7 cgen 7 top level 5 parent_uuid - received_uuid - uuid 11111111-2222-4333-8444-555555555555 path evil';
    for (const name of [forged, 'a\rb', 'tab\there', 'esc\x1b[31m', 'del\x7f', 'nested/x\n']) {
      assert.throws(
        () => checkSnapshotName(name),
        (e: unknown) => e instanceof PermissionError && /control character/.test(e.message) && !/[\x00-\x1f\x7f]/.test(e.message),
        JSON.stringify(name),
      );
    }
  });

  test('a symbolic link on the way is refused; missing components are fine', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-contain-'));
    try {
      mkdirSync(path.join(dir, 'real'));
      symlinkSync('/tmp', path.join(dir, 'link'));
      await checkNoSymlinks(dir, 'real/new/deeper');
      await assert.rejects(
        checkNoSymlinks(dir, 'link/x'),
        (e: unknown) => e instanceof PermissionError && /link is a symbolic link/.test(e.message),
      );
      await assert.rejects(checkNoSymlinks(dir, 'link'), PermissionError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
