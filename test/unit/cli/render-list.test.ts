import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../../src/model/snapshot.js';
import { byCreation, listToJson, renderList, type ListedSnapshot } from '../../../src/cli/render-list.js';

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
const R2 = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

function snap(name: string, uuid: string, f: { received?: string; createdAt?: Date } = {}): Snapshot {
  return {
    name,
    uuid,
    parentUuid: 'p',
    receivedUuid: f.received ?? null,
    generation: 12,
    creationGeneration: 10,
    createdAt: f.createdAt ?? null,
  };
}

const listed: ListedSnapshot[] = [
  {
    snapshot: snap('daily/2026-11-27', U1, { createdAt: new Date(2026, 10, 27, 23, 0, 5) }),
    size: { bytes: 1.5 * 1024 ** 3, exact: true },
  },
  { snapshot: snap('b', U2, { received: R2 }), size: { bytes: 512, exact: false } },
];

describe('renderList', () => {
  test('a header, then one line per snapshot, columns aligned, size right-aligned', () => {
    assert.deepEqual(renderList(listed), [
      `NAME                 SIZE  CREATED           UUID${' '.repeat(U1.length - 4)}  ORIGIN`,
      `daily/2026-11-27  1.5 GiB  2026-11-27 23:00  ${U1}`,
      `b                  ~512 B  -                 ${U2}  received from ${R2}`,
    ]);
  });

  test('local time, zero-padded', () => {
    const [, line] = renderList([
      { snapshot: snap('s', U1, { createdAt: new Date(2026, 0, 2, 3, 4, 59) }), size: { bytes: 0, exact: true } },
    ]);
    assert.equal(line, `s      0 B  2026-01-02 03:04  ${U1}`);
  });

  test('no trailing spaces, columns start at the same offsets', () => {
    const rows = [...listed, { snapshot: snap('a much longer snapshot name', U2), size: { bytes: 123 * 1024 ** 2, exact: false } }];
    const lines = renderList(rows).slice(1);
    for (const l of lines) assert.equal(l, l.trimEnd());
    const uuidColumn = lines.map((l) => l.search(/[0-9a-f]{8}-[0-9a-f]{4}-/));
    assert.equal(new Set(uuidColumn).size, 1, lines.join('\n'));
    const name = (n: string): string => n.padEnd('a much longer snapshot name'.length);
    assert.deepEqual(lines, [
      `${name('daily/2026-11-27')}   1.5 GiB  2026-11-27 23:00  ${U1}`,
      `${name('b')}    ~512 B  -                 ${U2}  received from ${R2}`,
      `a much longer snapshot name  ~123 MiB  -                 ${U2}`,
    ]);
  });

  test('a name with control characters is one quoted, escaped cell: it prints no rows of its own', () => {
    const forged = `x\nfake  1 GiB  2026-01-01 00:00  ${U2}`;
    const lines = renderList([{ snapshot: snap(forged, U1), size: { bytes: 1, exact: true } }]);
    assert.equal(lines.length, 2, 'the header and one row');
    assert.ok(lines[1]!.startsWith(`${JSON.stringify(forged)}   1 B`), lines[1]);
  });

  test('an empty listing has no lines, not even the header', () => {
    assert.deepEqual(renderList([]), []);
  });

  test('byCreation: oldest first; the same time, or none, by name; no time first', () => {
    const t = (h: number) => new Date(2026, 10, 27, h);
    const order = [
      snap('z', U1, { createdAt: t(5) }),
      snap('a', U1, { createdAt: t(7) }),
      snap('m', U1),
      snap('b', U1, { createdAt: t(5) }),
      snap('c', U1),
    ]
      .sort(byCreation)
      .map((s) => s.name);
    assert.deepEqual(order, ['c', 'm', 'b', 'z', 'a']);
  });
});

describe('listToJson', () => {
  test('every field, dates as ISO strings, sizes in bytes', () => {
    const created = new Date(2026, 10, 27, 23, 0, 5);
    assert.deepEqual(listToJson(listed), [
      {
        name: 'daily/2026-11-27',
        uuid: U1,
        parentUuid: 'p',
        receivedUuid: null,
        generation: 12,
        creationGeneration: 10,
        createdAt: created.toISOString(),
        bytes: 1.5 * 1024 ** 3,
        exact: true,
      },
      {
        name: 'b',
        uuid: U2,
        parentUuid: 'p',
        receivedUuid: R2,
        generation: 12,
        creationGeneration: 10,
        createdAt: null,
        bytes: 512,
        exact: false,
      },
    ]);
  });
});
