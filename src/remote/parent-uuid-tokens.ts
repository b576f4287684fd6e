import { createHash, createHmac, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Snapshot } from '../model/snapshot.js';

/** Bytes of the key kept in the key file. */
const KEY_BYTES = 32;

/**
 * A snapshot's `parentUuid` names the subvolume it was taken from, usually outside the served
 * directory (the live /home). A client that knows that UUID can name it as the parent of a
 * crafted stream, and `btrfs receive` looks parents up across the whole filesystem: the data
 * of the live subvolume would be copied into a snapshot the client can read. So the server
 * shows such parents as tokens: UUID-shaped, the same for every snapshot of one source (the
 * client groups siblings into lineages by them), HMAC-SHA256 of the UUID under a key only
 * root reads, so a token names no subvolume and confirms no guess.
 *
 * Returns the snapshots with every `parentUuid` that is not the UUID of one of them replaced.
 */
export function withParentTokens(snapshots: readonly Snapshot[], key: Buffer, directory: string): Snapshot[] {
  const listed = new Set(snapshots.map((s) => s.uuid));
  return snapshots.map((s) =>
    s.parentUuid === null || listed.has(s.parentUuid) ? s : { ...s, parentUuid: parentToken(s.parentUuid, key, directory) },
  );
}

/** The token for `uuid`: 16 bytes of HMAC-SHA256, formatted as an RFC 9562 version-8 UUID. */
export function parentToken(uuid: string, key: Buffer, directory: string): string {
  const bytes = createHmac('sha256', key).update(`${directory}\0${uuid}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80; // version 8: custom
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The tokens' key: read from `file` (root-only, 0600), made there on first use. Stable across
 * sessions, so a client sees the same tokens each time. When the file cannot be read or made
 * (a read-only home), a key derived from /etc/machine-id: readable by local users, but still
 * one-way (a subvolume UUID is 122 random bits, too many to guess).
 */
export async function loadTokenKey(file: string): Promise<Buffer> {
  const existing = await readKey(file);
  if (existing !== undefined) return existing;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // Written whole under a temporary name, then linked into place: link() fails if another
    // server got there first, and nobody ever reads a half-written key.
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.writeFile(randomBytes(KEY_BYTES));
    } finally {
      await handle.close();
    }
    await link(temporary, file).catch(() => {}); // EEXIST: another server's key wins
    await unlink(temporary).catch(() => {});
    const key = await readKey(file);
    if (key !== undefined) return key;
  } catch {
    // fall back below
  }
  const machine = await readFile('/etc/machine-id', 'utf8').catch(() => '');
  return createHash('sha256').update(`buttersink parent tokens\0${machine.trim()}`).digest();
}

/** The key in `file` when it is ours alone: a regular file of this user, mode 0600 or less. */
async function readKey(file: string): Promise<Buffer | undefined> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (handle === undefined) return undefined;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.uid !== process.getuid?.() || (info.mode & 0o077) !== 0) return undefined;
    const key = await handle.readFile();
    return key.length >= KEY_BYTES ? key : undefined;
  } finally {
    await handle.close();
  }
}
