import { Transform, type TransformCallback } from 'node:stream';

/** Passes a stream through unchanged, reporting how many bytes went by. */
export class ByteCounter extends Transform {
  #bytes = 0;
  readonly #onBytes: (n: number) => void;

  constructor(onBytes: (n: number) => void) {
    // Large buffers: send streams come in 64 KiB pipe reads, and fewer, bigger chunks keep
    // the pass through this process close to a raw pipe's throughput.
    super({ highWaterMark: 1 << 20 });
    this.#onBytes = onBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    this.#onBytes(chunk.length);
    callback(null, chunk);
  }
}
