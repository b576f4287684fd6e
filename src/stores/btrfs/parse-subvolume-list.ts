/**
 * One line of `btrfs subvolume list -R -u -q -c -g` (btrfs-progs 6.x), e.g.
 * `ID 258 gen 7 cgen 7 top level 5 parent_uuid <uuid|-> received_uuid <uuid|-> uuid <uuid> path a/b c`.
 * `path` is last and may contain spaces; it is relative to the filesystem's top level.
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

const LINE =
  /^ID (\d+) gen (\d+) cgen (\d+) top level (\d+)(?: otime (\S+ \S+|-))? parent_uuid (\S+)\s+received_uuid (\S+)\s+uuid (\S+) path ([\s\S]*)$/;

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

/**
 * Parses the whole output; throws on a line it does not understand (a btrfs-progs change).
 * btrfs prints paths raw, so a snapshot name with a newline spans lines: a line that does not
 * start a new entry continues the previous entry's path.
 */
export function parseSubvolumeList(output: string): SubvolumeListEntry[] {
  const records: string[] = [];
  for (const line of (output.endsWith('\n') ? output.slice(0, -1) : output).split('\n')) {
    if (/^ID /.test(line)) records.push(line);
    else if (records.length > 0 && !/^(ERROR|WARNING):/.test(line)) records[records.length - 1] += `\n${line}`;
    else if (line.trim() !== '') throw new Error(`unexpected line from btrfs subvolume list: ${JSON.stringify(line)}`);
  }
  const entries: SubvolumeListEntry[] = [];
  for (const line of records) {
    const m = LINE.exec(line);
    if (!m) throw new Error(`unexpected line from btrfs subvolume list: ${JSON.stringify(line)}`);
    entries.push({
      id: Number(m[1]),
      generation: Number(m[2]),
      creationGeneration: Number(m[3]),
      topLevel: Number(m[4]),
      createdAt: m[5] === undefined ? null : parseLocalTime(m[5]),
      parentUuid: uuidOrNull(m[6]!),
      receivedUuid: uuidOrNull(m[7]!),
      uuid: m[8]!,
      path: m[9]!,
    });
  }
  return entries;
}
