import { Transform, type TransformCallback } from 'node:stream';
import { CommandReader } from './command-reader.js';
import { IndexBuilder, type IndexResolver } from './index-builder.js';
import type { SnapshotIndex } from './snapshot-index.js';

/**
 * Passes a send stream on unchanged while it builds the stream's {@link SnapshotIndex}: each
 * chunk goes on at once, and is parsed as it passes (the parser holds at most one command), so
 * indexing costs no buffering of the stream. A stream the index cannot follow still passes
 * whole; its index then says why it cannot be browsed.
 */
export class IndexingTap extends Transform {
  readonly #builder: IndexBuilder;
  #reader: CommandReader | undefined = new CommandReader();
  /** Bytes of the stream parsed into its header and whole commands. */
  #parsed = 0;
  #bytes = 0;

  constructor(object: { to: string; from: string | null }, resolve: IndexResolver) {
    super();
    this.#builder = new IndexBuilder(object, resolve);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.push(chunk);
    this.#bytes += chunk.length;
    const reader = this.#reader;
    if (reader === undefined) return callback();
    reader.push(chunk);
    this.#parse(reader).then(
      () => callback(),
      (error: unknown) => callback(error as Error),
    );
  }

  async #parse(reader: CommandReader): Promise<void> {
    try {
      const header = reader.header();
      if (header) this.#parsed += header.length;
      for (let c = reader.next(); c !== undefined; c = reader.next()) {
        const pending = this.#builder.apply(c, this.#parsed);
        this.#parsed += c.bytes.length;
        if (pending) await pending;
      }
    } catch (error) {
      this.#builder.fail(`the stream could not be parsed: ${(error as Error).message}`);
      this.#reader = undefined;
    }
  }

  /** The index, once the stream has passed whole (call after the consumer finished). */
  index(): SnapshotIndex {
    if (this.#reader && this.#reader.pendingBytes > 0) this.#builder.fail('the stream has bytes after its last whole command');
    return this.#builder.finish(this.#bytes);
  }
}
