import { crc32c } from './crc32c.js';
import { Attribute, COMMAND_HEADER_BYTES, MAX_ATTRIBUTE, STREAM_HEADER_BYTES, STREAM_MAGIC, TLV_HEADER_BYTES } from './stream-format.js';

/**
 * The largest command payload accepted. The kernel's own commands stay below 64 KiB (v1) and
 * 144 KiB (v2: 16 KiB + a 128 KiB compressed extent); btrfs-progs would grow its buffer to
 * whatever a header announces (up to 4 GiB), so this bound is what keeps memory flat.
 */
export const MAX_COMMAND_PAYLOAD = 1 << 20;

/** A stream that is not (or no longer) a well-formed send stream. */
export class MalformedStreamError extends Error {}

/** One command, whole, with its CRC checked and its attributes split out. */
export interface SendCommand {
  readonly command: number;
  /** Attribute type → value (a view into {@link SendCommand.bytes}). */
  readonly attributes: ReadonlyMap<number, Buffer>;
  /** The command as it came: header and payload, to pass on unchanged. */
  readonly bytes: Buffer;
}

/**
 * Splits a send stream into its header and whole commands as bytes arrive, the way
 * btrfs-progs' `read_cmd` does, but stricter wherever the two could disagree about what a
 * command says: a bad CRC, an attribute type btrfs-progs refuses, a truncated TLV and a
 * repeated attribute (progs would keep the last one) are all errors here. Pure; holds at most
 * one command ({@link MAX_COMMAND_PAYLOAD}) plus what arrived after it.
 */
export class CommandReader {
  #chunks: Buffer[] = [];
  /** Bytes in #chunks not taken yet (the first chunk is taken from #offset on). */
  #length = 0;
  #offset = 0;
  #version = 0;

  /** The stream's format version once its header was read (1 or 2), else 0. */
  get version(): number {
    return this.#version;
  }

  /** Bytes received and not yet returned as part of a command. */
  get pendingBytes(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /**
   * Reads the stream header when it is due: returns the header's bytes once, undefined when
   * more bytes are needed or it was read already.
   * @throws MalformedStreamError for a bad magic or a version other than 1 and 2.
   */
  header(): Buffer | undefined {
    if (this.#version !== 0 || this.#length < STREAM_HEADER_BYTES) return undefined;
    const bytes = this.#take(STREAM_HEADER_BYTES);
    if (!bytes.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) throw new MalformedStreamError('not a btrfs send stream (bad magic)');
    const version = bytes.readUInt32LE(STREAM_MAGIC.length);
    if (version !== 1 && version !== 2) throw new MalformedStreamError(`send stream version ${version} is not supported (only 1 and 2)`);
    this.#version = version;
    return bytes;
  }

  /**
   * The next whole command, or undefined until more bytes arrive.
   * @throws MalformedStreamError for an oversized command, a bad CRC or malformed attributes.
   */
  next(): SendCommand | undefined {
    if (this.#version === 0 || this.#length < COMMAND_HEADER_BYTES) return undefined;
    const head = this.#peek(COMMAND_HEADER_BYTES);
    const payloadBytes = head.readUInt32LE(0);
    if (payloadBytes > MAX_COMMAND_PAYLOAD) {
      throw new MalformedStreamError(`a command of ${payloadBytes} bytes is larger than any btrfs send produces (${MAX_COMMAND_PAYLOAD})`);
    }
    if (this.#length < COMMAND_HEADER_BYTES + payloadBytes) return undefined;
    const bytes = this.#take(COMMAND_HEADER_BYTES + payloadBytes);
    const command = bytes.readUInt16LE(4);
    const zeroed = Buffer.from(bytes.subarray(0, COMMAND_HEADER_BYTES));
    zeroed.writeUInt32LE(0, 6);
    const crc = crc32c(bytes.subarray(COMMAND_HEADER_BYTES), crc32c(zeroed));
    if (crc !== bytes.readUInt32LE(6)) throw new MalformedStreamError(`command ${command} has a bad CRC`);
    return { command, attributes: parseAttributes(bytes.subarray(COMMAND_HEADER_BYTES), this.#version, command), bytes };
  }

  /**
   * `n` bytes from the front without taking them: a view when they lie in one chunk, else
   * exactly those bytes are copied together (not the whole of a large chunk behind them).
   */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length - this.#offset >= n) return first.subarray(this.#offset, this.#offset + n);
    const joined = Buffer.allocUnsafe(n);
    let filled = first.copy(joined, 0, this.#offset);
    let used = 1;
    while (filled < n) {
      const chunk = this.#chunks[used]!;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(joined, filled, 0, part);
      filled += part;
      if (part < chunk.length) {
        this.#chunks[used] = chunk.subarray(part);
        break;
      }
      used++;
    }
    this.#chunks.splice(0, used, joined);
    this.#offset = 0;
    return joined;
  }

  #take(n: number): Buffer {
    const bytes = this.#peek(n);
    this.#offset += n;
    this.#length -= n;
    if (this.#offset === this.#chunks[0]!.length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
    return bytes;
  }
}

/** A command's TLVs, as btrfs-progs splits them (in v2 the DATA attribute runs to the end). */
function parseAttributes(payload: Buffer, version: number, command: number): Map<number, Buffer> {
  const attributes = new Map<number, Buffer>();
  let at = 0;
  while (at < payload.length) {
    if (payload.length - at < 2) throw new MalformedStreamError(`command ${command} is truncated inside an attribute`);
    const type = payload.readUInt16LE(at);
    if (type === 0 || type > MAX_ATTRIBUTE) throw new MalformedStreamError(`command ${command} has an unknown attribute type ${type}`);
    let length: number;
    if (version >= 2 && type === Attribute.Data) {
      at += 2;
      length = payload.length - at;
    } else {
      if (payload.length - at < TLV_HEADER_BYTES) throw new MalformedStreamError(`command ${command} is truncated inside an attribute`);
      length = payload.readUInt16LE(at + 2);
      at += TLV_HEADER_BYTES;
    }
    if (payload.length - at < length) throw new MalformedStreamError(`command ${command} is truncated inside attribute ${type}`);
    if (attributes.has(type)) throw new MalformedStreamError(`command ${command} repeats attribute ${type}`);
    attributes.set(type, payload.subarray(at, at + length));
    at += length;
  }
  return attributes;
}
