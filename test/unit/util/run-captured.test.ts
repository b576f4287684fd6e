import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCaptured, spawnPiped } from '../../../src/util/run-captured.js';

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

describe('spawnPiped', () => {
  async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  test('stdout waits for a reader that comes late: no byte is lost', async () => {
    const child = spawnPiped('seq', ['1', '100000'], { stdin: 'ignore', stdout: 'pipe' });
    await sleep(200); // seq has filled the pipe and waits
    const out = await readAll(child.stdout!);
    assert.equal(out.toString(), Array.from({ length: 100_000 }, (_, i) => `${i + 1}\n`).join(''));
    assert.equal((await child.result).exitCode, 0);
  });

  test('stdin is the pipe the caller writes; stderr tail and exit code in the result', async () => {
    const child = spawnPiped('sh', ['-c', 'wc -c; echo done >&2; exit 4'], { stdin: 'pipe', stdout: 'pipe' });
    const out = readAll(child.stdout!);
    await pipeline(Readable.from([Buffer.alloc(1000), Buffer.alloc(2345)]), child.stdin!);
    assert.equal((await out).toString().trim(), '3345');
    const r = await child.result;
    assert.equal(r.exitCode, 4);
    assert.equal(r.stderr, 'done');
    assert.equal(r.stdout, '');
  });

  test('a child that stops reading early (receive -e at its END): the write fails, nothing crashes', async () => {
    const child = spawnPiped('head', ['-c', '10'], { stdin: 'pipe', stdout: 'pipe' });
    const out = readAll(child.stdout!);
    const big = Readable.from(Array.from({ length: 64 }, () => Buffer.alloc(1 << 16, 'a')));
    await assert.rejects(pipeline(big, child.stdin!), (error: NodeJS.ErrnoException) =>
      ['EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'].includes(error.code ?? ''),
    );
    assert.equal((await out).toString(), 'aaaaaaaaaa');
    assert.equal((await child.result).exitCode, 0);
  });

  test('a command that does not exist: its spawn error code, no throw', async () => {
    const child = spawnPiped('buttersink-no-such-command', [], { stdin: 'pipe', stdout: 'pipe' });
    child.stdout!.resume();
    const r = await child.result;
    assert.equal(r.spawnErrorCode, 'ENOENT');
    assert.notEqual(r.exitCode, 0);
  });

  test('an abort kills it and says so; one that ignores SIGTERM is killed after forceKillAfterMs', { timeout: 20_000 }, async () => {
    const controller = new AbortController();
    const script = "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)";
    const child = spawnPiped(process.execPath, ['-e', script], {
      stdin: 'ignore',
      stdout: 'pipe',
      signal: controller.signal,
      forceKillAfterMs: 200,
    });
    await once(child.stdout!, 'data');
    const started = Date.now();
    controller.abort();
    child.stdout!.resume();
    const r = await child.result;
    assert.equal(r.isCanceled, true);
    assert.equal(r.exitCode, null);
    assert.ok(Date.now() - started < 10_000, 'not killed');
  });

  test('kill() ends it', async () => {
    const child = spawnPiped('sleep', ['30'], { stdin: 'ignore', stdout: 'ignore' });
    const started = Date.now();
    child.kill();
    const r = await child.result;
    assert.equal(r.exitCode, null);
    assert.equal(r.isCanceled, false);
    assert.ok(Date.now() - started < 10_000);
    child.kill(); // after the end: nothing
  });
});
