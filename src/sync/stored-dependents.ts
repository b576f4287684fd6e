import type { StoredDiff } from '../model/store.js';

/**
 * In a diff store (S3), the snapshots that cannot be restored without `parent`: every diff
 * stored for them starts from it (no full stream, no other parent). Deleting `parent` would
 * strand them, so a delete is refused while any remain. Effective UUIDs in, effective UUIDs out.
 */
export function storedDependents(parent: string, diffs: readonly StoredDiff[]): string[] {
  const sources = new Map<string, Set<string | null>>();
  for (const diff of diffs) {
    let set = sources.get(diff.to);
    if (set === undefined) sources.set(diff.to, (set = new Set()));
    set.add(diff.from);
  }
  const dependents: string[] = [];
  for (const [to, from] of sources) {
    if (to !== parent && from.size > 0 && [...from].every((f) => f === parent)) dependents.push(to);
  }
  return dependents.sort();
}
