import type { Snapshot } from '../../model/snapshot.js';

/** What `btrfs subvolume list` says of any subvolume on the filesystem (inside the store or not). */
export interface SubvolumeIds {
  readonly uuid: string;
  readonly receivedUuid: string | null;
}

/** The snapshots a stream may name, by UUID, and why some UUIDs that look fine are not. */
export interface ReceiveSources {
  /** UUID as a stream names it → the store's snapshot `btrfs receive` would take for it. */
  readonly byUuid: ReadonlyMap<string, Snapshot>;
  /** UUIDs of the store's snapshots that receive could resolve elsewhere, with the reason. */
  readonly ambiguous: ReadonlyMap<string, string>;
}

/**
 * Which UUIDs a send stream may name as its `snapshot` parent or a `clone` source, so that
 * `btrfs receive` is sure to take one of the store's own read-only snapshots (`listed`) and
 * never a subvolume elsewhere on the filesystem. Pure.
 *
 * receive looks a UUID up across the whole filesystem (btrfs-progs `search_source_subvol`):
 * first among received UUIDs — taking the first subvolume the UUID tree lists for it, of any
 * number — then among subvolume UUIDs; the ctransid in the stream is not compared. So a UUID
 * is safe only when that lookup can end at exactly one subvolume and it is a listed snapshot:
 * a received UUID shared with any other subvolume (a writable snapshot of a received one
 * inherits it, wherever it lives) makes it ambiguous.
 *
 * @param filesystem every subvolume of the filesystem, read-only or not.
 */
export function receiveSources(listed: readonly Snapshot[], filesystem: readonly SubvolumeIds[]): ReceiveSources {
  const byOwnUuid = new Map(listed.map((s) => [s.uuid, s]));
  const holders = new Map<string, SubvolumeIds[]>();
  for (const subvolume of filesystem) {
    if (subvolume.receivedUuid === null) continue;
    const list = holders.get(subvolume.receivedUuid) ?? [];
    list.push(subvolume);
    holders.set(subvolume.receivedUuid, list);
  }
  const byUuid = new Map<string, Snapshot>();
  const ambiguous = new Map<string, string>();
  for (const key of new Set(listed.flatMap((s) => (s.receivedUuid === null ? [s.uuid] : [s.uuid, s.receivedUuid])))) {
    const received = holders.get(key) ?? [];
    if (received.length > 1) {
      ambiguous.set(
        key,
        `${received.length} subvolumes on this filesystem carry received UUID ${key}, and btrfs receive could take any of them`,
      );
    } else if (received.length === 1) {
      const only = byOwnUuid.get(received[0]!.uuid);
      if (only !== undefined) byUuid.set(key, only);
      else
        ambiguous.set(
          key,
          `btrfs receive would take a subvolume outside the receiving directory for ${key} (it carries that received UUID)`,
        );
    } else {
      const own = byOwnUuid.get(key);
      if (own !== undefined) byUuid.set(key, own);
    }
  }
  return { byUuid, ambiguous };
}
