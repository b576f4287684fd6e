import { Transform, type TransformCallback } from 'node:stream';
import { crc32c } from './crc32c.js';
import { Attribute, Command, COMMAND_HEADER_BYTES, STREAM_HEADER_BYTES, STREAM_MAGIC, TLV_HEADER_BYTES } from './stream-format.js';

/** The stream did not start like a btrfs send stream. */
export class NotASendStreamError extends Error {}

/**
 * Passes a send stream through, giving the subvolume it creates another name: the stream's
 * first command (`subvol` or `snapshot`) carries the name `btrfs receive` will use, and every
 * later path is relative to that subvolume. Only that one command is rewritten (with its
 * CRC); the rest flows through untouched, so the cost is nil for large streams.
 *
 * buttersink uses it to receive under a temporary hidden name in the final directory and
 * rename in place after success: a read-only subvolume cannot be moved to another directory
 * (EROFS), but it can be renamed within one.
 */
export class SubvolumeRenamer extends Transform {
  readonly #newName: Buffer;
  #head: Buffer | null = Buffer.alloc(0);
  #originalName: string | undefined;

  constructor(newName: string) {
    super({ highWaterMark: 1 << 20 });
    this.#newName = Buffer.from(newName, 'utf8');
    if (this.#newName.length === 0 || this.#newName.length > 255) throw new Error('bad subvolume name length');
  }

  /** The name the stream had, once its first command went by. */
  get originalName(): string | undefined {
    return this.#originalName;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.#head === null) return callback(null, chunk);
    this.#head = Buffer.concat([this.#head, chunk]);
    try {
      const done = this.#tryRewrite();
      if (done) {
        const out = done;
        this.#head = null;
        return callback(null, out);
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#head !== null) return callback(new NotASendStreamError('the stream ended before its first command: not a btrfs send stream'));
    callback();
  }

  /** The rewritten head plus what followed it, or null when more bytes are needed. */
  #tryRewrite(): Buffer | null {
    const head = this.#head!;
    if (head.length >= STREAM_MAGIC.length && !head.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) {
      throw new NotASendStreamError('not a btrfs send stream (bad magic)');
    }
    if (head.length < STREAM_HEADER_BYTES + COMMAND_HEADER_BYTES) return null;
    const start = STREAM_HEADER_BYTES;
    const payloadBytes = head.readUInt32LE(start);
    const command = head.readUInt16LE(start + 4);
    if (command !== Command.Subvol && command !== Command.Snapshot) {
      throw new NotASendStreamError(`btrfs send stream starts with command ${command}, not subvol/snapshot`);
    }
    if (payloadBytes > 1 << 20) throw new NotASendStreamError('btrfs send stream has an implausible first command');
    const end = start + COMMAND_HEADER_BYTES + payloadBytes;
    if (head.length < end) return null;

    const attributes: Buffer[] = [];
    for (let at = start + COMMAND_HEADER_BYTES; at < end; ) {
      const type = head.readUInt16LE(at);
      const len = head.readUInt16LE(at + 2);
      const value = head.subarray(at + TLV_HEADER_BYTES, at + TLV_HEADER_BYTES + len);
      if (type === Attribute.Path) {
        this.#originalName = value.toString('utf8');
        const tlv = Buffer.alloc(TLV_HEADER_BYTES);
        tlv.writeUInt16LE(type, 0);
        tlv.writeUInt16LE(this.#newName.length, 2);
        attributes.push(tlv, this.#newName);
      } else {
        attributes.push(head.subarray(at, at + TLV_HEADER_BYTES + len));
      }
      at += TLV_HEADER_BYTES + len;
    }
    if (this.#originalName === undefined) throw new NotASendStreamError('btrfs send stream names no subvolume');
    const payload = Buffer.concat(attributes);
    const header = Buffer.alloc(COMMAND_HEADER_BYTES);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt16LE(command, 4);
    header.writeUInt32LE(0, 6);
    header.writeUInt32LE(crc32c(Buffer.concat([header, payload])), 6);
    return Buffer.concat([head.subarray(0, start), header, payload, head.subarray(end)]);
  }
}
