/**
 * Builds synthetic btrfs send streams (format v1) for unit tests, byte by byte from the
 * documented layout rather than from the code under test's constants:
 *
 *   stream  = "btrfs-stream\0" + u32 LE version
 *   command = u32 LE payload length, u16 LE command, u32 LE crc32c, payload
 *   payload = TLVs: u16 LE type, u16 LE length, data
 *
 * The CRC covers the command header (with the CRC field zeroed) and the payload.
 */
import { Readable, type Duplex, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32c as crc32cBitwise } from '../../support/send-stream-builder.js';

export const CMD = { subvol: 1, snapshot: 2, mkfile: 3, write: 15, end: 21, updateExtent: 22 } as const;
export const ATTR = { uuid: 1, ctransid: 2, size: 4, path: 15, fileOffset: 18, data: 19, cloneUuid: 20, cloneCtransid: 21 } as const;

export const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');

/** CRC-32C one bit at a time (seed 0, no final xor): the shared builder's, never the code under test's. */
export { crc32c as crc32cBitwise } from '../../support/send-stream-builder.js';

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

export function uuidBytes(seed: number): Buffer {
  return Buffer.from(Array.from({ length: 16 }, (_, i) => (seed * 31 + i * 7) & 0xff));
}

export function tlv(type: number, data: Buffer | string): Buffer {
  const value = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const head = Buffer.alloc(4);
  head.writeUInt16LE(type, 0);
  head.writeUInt16LE(value.length, 2);
  return Buffer.concat([head, value]);
}

export function streamHeader(version = 1): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(version);
  return Buffer.concat([MAGIC, v]);
}

/** A whole command with a correct CRC (unless `crc` is given). */
export function command(cmd: number, attributes: readonly Buffer[], crc?: number): Buffer {
  const payload = Buffer.concat(attributes);
  const head = Buffer.alloc(10);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt16LE(cmd, 4);
  head.writeUInt32LE(0, 6);
  head.writeUInt32LE(crc ?? crc32cBitwise(Buffer.concat([head, payload])), 6);
  return Buffer.concat([head, payload]);
}

export const commands = {
  subvol: (path: string, uuid = uuidBytes(1), ctransid = 7): Buffer =>
    command(CMD.subvol, [tlv(ATTR.path, path), tlv(ATTR.uuid, uuid), tlv(ATTR.ctransid, u64(ctransid))]),
  snapshot: (path: string, uuid = uuidBytes(2), ctransid = 9, cloneUuid = uuidBytes(1), cloneCtransid = 7): Buffer =>
    command(CMD.snapshot, [
      tlv(ATTR.path, path),
      tlv(ATTR.uuid, uuid),
      tlv(ATTR.ctransid, u64(ctransid)),
      tlv(ATTR.cloneUuid, cloneUuid),
      tlv(ATTR.cloneCtransid, u64(cloneCtransid)),
    ]),
  mkfile: (path: string): Buffer => command(CMD.mkfile, [tlv(ATTR.path, path)]),
  updateExtent: (path: string, offset: number, size: number): Buffer =>
    command(CMD.updateExtent, [tlv(ATTR.path, path), tlv(ATTR.fileOffset, u64(offset)), tlv(ATTR.size, u64(size))]),
  end: (): Buffer => command(CMD.end, []),
};

export function sendStream(...cmds: readonly Buffer[]): Buffer {
  return Buffer.concat([streamHeader(), ...cmds]);
}

export interface ParsedCommand {
  readonly cmd: number;
  readonly crc: number;
  /** The whole command, header included. */
  readonly bytes: Buffer;
  readonly attributes: ReadonlyMap<number, Buffer>;
}

/** Splits a stream (after its 17-byte header) into commands; throws on a malformed one. */
export function parseCommands(stream: Buffer): ParsedCommand[] {
  if (!stream.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('bad magic');
  const out: ParsedCommand[] = [];
  for (let at = MAGIC.length + 4; at < stream.length; ) {
    const len = stream.readUInt32LE(at);
    const bytes = stream.subarray(at, at + 10 + len);
    if (bytes.length !== 10 + len) throw new Error('truncated command');
    const attributes = new Map<number, Buffer>();
    for (let a = 10; a < bytes.length; ) {
      const type = bytes.readUInt16LE(a);
      const alen = bytes.readUInt16LE(a + 2);
      attributes.set(type, bytes.subarray(a + 4, a + 4 + alen));
      a += 4 + alen;
    }
    out.push({ cmd: bytes.readUInt16LE(4), crc: bytes.readUInt32LE(6), bytes, attributes });
    at += 10 + len;
  }
  return out;
}

/** The CRC a command should carry: CRC-32C of the command with its CRC field zeroed. */
export function expectedCrc(commandBytes: Buffer): number {
  const copy = Buffer.from(commandBytes);
  copy.writeUInt32LE(0, 6);
  return crc32cBitwise(copy);
}

/** `data` cut into chunks of `size` bytes (the last one shorter). */
export function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

/** Writes `parts` into `sink` and waits for it to finish (rejects with its error). */
export async function feed(sink: Writable, parts: readonly Buffer[]): Promise<void> {
  await pipeline(Readable.from(parts), sink);
}

/** Pipes `parts` through `transform` and returns everything it produced. */
export async function through(transform: Duplex, parts: readonly Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), transform, async (source: AsyncIterable<string | Buffer>) => {
    for await (const chunk of source) out.push(Buffer.from(chunk));
  });
  return Buffer.concat(out);
}
