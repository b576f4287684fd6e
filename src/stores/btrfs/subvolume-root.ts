import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { hasControlCharacter } from '../../model/printable-name.js';

/** A btrfs subvolume's root directory always has this inode number. */
export const SUBVOLUME_ROOT_INODE = 256;

/**
 * Whether `name` is a relative `/`-separated path of plain components: none empty, `.` or
 * `..`, and no control characters. Pure. Names from a listing that fail this are never used
 * as paths (they could be forged, or lead elsewhere once joined).
 */
export function isPlainRelativeName(name: string): boolean {
  if (name === '' || name.startsWith('/') || hasControlCharacter(name)) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * Whether `directory/name` is a subvolume's root directory reached through real directories
 * only: no component is a symbolic link (lstat each), and the last is a directory with the
 * subvolume root's inode number. `name` must be plain ({@link isPlainRelativeName}).
 */
export async function isSubvolumeRootWithin(directory: string, name: string): Promise<boolean> {
  if (!isPlainRelativeName(name)) return false;
  const parts = name.split('/');
  let current = directory;
  for (const [index, part] of parts.entries()) {
    current = path.join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) return false;
    if (index === parts.length - 1) return info.ino === SUBVOLUME_ROOT_INODE;
  }
  return false;
}
