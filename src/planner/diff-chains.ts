/** A diff a diff store holds, by effective UUIDs (as `StoredDiff`). */
export interface ChainLink {
  readonly to: string;
  readonly from: string | null;
  readonly bytes: number;
}

/**
 * Restoring from a diff store replays chains: a snapshot whose diffs all start from a
 * snapshot the destination lacks needs that one first. Returns the UUIDs, other than `wanted`
 * ones and those `present` at the destination, that lie on the cheapest chain (fewest bytes,
 * Dijkstra from a full stream or a present snapshot) to each wanted UUID: the intermediate
 * snapshots a restore must also bring over. Wanted UUIDs with no chain at all are left to the
 * planner, which reports them as unreachable. Pure.
 */
export function chainIntermediates(links: readonly ChainLink[], wanted: ReadonlySet<string>, present: ReadonlySet<string>): Set<string> {
  const into = new Map<string, ChainLink[]>();
  const out = new Map<string | null, ChainLink[]>();
  for (const link of links) {
    if (link.from === link.to) continue;
    (into.get(link.to) ?? into.set(link.to, []).get(link.to)!).push(link);
    (out.get(link.from) ?? out.set(link.from, []).get(link.from)!).push(link);
  }
  // Distances from "what the destination can start from": nothing (full streams) or a present snapshot.
  const distance = new Map<string, number>();
  const via = new Map<string, string | null>();
  const queue: [number, string][] = [];
  const relax = (link: ChainLink, base: number): void => {
    const d = base + link.bytes;
    if (d < (distance.get(link.to) ?? Infinity)) {
      distance.set(link.to, d);
      via.set(link.to, link.from);
      queue.push([d, link.to]);
    }
  };
  for (const uuid of present) {
    distance.set(uuid, 0);
    via.set(uuid, null);
  }
  for (const link of out.get(null) ?? []) if (!present.has(link.to)) relax(link, 0);
  for (const uuid of present) for (const link of out.get(uuid) ?? []) if (!present.has(link.to)) relax(link, 0);
  const done = new Set<string>(present);
  while (queue.length > 0) {
    // Small inventories: a sorted array is enough and keeps this dependency-free.
    queue.sort((a, b) => b[0] - a[0]);
    const [d, uuid] = queue.pop()!;
    if (done.has(uuid) || d > distance.get(uuid)!) continue;
    done.add(uuid);
    for (const link of out.get(uuid) ?? []) if (!present.has(link.to)) relax(link, d);
  }

  const intermediates = new Set<string>();
  for (const target of wanted) {
    if (present.has(target) || !distance.has(target)) continue;
    for (let at = via.get(target) ?? null; at !== null && !present.has(at); at = via.get(at) ?? null) {
      if (!wanted.has(at)) intermediates.add(at);
    }
  }
  return intermediates;
}

/**
 * How many diffs deep each snapshot of a diff store is: 0 for a full stream, else one more
 * than its parent, over its shallowest stored chain. Snapshots with no chain are absent.
 */
export function chainDepths(links: readonly ChainLink[]): Map<string, number> {
  const depth = new Map<string, number>();
  for (const link of links) if (link.from === null) depth.set(link.to, 0);
  // Bellman-Ford style rounds; chains are short, and each round fixes at least one level.
  for (let changed = true, round = 0; changed && round <= links.length; round++) {
    changed = false;
    for (const link of links) {
      if (link.from === null) continue;
      const parent = depth.get(link.from);
      if (parent === undefined) continue;
      if (parent + 1 < (depth.get(link.to) ?? Infinity)) {
        depth.set(link.to, parent + 1);
        changed = true;
      }
    }
  }
  return depth;
}
