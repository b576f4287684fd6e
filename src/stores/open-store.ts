import { PermissionError } from '../model/errors.js';
import { packageVersion } from '../model/package-version.js';
import type { Store } from '../model/store.js';
import type { ServerMode } from '../remote/protocol.js';
import { BtrfsStore } from './btrfs/btrfs-store.js';
import type { MeasurementCache } from './cache/measurement-cache.js';
import type { StoreLocation } from './parse-store-url.js';
import type { S3Settings } from './s3/s3-settings.js';

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
  /** For ssh:// stores: what the run needs there, and how to reach it. */
  readonly ssh?: SshContext;
}

export interface SshContext {
  /** r for a source or a listing, a for a destination, w for a destination with -d. */
  readonly mode: ServerMode;
  /** Runs buttersink on the remote (default `sudo -n buttersink`, `buttersink` as root). */
  readonly remoteCommand?: string;
  /** known_hosts files to use instead of the user's and the system's. */
  readonly knownHostsFiles?: readonly string[];
}

/**
 * Opens the store a URL names. Checks only what needs no I/O; the store reports the rest.
 * The S3 and SSH stores' modules are loaded only when one is opened: the AWS SDK and ssh2
 * take ~0.13 s to load, which every run and every remote `buttersink server` would pay.
 */
export async function openStore(location: StoreLocation, context: StoreContext): Promise<Store> {
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
        ...(context.warn ? { onWarning: context.warn } : {}),
      });
    case 'ssh': {
      // The remote end runs as whoever sudoers allows; locally no root is needed.
      const { SshStore } = await import('./ssh/ssh-store.js');
      return new SshStore({
        url: location.url,
        host: location.host,
        user: location.user,
        port: location.port,
        directory: location.directory,
        cache: context.cache,
        version: packageVersion(),
        mode: 'r',
        ...context.ssh,
      });
    }
    case 's3': {
      const [{ S3Store }, { DEFAULT_S3_SETTINGS }] = await Promise.all([import('./s3/s3-store.js'), import('./s3/s3-settings.js')]);
      return new S3Store({
        url: location.url,
        bucket: location.bucket,
        prefix: location.prefix,
        settings: context.s3 ?? DEFAULT_S3_SETTINGS,
        cacheDirectory: context.cacheDirectory,
        onWarning: context.warn,
        // A benchmark/diagnostic switch, not a feature: BUTTERSINK_S3_INDEX=0 uploads without
        // building the browse index (scripts/bench-s3-browse compares the two).
        indexUploads: process.env.BUTTERSINK_S3_INDEX !== '0',
      });
    }
  }
}
