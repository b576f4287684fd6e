/**
 * Crafts btrfs send streams, honest or hostile, byte by byte from the documented format
 * (btrfs-progs `Documentation/dev/dev-send-stream.rst`, kernel `fs/btrfs/send.h`) and never
 * from the code under test (nothing here imports `src/`):
 *
 *   stream  = "btrfs-stream\0" + u32 LE version (1 or 2), then commands back to back
 *   command = u32 LE payload length | u16 LE command | u32 LE crc32c | payload
 *   payload = TLVs: u16 LE type | u16 LE length | value
 *
 * The CRC is CRC-32C (Castagnoli) with seed 0 and no final xor, over the command header
 * (with its CRC field zeroed) and the payload. In version 2 the DATA attribute (19) has no
 * length field: it must be the last attribute and runs to the end of the command, which the
 * encoder ensures by writing it last.
 *
 * Attributes are given by name ({@link AttributeValues}), in the order the kernel emits them
 * (the receiver looks them up by type, so the order is free). A hostile stream can go past
 * the documented shapes: an unknown command number, extra raw TLVs, a corrupt CRC, bytes
 * that are not UTF-8 in a path.
 */
import { randomUUID } from 'node:crypto';

export const STREAM_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');

/** Command numbers (send.h `enum btrfs_send_cmd`): 1-22 in version 1, 23-25 added in 2. */
export const COMMAND_NUMBERS = {
  subvol: 1,
  snapshot: 2,
  mkfile: 3,
  mkdir: 4,
  mknod: 5,
  mkfifo: 6,
  mksock: 7,
  symlink: 8,
  rename: 9,
  link: 10,
  unlink: 11,
  rmdir: 12,
  setXattr: 13,
  removeXattr: 14,
  write: 15,
  clone: 16,
  truncate: 17,
  chmod: 18,
  chown: 19,
  utimes: 20,
  end: 21,
  updateExtent: 22,
  fallocate: 23,
  fileattr: 24,
  encodedWrite: 25,
} as const;
export type CommandName = keyof typeof COMMAND_NUMBERS;

/** A time as the stream carries it: u64 LE seconds, u32 LE nanoseconds. */
export interface Timespec {
  readonly sec: number | bigint;
  readonly nsec: number;
}

/** Bytes as given, or a string as UTF-8. */
export type Bytes = Buffer | string;

/** Attribute types (send.h `BTRFS_SEND_A_*`) and how each value is encoded. */
const ATTRIBUTES = {
  uuid: [1, 'uuid'],
  ctransid: [2, 'u64'],
  ino: [3, 'u64'],
  size: [4, 'u64'],
  mode: [5, 'u64'],
  uid: [6, 'u64'],
  gid: [7, 'u64'],
  rdev: [8, 'u64'],
  ctime: [9, 'timespec'],
  mtime: [10, 'timespec'],
  atime: [11, 'timespec'],
  otime: [12, 'timespec'],
  xattrName: [13, 'bytes'],
  xattrData: [14, 'bytes'],
  path: [15, 'bytes'],
  pathTo: [16, 'bytes'],
  pathLink: [17, 'bytes'],
  fileOffset: [18, 'u64'],
  data: [19, 'bytes'],
  cloneUuid: [20, 'uuid'],
  cloneCtransid: [21, 'u64'],
  clonePath: [22, 'bytes'],
  cloneOffset: [23, 'u64'],
  cloneLen: [24, 'u64'],
  // Version 2
  fallocateMode: [25, 'u32'],
  fileattr: [26, 'u64'],
  unencodedFileLen: [27, 'u64'],
  unencodedLen: [28, 'u64'],
  unencodedOffset: [29, 'u64'],
  compression: [30, 'u32'],
  encryption: [31, 'u32'],
} as const;
export type AttributeName = keyof typeof ATTRIBUTES;
type Encoding = (typeof ATTRIBUTES)[AttributeName][1];
type ValueOf<E extends Encoding> = E extends 'uuid'
  ? string | Buffer
  : E extends 'u64' | 'u32'
    ? number | bigint
    : E extends 'timespec'
      ? Timespec
      : Bytes;

/** Every attribute by name, with the value type its encoding takes. */
export type AttributeValues = { [K in AttributeName]: ValueOf<(typeof ATTRIBUTES)[K][1]> };

export const ATTRIBUTE_NUMBERS: Readonly<Record<AttributeName, number>> = Object.fromEntries(
  Object.entries(ATTRIBUTES).map(([name, [type]]) => [name, type]),
) as Record<AttributeName, number>;

/** One command, before encoding. */
export interface StreamCommand {
  /** A command by name, or any number (an unknown command, for hostile streams). */
  readonly command: CommandName | number;
  /** Named attributes, encoded in this order (DATA last in version 2). */
  readonly attributes: Partial<AttributeValues>;
  /** Raw TLVs appended after the named ones: unknown types, wrong lengths. */
  readonly rawTlvs?: readonly { readonly type: number; readonly value: Buffer }[];
  /** `corrupt`: the correct CRC with bits flipped; a number: exactly that CRC. */
  readonly crc?: 'corrupt' | number;
}

export type StreamVersion = 1 | 2;

/** CRC-32C (reflected polynomial 0x82F63B78), one bit at a time: seed 0, no final xor, as btrfs uses it. */
export function crc32c(data: Uint8Array, seed = 0): number {
  let crc = seed >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return crc >>> 0;
}

export function streamHeader(version: number = 1): Buffer {
  const header = Buffer.alloc(STREAM_MAGIC.length + 4);
  STREAM_MAGIC.copy(header);
  header.writeUInt32LE(version, STREAM_MAGIC.length);
  return header;
}

/** A UUID string (`xxxxxxxx-xxxx-...`, dashes optional) as its 16 bytes; a Buffer as is. */
export function uuidToBytes(uuid: string | Buffer): Buffer {
  if (Buffer.isBuffer(uuid)) return uuid;
  const hex = uuid.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/** 16 bytes as `btrfs subvolume show` prints a UUID. */
export function uuidFromBytes(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function newUuid(): string {
  return randomUUID();
}

function encodeValue(encoding: Encoding, value: unknown): Buffer {
  switch (encoding) {
    case 'uuid':
      return uuidToBytes(value as string | Buffer);
    case 'u64': {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(value as number | bigint));
      return b;
    }
    case 'u32': {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(Number(value));
      return b;
    }
    case 'timespec': {
      const t = value as Timespec;
      const b = Buffer.alloc(12);
      b.writeBigUInt64LE(BigInt(t.sec), 0);
      b.writeUInt32LE(t.nsec, 8);
      return b;
    }
    case 'bytes':
      return typeof value === 'string' ? Buffer.from(value, 'utf8') : (value as Buffer);
  }
}

function tlv(type: number, value: Buffer, withLength = true): Buffer {
  if (!withLength) {
    const head = Buffer.alloc(2);
    head.writeUInt16LE(type, 0);
    return Buffer.concat([head, value]);
  }
  if (value.length > 0xffff)
    throw new Error(`attribute ${type} is ${value.length} bytes: a TLV holds at most 65535 (use version 2 for DATA)`);
  const head = Buffer.alloc(4);
  head.writeUInt16LE(type, 0);
  head.writeUInt16LE(value.length, 2);
  return Buffer.concat([head, value]);
}

/** The bytes of one command, with its CRC (correct unless the command says otherwise). */
export function encodeCommand(command: StreamCommand, version: StreamVersion = 1): Buffer {
  const number = typeof command.command === 'number' ? command.command : COMMAND_NUMBERS[command.command];
  const parts: Buffer[] = [];
  let data: Buffer | undefined;
  for (const [name, value] of Object.entries(command.attributes)) {
    if (value === undefined) continue;
    const [type, encoding] = ATTRIBUTES[name as AttributeName];
    const bytes = encodeValue(encoding, value);
    if (version >= 2 && name === 'data') data = bytes;
    else parts.push(tlv(type, bytes));
  }
  for (const raw of command.rawTlvs ?? []) parts.push(tlv(raw.type, raw.value));
  if (data !== undefined) parts.push(tlv(ATTRIBUTES.data[0], data, false));
  const payload = Buffer.concat(parts);
  const header = Buffer.alloc(10);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt16LE(number, 4);
  const whole = Buffer.concat([header, payload]);
  const crc = crc32c(whole);
  whole.writeUInt32LE(command.crc === undefined ? crc : command.crc === 'corrupt' ? (crc ^ 0x5a5a5a5a) >>> 0 : command.crc, 6);
  return whole;
}

/** A stream header and the commands as given (no END added). */
export function encodeStream(commands: readonly StreamCommand[], version: StreamVersion = 1): Buffer {
  return Buffer.concat([streamHeader(version), ...commands.map((c) => encodeCommand(c, version))]);
}

export interface StreamOptions {
  readonly version?: StreamVersion;
  /** Leave the END command off (a stream cut at a command boundary). */
  readonly withoutEnd?: boolean;
}

/** A full stream: `subvol name`, the commands, END. */
export function fullStream(
  name: Bytes,
  uuid: string,
  ctransid: number,
  commands: readonly StreamCommand[],
  options: StreamOptions = {},
): Buffer {
  return encodeStream([cmd.subvol(name, uuid, ctransid), ...commands, ...(options.withoutEnd ? [] : [cmd.end()])], options.version);
}

/** An incremental stream: `snapshot name` of the parent, the commands, END. */
export function incrementalStream(
  name: Bytes,
  uuid: string,
  ctransid: number,
  parentUuid: string,
  parentCtransid: number,
  commands: readonly StreamCommand[],
  options: StreamOptions = {},
): Buffer {
  return encodeStream(
    [cmd.snapshot(name, uuid, ctransid, parentUuid, parentCtransid), ...commands, ...(options.withoutEnd ? [] : [cmd.end()])],
    options.version,
  );
}

/** The same command with a CRC that does not match its bytes. */
export function corruptCrc(command: StreamCommand): StreamCommand {
  return { ...command, crc: 'corrupt' };
}

/** Any command number with named attributes (an unknown command: a number above 25, or 0). */
export function rawCommand(
  command: number,
  attributes: Partial<AttributeValues> = {},
  rawTlvs: StreamCommand['rawTlvs'] = [],
): StreamCommand {
  return { command, attributes, rawTlvs };
}

const DEFAULT_INO = 257;
const c = (command: CommandName, attributes: Partial<AttributeValues>): StreamCommand => ({ command, attributes });

/** One constructor per command, attributes in the order the documentation lists them. */
export const cmd = {
  subvol: (path: Bytes, uuid: string | Buffer, ctransid: number | bigint) => c('subvol', { path, uuid, ctransid }),
  snapshot: (path: Bytes, uuid: string | Buffer, ctransid: number | bigint, cloneUuid: string | Buffer, cloneCtransid: number | bigint) =>
    c('snapshot', { path, uuid, ctransid, cloneUuid, cloneCtransid }),
  mkfile: (path: Bytes, ino: number = DEFAULT_INO) => c('mkfile', { path, ino }),
  mkdir: (path: Bytes, ino: number = DEFAULT_INO) => c('mkdir', { path, ino }),
  /** `mode` includes the file type bits (S_IFCHR 0o020000, S_IFBLK 0o060000, ...). */
  mknod: (path: Bytes, mode: number, rdev: number, ino: number = DEFAULT_INO) => c('mknod', { path, ino, mode, rdev }),
  mkfifo: (path: Bytes, ino: number = DEFAULT_INO) => c('mkfifo', { path, ino }),
  mksock: (path: Bytes, ino: number = DEFAULT_INO) => c('mksock', { path, ino }),
  symlink: (path: Bytes, target: Bytes, ino: number = DEFAULT_INO) => c('symlink', { path, ino, pathLink: target }),
  rename: (from: Bytes, to: Bytes) => c('rename', { path: from, pathTo: to }),
  /** Makes `path` a new hard link of the existing `existing`. */
  link: (path: Bytes, existing: Bytes) => c('link', { path, pathLink: existing }),
  unlink: (path: Bytes) => c('unlink', { path }),
  rmdir: (path: Bytes) => c('rmdir', { path }),
  setXattr: (path: Bytes, name: Bytes, data: Bytes) => c('setXattr', { path, xattrName: name, xattrData: data }),
  removeXattr: (path: Bytes, name: Bytes) => c('removeXattr', { path, xattrName: name }),
  write: (path: Bytes, offset: number | bigint, data: Bytes) => c('write', { path, fileOffset: offset, data }),
  /** Clones `len` bytes at `cloneOffset` of `clonePath` in the subvolume `cloneUuid` into `path` at `offset`. */
  clone: (
    path: Bytes,
    offset: number | bigint,
    len: number | bigint,
    cloneUuid: string | Buffer,
    cloneCtransid: number | bigint,
    clonePath: Bytes,
    cloneOffset: number | bigint,
  ) => c('clone', { path, fileOffset: offset, cloneLen: len, cloneUuid, cloneCtransid, clonePath, cloneOffset }),
  truncate: (path: Bytes, size: number | bigint) => c('truncate', { path, size }),
  chmod: (path: Bytes, mode: number) => c('chmod', { path, mode }),
  chown: (path: Bytes, uid: number, gid: number) => c('chown', { path, uid, gid }),
  utimes: (path: Bytes, atime: Timespec, mtime: Timespec, ctime: Timespec) => c('utimes', { path, atime, mtime, ctime }),
  end: () => c('end', {}),
  updateExtent: (path: Bytes, offset: number | bigint, size: number | bigint) => c('updateExtent', { path, fileOffset: offset, size }),
  // Version 2
  /** `mode` as fallocate(2) takes it (0 allocates, 3 = KEEP_SIZE | PUNCH_HOLE). */
  fallocate: (path: Bytes, mode: number, offset: number | bigint, size: number | bigint) =>
    c('fallocate', { path, fallocateMode: mode, fileOffset: offset, size }),
  fileattr: (path: Bytes, fileattr: number | bigint) => c('fileattr', { path, fileattr }),
  /** `data` is the encoded extent; compression 1 = zlib, 2 = zstd, 3-7 = lzo (btrfs_encoded_io). */
  encodedWrite: (
    path: Bytes,
    offset: number | bigint,
    extent: { unencodedFileLen: number; unencodedLen: number; unencodedOffset: number; compression?: number; encryption?: number },
    data: Bytes,
  ) =>
    c('encodedWrite', {
      path,
      fileOffset: offset,
      unencodedFileLen: extent.unencodedFileLen,
      unencodedLen: extent.unencodedLen,
      unencodedOffset: extent.unencodedOffset,
      compression: extent.compression,
      encryption: extent.encryption,
      data,
    }),
};

/** A command read back from bytes (for tests of the builder and of stream rewriters). */
export interface DecodedCommand {
  readonly command: number;
  readonly crc: number;
  /** Whether the CRC matches the bytes. */
  readonly crcOk: boolean;
  /** The whole command, header included. */
  readonly bytes: Buffer;
  /** Values by attribute number (the last of a repeated type wins, as in btrfs-progs). */
  readonly attributes: ReadonlyMap<number, Buffer>;
}

/** Splits a stream into its header's version and commands; throws on malformed framing. */
export function decodeStream(stream: Buffer): { version: number; commands: DecodedCommand[] } {
  if (!stream.subarray(0, STREAM_MAGIC.length).equals(STREAM_MAGIC)) throw new Error('bad magic');
  const version = stream.readUInt32LE(STREAM_MAGIC.length);
  const commands: DecodedCommand[] = [];
  for (let at = STREAM_MAGIC.length + 4; at < stream.length; ) {
    if (at + 10 > stream.length) throw new Error('truncated command header');
    const length = stream.readUInt32LE(at);
    const bytes = stream.subarray(at, at + 10 + length);
    if (bytes.length !== 10 + length) throw new Error('truncated command');
    const attributes = new Map<number, Buffer>();
    for (let a = 10; a < bytes.length; ) {
      const type = bytes.readUInt16LE(a);
      if (version >= 2 && type === ATTRIBUTES.data[0]) {
        attributes.set(type, bytes.subarray(a + 2));
        break;
      }
      const len = bytes.readUInt16LE(a + 2);
      if (a + 4 + len > bytes.length) throw new Error('truncated attribute');
      attributes.set(type, bytes.subarray(a + 4, a + 4 + len));
      a += 4 + len;
    }
    const zeroed = Buffer.from(bytes);
    zeroed.writeUInt32LE(0, 6);
    const crc = bytes.readUInt32LE(6);
    commands.push({ command: bytes.readUInt16LE(4), crc, crcOk: crc === crc32c(zeroed), bytes, attributes });
    at += 10 + length;
  }
  return { version, commands };
}
