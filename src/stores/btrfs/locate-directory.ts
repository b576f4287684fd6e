import { readdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../../model/errors.js';
import { runBtrfs } from './run-btrfs.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;

/** Where a directory sits inside its btrfs filesystem. */
export interface DirectoryLocation {
  /** Absolute path as given (normalized, no trailing slash except `/`). */
  readonly directory: string;
  /** Path of the directory relative to the filesystem's top level (`''` for the top level itself). */
  readonly topLevelPath: string;
}

/**
 * Checks that `directory` exists on btrfs and finds its path relative to the filesystem's
 * top level, which is how `btrfs subvolume list` names subvolumes. The subvolume containing
 * it is found by walking up while the device number stays the same (each subvolume has its
 * own), so mounts with `subvol=` work too.
 * @throws StoreError when the directory is missing, not a directory, or not on btrfs.
 */
export async function locateDirectory(directory: string, signal?: AbortSignal): Promise<DirectoryLocation> {
  const dir = path.resolve(directory);
  const info = await stat(dir).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new StoreError(`${dir} does not exist`, { hint: await missingHint(dir) });
    if (error.code === 'EACCES') throw new StoreError(`${dir} is not accessible (permission denied)`);
    throw error;
  });
  if (!info.isDirectory()) throw new StoreError(`${dir} is not a directory`);
  const fs = await statfs(dir);
  if (fs.type !== BTRFS_SUPER_MAGIC) {
    throw new StoreError(`${dir} is not on a btrfs filesystem`, {
      hint: 'buttersink stores snapshots on btrfs; point it at a directory on a btrfs mount',
    });
  }

  let subvolumeRoot = dir;
  while (subvolumeRoot !== '/') {
    const parent = path.dirname(subvolumeRoot);
    if ((await stat(parent)).dev !== info.dev) break;
    subvolumeRoot = parent;
  }
  const rootId = Number((await runBtrfs(['inspect-internal', 'rootid', dir], { signal })).trim());
  const inSubvolume = path.relative(subvolumeRoot, dir);
  const subvolumePath = rootId === 5 ? '' : await subvolumePathById(dir, rootId, signal);
  return { directory: dir, topLevelPath: joinRelative(subvolumePath, inSubvolume) };
}

async function subvolumePathById(dir: string, id: number, signal?: AbortSignal): Promise<string> {
  const out = await runBtrfs(['subvolume', 'show', '-r', String(id), dir], { signal });
  // The first line of `subvolume show` is the path relative to the top level.
  const first = out.split('\n', 1)[0]!.trim();
  return first === '/' ? '' : first.replace(/^<FS_TREE>\//, '');
}

export function joinRelative(a: string, b: string): string {
  if (a === '') return b;
  if (b === '') return a;
  return `${a}/${b}`;
}

/**
 * What to do about a directory that does not exist: where its first missing part has a
 * sibling one or two edits away (a typo: `snpas` for `snaps`), that path; else where the
 * path stops existing and how to make a new directory.
 */
async function missingHint(dir: string): Promise<string> {
  let existing = path.dirname(dir);
  while (
    existing !== '/' &&
    !(await stat(existing).then(
      (i) => i.isDirectory(),
      () => false,
    ))
  )
    existing = path.dirname(existing);
  // The first missing part, against what its parent holds: /mnt/bakup/snaps -> /mnt/backup/snaps.
  const [missing, ...rest] = path.relative(existing, dir).split(path.sep);
  const siblings = await readdir(existing, { withFileTypes: true }).catch(() => []);
  // Short names are too close to too many others to guess from.
  const limit = missing!.length >= 5 ? 2 : missing!.length >= 3 ? 1 : 0;
  const close = siblings.filter((e) => e.isDirectory() && e.name !== missing && editDistance(e.name, missing!) <= limit).map((e) => e.name);
  if (close.length > 0) return `did you mean ${close.map((n) => path.join(existing, n, ...rest)).join(' or ')}?`;
  return `${existing} is the deepest part of it that exists; for a new directory: mkdir -p ${dir}`;
}

/** Levenshtein distance, exact up to 2; beyond that only some number above 2 (all a typo check needs). */
export function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return Math.abs(a.length - b.length);
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}
