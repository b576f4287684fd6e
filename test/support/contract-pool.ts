import { lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Snapshot } from '../../src/model/snapshot.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { MeasurementCache } from '../../src/stores/cache/measurement-cache.js';
import { createPool, sh, type BtrfsPool } from './btrfs-pool.js';
import type { BaseFiles } from './store-contract.js';

/** The inode number of every btrfs subvolume's root directory. */
const SUBVOLUME_ROOT_INODE = 256;

/**
 * A loop-device btrfs pool for the store contract suite: a source directory holding the
 * snapshots the suite sends (`base`, `next` after it, an unrelated `other`), and a new
 * directory per location on the same filesystem.
 */
export interface ContractPool {
  readonly pool: BtrfsPool;
  /** A BtrfsStore of the source directory. */
  readonly source: BtrfsStore;
  readonly snapshots: { readonly base: Snapshot; readonly next: Snapshot; readonly other: Snapshot };
  readonly baseFiles: BaseFiles;
  /**
   * A new, empty directory for a location, on a filesystem of its own: two copies of one
   * snapshot on one filesystem make an incremental receive ambiguous (btrfs receive could take
   * either as the parent), which BtrfsStore refuses. A pool costs ~50 ms; `dispose` removes it.
   */
  directory(): Promise<{ directory: string; dispose: () => void }>;
  /** Every entry below `directory` (not inside snapshots), buttersink's lock file aside. */
  contents(directory: string): Promise<string[]>;
  /** What a listing of `directory` must not show. */
  clutter(directory: string): void;
  /** What `btrfs receive` killed half way leaves: a read-write subvolume under our partial name. */
  crashReceive(directory: string): void;
  /** A measurement cache in a directory of its own. */
  cache(): MeasurementCache;
  destroy(): void;
}

export async function createContractPool(): Promise<ContractPool> {
  const pool = createPool(256);
  const mnt = pool.mountPoint;
  sh(
    `btrfs -q subvolume create data && head -c 1000000 /dev/urandom > data/a && mkdir data/sub && echo small > data/sub/small &&
     ln -s a data/link && mkdir source caches &&
     btrfs -q subvolume snapshot -r data source/base &&
     head -c 300000 /dev/urandom > data/b && btrfs -q subvolume snapshot -r data source/next &&
     btrfs -q subvolume create elsewhere && head -c 200000 /dev/urandom > elsewhere/c &&
     btrfs -q subvolume snapshot -r elsewhere source/other`,
    mnt,
  );
  let caches = 0;
  const cache = (): MeasurementCache => new MeasurementCache(path.join(mnt, 'caches', String(++caches)));
  const source = new BtrfsStore({ url: `${mnt}/source/`, directory: `${mnt}/source`, cache: cache() });
  const listed = await source.list();
  const named = (name: string): Snapshot => listed.find((s) => s.name === name)!;
  return {
    pool,
    source,
    snapshots: { base: named('base'), next: named('next'), other: named('other') },
    baseFiles: {
      root: ['a', 'link', 'sub'],
      file: 'a',
      content: await readFile(`${mnt}/source/base/a`),
      directory: 'sub',
      entries: ['small'],
      link: 'link',
      target: 'a',
    },
    async directory() {
      const location = createPool(128);
      const directory = path.join(location.mountPoint, 'snapshots');
      await mkdir(directory);
      return { directory, dispose: () => location.destroy() };
    },
    contents: (directory) => contents(directory),
    clutter(directory) {
      sh(
        `btrfs -q subvolume create read-write && touch plain-file && mkdir -p .buttersink &&
         btrfs -q subvolume snapshot -r read-write .buttersink/staged`,
        directory,
      );
    },
    crashReceive(directory) {
      sh(
        `btrfs -q subvolume create .buttersink-partial.0badc0de.crashed && head -c 1000 /dev/urandom > .buttersink-partial.0badc0de.crashed/half`,
        directory,
      );
    },
    cache,
    destroy: () => pool.destroy(),
  };
}

/** Entries below `directory` as `dir x/`, `file x`, `subvolume x` (not descending into subvolumes). */
async function contents(directory: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const name of await readdir(path.join(directory, relative))) {
      const entry = relative === '' ? name : `${relative}/${name}`;
      if (entry === '.buttersink/lock') continue;
      const info = await lstat(path.join(directory, entry));
      if (info.isDirectory() && info.ino === SUBVOLUME_ROOT_INODE) found.push(`subvolume ${entry}`);
      else if (info.isDirectory()) {
        if (entry !== '.buttersink') found.push(`dir ${entry}/`);
        await walk(entry);
      } else found.push(`file ${entry}`);
    }
  };
  await walk('');
  return found.sort();
}
