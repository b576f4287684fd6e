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
    const result = renameAtStreamStart(this.#head!, this.#newName);
    if (result === null) return null;
    this.#originalName = result.originalName;
    return result.renamed;
  }
}

/**
 * Renames the subvolume in `data`, which starts with a send stream's header: returns the
 * bytes with the first command rewritten (and its CRC), followed unchanged by whatever came
 * after it in `data`; null when `data` does not hold the whole first command yet.
 * @throws NotASendStreamError when `data` is not the start of a send stream.
 */
export function renameAtStreamStart(data: Buffer, newName: Buffer): { renamed: Buffer; originalName: string } | null {
  if (data.length >= STREAM_MAGIC.length && !data.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) {
    throw new NotASendStreamError('not a btrfs send stream (bad magic)');
  }
  if (data.length < STREAM_HEADER_BYTES + COMMAND_HEADER_BYTES) return null;
  const start = STREAM_HEADER_BYTES;
  const payloadBytes = data.readUInt32LE(start);
  const command = data.readUInt16LE(start + 4);
  if (command !== Command.Subvol && command !== Command.Snapshot) {
    throw new NotASendStreamError(`btrfs send stream starts with command ${command}, not subvol/snapshot`);
  }
  if (payloadBytes > 1 << 20) throw new NotASendStreamError('btrfs send stream has an implausible first command');
  const end = start + COMMAND_HEADER_BYTES + payloadBytes;
  if (data.length < end) return null;

  let originalName: string | undefined;
  const attributes: Buffer[] = [];
  for (let at = start + COMMAND_HEADER_BYTES; at < end; ) {
    const type = data.readUInt16LE(at);
    const len = data.readUInt16LE(at + 2);
    const value = data.subarray(at + TLV_HEADER_BYTES, at + TLV_HEADER_BYTES + len);
    if (type === Attribute.Path) {
      originalName = value.toString('utf8');
      const tlv = Buffer.alloc(TLV_HEADER_BYTES);
      tlv.writeUInt16LE(type, 0);
      tlv.writeUInt16LE(newName.length, 2);
      attributes.push(tlv, newName);
    } else {
      attributes.push(data.subarray(at, at + TLV_HEADER_BYTES + len));
    }
    at += TLV_HEADER_BYTES + len;
  }
  if (originalName === undefined) throw new NotASendStreamError('btrfs send stream names no subvolume');
  const payload = Buffer.concat(attributes);
  const header = Buffer.alloc(COMMAND_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt16LE(command, 4);
  header.writeUInt32LE(crc32c(Buffer.concat([header, payload])), 6);
  return { renamed: Buffer.concat([data.subarray(0, start), header, payload, data.subarray(end)]), originalName };
}

/** {@link renameAtStreamStart} for a complete stream head (header and first command). */
export function renameStreamHead(head: Buffer, newName: string): Buffer {
  const result = renameAtStreamStart(head, Buffer.from(newName, 'utf8'));
  if (result === null) throw new NotASendStreamError('incomplete btrfs send stream head');
  return result.renamed;
}
