import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Chunks held for a slow consumer before the stream is paused. */
const QUEUED_CHUNKS = 4;

/**
 * The chunks of a byte stream, each as the stream pushed it. A stream's own async iterator
 * takes what is buffered with `read()`, which joins the chunks buffered meanwhile into one new
 * buffer: a copy of most of a stream read by a consumer that is sometimes slower than its
 * producer, and as much garbage again (the chunks and the joined buffer) for the collector.
 * Here chunks are passed on as they are; the stream is paused while a few wait (backpressure).
 *
 * Like the stream's iterator: rejects with the stream's error (or a premature close), and a
 * consumer that stops early (`break`, a throw) destroys the stream.
 */
export async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: { error: unknown } | undefined;
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    if (queue.length >= QUEUED_CHUNKS) stream.pause();
    wake?.();
  };
  finished(stream, { writable: false }).then(
    () => {
      ended = true;
      wake?.();
    },
    (error: unknown) => {
      failure = { error };
      ended = true;
      wake?.();
    },
  );
  stream.on('data', onData);
  stream.resume(); // (a stream paused before flows only once asked to)
  try {
    for (;;) {
      if (failure !== undefined) throw failure.error;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        if (stream.isPaused() && queue.length < QUEUED_CHUNKS) stream.resume();
        yield chunk;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    stream.off('data', onData);
    if (!ended) stream.destroy();
  }
}
