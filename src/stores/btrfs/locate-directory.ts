import { stat, statfs } from 'node:fs/promises';
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
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new StoreError(`${dir} does not exist`);
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
