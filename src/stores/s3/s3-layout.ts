import type { Snapshot } from '../../model/snapshot.js';

/**
 * The original ButterSink's object layout, which buttersink reads and writes unchanged so
 * that its users keep their buckets:
 *
 * - one object per stored diff: `<prefix>/<snapshot name>/<toUUID>_<fromUUID>`, where
 *   fromUUID is `None` for a full stream and both are effective UUIDs (received UUID when
 *   set, else the subvolume's own);
 * - an optional info file `<prefix>/<snapshot name>.bs` with lines `to\tfrom\tsize\n`
 *   (measured sizes of diffs that were not uploaded); listing does not read it;
 * - deletes move the objects under `trash/<key>` (copy, then delete).
 *
 * buttersink adds one kind of object: the index of a diff, `<diff key>.index.gz` (see
 * `sendstream/index-codec.ts`), which makes the snapshot browsable. The original's key
 * pattern does not match it (a `.` in the last part), so it skips it with a warning and
 * nothing else; it is found by the same listing as the diffs.
 *
 * Everything here is pure: keys in, snapshots and diffs out.
 */

/** The original's key pattern: everything before the last `/`, then `to_from`. */
const DIFF_KEY = /^(.*)\/([-a-zA-Z0-9]*)_([-a-zA-Z0-9]*)$/;
const FULL = 'None';
export const TRASH_PREFIX = 'trash/';
export const INFO_SUFFIX = '.bs';
export const INDEX_SUFFIX = '.index.gz';

/** One object of a listing, as ListObjectsV2 returns it. */
export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date | null;
  readonly etag: string | null;
}

/** A diff object in the bucket. */
export interface S3Diff {
  readonly key: string;
  /** Snapshot name relative to the prefix. */
  readonly name: string;
  readonly to: string;
  /** Effective UUID of the parent, or null for a full stream. */
  readonly from: string | null;
  readonly bytes: number;
  readonly lastModified: Date | null;
  readonly etag: string | null;
}

/** The stored index of a diff (its key is the diff's key and {@link INDEX_SUFFIX}). */
export interface S3IndexObject {
  readonly key: string;
  readonly bytes: number;
}

export interface S3Inventory {
  /** One snapshot per UUID that has at least one diff, sorted by name. */
  readonly snapshots: Snapshot[];
  readonly diffs: S3Diff[];
  /** Keys under the prefix that are neither diffs nor info files (reported, never touched). */
  readonly ignored: string[];
  /** Diff key → the stored index of that diff (only for diffs that exist). */
  readonly indexes: ReadonlyMap<string, S3IndexObject>;
}

/** `prefix/` for a non-empty prefix, '' for the bucket's root. */
export function keyPrefix(prefix: string): string {
  return prefix === '' ? '' : `${prefix}/`;
}

/** The key of the diff that turns `from` (null: nothing) into `to`, stored under `name`. */
export function diffKey(prefix: string, name: string, to: string, from: string | null): string {
  return `${keyPrefix(prefix)}${name}/${to}_${from ?? FULL}`;
}

export function infoKey(prefix: string, name: string): string {
  return `${keyPrefix(prefix)}${name}${INFO_SUFFIX}`;
}

export function indexKey(diffKey: string): string {
  return `${diffKey}${INDEX_SUFFIX}`;
}

export function trashKey(key: string): string {
  return `${TRASH_PREFIX}${key}`;
}

/**
 * Whether a snapshot name can be stored: the original's key pattern must read it back as
 * the same name, so no empty segments, `.`/`..`, a trailing `.bs` or control characters.
 */
export function isStorableName(name: string): boolean {
  // Control characters (a newline in a name, say) do not survive S3's XML listings everywhere.
  if (name === '' || name.endsWith(INFO_SUFFIX) || /[\u0000-\u001f\u007f]/.test(name)) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * Turns one listing of `prefix/` into snapshots and diffs. A snapshot is named by the first
 * (in key order) path its diffs are stored under; its identity is the diff's `to` UUID, which
 * is already an effective UUID, so it is both `uuid` and `receivedUuid`: that correlates it
 * with the btrfs subvolume it came from and with every subvolume received from it.
 * Creation order is unknown to S3; upload order stands in for it (parents are uploaded
 * before the diffs that need them).
 */
export function parseInventory(prefix: string, objects: readonly ListedObject[]): S3Inventory {
  const start = keyPrefix(prefix);
  const diffs: S3Diff[] = [];
  const ignored: string[] = [];
  const indexObjects = new Map<string, S3IndexObject>();
  for (const object of objects) {
    if (!object.key.startsWith(start)) continue;
    const relative = object.key.slice(start.length);
    if (prefix === '' && relative.startsWith(TRASH_PREFIX)) continue;
    if (relative.endsWith(INFO_SUFFIX) || relative.endsWith('/')) continue;
    if (relative.endsWith(INDEX_SUFFIX) && DIFF_KEY.test(relative.slice(0, -INDEX_SUFFIX.length))) {
      indexObjects.set(object.key.slice(0, -INDEX_SUFFIX.length), { key: object.key, bytes: object.size });
      continue;
    }
    const m = DIFF_KEY.exec(relative);
    if (!m || m[2] === '' || m[3] === '' || m[2] === FULL) {
      ignored.push(object.key);
      continue;
    }
    diffs.push({
      key: object.key,
      name: m[1]!,
      to: m[2]!,
      from: m[3] === FULL ? null : m[3]!,
      bytes: object.size,
      lastModified: object.lastModified,
      etag: object.etag,
    });
  }
  diffs.sort((a, b) => compare(a.key, b.key));

  const first = new Map<string, { name: string; uploaded: number }>();
  for (const diff of diffs) {
    const uploaded = diff.lastModified?.getTime() ?? 0;
    const seen = first.get(diff.to);
    if (!seen) first.set(diff.to, { name: diff.name, uploaded });
    else if (uploaded < seen.uploaded) seen.uploaded = uploaded;
  }
  const order = [...first.entries()].sort((a, b) => a[1].uploaded - b[1].uploaded || compare(a[1].name, b[1].name));
  const snapshots = order
    .map(
      ([uuid, info], index): Snapshot => ({
        name: info.name,
        uuid,
        parentUuid: null,
        receivedUuid: uuid,
        generation: index + 1,
        creationGeneration: index + 1,
        createdAt: info.uploaded === 0 ? null : new Date(info.uploaded),
      }),
    )
    .sort((a, b) => compare(a.name, b.name) || compare(a.uuid, b.uuid));
  const indexes = new Map<string, S3IndexObject>();
  for (const diff of diffs) {
    const index = indexObjects.get(diff.key);
    if (index) indexes.set(diff.key, index);
  }
  return { snapshots, diffs, ignored, indexes };
}

/**
 * The original's info file: `to\tfrom\tsize` lines of measured diff sizes. Lines it cannot
 * read are skipped, as the original did, and counted so the caller can warn.
 */
export function parseInfoFile(text: string): { sizes: { to: string; from: string; bytes: number }[]; bad: number } {
  const sizes: { to: string; from: string; bytes: number }[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.trim().split(/\s+/);
    const bytes = Number(fields[2]);
    if (fields.length !== 3 || !Number.isSafeInteger(bytes) || bytes < 0) {
      bad += 1;
      continue;
    }
    sizes.push({ to: fields[0]!, from: fields[1]!, bytes });
  }
  return { sizes, bad };
}

/** Writes an info file the original can read (it skips `None` parents itself). */
export function formatInfoFile(sizes: readonly { to: string; from: string; bytes: number }[]): string {
  return sizes.map((s) => `${s.to}\t${s.from}\t${Math.round(s.bytes)}\n`).join('');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
