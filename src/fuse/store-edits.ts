import path from 'node:path';
import { FsError } from './fs-error.js';
import { key, type MountView } from './mount-view.js';
import { nameInStore, type PathNode } from './path-tree.js';
import type { StoreChanges } from './store-changes.js';
import type { TransferStatus } from './transfer-status.js';
import type { WindowWrites } from './window-writes.js';

/**
 * Deleting and renaming snapshots: `rm -r` and `rmdir` (a walk's removals are hidden until
 * its final rmdir deletes the snapshot, see {@link PendingRemovals}), `mv` within a store (a
 * rename), and `mv` between stores (EXDEV: mv then copies, which is a transfer, and removes
 * the source, which is a delete).
 */
export class StoreEdits {
  readonly #view: MountView;
  readonly #changes: StoreChanges;
  readonly #writes: WindowWrites;
  readonly #status: TransferStatus;
  readonly #readOnly: boolean;
  /** Directory handles (opendir) and the mount path each was opened at. */
  readonly #directories = new Map<number, string>();
  #nextDirectory = 1;

  constructor(view: MountView, changes: StoreChanges, writes: WindowWrites, options: { status: TransferStatus; readOnly: boolean }) {
    this.#view = view;
    this.#changes = changes;
    this.#writes = writes;
    this.#status = options.status;
    this.#readOnly = options.readOnly;
  }

  #refuseIfReadOnly(): void {
    if (this.#readOnly) throw new FsError('EROFS', 'the mount is read-only (--read-only)');
  }

  /** `opendir`: noted, so that removals by a walk holding its directory open can be told apart. */
  async opendir(mountPath: string): Promise<number> {
    const view = this.#view;
    await view.arrived(mountPath, true);
    const node = await view.node(mountPath);
    // cp and mv open the source right after their mkdir: they end once the copy is complete.
    if (node.kind === 'snapshot' && view.window(node) === undefined) await view.sentElsewhere(node.store, node.snapshot, mountPath);
    const handle = this.#nextDirectory++;
    this.#directories.set(handle, mountPath);
    view.removals.opened(mountPath);
    return handle;
  }

  async releasedir(handle: number): Promise<void> {
    const mountPath = this.#directories.get(handle);
    if (mountPath === undefined) return;
    this.#directories.delete(handle);
    this.#view.removals.closed(mountPath);
  }

  async rmdir(mountPath: string, readdir: (mountPath: string) => Promise<string[]>): Promise<void> {
    const view = this.#view;
    await view.arrived(mountPath, true);
    const node = await view.node(mountPath);
    const open = view.window(node);
    if (open && open.relative !== '') return open.window.remove(open.relative, true);
    switch (node.kind) {
      case 'root':
      case 'control':
      case 'control-file':
      case 'store':
        throw new FsError('EPERM', `only snapshots can be removed`);
      case 'group': {
        const tree = await view.tree(node.store);
        if ((tree.childrenOf(node.prefix) ?? []).length > 0) throw new FsError('ENOTEMPTY');
        view.listings.removeGroup(node.store, node.prefix);
        return;
      }
      case 'inside':
        this.#refuseIfReadOnly();
        if ((await readdir(mountPath)).length > 0) throw new FsError('ENOTEMPTY');
        return this.#hide(node, mountPath);
      case 'snapshot':
        this.#refuseIfReadOnly();
        // rmdir removes empty directories: a snapshot is deleted once `rm -r` (or mv's
        // removal of its source) emptied it, or when it shows no files. A bare rmdir of
        // one that still shows files is refused, like any non-empty directory's.
        if ((await readdir(mountPath)).length > 0) {
          throw new FsError(
            'ENOTEMPTY',
            `${node.store}/${node.snapshot} is not empty: rm -r deletes a snapshot, rmdir only an emptied one`,
          );
        }
        return this.#delete(node.store, node.snapshot);
    }
  }

  async unlink(mountPath: string): Promise<void> {
    await this.#view.arrived(mountPath, false);
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open && open.relative !== '') return open.window.remove(open.relative, false);
    if (node.kind !== 'inside') throw new FsError(node.kind === 'control-file' ? 'EPERM' : 'EISDIR');
    this.#refuseIfReadOnly();
    this.#hide(node, mountPath);
  }

  /**
   * `rm -r` removes entries one by one: hide them (the final `rmdir` deletes the snapshot),
   * when a walk removes them; a lone `rm FILE` is refused (see {@link PendingRemovals}).
   */
  #hide(node: Extract<PathNode, { kind: 'inside' }>, mountPath: string): void {
    if (!this.#view.removals.remove(key(node.store, node.snapshot), node.relative, mountPath)) {
      throw new FsError('EROFS', `${mountPath}: a snapshot's files cannot be removed one by one (rm -r the snapshot to delete it)`);
    }
  }

  async #delete(store: string, name: string): Promise<void> {
    const view = this.#view;
    const { store: target } = view.stores.get(store)!;
    if (!target.capabilities.canDelete) throw new FsError('EROFS', `${target.url} does not allow deleting`);
    // A diff store refuses (StillNeededError: EBUSY) what others are stored as diffs from.
    await this.#changes.onSnapshot(store, name, (s, snapshot, signal) => s.delete(snapshot, signal));
    const id = key(store, name);
    view.windows.delete(id);
    view.removals.forget(id);
    // Keep the groups it was in until rm -r removes them too.
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) view.listings.addGroup(store, parts.slice(0, i).join('/'));
    this.#status.log(`deleted ${name} from ${store}`);
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    const view = this.#view;
    await view.arrived(fromPath, true);
    await view.arrived(toPath, false);
    const from = await view.node(fromPath);
    const to = await view.resolve(toPath);
    if (this.#writes.renameWithin(from, to)) return;
    if (from.kind !== 'snapshot') {
      // mv between stores renames each child into the copy window first and copies only on
      // EXDEV (coreutils' move mode): EXDEV makes it copy (compared) and remove the source.
      if (from.kind === 'inside' && to.kind === 'missing' && view.window(to.parent)) throw new FsError('EXDEV');
      throw new FsError(view.window(from) || from.kind === 'inside' ? 'EROFS' : 'EPERM', `only snapshots can be renamed`);
    }
    if (to.kind === 'invalid') throw new FsError(to.reason);
    if (to.kind === 'found') throw new FsError('EEXIST', `the target exists`);
    const parent = to.parent;
    if (parent.kind !== 'store' && parent.kind !== 'group') throw new FsError('EPERM', `a snapshot goes into a store's directory`);
    // Another store: EXDEV makes mv copy (a transfer) and then remove (a delete), as it should.
    if (parent.store !== from.store) throw new FsError('EXDEV');
    this.#refuseIfReadOnly();
    const newName = nameInStore(to)!;
    const { store: target } = view.stores.get(from.store)!;
    if (target.rename === undefined) throw new FsError('EPERM', `${target.url} cannot rename snapshots`);
    // btrfs cannot move a read-only subvolume to another directory (its `..` would change):
    // a refusal by rule, not a failure, so EPERM with the reason rather than the store's EIO.
    if (path.posix.dirname(from.snapshot) !== path.posix.dirname(newName)) {
      throw new FsError('EPERM', `${from.snapshot} can only be renamed within its directory, not to ${newName}`);
    }
    await this.#changes.onSnapshot(from.store, from.snapshot, (s, snapshot, signal) => s.rename!(snapshot, newName, signal));
    const id = key(from.store, from.snapshot);
    const window = view.windows.get(id);
    view.windows.delete(id);
    if (window) view.windows.set(key(from.store, newName), window);
    this.#status.log(`renamed ${from.snapshot} to ${newName} in ${from.store}`);
  }

  /** Forgets stalled removals (their entries show again). */
  sweep(): void {
    for (const id of this.#view.removals.sweep()) {
      this.#status.log(`rm of ${id.replace('\0', '/')} stopped before its final rmdir: nothing was deleted`);
    }
  }
}
