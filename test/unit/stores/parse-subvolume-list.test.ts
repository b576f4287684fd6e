import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBriefSubvolumeList, parseSubvolumeList } from '../../../src/stores/btrfs/parse-subvolume-list.js';

// A zone far from UTC with a non-whole-hour offset (+13:45 in November), so that mixing up
// local time and UTC cannot pass by accident on a UTC machine. Node honours TZ set at run time.
const savedTz = process.env.TZ;
process.env.TZ = 'Pacific/Chatham';
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const U1 = '8d4a4f3c-1b7e-4d2a-9c1f-0e5b6a7d8c91';
const U2 = 'f2c1e0d9-3a4b-4c5d-8e6f-7a8b9c0d1e2f';
const U3 = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const U4 = '11111111-2222-4333-8444-555555555555';

/** btrfs-progs prints UUID columns with `%-36s`: a `-` is padded with 35 spaces. */
const pad = (uuid: string): string => uuid.padEnd(36);

/** One line as `btrfs subvolume list -R -u -q -c -g -r [-s]` prints it. */
function line(f: {
  id: number;
  gen: number;
  cgen: number;
  top?: number;
  otime?: string;
  parent?: string;
  received?: string;
  uuid: string;
  path: string;
}): string {
  const otime = f.otime === undefined ? '' : ` otime ${f.otime}`;
  return (
    `ID ${f.id} gen ${f.gen} cgen ${f.cgen} top level ${f.top ?? 5}${otime} ` +
    `parent_uuid ${pad(f.parent ?? '-')} received_uuid ${pad(f.received ?? '-')} uuid ${f.uuid} path ${f.path}`
  );
}

/** Entries of a listing without `-s`, and with it. */
const full = (output: string) => parseSubvolumeList(output, 'full').entries;
const timed = (output: string) => parseSubvolumeList(output, 'with-times').entries;

describe('parseSubvolumeList', () => {
  test('parses the plain listing, `-` UUIDs as null', () => {
    const output = `${[
      line({ id: 256, gen: 30, cgen: 8, parent: U4, uuid: U1, path: 'snaps/2026-11-27' }),
      line({ id: 257, gen: 31, cgen: 29, top: 256, uuid: U2, path: 'snaps/2026-11-28' }),
    ].join('\n')}\n`;

    assert.deepEqual(full(output), [
      {
        id: 256,
        generation: 30,
        creationGeneration: 8,
        topLevel: 5,
        createdAt: null,
        parentUuid: U4,
        receivedUuid: null,
        uuid: U1,
        path: 'snaps/2026-11-27',
      },
      {
        id: 257,
        generation: 31,
        creationGeneration: 29,
        topLevel: 256,
        createdAt: null,
        parentUuid: null,
        receivedUuid: null,
        uuid: U2,
        path: 'snaps/2026-11-28',
      },
    ]);
  });

  test('`-a` paths are from the top level: its `<FS_TREE>/` mark is dropped, in every format', () => {
    // As btrfs-progs 6.2 prints `list -a` in subvolume `snaps` (ID 256): a direct child
    // unmarked, a deeper one marked.
    const output = `${[
      line({ id: 258, gen: 7, cgen: 7, top: 256, uuid: U1, path: 'snaps/s1' }),
      line({ id: 260, gen: 9, cgen: 9, top: 259, uuid: U2, path: '<FS_TREE>/snaps/inner/d/s2' }),
    ].join('\n')}\n`;
    assert.deepEqual(
      full(output).map((e) => e.path),
      ['snaps/s1', 'snaps/inner/d/s2'],
    );
    const withTimes = line({ id: 260, gen: 9, cgen: 9, top: 259, otime: '2026-12-03 02:37:18', uuid: U2, path: '<FS_TREE>/a b' });
    assert.equal(timed(withTimes)[0]!.path, 'a b');
    assert.deepEqual(
      parseBriefSubvolumeList('ID 258 gen 7 top level 256 path <FS_TREE>/snaps/s1\nID 5 gen 1 top level 5 path x/<FS_TREE>/y\n').entries,
      [
        { id: 258, path: 'snaps/s1' },
        { id: 5, path: 'x/<FS_TREE>/y' },
      ],
    );
  });

  test('a received subvolume carries its received UUID', () => {
    const [entry] = full(line({ id: 300, gen: 12, cgen: 11, parent: U1, received: U3, uuid: U2, path: 'backup/a' }));
    assert.equal(entry?.receivedUuid, U3);
    assert.equal(entry?.parentUuid, U1);
    assert.equal(entry?.uuid, U2);
  });

  test('the `-s` variant: otime as local time', () => {
    const output = line({ id: 258, gen: 9, cgen: 9, otime: '2026-11-28 23:43:34', parent: U4, uuid: U1, path: 'snaps/s1' });
    const [entry] = timed(output);
    assert.ok(entry?.createdAt instanceof Date);
    assert.equal(entry.createdAt.getTime(), new Date(2026, 10, 28, 23, 43, 34).getTime());
    assert.equal(entry.id, 258);
    assert.equal(entry.parentUuid, U4);
    assert.equal(entry.uuid, U1);
    assert.equal(entry.path, 'snaps/s1');
  });

  test('the `-s` variant with an unknown otime `-`', () => {
    const [entry] = timed(line({ id: 259, gen: 9, cgen: 9, otime: '-', uuid: U1, path: 'old' }));
    assert.equal(entry?.createdAt, null);
    assert.equal(entry?.path, 'old');
    assert.equal(entry?.parentUuid, null);
  });

  test('paths with spaces, several spaces and words that look like fields', () => {
    const paths = ['my snaps/2026 11 28', 'a  b', 'x path y', 'uuid 1 path 2', 'trailing '];
    const output = paths.map((path, i) => line({ id: 300 + i, gen: 1, cgen: 1, uuid: U1, path })).join('\n');
    assert.deepEqual(
      full(output).map((e) => e.path),
      paths,
    );
  });

  test('a path with spaces in the `-s` variant', () => {
    const [entry] = timed(line({ id: 7, gen: 2, cgen: 2, otime: '2026-01-02 03:04:05', uuid: U2, path: 'a b/c d' }));
    assert.equal(entry?.path, 'a b/c d');
    assert.equal(entry?.createdAt?.getTime(), new Date(2026, 0, 2, 3, 4, 5).getTime());
  });

  test('large IDs and generations', () => {
    const [entry] = full(line({ id: 123456, gen: 9876543, cgen: 9876000, top: 123455, uuid: U3, path: 'p' }));
    assert.equal(entry?.id, 123456);
    assert.equal(entry?.generation, 9876543);
    assert.equal(entry?.creationGeneration, 9876000);
    assert.equal(entry?.topLevel, 123455);
  });

  test('empty output and leading blank lines', () => {
    assert.deepEqual(parseSubvolumeList('', 'full'), { entries: [], strayLines: 0 });
    assert.deepEqual(parseSubvolumeList('\n', 'full'), { entries: [], strayLines: 1 });
    const output = `\n${line({ id: 1, gen: 1, cgen: 1, uuid: U1, path: 'a' })}\n${line({ id: 2, gen: 1, cgen: 1, uuid: U2, path: 'b' })}\n`;
    assert.deepEqual(
      full(output).map((e) => e.id),
      [1, 2],
    );
  });

  test('a name with newlines is not put together: its later lines are stray, or look like entries of their own', () => {
    // What btrfs prints for a subvolume named "x\n<an entry line>": the second line is text
    // inside a name, yet it is a well-formed entry. Only the other formats can tell (see
    // cross-check-listings.ts); the parser never guesses.
    const forged = line({ id: 999, gen: 1, cgen: 1, uuid: U4, path: 'snaps/evil' });
    const output = `${line({ id: 10, gen: 1, cgen: 1, uuid: U1, path: `snaps/x\n${forged}` })}\n${line({ id: 11, gen: 1, cgen: 1, uuid: U2, path: 'two\n\nbreaks' })}\n`;
    const parsed = parseSubvolumeList(output, 'full');
    assert.deepEqual(
      parsed.entries.map((e) => [e.id, e.path]),
      [
        [10, 'snaps/x'],
        [999, 'snaps/evil'],
        [11, 'two'],
      ],
    );
    assert.equal(parsed.strayLines, 2);
    // The same forged line in a listing of another format is stray there.
    assert.equal(parseSubvolumeList(`${forged}\n`, 'with-times').strayLines, 1);
    assert.equal(parseBriefSubvolumeList(`${forged}\n`).strayLines, 1);
  });

  test('no line fits two formats: `-s` lines need otime, plain ones must not have it, brief ones have no columns', () => {
    const plain = line({ id: 1, gen: 1, cgen: 1, uuid: U1, path: 'a' });
    const withTime = line({ id: 1, gen: 1, cgen: 1, otime: '2026-01-02 03:04:05', uuid: U1, path: 'a' });
    const brief = 'ID 1 gen 1 top level 5 path a';
    assert.deepEqual(
      [plain, withTime, brief].map((l) => [
        parseSubvolumeList(l, 'full').entries.length,
        parseSubvolumeList(l, 'with-times').entries.length,
        parseBriefSubvolumeList(l).entries.length,
      ]),
      [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ],
    );
  });

  test('a path may hold a carriage return or a line separator (lines are split at \\n only): the caller refuses such names', () => {
    assert.deepEqual(
      full(
        `${line({ id: 1, gen: 1, cgen: 1, uuid: U1, path: 'a\rb' })}\n${line({ id: 2, gen: 1, cgen: 1, uuid: U2, path: 'c\u2028d' })}\n`,
      ).map((e) => e.path),
      ['a\rb', 'c\u2028d'],
    );
  });

  test('never throws: lines it does not understand are counted as stray', () => {
    const good = line({ id: 1, gen: 1, cgen: 1, uuid: U1, path: 'a' });
    for (const bad of [
      'ERROR: cannot access /mnt: No such file or directory',
      'ID 256 gen 30 top level 5 path snaps/a', // listed without -c -u -q -R
      `ID 256 gen 30 cgen 8 top level 5 parent_uuid - received_uuid - uuid ${U1}`, // no path
      `ID x gen 30 cgen 8 top level 5 parent_uuid - received_uuid - uuid ${U1} path a`,
      `ID 1 gen 30 cgen 8 top level 5 parent_uuid - received_uuid - uuid not-a-uuid path a`,
    ]) {
      const parsed = parseSubvolumeList(`${good}\n${bad}\n`, 'full');
      assert.deepEqual(
        parsed.entries.map((e) => e.path),
        ['a'],
        bad,
      );
      assert.equal(parsed.strayLines, 1, bad);
    }
  });
});
