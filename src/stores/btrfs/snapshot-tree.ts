import { lstat } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import type { EntryKind, SourceTree } from '../../sendstream/path-model.js';

/** A btrfs subvolume's root directory always has this inode number. */
const SUBVOLUME_ROOT_INODE = 256;

/**
 * A read-only snapshot on this machine as a {@link SourceTree} for the stream validator: what
 * the parent of an incremental stream, or a clone source, holds at a path.
 *
 * Answers are cached (the snapshot is read-only, so they stay true), which makes the many
 * `write` commands of one file cost one `lstat`. An answer "missing" is trusted only after the
 * snapshot's root is checked to be still the same subvolume: were the snapshot deleted (or
 * swapped) during the receive, every lookup would say "missing" and hide its links.
 */
export class SnapshotTree implements SourceTree {
  readonly #root: string;
  /** The root's device number (each subvolume has its own), taken at the first lookup. */
  #device: Promise<number> | undefined;
  readonly #cache = new LRUCache<string, EntryKind>({ max: 50_000 });

  /** @param root the snapshot's directory; it is looked at only when asked something. */
  constructor(root: string) {
    this.#root = root;
  }

  async kindOf(relative: string): Promise<EntryKind> {
    this.#device ??= this.#rootDevice();
    const device = await this.#device;
    const cached = this.#cache.get(relative);
    if (cached !== undefined) return cached;
    const kind = await this.#lookUp(relative);
    if (kind === 'missing' && (await this.#rootDevice().catch(() => undefined)) !== device) {
      throw new Error(`the snapshot ${this.#root} went away while the stream was being checked`);
    }
    this.#cache.set(relative, kind);
    return kind;
  }

  async #lookUp(relative: string): Promise<EntryKind> {
    // Paths are raw bytes carried as latin1: back to bytes for the syscall.
    const target = relative === '' ? this.#root : Buffer.concat([Buffer.from(`${this.#root}/`), Buffer.from(relative, 'latin1')]);
    try {
      const info = await lstat(target);
      return info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'directory' : 'file';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
      throw error;
    }
  }

  /** @throws Error when the root is not a subvolume's root directory (any more). */
  async #rootDevice(): Promise<number> {
    const info = await lstat(this.#root);
    if (!info.isDirectory() || info.ino !== SUBVOLUME_ROOT_INODE) throw new Error(`${this.#root} is not a snapshot`);
    return info.dev;
  }
}
