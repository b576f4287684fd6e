import type { BriefListEntry, ParsedList, SubvolumeListEntry } from './parse-subvolume-list.js';

/** What the three listings of one directory say together. */
export interface CheckedListing {
  /** The `full` listing's entries, with creation times from the `-s` one where it has them. */
  readonly entries: SubvolumeListEntry[];
  /**
   * Whether every entry is a line btrfs printed for a subvolume (not text inside a name). When
   * false, the entries are only candidates: each must be checked against the subvolume at its
   * path before anything is believed (see BtrfsStore's listing).
   */
  readonly isTrusted: boolean;
}

/**
 * Cross-checks three listings of the same read-only subvolumes, each in a format none of the
 * others' lines can match: `full` (`-R -u -q -c -g -r`), `withTimes` (the same with `-s`) and
 * `brief` (`-r`). Pure.
 *
 * btrfs prints names raw, so a name holding `\n` plus an entry line forges an entry. But a
 * forged line is the same text in every listing of that subvolume, while the formats exclude
 * each other: in at least one listing it is a stray line. And a subvolume that left between
 * the runs (deleted, renamed, made writable) leaves its real first line in one listing with
 * no match in the other. So the listings are trusted only when none has a stray line, no ID
 * or path appears twice, every `full` entry is in `brief` with the same path, and every
 * `withTimes` entry is in `full` with the same path.
 */
export function crossCheckListings(
  full: ParsedList<SubvolumeListEntry>,
  withTimes: ParsedList<SubvolumeListEntry>,
  brief: ParsedList<BriefListEntry>,
): CheckedListing {
  const times = new Map(withTimes.entries.map((e) => [e.id, e]));
  const entries = full.entries.map((e) => ({ ...e, createdAt: times.get(e.id)?.createdAt ?? null }));
  const fullPaths = pathsById(full.entries);
  const briefPaths = pathsById(brief.entries);
  const timesPaths = pathsById(withTimes.entries);
  const isTrusted =
    full.strayLines === 0 &&
    withTimes.strayLines === 0 &&
    brief.strayLines === 0 &&
    fullPaths !== undefined &&
    briefPaths !== undefined &&
    timesPaths !== undefined &&
    full.entries.every((e) => briefPaths.get(e.id) === e.path) &&
    withTimes.entries.every((e) => fullPaths.get(e.id) === e.path);
  return { entries, isTrusted };
}

/** ID to path, or undefined when an ID or a path appears twice. */
function pathsById(entries: readonly { id: number; path: string }[]): Map<number, string> | undefined {
  const byId = new Map<number, string>();
  const paths = new Set<string>();
  for (const { id, path } of entries) {
    if (byId.has(id) || paths.has(path)) return undefined;
    byId.set(id, path);
    paths.add(path);
  }
  return byId;
}
