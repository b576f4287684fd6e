import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PermissionError, StoreError } from '../../../../src/model/errors.js';
import { startFailure } from '../../../../src/stores/ssh/server-channel.js';

describe('why the remote buttersink did not start', () => {
  const cases: [string, number | null, string, new (...a: never[]) => Error, RegExp][] = [
    ['sudo wants a password', 1, 'sudo: a password is required\n', PermissionError, /sudo on nas:\/b needs a password/],
    [
      'sudo forbids it',
      1,
      "Sorry, user backup is not allowed to execute '/usr/bin/buttersink server --mode w /b' as root on nas.\n",
      PermissionError,
      /does not allow this buttersink server command/,
    ],
    ['not installed', 127, 'bash: line 1: buttersink: command not found\n', StoreError, /buttersink is not installed on nas:\/b/],
    ['too old', 2, "buttersink: unknown option '--mode'\n", StoreError, /too old: it has no server command/],
    ['anything else', 3, 'boom\n', StoreError, /ended before answering \(exit 3\): boom/],
  ];
  for (const [name, code, stderr, type, message] of cases) {
    test(name, () => {
      const error = startFailure('nas:/b', code, stderr);
      assert.ok(error instanceof type, error.constructor.name);
      assert.match(error.message, message);
    });
  }
});
