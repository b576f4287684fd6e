import { PermissionError, StoreError } from '../model/errors.js';
import type { Store } from '../model/store.js';
import { BtrfsStore } from './btrfs/btrfs-store.js';
import type { MeasurementCache } from './cache/measurement-cache.js';
import type { StoreLocation } from './parse-store-url.js';
import { S3Store } from './s3/s3-store.js';
import { DEFAULT_S3_SETTINGS, type S3Settings } from './s3/s3-settings.js';

export interface StoreContext {
  /** One cache per run, shared by its stores, so their writes cannot overwrite each other. */
  readonly cache: MeasurementCache;
  /** Whether this process runs as root; btrfs stores need it. */
  readonly isRoot: boolean;
  /** buttersink's cache directory (S3 upload journal and locks). */
  readonly cacheDirectory: string;
  /** How to reach S3 stores; defaults otherwise. */
  readonly s3?: S3Settings;
  /** Non-fatal notes for the user (retries, ignored objects). */
  readonly warn?: (message: string) => void;
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
    case 's3':
      return new S3Store({
        url: location.url,
        bucket: location.bucket,
        prefix: location.prefix,
        settings: context.s3 ?? DEFAULT_S3_SETTINGS,
        cacheDirectory: context.cacheDirectory,
        onWarning: context.warn,
      });
    case 'ssh':
      throw new StoreError(`${location.kind}:// stores are not available in this version of buttersink yet`, {
        hint: 'local btrfs directories and S3 work today; SSH stores are on the way',
      });
  }
}
