import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { hasControlCharacter } from '../../model/printable-name.js';

/** A btrfs subvolume's root directory always has this inode number. */
export const SUBVOLUME_ROOT_INODE = 256;

/**
 * Whether `name` is a relative `/`-separated path that stays below where it is joined: no
 * component empty, `.` or `..`, no NUL. Pure. Names from a listing that fail this are never
 * used as paths (they could be forged, or lead elsewhere once joined).
 */
export function isContainedName(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.includes('\0')) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** A {@link isContainedName contained} name without control characters: one a client may use. Pure. */
export function isPlainRelativeName(name: string): boolean {
  return isContainedName(name) && !hasControlCharacter(name);
}

/**
 * Whether `directory/name` is a subvolume's root directory reached through real directories
 * only: no component is a symbolic link (lstat each), and the last is a directory with the
 * subvolume root's inode number. False for a name that is not {@link isContainedName contained}.
 */
export async function isSubvolumeRootWithin(directory: string, name: string): Promise<boolean> {
  if (!isContainedName(name)) return false;
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
