import { Transform, type TransformCallback } from 'node:stream';
import { Command, COMMAND_HEADER_BYTES, STREAM_HEADER_BYTES, STREAM_MAGIC } from './stream-format.js';

/**
 * Passes a btrfs send stream through unchanged and fails it, at its end, unless it is whole:
 * the magic header first, then commands back to back, the last one `end`, nothing after it.
 *
 * A store that keeps streams as they are (S3) cannot rely on `btrfs receive` to notice a
 * stream cut at a command boundary, so it checks here before making an upload visible.
 * Only command headers are looked at (payloads are skipped by length), so this costs next to
 * nothing and holds at most 17 bytes whatever the stream's size.
 */
export class StreamEndCheck extends Transform {
  /** Bytes of the current header (stream or command) collected so far. */
  readonly #header = Buffer.alloc(STREAM_HEADER_BYTES);
  #headerBytes = 0;
  #sawStreamHeader = false;
  /** Payload bytes of the current command still to skip. */
  #skip = 0;
  #ended = false;
  #bytes = 0;

  /** Bytes passed through so far. */
  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#scan(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#sawStreamHeader) callback(new IncompleteStreamError('not a btrfs send stream: it ends before its header'));
    else if (this.#skip > 0 || this.#headerBytes > 0) callback(new IncompleteStreamError('the btrfs send stream is cut inside a command'));
    else if (!this.#ended) callback(new IncompleteStreamError('the btrfs send stream is cut: it has no end command'));
    else callback();
  }

  #scan(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      if (this.#ended) throw new IncompleteStreamError('the btrfs send stream has data after its end command');
      const want = this.#sawStreamHeader ? COMMAND_HEADER_BYTES : STREAM_HEADER_BYTES;
      const n = Math.min(want - this.#headerBytes, chunk.length - at);
      chunk.copy(this.#header, this.#headerBytes, at, at + n);
      this.#headerBytes += n;
      at += n;
      if (this.#headerBytes < want) continue;
      this.#headerBytes = 0;
      if (!this.#sawStreamHeader) {
        if (!this.#header.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) {
          throw new IncompleteStreamError('not a btrfs send stream (bad magic)');
        }
        this.#sawStreamHeader = true;
        continue;
      }
      this.#skip = this.#header.readUInt32LE(0);
      if (this.#header.readUInt16LE(4) === Command.End) this.#ended = true;
    }
  }
}

export class IncompleteStreamError extends Error {}
