import type { LimitFunction } from 'p-limit';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { PermissionError } from '../model/errors.js';
import { quoteName } from '../model/printable-name.js';
import { localSnapshotFiles } from '../stores/btrfs/local-snapshot-files.js';
import { xattrsOfFile } from '../stores/btrfs/local-xattrs.js';
import { checkNoSymlinks, checkSnapshotName } from './contain-path.js';

/** The most bytes one `read` answers with (in a data frame, far below MAX_MESSAGE_BYTES). */
export const MAX_BROWSE_READ_BYTES = 1 << 20;

/** What a client may ask about a snapshot's files. */
export type BrowseAction = 'lstat' | 'readdir' | 'readlink' | 'read' | 'xattrs';
const ACTIONS = new Set<string>(['lstat', 'readdir', 'readlink', 'read', 'xattrs']);

/** Filesystem errors that are answers (they go back as `{errno}`), not failures of the server. */
const ANSWER_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EINVAL', 'ELOOP', 'EACCES']);

/** A btrfs subvolume's root directory always has this inode number. */
const SUBVOLUME_ROOT_INODE = 256;

/**
 * Checks a path inside a snapshot as a client sent it: `''` (the snapshot's root) or a
 * relative `/`-separated path with no empty, `.` or `..` component. Pure.
 * Unlike snapshot names, control characters are fine here: files with a newline in their
 * name are user data the mount must show, and the path reaches only system calls and
 * getfattr, which prints names escaped (`\012`); messages quote it on one line.
 * @throws PermissionError for anything that could name a place outside the snapshot.
 */
export function checkRelativePath(relative: string): void {
  if (relative === '') return;
  const refuse = (why: string): never => {
    throw new PermissionError(`refused path ${quoteName(relative)} inside a snapshot: ${why}`, {
      hint: 'browsing stays inside the snapshot',
    });
  };
  if (relative.length > 16384) refuse('too long');
  if (relative.includes('\0')) refuse('contains a NUL byte');
  if (relative.startsWith('/')) refuse('absolute paths are not allowed');
  for (const part of relative.split('/')) {
    if (part === '' || part === '.') refuse('empty or "." path component');
    if (part === '..') refuse('".." is not allowed');
  }
}

/**
 * The byte range of a `read` request: non-negative safe integers, at most
 * {@link MAX_BROWSE_READ_BYTES} long. Anything else is refused rather than clamped: an offset
 * past 2^53 is not exact as a double, and was once read as 0. Pure.
 * @throws PermissionError for anything else.
 */
export function checkReadRange(offset: unknown, length: unknown): { offset: number; length: number } {
  // (offset + length must stay exact too: every position read is offset + bytes so far.)
  const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!isCount(offset) || !isCount(length) || length > MAX_BROWSE_READ_BYTES || !Number.isSafeInteger(offset + length)) {
    throw new PermissionError(
      `refused read range (offset ${quoteName(String(offset))}, length ${quoteName(String(length))}): offset and length must be whole numbers >= 0, length at most ${MAX_BROWSE_READ_BYTES}`,
    );
  }
  return { offset, length };
}

/**
 * One browse request on the server, for `buttersink mount` of an SSH store: read-only, and
 * contained in the snapshot. The snapshot name and the path are checked (no `..`, nothing
 * absolute), no component on the way may be a symbolic link, the snapshot must be one of the
 * directory's read-only snapshots (`isSnapshot`) and a subvolume's root, and the entry itself
 * is never followed (`lstat`, `readlink`, files are opened with O_NOFOLLOW). Snapshots are
 * read-only, so what was checked stays so (a writable subvolume could swap a checked
 * directory for a link between the check and the read).
 * A child process (getfattr) runs within `childLimit`.
 * Resolves with the result, or `{errno}` when the filesystem says no (ENOENT, ...).
 * @throws PermissionError when the request would leave the snapshot.
 */
export async function browse(
  directory: string,
  request: Record<string, unknown>,
  isSnapshot: (name: string) => Promise<boolean>,
  childLimit: LimitFunction,
): Promise<unknown> {
  const snapshot = typeof request.snapshot === 'string' ? request.snapshot : '';
  const relative = typeof request.path === 'string' ? request.path : '';
  const action = typeof request.action === 'string' ? request.action : '';
  if (!ACTIONS.has(action)) throw new PermissionError(`unknown browse action ${quoteName(action)}`);
  checkSnapshotName(snapshot);
  checkRelativePath(relative);
  const range = action === 'read' ? checkReadRange(request.offset, request.length) : undefined;
  if (!(await isSnapshot(snapshot))) {
    throw new PermissionError(`refused browsing ${quoteName(snapshot)}: not a read-only snapshot of this directory`);
  }
  try {
    await checkNoSymlinks(directory, snapshot);
    const root = path.join(directory, snapshot);
    const rootInfo = await lstat(root);
    if (!rootInfo.isDirectory() || rootInfo.ino !== SUBVOLUME_ROOT_INODE) {
      throw new PermissionError(`refused browsing ${quoteName(snapshot)}: not a snapshot`);
    }
    if (relative !== '') {
      // Every directory on the way must be a real directory (the last entry is not followed).
      const cut = relative.lastIndexOf('/');
      if (cut > 0) await checkNoSymlinks(root, relative.slice(0, cut));
    }
    // Checked: from here on, the snapshot's files are read as the mount reads a local store's.
    const files = localSnapshotFiles(root, (file) => childLimit(() => xattrsOfFile(file)));
    switch (action as BrowseAction) {
      case 'lstat':
        return await files.lstat(relative);
      case 'readdir': {
        const names = await files.readdir(relative);
        // The attributes come along: `ls -l` asks for every entry's right after.
        const entries = await Promise.all(
          names.map(async (name) => ({
            name,
            attributes: await files.lstat(relative === '' ? name : `${relative}/${name}`).catch(() => null),
          })),
        );
        return { entries };
      }
      case 'readlink':
        return { target: await files.readlink(relative) };
      case 'xattrs': {
        const found = await files.xattrs!(relative);
        return { xattrs: Object.fromEntries([...found].map(([name, value]) => [name, value.toString('base64')])) };
      }
      case 'read': {
        const { offset, length } = range!;
        return { data: await files.read(relative, offset, length) }; // raw bytes: a data frame
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code !== undefined && ANSWER_CODES.has(code)) return { errno: code };
    throw error;
  }
}
