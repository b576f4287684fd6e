/**
 * One line of `btrfs subvolume list -R -u -q -c -g` (btrfs-progs 6.x), e.g.
 * `ID 258 gen 7 cgen 7 top level 5 parent_uuid <uuid|-> received_uuid <uuid|-> uuid <uuid> path a/b c`.
 * `path` is last and may contain spaces. Callers pass `-a`, and the path parsed is then relative
 * to the filesystem's top level: without `-a`, btrfs-progs 6.2 prints the subvolumes below the
 * subvolume holding the listed directory relative to *that* subvolume (`s1` for `snaps/s1` when
 * `snaps` is a subvolume, as on any `subvol=` mount) and the others from the top level, so one
 * name could stand for two subvolumes. With `-a` every path is from the top level, those not
 * directly below that subvolume marked `<FS_TREE>/`, which is dropped here (a top-level
 * directory really named `<FS_TREE>` would be misread: not worth a stat per entry).
 * With `-s`, an `otime` field follows `top level` — but `-s` also drops every subvolume
 * that is not a snapshot, received ones included, so it only serves to look up times.
 */
export interface SubvolumeListEntry {
  readonly id: number;
  readonly generation: number;
  readonly creationGeneration: number;
  readonly topLevel: number;
  /** Local time as btrfs prints it, or null for `-`. */
  readonly createdAt: Date | null;
  readonly parentUuid: string | null;
  readonly receivedUuid: string | null;
  readonly uuid: string;
  readonly path: string;
}

/** One line of `btrfs subvolume list` without column flags: `ID 258 gen 7 top level 5 path a/b`. */
export interface BriefListEntry {
  readonly id: number;
  readonly path: string;
}

/**
 * A listing as parsed: the lines that are entries of the format asked for, and how many lines
 * were not. btrfs prints names raw, so a name with a newline spans lines, and its later lines
 * may be made to look like entries of their own: a stray line means such a name exists and
 * no line can be taken at its word (see cross-check-listings.ts).
 */
export interface ParsedList<T> {
  readonly entries: T[];
  readonly strayLines: number;
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const COUNT = '(\\d{1,19})';
// `s`: a path may hold \r or U+2028 (lines are split at \n only); such names are the caller's to refuse.
/** `-R -u -q -c -g`: `cgen` right after `gen`, `parent_uuid` right after `top level`. */
const FULL = new RegExp(
  `^ID ${COUNT} gen ${COUNT} cgen ${COUNT} top level ${COUNT} parent_uuid (${UUID}|-) +received_uuid (${UUID}|-) +uuid (${UUID}) path (.+)$`,
  's',
);
/** The same with `-s`: `otime` right after `top level`, so no line fits both. */
const WITH_TIMES = new RegExp(
  `^ID ${COUNT} gen ${COUNT} cgen ${COUNT} top level ${COUNT} otime (\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d|-) parent_uuid (${UUID}|-) +received_uuid (${UUID}|-) +uuid (${UUID}) path (.+)$`,
  's',
);
/** No column flags: `top level` right after `gen`, so no line fits this and one of the above. */
const BRIEF = new RegExp(`^ID ${COUNT} gen ${COUNT} top level ${COUNT} path (.+)$`, 's');

const NO_UUID = '-';

function uuidOrNull(text: string): string | null {
  return text === NO_UUID ? null : text;
}

/** btrfs prints otime in local time without a zone: `2026-11-28 23:43:34`. */
function parseLocalTime(text: string): Date | null {
  if (text === '-') return null;
  const date = new Date(text.replace(' ', 'T'));
  return Number.isNaN(date.getTime()) ? null : date;
}

const FS_TREE_MARK = '<FS_TREE>/';

/** A path of `subvolume list -a`, from the top level (see {@link SubvolumeListEntry}). */
function fromTopLevel(path: string): string {
  return path.startsWith(FS_TREE_MARK) ? path.slice(FS_TREE_MARK.length) : path;
}

/** The output's lines, without the final newline's empty one. */
function linesOf(output: string): string[] {
  if (output === '') return [];
  return (output.endsWith('\n') ? output.slice(0, -1) : output).split('\n');
}

/**
 * Parses `btrfs subvolume list -R -u -q -c -g [-r]` output (`format` 'full'), or the same
 * with `-s` ('with-times'). Never throws: a line that is not an entry of exactly this format
 * is counted as stray (a name's continuation, or a btrfs-progs change). With
 * `joinStrays`, a stray line is taken as the continuation of the entry before it (a name
 * with a newline), which is right unless a name forges entry lines: only for entries that
 * are checked one by one afterwards.
 */
export function parseSubvolumeList(
  output: string,
  format: 'full' | 'with-times',
  options: { joinStrays?: boolean } = {},
): ParsedList<SubvolumeListEntry> {
  const entries: SubvolumeListEntry[] = [];
  let strayLines = 0;
  for (const line of linesOf(output)) {
    const m = (format === 'full' ? FULL : WITH_TIMES).exec(line);
    if (!m) {
      strayLines += 1;
      const last = entries.at(-1);
      if (options.joinStrays && last !== undefined) entries[entries.length - 1] = { ...last, path: `${last.path}\n${line}` };
      continue;
    }
    const at = format === 'full' ? 5 : 6;
    entries.push({
      id: Number(m[1]),
      generation: Number(m[2]),
      creationGeneration: Number(m[3]),
      topLevel: Number(m[4]),
      createdAt: format === 'full' ? null : parseLocalTime(m[5]!),
      parentUuid: uuidOrNull(m[at]!),
      receivedUuid: uuidOrNull(m[at + 1]!),
      uuid: m[at + 2]!,
      path: fromTopLevel(m[at + 3]!),
    });
  }
  return { entries, strayLines };
}

/** Parses `btrfs subvolume list [-r]` output without column flags; never throws (as above). */
export function parseBriefSubvolumeList(output: string): ParsedList<BriefListEntry> {
  const entries: BriefListEntry[] = [];
  let strayLines = 0;
  for (const line of linesOf(output)) {
    const m = BRIEF.exec(line);
    if (m) entries.push({ id: Number(m[1]), path: fromTopLevel(m[4]!) });
    else strayLines += 1;
  }
  return { entries, strayLines };
}
