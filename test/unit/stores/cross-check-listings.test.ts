import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { crossCheckListings } from '../../../src/stores/btrfs/cross-check-listings.js';
import { parseBriefSubvolumeList, parseSubvolumeList } from '../../../src/stores/btrfs/parse-subvolume-list.js';

interface Subvolume {
  readonly id: number;
  readonly uuid: string;
  readonly path: string;
  /** Made by `btrfs subvolume snapshot` (listed by `-s`), or received/created (not). */
  readonly isSnapshot: boolean;
}

const pad = (uuid: string): string => uuid.padEnd(36);
const uuidOf = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** The three listings as btrfs-progs 6.2 prints them: names raw. */
function fullLine(s: Subvolume, otime?: string): string {
  const time = otime === undefined ? '' : ` otime ${otime}`;
  return `ID ${s.id} gen 9 cgen 8 top level 5${time} parent_uuid ${pad('-')} received_uuid ${pad('-')} uuid ${s.uuid} path ${s.path}`;
}
const briefLine = (s: Subvolume): string => `ID ${s.id} gen 9 top level 5 path ${s.path}`;

function listings(subvolumes: readonly Subvolume[], brief: readonly Subvolume[] = subvolumes) {
  const text = (lines: string[]): string => lines.map((l) => `${l}\n`).join('');
  return crossCheckListings(
    parseSubvolumeList(text(subvolumes.map((s) => fullLine(s))), 'full'),
    parseSubvolumeList(text(subvolumes.filter((s) => s.isSnapshot).map((s) => fullLine(s, '2026-01-02 03:04:05'))), 'with-times'),
    parseBriefSubvolumeList(text(brief.map(briefLine))),
  );
}

const real = (id: number, path: string, isSnapshot = true): Subvolume => ({ id, uuid: uuidOf(id), path, isSnapshot });

describe('cross-checking the three listings of a directory', () => {
  test('plain names: trusted, with creation times where `-s` has them', () => {
    const checked = listings([real(256, 'snaps/a'), real(257, 'snaps/b c', false)]);
    assert.equal(checked.isTrusted, true);
    assert.deepEqual(
      checked.entries.map((e) => [e.id, e.path, e.createdAt?.getFullYear() ?? null]),
      [
        [256, 'snaps/a', 2026],
        [257, 'snaps/b c', null],
      ],
    );
  });

  test('a name that embeds a forged entry line is never trusted, whichever formats it forges', () => {
    const target = real(999, 'snaps/evil');
    const forgeries = [
      fullLine(target),
      fullLine(target, '2026-01-02 03:04:05'),
      briefLine(target),
      // One forged line per format: each listing still has the other two as strays.
      [fullLine(target), fullLine(target, '2026-01-02 03:04:05'), briefLine(target)].join('\n'),
    ];
    for (const forged of forgeries) {
      for (const isSnapshot of [true, false]) {
        const checked = listings([real(256, 'snaps/a'), real(257, `snaps/x\n${forged}`, isSnapshot)]);
        assert.equal(checked.isTrusted, false, forged);
      }
    }
  });

  test('a subvolume that left between the runs (its forged text gone from one listing) is noticed', () => {
    const evil = real(257, `snaps/x\n${fullLine(real(999, 'snaps/rw'))}`);
    assert.equal(listings([real(256, 'snaps/a'), evil], [real(256, 'snaps/a')]).isTrusted, false);
  });

  test('an ID or a path listed twice is not trusted', () => {
    assert.equal(listings([real(256, 'snaps/a'), real(256, 'snaps/b')]).isTrusted, false);
    assert.equal(listings([real(256, 'snaps/a'), { ...real(257, 'snaps/a'), uuid: uuidOf(300) }]).isTrusted, false);
  });

  test('property: when trusted, the entries are exactly the subvolumes; a name with a newline is never trusted', () => {
    // Names drawn from pieces that include whole forged lines of every format.
    const piece = fc.oneof(
      fc.constantFrom('a', 'b c', 'snaps/', ' path ', '\n', 'ID ', ' gen 9 ', 'top level 5'),
      fc.integer({ min: 1, max: 300 }).map((id) => `\n${fullLine(real(id, `snaps/f${id}`))}`),
      fc.integer({ min: 1, max: 300 }).map((id) => `\n${fullLine(real(id, `snaps/f${id}`), '-')}`),
      fc.integer({ min: 1, max: 300 }).map((id) => `\n${briefLine(real(id, `snaps/f${id}`))}`),
    );
    const name = fc.array(piece, { minLength: 1, maxLength: 5 }).map((parts) => `snaps/${parts.join('')}`);
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), (names, snapshots) => {
        const subvolumes = names.map((path, i) => real(256 + i, path, snapshots[i]!));
        const checked = listings(subvolumes);
        if (names.some((n) => n.includes('\n'))) assert.equal(checked.isTrusted, false);
        if (checked.isTrusted) {
          assert.deepEqual(
            checked.entries.map((e) => [e.id, e.uuid, e.path]),
            subvolumes.map((s) => [s.id, s.uuid, s.path]),
          );
        }
      }),
      { numRuns: 500 },
    );
  });
});
