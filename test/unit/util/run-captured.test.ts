import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCaptured } from '../../../src/util/run-captured.js';

describe('runCaptured', () => {
  test('stdout without its final newline, stderr, exit code', async () => {
    const r = await runCaptured('sh', ['-c', 'printf "a\\nb\\n\\n"; printf "oops\\n" >&2; exit 3']);
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'a\nb\n');
    assert.equal(r.stderr, 'oops');
    assert.equal(r.spawnErrorCode, undefined);
    assert.equal(r.isCanceled, false);
    assert.equal(r.isTruncated, false);
  });

  test('stdin is closed: a command reading it ends at once', async () => {
    const r = await runCaptured('cat', []);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, '');
  });

  test('UTF-8 split across chunks comes out whole', async () => {
    // 70,000 'é' (2 bytes each): more than one pipe read, so some split inside a character.
    const r = await runCaptured('sh', ['-c', 'i=0; while [ $i -lt 7 ]; do printf "%s" "$(printf "é%.0s" $(seq 10000))"; i=$((i+1)); done']);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'é'.repeat(70_000));
  });

  test('a command that does not exist: its spawn error code, no throw', async () => {
    const r = await runCaptured('buttersink-no-such-command', []);
    assert.equal(r.spawnErrorCode, 'ENOENT');
    assert.notEqual(r.exitCode, 0);
  });

  test('an abort kills the command and says it was canceled', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 50);
    const r = await runCaptured('sleep', ['30'], { signal: controller.signal });
    assert.equal(r.isCanceled, true);
    assert.equal(r.exitCode, null);
    assert.ok(Date.now() - started < 10_000, 'the sleep was not killed');
  });

  test('output over the bound kills the command instead of filling memory', async () => {
    // `yes` never ends by itself: only the kill ends this run.
    const r = await runCaptured('yes', [], { maxStdout: 100_000 });
    assert.equal(r.isTruncated, true);
    assert.ok(r.stdout.length <= 100_000);
  });

  test('stderr keeps its last 64 KiB', async () => {
    const r = await runCaptured('sh', ['-c', 'head -c 300000 /dev/zero | tr "\\0" x >&2; echo END >&2']);
    assert.ok(r.stderr.length <= 64 * 1024, String(r.stderr.length));
    assert.ok(r.stderr.endsWith('xEND'), r.stderr.slice(-10));
  });
});
