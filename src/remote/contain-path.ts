import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { PermissionError } from '../model/errors.js';
import { hasControlCharacter, quoteName } from '../model/printable-name.js';

/**
 * Checks a snapshot name a client sent, before the server touches the filesystem with it:
 * a relative `/`-separated path with no empty, `.` or `..` component, and no control
 * characters (a newline in a name forges entries in `btrfs subvolume list`, which prints
 * names raw, and lines in logs). Pure.
 * @throws PermissionError for anything that could name a place outside the directory, in one line.
 */
export function checkSnapshotName(name: string): void {
  const refuse = (why: string): never => {
    throw new PermissionError(`refused snapshot name ${quoteName(name)}: ${why}`, {
      hint: 'the server only touches snapshots inside its own directory',
    });
  };
  if (name.length === 0 || name.length > 4000) refuse('empty or too long');
  if (name.includes('\0')) refuse('contains a NUL byte');
  if (hasControlCharacter(name)) refuse('contains a control character');
  if (name.startsWith('/')) refuse('absolute paths are not allowed');
  for (const part of name.split('/')) {
    if (part === '' || part === '.') refuse('empty or "." path component');
    if (part === '..') refuse('".." is not allowed');
  }
}

/**
 * Checks that no existing component of `name` below `directory` is a symbolic link, so that
 * a link planted inside the directory cannot lead a receive, send or delete outside it.
 * Components that do not exist yet are fine (a receive creates them as directories).
 * @throws PermissionError when one is a link.
 */
export async function checkNoSymlinks(directory: string, name: string): Promise<void> {
  let current = directory;
  for (const part of name.split('/')) {
    current = path.join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (info === undefined) return;
    if (info.isSymbolicLink()) {
      throw new PermissionError(`refused snapshot name ${quoteName(name)}: ${path.relative(directory, current)} is a symbolic link`, {
        hint: 'the server does not follow links out of its directory',
      });
    }
  }
}
