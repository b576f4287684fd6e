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

/** Command numbers (`enum btrfs_send_cmd`). 1-22 are version 1, 23-25 version 2, 26 version 3. */
export const Command = {
  Subvol: 1,
  Snapshot: 2,
  Mkfile: 3,
  Mkdir: 4,
  Mknod: 5,
  Mkfifo: 6,
  Mksock: 7,
  Symlink: 8,
  Rename: 9,
  Link: 10,
  Unlink: 11,
  Rmdir: 12,
  SetXattr: 13,
  RemoveXattr: 14,
  Write: 15,
  Clone: 16,
  Truncate: 17,
  Chmod: 18,
  Chown: 19,
  Utimes: 20,
  End: 21,
  UpdateExtent: 22,
  Fallocate: 23,
  Fileattr: 24,
  EncodedWrite: 25,
  EnableVerity: 26,
} as const;

/** Attribute (TLV) types. btrfs-progs refuses a TLV type of 0 or above {@link MAX_ATTRIBUTE}. */
export const Attribute = {
  Uuid: 1,
  Ctransid: 2,
  Ino: 3,
  Size: 4,
  Mode: 5,
  Uid: 6,
  Gid: 7,
  Rdev: 8,
  Ctime: 9,
  Mtime: 10,
  Atime: 11,
  Otime: 12,
  XattrName: 13,
  XattrData: 14,
  Path: 15,
  PathTo: 16,
  PathLink: 17,
  FileOffset: 18,
  Data: 19,
  CloneUuid: 20,
  CloneCtransid: 21,
  ClonePath: 22,
  CloneOffset: 23,
  CloneLen: 24,
  FallocateMode: 25,
  Fileattr: 26,
  UnencodedFileLen: 27,
  UnencodedLen: 28,
  UnencodedOffset: 29,
  Compression: 30,
  Encryption: 31,
} as const;
/** The largest attribute type btrfs-progs parses (`BTRFS_SEND_A_MAX`: version 3 verity attributes end at 35). */
export const MAX_ATTRIBUTE = 35;

/**
 * The kernel sends file data in `write` commands of at most this many bytes
 * (`BTRFS_SEND_READ_SIZE`), each with its own command header and path/offset/data TLVs.
 */
export const SEND_READ_SIZE = 48 * 1024;
