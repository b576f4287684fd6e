import type { StoredDiff } from './store.js';

/**
 * The one rule of what a diff store (S3) needs to keep, used by the planner's `-d`
 * ({@link keepNeededParents} in `run-sync.ts`) and by the store's own delete, which the
 * mount's `rmdir` relies on.
 *
 * A snapshot a diff store holds can be restored only from the diffs stored for it. When all
 * of them start from one and the same parent (no full stream, no second parent), that
 * parent must stay while the snapshot does. This map holds exactly those snapshots:
 * effective UUID of the snapshot -> effective UUID of the parent it cannot do without.
 */
export function soleParents(diffs: readonly StoredDiff[]): Map<string, string> {
  const sources = new Map<string, Set<string | null>>();
  for (const diff of diffs) {
    let set = sources.get(diff.to);
    if (set === undefined) sources.set(diff.to, (set = new Set()));
    set.add(diff.from);
  }
  const sole = new Map<string, string>();
  for (const [to, from] of sources) {
    const [only] = from;
    if (from.size === 1 && only !== null && only !== undefined) sole.set(to, only);
  }
  return sole;
}

/**
 * In a diff store, the snapshots that cannot be restored without `parent`: every diff
 * stored for them starts from it. Deleting `parent` would strand them, so a delete is
 * refused while any remain. Effective UUIDs in, effective UUIDs out, sorted.
 */
export function storedDependents(parent: string, diffs: readonly StoredDiff[]): string[] {
  const dependents: string[] = [];
  for (const [to, from] of soleParents(diffs)) if (from === parent && to !== parent) dependents.push(to);
  return dependents.sort();
}
