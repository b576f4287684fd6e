/**
 * A read-only btrfs snapshot as a store knows it.
 *
 * Identity follows btrbk's correlation rule: two snapshots hold the same data when one's
 * `uuid` is the other's `receivedUuid`, or both have the same non-null `receivedUuid`.
 * `uuid` is unique within one filesystem; `receivedUuid` is not (a snapshot of a received
 * subvolume inherits it), so nothing may be keyed by `receivedUuid` alone.
 */
export interface Snapshot {
  /** Path relative to the store's directory, `/`-separated, e.g. `daily/2026-11-28`. */
  readonly name: string;
  /** The subvolume's own UUID. */
  readonly uuid: string;
  /** UUID of the subvolume this one was snapshotted from, or null. */
  readonly parentUuid: string | null;
  /** UUID of the subvolume this one was received from, or null if it was made here. */
  readonly receivedUuid: string | null;
  /** Last transaction that changed the subvolume (btrfs `gen`). */
  readonly generation: number;
  /** Transaction that created it (btrfs `cgen`); orders snapshots of one lineage. */
  readonly creationGeneration: number;
  /** Creation time (btrfs `otime`), or null when the store does not know it. */
  readonly createdAt: Date | null;
}

/** The UUID that names a snapshot's data across filesystems: received UUID when set, else own. */
export function effectiveUuid(s: Pick<Snapshot, 'uuid' | 'receivedUuid'>): string {
  return s.receivedUuid ?? s.uuid;
}

/** btrbk's correlation rule: do `a` and `b` hold the same snapshot? */
export function isCorrelated(a: Pick<Snapshot, 'uuid' | 'receivedUuid'>, b: Pick<Snapshot, 'uuid' | 'receivedUuid'>): boolean {
  if (a.uuid === b.uuid) return true;
  if (a.receivedUuid !== null && a.receivedUuid === b.uuid) return true;
  if (b.receivedUuid !== null && b.receivedUuid === a.uuid) return true;
  return a.receivedUuid !== null && a.receivedUuid === b.receivedUuid;
}

/**
 * Finds the snapshots of `among` that hold the same data as `s`. Indexes by every UUID a
 * snapshot answers to, so lookups stay O(1) for large inventories.
 */
export class CorrelationIndex {
  readonly #byUuid = new Map<string, Snapshot[]>();
  readonly #position = new Map<Snapshot, number>();

  constructor(among: readonly Snapshot[]) {
    for (const [index, snap] of among.entries()) {
      this.#position.set(snap, index);
      this.#add(snap.uuid, snap);
      if (snap.receivedUuid !== null && snap.receivedUuid !== snap.uuid) this.#add(snap.receivedUuid, snap);
    }
  }

  #add(key: string, snap: Snapshot): void {
    const list = this.#byUuid.get(key);
    if (list) list.push(snap);
    else this.#byUuid.set(key, [snap]);
  }

  /** Every snapshot correlated with `s`, in inventory order, without duplicates. */
  find(s: Pick<Snapshot, 'uuid' | 'receivedUuid'>): Snapshot[] {
    const found = new Set<Snapshot>();
    for (const key of [s.uuid, s.receivedUuid]) {
      if (key === null) continue;
      for (const cand of this.#byUuid.get(key) ?? []) {
        if (isCorrelated(s, cand)) found.add(cand);
      }
    }
    return [...found].sort((a, b) => this.#position.get(a)! - this.#position.get(b)!);
  }

  has(s: Pick<Snapshot, 'uuid' | 'receivedUuid'>): boolean {
    return this.find(s).length > 0;
  }
}
