import type { NamedStore } from '../model/store.js';
import { transferSnapshot } from '../sync/transfer-snapshot.js';
import { CopyWindow } from './copy-window.js';
import { FsError, toFsError } from './fs-error.js';
import type { ReceivedFiles } from './handles.js';
import { join, key, REFRESH_MIN_AGE_MS, type MountView } from './mount-view.js';
import { nameInStore } from './path-tree.js';
import type { StoreChanges } from './store-changes.js';
import type { TransferRecord, TransferStatus } from './transfer-status.js';

export interface TransfersOptions {
  readonly readOnly: boolean;
  readonly status: TransferStatus;
  readonly now: () => number;
  /** Stops every transfer: the unmount. */
  readonly signal: AbortSignal;
  /**
   * Is a caller of an operation on `mountPath` (or below it) interrupted (Ctrl-C)? Asked
   * every {@link INTERRUPT_POLL_MS} while an operation waits for a transfer; a yes cancels
   * the transfer. Default: never (FUSE tells the filesystem neither the caller nor its
   * interrupts; the mount learns it from /proc, see `interrupted-callers.ts`).
   */
  readonly isInterrupted?: (mountPath: string) => Promise<boolean>;
}

const INTERRUPT_POLL_MS = 250;

/**
 * `mkdir` of a snapshot's name in a store: the transfer, started and run in the background.
 *
 * mkdir only starts it (the kernel holds the store's directory locked for as long as a mkdir
 * in it runs, see {@link Arrivals}); its copy window opens at once, and what goes into the
 * snapshot waits for the transfer there. A waiting operation whose caller is interrupted
 * cancels the transfer: Ctrl-C of `cp -r` leaves nothing behind.
 */
export class Transfers {
  readonly #view: MountView;
  readonly #changes: StoreChanges;
  readonly #options: TransfersOptions;
  /** Each running transfer's own stop (besides the unmount's). */
  readonly #cancels = new Map<string, AbortController>();

  constructor(view: MountView, changes: StoreChanges, options: TransfersOptions) {
    this.#view = view;
    this.#changes = changes;
    this.#options = options;
    view.waitFor = (transfer, target, mountPath) => this.#waitFor(transfer, target, mountPath);
  }

  async mkdir(mountPath: string, mode: number): Promise<void> {
    const view = this.#view;
    await view.arrived(mountPath, false);
    let resolution = await view.resolve(mountPath);
    // The cached listing may be stale (a snapshot deleted, or received, outside the mount):
    // ask again, since mkdir answers before the transfer could find out. A name not listed
    // is listed again only when the lookup just before this mkdir did not list it already.
    let relist = false;
    if (resolution.kind === 'found' && resolution.node.kind === 'snapshot' && !view.window(resolution.node)) {
      view.listings.invalidate(resolution.node.store);
      relist = true;
    } else if (resolution.kind === 'missing' && (resolution.parent.kind === 'store' || resolution.parent.kind === 'group')) {
      relist = view.listings.refreshIfOlder(resolution.parent.store, REFRESH_MIN_AGE_MS);
    }
    if (relist) resolution = await view.resolve(mountPath);
    if (resolution.kind === 'invalid') throw new FsError(resolution.reason);
    if (resolution.kind === 'found') throw new FsError(await view.existsOrReadOnly(resolution.node));
    const parentWindow = view.window(resolution.parent);
    if (parentWindow) {
      parentWindow.window.mkdir(join(parentWindow.relative, resolution.name), mode);
      return;
    }
    const parent = resolution.parent;
    if (parent.kind === 'snapshot' || parent.kind === 'inside') throw new FsError('EROFS');
    const name = nameInStore(resolution);
    if (name === undefined || (parent.kind !== 'store' && parent.kind !== 'group')) {
      throw new FsError('EPERM', `only snapshots can be made, inside a store's directory`);
    }
    if (this.#options.readOnly) throw new FsError('EROFS', 'the mount is read-only (--read-only)');
    await this.#transferOrGroup(parent.store, name, mode);
  }

  /** `mkdir /<store>/<name>`: transfers the snapshot of that name, or makes a group directory on the way to one. */
  async #transferOrGroup(store: string, name: string, mode: number): Promise<void> {
    const view = this.#view;
    const others = [...view.stores.values()].filter((s) => s.name !== store);
    const failures: FsError[] = [];
    const trees = await Promise.all(
      others.map((s) =>
        view.tree(s.name).catch((error: unknown) => {
          failures.push(toFsError(error));
          return undefined;
        }),
      ),
    );
    if (!trees.some((t) => t?.hasSnapshot(name))) {
      if (trees.some((t) => t?.hasGroup(name))) {
        view.listings.addGroup(store, name);
        return;
      }
      // A store that could not be listed may well hold it: that is no EPERM (no such snapshot).
      if (failures.length > 0) {
        throw new FsError('EIO', `no store that answered has a snapshot named ${name}; ${failures.map((f) => f.message).join('; ')}`);
      }
      throw new FsError('EPERM', `no mounted store has a snapshot named ${name}`);
    }
    const id = key(store, name);
    view.arrivals.refuseSecond(store, name);
    const sources = others.filter((_, i) => trees[i]?.hasSnapshot(name));
    let received: ReceivedFiles | undefined;
    const window = new CopyWindow({
      now: this.#options.now,
      root: { mode, uid: 0, gid: 0 },
      readReceived: async (relative, offset, length) => {
        received ??= view.received(store, name);
        return received === undefined ? null : received.read(relative, offset, length);
      },
    });
    window.hold(); // not idle while the transfer runs
    view.windows.set(id, window);
    const cancel = new AbortController();
    this.#cancels.set(id, cancel);
    const done = this.#transfer(store, name, sources, cancel.signal).then(
      async () => {
        received ??= view.received(store, name);
        const root = await received?.lstat('').catch(() => undefined);
        if (root !== undefined) {
          window.chmod('', root.mode);
          window.chown('', root.uid, root.gid);
        }
      },
      (error: unknown) => {
        if (view.windows.get(id) === window) view.windows.delete(id);
        throw toFsError(error);
      },
    );
    // Its failure is answered to the ops that wait, and logged.
    view.arrivals.add(
      store,
      name,
      done.finally(() => {
        window.letGo();
        this.#cancels.delete(id);
      }),
    );
  }

  /** Runs one transfer (serialized per store) and records it in the status file. */
  async #transfer(store: string, name: string, sources: readonly NamedStore[], cancelled: AbortSignal): Promise<void> {
    const { status, signal: unmount } = this.#options;
    const { signal, dispose } = eitherSignal(unmount, cancelled);
    let record: TransferRecord | undefined;
    try {
      await this.#changes.serially(store, () =>
        transferSnapshot({
          name,
          destination: this.#view.stores.get(store)!,
          sources,
          now: new Date(this.#options.now()),
          signal,
          onSkippedSource: (source, error) => status.log(`not sending from ${source.name}: ${toFsError(error).message}`),
          onPlan: (source, step, plan) => {
            record = status.start(name, source.name, store, plan.totalBytes, step.parent?.name ?? null);
            return { stepStarted: () => {}, bytesMoved: (n) => (record!.bytes += n), stepFinished: () => {} };
          },
        }),
      );
      if (record) status.finish(record, { ok: true });
    } catch (error) {
      // Stopped by the unmount or by an interrupted caller: whatever the store made of the
      // abort (an S3 upload's own error, a killed receive), the caller was interrupted
      // (EINTR, as documented), and the reason is the stop's.
      const stop = unmount.aborted ? unmount.reason : cancelled.aborted ? cancelled.reason : undefined;
      const reason = toFsError(stop ?? error).message;
      if (record) status.finish(record, { ok: false, reason });
      else status.error(`transfer of ${name} to ${store} failed: ${reason}`);
      if (stop !== undefined) throw new FsError('EINTR', `transfer of ${name} to ${store} interrupted: ${reason}`);
      throw error;
    } finally {
      dispose();
    }
  }

  /**
   * Waits for the transfer into `store`/`name` on behalf of an operation. While it waits,
   * asks whether the operation's caller was interrupted: the kernel makes an interrupted
   * caller wait until the mount answers, so the answer is to cancel the transfer (its partial
   * receive is removed) and let every waiter fail with EINTR.
   */
  async #waitFor(transfer: Promise<void>, { store, name }: { store: string; name: string }, mountPath: string): Promise<void> {
    const isInterrupted = this.#options.isInterrupted;
    if (isInterrupted === undefined) return transfer;
    let settled = false;
    const watch = (async () => {
      while (!settled) {
        await new Promise((resolve) => setTimeout(resolve, INTERRUPT_POLL_MS));
        if (settled) return;
        if (await isInterrupted(mountPath).catch(() => false)) {
          this.cancel(store, name, `a process waiting for it at ${mountPath} was interrupted (Ctrl-C)`);
          return;
        }
      }
    })();
    try {
      await transfer;
    } finally {
      settled = true;
      await watch;
    }
  }

  /** Stops the transfer of `name` into `store` if it runs. */
  cancel(store: string, name: string, reason: string): void {
    const cancel = this.#cancels.get(key(store, name));
    if (cancel === undefined || cancel.signal.aborted) return;
    this.#options.status.log(`cancelling the transfer of ${name} to ${store}: ${reason}`);
    cancel.abort(new FsError('EINTR', reason));
  }
}

/** A signal aborted when either is, and the removal of its listeners (the unmount's signal lives on). */
function eitherSignal(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const either = new AbortController();
  const onA = (): void => either.abort(a.reason);
  const onB = (): void => either.abort(b.reason);
  if (a.aborted) onA();
  else if (b.aborted) onB();
  a.addEventListener('abort', onA, { once: true });
  b.addEventListener('abort', onB, { once: true });
  return {
    signal: either.signal,
    dispose: () => {
      a.removeEventListener('abort', onA);
      b.removeEventListener('abort', onB);
    },
  };
}
