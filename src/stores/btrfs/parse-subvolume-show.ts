/** What buttersink reads from `btrfs subvolume show PATH` (btrfs-progs 6.x). */
export interface SubvolumeShow {
  /** The subvolume's ID (`Subvolume ID`), or null when missing. */
  readonly id: number | null;
  readonly uuid: string | null;
  readonly parentUuid: string | null;
  readonly receivedUuid: string | null;
  readonly generation: number;
  readonly creationGeneration: number;
  readonly isReadOnly: boolean;
  /** `Creation time: 2026-11-28 23:49:26 +0000`, with its zone. */
  readonly createdAt: Date | null;
}

function field(output: string, name: string): string | undefined {
  return new RegExp(`^\\s*${name}:\\s*(.*?)\\s*$`, 'm').exec(output)?.[1];
}

function uuidOrNull(text: string | undefined): string | null {
  return text === undefined || text === '-' || text === '' ? null : text;
}

/**
 * Reads the fields of the subvolume itself: only up to the `Snapshot(s):` section, whose lines
 * are other subvolumes' names, printed raw (a name with a newline could forge a field there).
 * The first occurrence of each field counts.
 */
export function parseSubvolumeShow(whole: string): SubvolumeShow {
  const cut = /^\s*Snapshot\(s\):/m.exec(whole);
  const output = cut === null ? whole : whole.slice(0, cut.index);
  const time = field(output, 'Creation time');
  const m = time ? /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([+-]\d\d)(\d\d)$/.exec(time) : null;
  const createdAt = m ? new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`) : null;
  const id = Number(field(output, 'Subvolume ID') ?? NaN);
  return {
    id: Number.isSafeInteger(id) ? id : null,
    uuid: uuidOrNull(field(output, 'UUID')),
    parentUuid: uuidOrNull(field(output, 'Parent UUID')),
    receivedUuid: uuidOrNull(field(output, 'Received UUID')),
    generation: Number(field(output, 'Generation') ?? NaN),
    creationGeneration: Number(field(output, 'Gen at creation') ?? NaN),
    isReadOnly: /\breadonly\b/.test(field(output, 'Flags') ?? ''),
    createdAt: createdAt && !Number.isNaN(createdAt.getTime()) ? createdAt : null,
  };
}
