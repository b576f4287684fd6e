import { PermissionError, StoreError } from '../model/errors.js';
import type { Store } from '../model/store.js';
import { BtrfsStore } from './btrfs/btrfs-store.js';
import type { MeasurementCache } from './cache/measurement-cache.js';
import type { StoreLocation } from './parse-store-url.js';

export interface StoreContext {
  /** One cache per run, shared by its stores, so their writes cannot overwrite each other. */
  readonly cache: MeasurementCache;
  /** Whether this process runs as root; btrfs stores need it. */
  readonly isRoot: boolean;
}

/** Opens the store a URL names. Checks only what needs no I/O; the store reports the rest. */
export function openStore(location: StoreLocation, context: StoreContext): Store {
  switch (location.kind) {
    case 'btrfs':
      if (!context.isRoot) {
        throw new PermissionError(`needs root to read and write btrfs snapshots in ${location.url}`, {
          hint: 'run it with sudo, or as root',
        });
      }
      return new BtrfsStore({
        url: location.url,
        directory: location.directory,
        cache: context.cache,
      });
    case 'ssh':
    case 's3':
      throw new StoreError(`${location.kind}:// stores are not available in this version of buttersink yet`, {
        hint: 'local btrfs directories work today; SSH and S3 stores are on the way',
      });
  }
}
