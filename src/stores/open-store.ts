import { PermissionError, StoreError } from '../model/errors.js';
import { packageVersion } from '../model/package-version.js';
import type { Store } from '../model/store.js';
import type { ServerMode } from '../remote/protocol.js';
import { BtrfsStore } from './btrfs/btrfs-store.js';
import type { MeasurementCache } from './cache/measurement-cache.js';
import type { StoreLocation } from './parse-store-url.js';
import { SshStore } from './ssh/ssh-store.js';

export interface StoreContext {
  /** One cache per run, shared by its stores, so their writes cannot overwrite each other. */
  readonly cache: MeasurementCache;
  /** Whether this process runs as root; btrfs stores need it. */
  readonly isRoot: boolean;
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
      // The remote end runs as whoever sudoers allows; locally no root is needed.
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
    case 's3':
      throw new StoreError(`${location.kind}:// stores are not available in this version of buttersink yet`, {
        hint: 'local btrfs directories work today; SSH and S3 stores are on the way',
      });
  }
}
