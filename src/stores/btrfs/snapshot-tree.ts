import { lstatSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import type { EntryKind, SourceTree } from '../../sendstream/path-model.js';

/** A btrfs subvolume's root directory always has this inode number. */
const SUBVOLUME_ROOT_INODE = 256;

/**
 * A read-only snapshot on this machine as a {@link SourceTree} for the stream validator: what
 * the parent of an incremental stream, or a clone source, holds at a path.
 *
 * Answers are cached (the snapshot is read-only, so they stay true), which makes the many
 * `write` commands of one file cost one `lstat`. An answer "missing" holds only while the
 * snapshot's root is still the same subvolume: were the snapshot deleted (or swapped) during
 * the receive, every lookup would say "missing" and hide its links. {@link SnapshotTree.confirm}
 * checks that once for all answers given since its last call (the validator calls it before
 * passing on the commands they let through), instead of once per answer.
 */
export class SnapshotTree implements SourceTree {
  readonly #root: string;
  /** The root's device number (each subvolume has its own), taken at the first lookup. */
  #device: number | undefined;
  /** A "missing" was answered since the last {@link SnapshotTree.confirm}. */
  #unconfirmed = false;
  /**
   * Made on the first lookup: an LRUCache allocates arrays for all `max` entries up front
   * (~7 ms for 50,000), and a receive makes a tree for every snapshot of the directory that
   * could be a parent or clone source, of which a stream usually asks about one or two.
   */
  #cache: LRUCache<string, EntryKind> | undefined;

  /** @param root the snapshot's directory; it is looked at only when asked something. */
  constructor(root: string) {
    this.#root = root;
  }

  async kindOf(relative: string): Promise<EntryKind> {
    this.#device ??= this.#rootDevice();
    this.#cache ??= new LRUCache<string, EntryKind>({ max: 50_000 });
    const cached = this.#cache.get(relative);
    if (cached !== undefined) {
      if (cached === 'missing') this.#unconfirmed = true;
      return cached;
    }
    const kind = this.#lookUp(relative);
    if (kind === 'missing') this.#unconfirmed = true;
    this.#cache.set(relative, kind);
    return kind;
  }

  #lookUp(relative: string): EntryKind {
    // Paths are raw bytes carried as latin1: back to bytes for the syscall.
    const target = relative === '' ? this.#root : Buffer.concat([Buffer.from(`${this.#root}/`), Buffer.from(relative, 'latin1')]);
    try {
      // Synchronous on purpose (here and for the root): a metadata-heavy incremental asks
      // thousands of these, and a thread-pool round trip cost ~10x the lstat itself (an
      // incremental of 16,000 commands: 0.5 s -> 0.1 s). The tree is a local snapshot, never
      // inside a FUSE mount, so this cannot block on anything but the disk.
      const info = lstatSync(target);
      return info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'directory' : 'file';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
      throw error;
    }
  }

  async confirm(): Promise<void> {
    if (!this.#unconfirmed) return;
    if (this.#rootDeviceOrUndefined() !== this.#device) {
      throw new Error(`the snapshot ${this.#root} went away while the stream was being checked`);
    }
    this.#unconfirmed = false;
  }

  /** @throws Error when the root is not a subvolume's root directory (any more). */
  #rootDevice(): number {
    const info = lstatSync(this.#root);
    if (!info.isDirectory() || info.ino !== SUBVOLUME_ROOT_INODE) throw new Error(`${this.#root} is not a snapshot`);
    return info.dev;
  }

  #rootDeviceOrUndefined(): number | undefined {
    try {
      return this.#rootDevice();
    } catch {
      return undefined;
    }
  }
}
