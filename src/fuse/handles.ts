import type { CopyWindow } from './copy-window.js';
import { FsError } from './fs-error.js';
import type { OpenFile } from './snapshot-reader.js';

/** A received snapshot's files, as far as comparing a copy with them needs. */
export interface ReceivedFiles {
  lstat(relative: string): Promise<{ mode: number; uid: number; gid: number }>;
  read(relative: string, offset: number, length: number): Promise<Buffer>;
}

/** What an open file of the mount is. */
export type Handle =
  | { readonly kind: 'file'; readonly file: OpenFile }
  /** A control file, rendered once when opened (`cat` reads what it was told the size is). */
  | { readonly kind: 'text'; readonly data: Buffer }
  /** A file of a snapshot whose store shows no files. */
  | { readonly kind: 'empty' }
  /** A file in a copy window: writes are compared with the received file. */
  | { readonly kind: 'window'; readonly window: CopyWindow; readonly relative: string; readonly received: ReceivedFiles | undefined };

/** The mount's open files by the number FUSE knows them by. */
export class Handles {
  readonly #open = new Map<number, Handle>();
  #next = 1;

  add(handle: Handle): number {
    const n = this.#next++;
    this.#open.set(n, handle);
    return n;
  }

  /**
   * Opens a file in a copy window: the window is not idle while the file is open (released
   * by `letGo` on release), and writes are compared with `received`.
   */
  addWindow(window: CopyWindow, relative: string, received: ReceivedFiles | undefined): number {
    window.hold();
    return this.add({ kind: 'window', window, relative, received });
  }

  /** @throws FsError EBADF for a number not open. */
  get(n: number): Handle {
    const handle = this.#open.get(n);
    if (handle === undefined) throw new FsError('EBADF');
    return handle;
  }

  /** Forgets an open file; undefined when it was not open. */
  take(n: number): Handle | undefined {
    const handle = this.#open.get(n);
    this.#open.delete(n);
    return handle;
  }
}
