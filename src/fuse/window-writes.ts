import { formatBytes } from '../util/format-bytes.js';
import type { CopyWindow } from './copy-window.js';
import { FsError } from './fs-error.js';
import type { Handles } from './handles.js';
import { join, key, type MountView, type SnapshotNode } from './mount-view.js';
import type { PathNode, Resolution } from './path-tree.js';
import type { TransferStatus } from './transfer-status.js';

/**
 * What `cp -r`, `rsync` and `tar` write into a snapshot right after its mkdir: recorded in
 * its {@link CopyWindow} (and compared with the received files), EROFS anywhere else. The
 * window opens with the transfer and closes after `copyIdleMs` without an operation in it.
 */
export class WindowWrites {
  readonly #view: MountView;
  readonly #handles: Handles;
  readonly #status: TransferStatus;
  readonly #idleMs: number;

  constructor(view: MountView, handles: Handles, options: { status: TransferStatus; copyIdleMs: number }) {
    this.#view = view;
    this.#handles = handles;
    this.#status = options.status;
    this.#idleMs = options.copyIdleMs;
  }

  async create(mountPath: string, mode: number): Promise<number> {
    const { window, relative, node } = await this.#newInWindow(mountPath);
    window.create(relative, mode);
    return this.#handles.addWindow(window, relative, this.#view.received(node.store, node.snapshot));
  }

  async write(handle: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const h = this.#handles.get(handle);
    if (h.kind !== 'window') throw new FsError('EROFS');
    await h.window.write(h.relative, position, buffer.subarray(0, length));
    return length;
  }

  async symlink(target: string, mountPath: string): Promise<void> {
    const { window, relative } = await this.#newInWindow(mountPath);
    window.symlink(relative, target);
  }

  async mknod(mountPath: string, mode: number): Promise<void> {
    const { window, relative } = await this.#newInWindow(mountPath);
    window.mknod(relative, mode);
  }

  async link(toPath: string): Promise<void> {
    const { window, relative } = await this.#newInWindow(toPath);
    // A hard link in a copy is recorded as a file of its own (the data is checked where cp writes it).
    window.create(relative, 0o644);
  }

  /** chmod, chown, utimens, truncate, setxattr: recorded in a copy window, EROFS elsewhere. */
  async change(mountPath: string, apply: (window: CopyWindow, relative: string) => void): Promise<void> {
    await this.#view.arrived(mountPath, true);
    const node = await this.#view.node(mountPath);
    const open = this.#view.window(node);
    if (open === undefined)
      throw new FsError(
        node.kind === 'root' || node.kind === 'store' || node.kind === 'group' || node.kind === 'control' ? 'EPERM' : 'EROFS',
      );
    apply(open.window, open.relative);
  }

  async truncateHandle(handle: number, size: number): Promise<void> {
    const h = this.#handles.get(handle);
    if (h.kind !== 'window') throw new FsError('EROFS');
    h.window.truncate(h.relative, size);
  }

  /**
   * A rename inside one copy window (rsync writes `.NAME.XXXXXX`, then renames it into
   * place); undefined when `from` is not in a window, so that the caller decides.
   * @throws FsError EXDEV for a target outside the window.
   */
  renameWithin(from: PathNode, to: Resolution): true | undefined {
    const open = this.#view.window(from);
    if (open === undefined || open.relative === '') return undefined;
    const target = windowTarget(to, from as SnapshotNode);
    if (target === undefined) throw new FsError('EXDEV');
    open.window.rename(open.relative, target);
    return true;
  }

  /** Closes idle copy windows, and says in the log what each compared. */
  sweep(): void {
    for (const [id, window] of this.#view.windows) {
      if (!window.isIdle(this.#idleMs)) continue;
      this.#view.windows.delete(id);
      const [store, name] = id.split('\0') as [string, string];
      const compared = this.#view.stores.get(store)?.store.snapshotFiles !== undefined;
      this.#status.log(
        compared
          ? `copy into ${store}/${name} finished: ${formatBytes(window.verifiedBytes)} compared equal with the received snapshot` +
              (window.mismatch ? `; MISMATCH: ${window.mismatch}` : '')
          : `copy into ${store}/${name} finished: ${formatBytes(window.uncheckedBytes)} written, not compared (${store} cannot show a snapshot's files)`,
      );
    }
  }

  /** Resolves a path whose last name is new, inside a copy window; otherwise the right refusal. */
  async #newInWindow(mountPath: string): Promise<{ window: CopyWindow; relative: string; node: SnapshotNode }> {
    await this.#view.arrived(mountPath, false);
    const resolution = await this.#view.resolve(mountPath);
    if (resolution.kind === 'invalid') throw new FsError(resolution.reason);
    if (resolution.kind === 'found') throw new FsError(await this.#view.existsOrReadOnly(resolution.node));
    const open = this.#view.window(resolution.parent);
    if (open === undefined) {
      const p = resolution.parent;
      throw new FsError(p.kind === 'snapshot' || p.kind === 'inside' ? 'EROFS' : 'EPERM', `only snapshots can be made here (mkdir)`);
    }
    const relative = join(open.relative, resolution.name);
    const parent = resolution.parent as SnapshotNode;
    return { window: open.window, relative, node: { kind: 'inside', store: parent.store, snapshot: parent.snapshot, relative } };
  }
}

/** Where in `from`'s window a rename to `to` goes; undefined when `to` is outside that snapshot. */
function windowTarget(to: Resolution, from: SnapshotNode): string | undefined {
  const sameSnapshot = (node: PathNode): node is SnapshotNode =>
    (node.kind === 'snapshot' || node.kind === 'inside') && key(node.store, node.snapshot) === key(from.store, from.snapshot);
  if (to.kind === 'found') return to.node.kind === 'inside' && sameSnapshot(to.node) ? to.node.relative : undefined;
  if (to.kind === 'missing' && sameSnapshot(to.parent)) return join(to.parent.kind === 'inside' ? to.parent.relative : '', to.name);
  return undefined;
}
