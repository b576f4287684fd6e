/**
 * Constants of the btrfs send stream format (btrfs-progs
 * `Documentation/dev/dev-send-stream.rst`, kernel `fs/btrfs/send.h`).
 */
export const STREAM_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
/** Magic plus the u32 LE version. */
export const STREAM_HEADER_BYTES = STREAM_MAGIC.length + 4;
/** u32 LE payload length, u16 LE command, u32 LE crc32c. */
export const COMMAND_HEADER_BYTES = 10;
/** u16 LE type, u16 LE length. */
export const TLV_HEADER_BYTES = 4;

export const Command = {
  Subvol: 1,
  Snapshot: 2,
  Write: 15,
  Clone: 16,
  End: 21,
  UpdateExtent: 22,
  EncodedWrite: 25,
} as const;

export const Attribute = {
  Uuid: 1,
  Ctransid: 2,
  Size: 4,
  Path: 15,
  FileOffset: 18,
  Data: 19,
} as const;

/**
 * The kernel sends file data in `write` commands of at most this many bytes
 * (`BTRFS_SEND_READ_SIZE`), each with its own command header and path/offset/data TLVs.
 */
export const SEND_READ_SIZE = 48 * 1024;
