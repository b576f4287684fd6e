import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { chunksOf } from '../../../src/util/stream-chunks.js';

test('chunksOf passes each chunk on as it was pushed, never joined with the ones buffered meanwhile', async () => {
  const stream = new PassThrough({ highWaterMark: 1 << 20 });
  const pushed = [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(3000, 3)];
  for (const chunk of pushed) stream.write(chunk);
  stream.end();
  // The stream's own iterator would hand out one joined 6,000-byte buffer here.
  const got: Buffer[] = [];
  for await (const chunk of chunksOf(stream)) got.push(chunk);
  assert.deepEqual(
    got.map((c) => c.length),
    [1000, 2000, 3000],
  );
  for (const [i, chunk] of got.entries()) assert.equal(chunk, pushed[i], `chunk ${i} is the pushed buffer itself, not a copy`);
});

test('chunksOf pauses a stream its consumer does not keep up with, and resumes it', async () => {
  let produced = 0;
  const stream = new Readable({
    highWaterMark: 4096,
    read() {
      produced += 1;
      this.push(produced <= 100 ? Buffer.alloc(1024, produced) : null);
    },
  });
  const chunks = chunksOf(stream);
  const first = await chunks.next();
  assert.equal(first.value?.[0], 1);
  for (let i = 0; i < 20; i++) await tick();
  // Waiting: at most the queue and the stream's own buffer were read ahead, not all 100.
  assert.ok(produced < 20, `read ahead ${produced} chunks while the consumer waited`);
  let bytes = first.value!.length;
  for await (const chunk of chunks) bytes += chunk.length;
  assert.equal(bytes, 100 * 1024);
});

test("chunksOf rejects with the stream's error, and an early stop destroys the stream", async () => {
  const failing = new PassThrough();
  failing.write(Buffer.from('abc'));
  const reading = (async () => {
    const seen: string[] = [];
    for await (const chunk of chunksOf(failing)) {
      seen.push(chunk.toString());
      failing.destroy(new Error('send failed'));
    }
    return seen;
  })();
  await assert.rejects(reading, /send failed/);

  const endless = new PassThrough();
  endless.write(Buffer.from('x'));
  endless.write(Buffer.from('y'));
  for await (const _ of chunksOf(endless)) break;
  assert.ok(endless.destroyed, 'a consumer that stopped early leaves no stream behind');

  const cut = new PassThrough();
  cut.write(Buffer.from('x'));
  const draining = (async () => {
    for await (const _ of chunksOf(cut)) cut.destroy();
  })();
  await assert.rejects(draining, { code: 'ERR_STREAM_PREMATURE_CLOSE' }, 'a stream destroyed before its end is no clean end');
});
