import { Writable } from 'node:stream';
import {
  Attribute,
  Command,
  COMMAND_HEADER_BYTES,
  SEND_READ_SIZE,
  STREAM_HEADER_BYTES,
  STREAM_MAGIC,
  TLV_HEADER_BYTES,
} from './stream-format.js';

/** What a `btrfs send --no-data` stream says about the real stream. */
export interface StreamMeasurement {
  /** Bytes the real (with data) stream will have, including command framing. */
  readonly streamBytes: number;
  /** File data bytes the real stream carries (sum of `update_extent` lengths). */
  readonly dataBytes: number;
  /** Bytes of the `--no-data` stream itself. */
  readonly metadataBytes: number;
  readonly commands: number;
  /** The stream header and first command (`subvol`/`snapshot`): the same in the real stream. */
  readonly head: Buffer;
}

/**
 * Thrown by a {@link StreamMeasurer} told to stop above a size, once the stream passed it:
 * `bytes` (more than that size) is a lower bound of the real stream's size.
 */
export class MeasurementStopped extends Error {
  constructor(readonly bytes: number) {
    super(`the stream is larger than asked about (at least ${bytes} bytes)`);
    this.name = 'MeasurementStopped';
  }
}

/**
 * A Writable that reads a `btrfs send --no-data` stream and computes the size of the real
 * stream without any file data being read: every `update_extent` (path, offset, len) stands
 * for the `write` commands the real stream would carry for that range. Memory stays bounded
 * by the largest command (metadata only), whatever the stream's size.
 *
 * The result is exact up to the kernel's write chunking (which we model) — close enough that
 * the planner can compare diffs of any size; see FACTS ("cheap exact diff size").
 */
export class StreamMeasurer extends Writable {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #sawHeader = false;
  #dataBytes = 0;
  #metadataBytes = 0;
  /** Real stream bytes minus the update_extent commands, plus the writes they stand for. */
  #streamBytes = 0;
  #commands = 0;
  #ended = false;
  #header: Buffer | undefined;
  #head: Buffer | undefined;
  #stopAbove: number;

  /**
   * @param stopAbove fail with {@link MeasurementStopped} as soon as the real stream is known
   *   to be larger than this (its size only grows as commands come).
   */
  constructor(options: { stopAbove?: number } = {}) {
    super();
    this.#stopAbove = options.stopAbove ?? Number.POSITIVE_INFINITY;
  }

  /**
   * A bound that became known while measuring: as `stopAbove` given at the start. When the
   * stream is already past it, the measurer fails with {@link MeasurementStopped} now rather
   * than at the next chunk (a long walk may take a while to write one).
   */
  stopAbove(bytes: number): void {
    this.#stopAbove = Math.min(this.#stopAbove, bytes);
    if (!this.#ended && !this.destroyed && !this.writableFinished && this.#streamBytes > this.#stopAbove) {
      this.destroy(new MeasurementStopped(this.#streamBytes));
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#metadataBytes += chunk.length;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    try {
      this.#parse();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#sawHeader) return callback(new Error('not a btrfs send stream (no header)'));
    if (this.#pendingBytes > 0) return callback(new Error('btrfs send stream ends inside a command'));
    if (!this.#ended) return callback(new Error('btrfs send stream has no end command'));
    callback();
  }

  /** Valid once the stream finished without error. */
  get result(): StreamMeasurement {
    return {
      streamBytes: this.#streamBytes,
      dataBytes: this.#dataBytes,
      metadataBytes: this.#metadataBytes,
      commands: this.#commands,
      head: this.#head ?? Buffer.alloc(0),
    };
  }

  #take(n: number): Buffer {
    const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    return head;
  }

  #peekU32(offset: number): number {
    const all = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [all];
    return all.readUInt32LE(offset);
  }

  #parse(): void {
    if (!this.#sawHeader) {
      if (this.#pendingBytes < STREAM_HEADER_BYTES) return;
      const header = this.#take(STREAM_HEADER_BYTES);
      if (!header.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) {
        throw new Error('not a btrfs send stream (bad magic)');
      }
      this.#sawHeader = true;
      this.#header = Buffer.from(header);
      this.#streamBytes += STREAM_HEADER_BYTES;
    }
    while (this.#pendingBytes >= COMMAND_HEADER_BYTES) {
      const payloadBytes = this.#peekU32(0);
      const total = COMMAND_HEADER_BYTES + payloadBytes;
      if (this.#pendingBytes < total) return;
      const command = this.#take(total);
      this.#commands += 1;
      if (this.#commands === 1) this.#head = Buffer.concat([this.#header!, command]);
      this.#account(command);
      if (!this.#ended && this.#streamBytes > this.#stopAbove) throw new MeasurementStopped(this.#streamBytes);
    }
  }

  #account(command: Buffer): void {
    const type = command.readUInt16LE(4);
    if (this.#ended) throw new Error('btrfs send stream has data after its end command');
    if (type === Command.End) this.#ended = true;
    if (type !== Command.UpdateExtent) {
      this.#streamBytes += command.length;
      return;
    }
    let pathBytes = 0;
    let size = 0;
    for (let at = COMMAND_HEADER_BYTES; at + TLV_HEADER_BYTES <= command.length; ) {
      const attr = command.readUInt16LE(at);
      const len = command.readUInt16LE(at + 2);
      const value = at + TLV_HEADER_BYTES;
      if (attr === Attribute.Path) pathBytes = len;
      else if (attr === Attribute.Size && len === 8) size = Number(command.readBigUInt64LE(value));
      at = value + len;
    }
    this.#dataBytes += size;
    // The real stream sends this range as write commands of at most SEND_READ_SIZE bytes,
    // each: command header, path TLV, file offset TLV (u64), data TLV header, then data.
    const writes = Math.ceil(size / SEND_READ_SIZE);
    const perWrite = COMMAND_HEADER_BYTES + TLV_HEADER_BYTES + pathBytes + TLV_HEADER_BYTES + 8 + TLV_HEADER_BYTES;
    this.#streamBytes += size + writes * perWrite;
  }
}
