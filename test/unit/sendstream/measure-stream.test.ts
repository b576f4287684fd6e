import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeasurementStopped, StreamMeasurer, type StreamMeasurement } from '../../../src/sendstream/measure-stream.js';
import { chunks, commands, feed, MAGIC, sendStream, streamHeader } from './stream-builder.js';

async function measure(stream: Buffer, chunkSize = stream.length || 1): Promise<StreamMeasurement> {
  const measurer = new StreamMeasurer();
  await feed(measurer, chunks(stream, chunkSize));
  return measurer.result;
}

const KERNEL_WRITE = 48 * 1024; // BTRFS_SEND_READ_SIZE

describe('StreamMeasurer: sizes', () => {
  test('a 100_000-byte extent of a 5-byte path: exact stream size of the real stream', async () => {
    const stream = sendStream(
      commands.subvol('snap'), //              10 + (4+4) + (4+16) + (4+8)  = 50
      commands.mkfile('hello'), //             10 + (4+5)                   = 19
      commands.updateExtent('hello', 0, 100_000), // 10 + (4+5) + (4+8) + (4+8) = 43, not in the real stream
      commands.end(), //                       10
    );
    assert.equal(stream.length, 17 + 50 + 19 + 43 + 10);

    const result = await measure(stream);

    // The real stream carries the extent as ceil(100000 / 49152) = 3 write commands, each
    // 10 (header) + 4+5 (path) + 4+8 (offset) + 4 (data TLV header) = 35 bytes plus its data.
    const writes = 3 * 35 + 100_000;
    assert.equal(result.streamBytes, 17 + 50 + 19 + 10 + writes);
    assert.equal(result.streamBytes, 100_201);
    assert.equal(result.dataBytes, 100_000);
    assert.equal(result.metadataBytes, stream.length);
    assert.equal(result.commands, 4);
  });

  test('write chunking at exactly 48 KiB boundaries', async () => {
    // 2 * 48 KiB: two writes; one byte more: three.
    const overhead = (size: number, writes: number): number => size + writes * (10 + 4 + 1 + 4 + 8 + 4);
    for (const [size, writes] of [
      [1, 1],
      [KERNEL_WRITE - 1, 1],
      [KERNEL_WRITE, 1],
      [KERNEL_WRITE + 1, 2],
      [2 * KERNEL_WRITE, 2],
      [2 * KERNEL_WRITE + 1, 3],
    ] as const) {
      const base = sendStream(commands.subvol('s'), commands.end());
      const withExtent = sendStream(commands.subvol('s'), commands.updateExtent('f', 4096, size), commands.end());
      const [a, b] = [await measure(base), await measure(withExtent)];
      assert.equal(b.streamBytes - a.streamBytes, overhead(size, writes), `size ${size}`);
      assert.equal(b.dataBytes, size);
    }
  });

  test('sums every update_extent into dataBytes, paths of different lengths', async () => {
    const stream = sendStream(
      commands.subvol('snap'),
      commands.mkfile('a'),
      commands.updateExtent('a', 0, 10),
      commands.updateExtent('a', 10, 20),
      commands.mkfile('dir/longer name'),
      commands.updateExtent('dir/longer name', 0, 3 * KERNEL_WRITE),
      commands.end(),
    );
    const result = await measure(stream);
    assert.equal(result.dataBytes, 10 + 20 + 3 * KERNEL_WRITE);
    const metadataKept = 17 + 50 + (10 + 4 + 1) + (10 + 4 + 15) + 10; // all but the update_extents
    const perWrite = (pathBytes: number): number => 10 + 4 + pathBytes + 4 + 8 + 4;
    const writes = 10 + perWrite(1) + 20 + perWrite(1) + 3 * KERNEL_WRITE + 3 * perWrite(15);
    assert.equal(result.streamBytes, metadataKept + writes);
    assert.equal(result.commands, 7);
    assert.equal(result.metadataBytes, stream.length);
  });

  test('a stream without extents measures as itself', async () => {
    const first = commands.snapshot('snap');
    const stream = sendStream(first, commands.mkfile('empty'), commands.end());
    const result = await measure(stream);
    // The head is the stream header plus the first command, as the real stream starts.
    const head = stream.subarray(0, 17 + first.length);
    assert.deepEqual(result, { streamBytes: stream.length, dataBytes: 0, metadataBytes: stream.length, commands: 3, head });
  });

  test('1-byte chunks, odd chunks and one chunk give the same result', async () => {
    const stream = sendStream(
      commands.subvol('snap'),
      commands.mkfile('x y'),
      commands.updateExtent('x y', 0, 123_456),
      commands.updateExtent('x y', 123_456, 7),
      commands.end(),
    );
    const whole = await measure(stream);
    assert.deepEqual(await measure(stream, 1), whole);
    assert.deepEqual(await measure(stream, 3), whole);
    assert.deepEqual(await measure(stream, 17), whole);
    assert.deepEqual(await measure(stream, 11), whole);
  });
});

describe('StreamMeasurer: malformed streams', () => {
  const good = sendStream(commands.subvol('snap'), commands.updateExtent('f', 0, 5), commands.end());

  test('bad magic', async () => {
    const bad = Buffer.from(good);
    bad[0] = 'B'.charCodeAt(0);
    await assert.rejects(measure(bad), /magic/);
    await assert.rejects(measure(bad, 1), /magic/);
  });

  test('empty input and a header cut short', async () => {
    await assert.rejects(measure(Buffer.alloc(0)));
    await assert.rejects(measure(MAGIC));
  });

  test('a stream ending inside a command', async () => {
    for (const cut of [1, 5, 9, 10, 20, good.length - 18]) {
      await assert.rejects(measure(good.subarray(0, good.length - cut)), /inside a command|no end command/, `cut ${cut}`);
    }
    // Cut inside the last command's header and inside its payload specifically.
    const withoutEnd = sendStream(commands.subvol('snap'), commands.updateExtent('f', 0, 5));
    await assert.rejects(measure(Buffer.concat([withoutEnd, commands.end().subarray(0, 4)])), /inside a command/);
    await assert.rejects(measure(withoutEnd.subarray(0, withoutEnd.length - 3)), /inside a command/);
  });

  test('a stream without an end command', async () => {
    await assert.rejects(measure(sendStream(commands.subvol('snap'), commands.mkfile('f'))), /no end command/);
    await assert.rejects(measure(streamHeader()), /no end command/);
  });

  test('data after the end command', async () => {
    await assert.rejects(measure(Buffer.concat([good, commands.mkfile('late')])), /after its end/);
    await assert.rejects(measure(Buffer.concat([good, commands.end()]), 1), /after its end/);
    // Even a few stray bytes after the end are an error, not silently ignored.
    await assert.rejects(measure(Buffer.concat([good, Buffer.from([1, 2, 3])])));
  });
});

describe('StreamMeasurer: stopAbove', () => {
  const stream = sendStream(
    commands.subvol('snap'), // 67 bytes with the header
    commands.mkfile('a'),
    commands.updateExtent('a', 0, 100_000), // the real stream passes 100_000 here
    commands.mkfile('b'),
    commands.updateExtent('b', 0, 100_000),
    commands.end(),
  );

  test('stops at the first command that takes the real stream past the bound: a lower bound above it', async () => {
    const exact = await measure(stream);
    for (const chunkSize of [stream.length, 7]) {
      const measurer = new StreamMeasurer({ stopAbove: 1000 });
      await assert.rejects(feed(measurer, chunks(stream, chunkSize)), (error: unknown) => {
        assert.ok(error instanceof MeasurementStopped);
        // Past the first extent (at once, also when the whole stream came in one chunk), not the second.
        assert.ok(error.bytes > 100_000 && error.bytes < 200_000, `${error.bytes}`);
        assert.ok(error.bytes < exact.streamBytes);
        return true;
      });
    }
  });

  test('a bound that comes while measuring: past it already, the measurer stops at once; else at the command that passes it', async () => {
    const exact = await measure(stream);
    const writeAll = (measurer: StreamMeasurer, parts: readonly Buffer[]): Promise<void> =>
      new Promise((resolve) => {
        let left = parts.length;
        for (const part of parts) measurer.write(part, () => --left === 0 && resolve());
      });
    const pastFirstExtent = stream.subarray(0, 17 + 50 + 19 + 43 + 5); // and 5 bytes of the next command
    const past = new StreamMeasurer();
    const pastFailed = new Promise<unknown>((resolve) => past.once('error', resolve));
    await writeAll(past, [pastFirstExtent]);
    past.stopAbove(1000);
    const error = await pastFailed;
    assert.ok(error instanceof MeasurementStopped && error.bytes > 100_000 && error.bytes < 200_000, String(error));

    const ahead = new StreamMeasurer();
    await writeAll(ahead, [stream.subarray(0, 20)]);
    ahead.stopAbove(150_000); // above the first extent, below the second
    await assert.rejects(feed(ahead, chunks(stream.subarray(20), 7)), (e: unknown) => {
      assert.ok(e instanceof MeasurementStopped && e.bytes > 150_000 && e.bytes < exact.streamBytes, String(e));
      return true;
    });

    const done = new StreamMeasurer();
    await feed(done, [stream]);
    done.stopAbove(1000); // too late to matter: the size is exact
    assert.equal(done.destroyed && done.errored !== null, false);
    assert.equal(done.result.streamBytes, exact.streamBytes);
  });

  test('a stream that ends below the bound, or reaches it only with its end, is measured exactly', async () => {
    const exact = await measure(stream);
    for (const stopAbove of [exact.streamBytes, exact.streamBytes - 5]) {
      const measurer = new StreamMeasurer({ stopAbove });
      await feed(measurer, chunks(stream, 100));
      assert.equal(measurer.result.streamBytes, exact.streamBytes);
    }
  });
});
