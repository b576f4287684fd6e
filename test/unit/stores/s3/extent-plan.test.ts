import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { writeCommandProblem } from '../../../../src/sendstream/command-check.js';
import {
  checkFile,
  coalesce,
  commandsOf,
  MAX_COMMAND_BYTES,
  MalformedIndexError,
  piecesOf,
  planReadAhead,
  type ReadableFile,
  type ResolvedExtent,
} from '../../../../src/stores/s3/extent-plan.js';
import { cmd, encodeCommand } from '../../../support/send-stream-builder.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Extents of `count` 48 KiB write commands back to back in object `key` from `at` (60 bytes of header and TLVs each). */
function contiguous(count: number, key = 'k', at = 17, fileOffset = 0): ResolvedExtent[] {
  const length = 48 * KiB;
  return Array.from({ length: count }, (_, i) => {
    const commandStart = at + i * (length + 60);
    return { fileOffset: fileOffset + i * length, length, key, commandStart, commandBytes: length + 60, dataStart: commandStart + 60 };
  });
}

const file = (extents: ResolvedExtent[], size?: number): ReadableFile => ({
  id: 'i:1',
  size: size ?? Math.max(0, ...extents.map((e) => e.fileOffset + e.length)),
  extents,
});

describe('piecesOf: which bytes of which commands a read needs', () => {
  test('a read inside one extent is one piece at the right place in its command', () => {
    const extents = contiguous(4);
    const pieces = piecesOf(file(extents), 50 * KiB, 50 * KiB + 10);
    assert.deepEqual(pieces, [
      {
        fileOffset: 50 * KiB,
        length: 10,
        command: { key: 'k', start: extents[1]!.commandStart, bytes: 48 * KiB + 60 },
        dataOffset: 60 + 2 * KiB,
      },
    ]);
  });

  test('a read across extents takes a piece of each; holes between them take none', () => {
    const extents = [
      { fileOffset: 0, length: 100, key: 'a', commandStart: 17, commandBytes: 170, dataStart: 87 },
      { fileOffset: 1000, length: 100, key: 'b', commandStart: 500, commandBytes: 170, dataStart: 570 },
    ];
    const pieces = piecesOf(file(extents, 2000), 50, 1050);
    assert.deepEqual(
      pieces.map((p) => [p.fileOffset, p.length, p.command.key, p.dataOffset]),
      [
        [50, 50, 'a', 120],
        [1000, 50, 'b', 70],
      ],
    );
    assert.deepEqual(piecesOf(file(extents, 2000), 200, 900), [], 'all hole');
    assert.deepEqual(piecesOf(file(extents, 2000), 1100, 2000), [], 'the tail is a hole');
  });

  test('a hostile index is refused with a message naming the file and the extent, before anything is sized by it', () => {
    const good = contiguous(1)[0]!;
    const cases: [Partial<ResolvedExtent>, RegExp][] = [
      [{ length: -1 }, /length -1 is not a non-negative integer/],
      [{ commandStart: 1.5 }, /commandStart 1.5/],
      [{ dataStart: Number.NaN }, /dataStart NaN/],
      [{ fileOffset: 2 ** 60 }, /fileOffset/],
      [{ commandBytes: MAX_COMMAND_BYTES + 1, dataStart: good.dataStart }, /command of 1048587 bytes/],
      [{ commandBytes: 4 }, /command of 4 bytes/],
      [{ dataStart: good.commandStart + 2 }, /outside its command/],
      [{ length: good.length + 1 }, /outside its command/],
      [{ key: '' }, /names no object/],
    ];
    for (const [change, message] of cases) {
      const bad = { ...good, ...change } as ResolvedExtent;
      assert.throws(
        () => checkFile({ id: 'i:7', size: 100 * KiB, extents: [bad] }),
        (error: unknown) =>
          error instanceof MalformedIndexError &&
          /the index of i:7 is malformed: extent 0/.test(error.message) &&
          message.test(error.message),
        JSON.stringify(change),
      );
    }
    const overlapping = [good, { ...good, fileOffset: 10 }];
    assert.throws(() => checkFile(file(overlapping)), /extent 1 overlaps/);
    assert.throws(() => piecesOf(file(overlapping), 0, 100), /extent 1 overlaps/, 'piecesOf checks the extents it uses too');
    assert.throws(() => piecesOf(file([{ ...good, length: 10, dataStart: 2 ** 40 }]), 0, 100), /outside its command/);
    assert.throws(() => checkFile({ id: 'i:8', size: -1, extents: [] }), /its size -1/);
    assert.doesNotThrow(() => checkFile(file(contiguous(5))));
  });
});

describe('coalesce: one ranged GET per run of adjacent commands', () => {
  test('adjacent commands of one object are one run; a gap or another object starts a new one; duplicates are fetched once', () => {
    const a = contiguous(3, 'a');
    const b = contiguous(2, 'b', 17);
    const refs = commandsOf(piecesOf(file([...a]), 0, 3 * 48 * KiB));
    assert.equal(refs.length, 3);
    const runs = coalesce([...refs, refs[1]!, ...b.map((e) => ({ key: e.key, start: e.commandStart, bytes: e.commandBytes }))]);
    assert.deepEqual(
      runs.map((r) => [r.key, r.start, r.bytes, r.commands.length]),
      [
        ['a', 17, 3 * (48 * KiB + 60), 3],
        ['b', 17, 2 * (48 * KiB + 60), 2],
      ],
    );
    const gap = coalesce([
      { key: 'a', start: 17, bytes: 100 },
      { key: 'a', start: 118, bytes: 100 }, // one byte after the first ends
      { key: 'a', start: 218, bytes: 50 },
    ]);
    assert.deepEqual(
      gap.map((r) => [r.start, r.bytes]),
      [
        [17, 100],
        [118, 150],
      ],
    );
  });

  test('a 1 MiB read of a file whose commands lie back to back is one GET of its commands only', () => {
    const extents = contiguous(30);
    const runs = coalesce(commandsOf(piecesOf(file(extents), 0, MiB)));
    assert.equal(runs.length, 1);
    const commands = Math.ceil(MiB / (48 * KiB));
    assert.equal(runs[0]!.bytes, commands * (48 * KiB + 60));
    assert.ok(runs[0]!.bytes < 2 * MiB);
  });
});

describe('planReadAhead: files read in order get their next commands fetched ahead', () => {
  const size = 100 * MiB;
  const window = 4 * MiB;
  const step = 128 * KiB;

  test('reads in order fetch ahead about once per half window, never past the end', () => {
    let state = planReadAhead(undefined, 0, step, size, window);
    assert.deepEqual(state.fetch, { from: step, to: step + window });
    let fetches = 1;
    for (let at = step; at < 16 * MiB; at += step) {
      state = planReadAhead(state.state, at, at + step, size, window);
      if (state.fetch) {
        fetches++;
        assert.equal(state.fetch.from, at + step);
        assert.ok(state.fetch.to - state.fetch.from <= window);
      }
    }
    assert.ok(fetches <= (16 * MiB) / (window / 2) + 1, `${fetches} read-aheads for 128 reads`);
    const nearEnd = planReadAhead({ end: size - step, ahead: size - step }, size - step, size, size, window);
    assert.equal(nearEnd.fetch, undefined, 'nothing past the end');
  });

  test('a random read fetches nothing ahead; the next read in order from it does', () => {
    const random = planReadAhead({ end: 5 * MiB, ahead: 9 * MiB }, 50 * MiB, 50 * MiB + 10, size, window);
    assert.equal(random.fetch, undefined);
    const next = planReadAhead(random.state, 50 * MiB + 10, 50 * MiB + 10 + step, size, window);
    assert.deepEqual(next.fetch, { from: 50 * MiB + 10 + step, to: 50 * MiB + 10 + step + window });
    assert.equal(planReadAhead(undefined, 0, step, size, 0).fetch, undefined, 'a window of 0 turns it off');
  });
});

describe('writeCommandProblem: a write command is checked before its bytes are served', () => {
  const write = encodeCommand(cmd.write('f', 0, Buffer.alloc(1000, 9)));

  test('an intact write command passes', () => {
    assert.equal(writeCommandProblem(write), undefined);
  });

  test('a flipped byte anywhere, another command, or a length the header does not say are refused', () => {
    for (const at of [0, 4, 6, 10, 30, write.length - 1]) {
      const bad = Buffer.from(write);
      bad[at] = bad[at]! ^ 0x01;
      assert.ok(writeCommandProblem(bad) !== undefined, `byte ${at}`);
    }
    const flipped = Buffer.from(write);
    flipped[write.length - 1] = flipped[write.length - 1]! ^ 0x40;
    assert.match(writeCommandProblem(flipped)!, /bad CRC32C/);
    assert.match(writeCommandProblem(encodeCommand(cmd.truncate('f', 5)))!, /command 17 is not a write/);
    assert.match(
      writeCommandProblem(write.subarray(0, write.length - 1))!,
      new RegExp(`header says ${write.length - 10} payload bytes, the index ${write.length - 11}`),
    );
    assert.match(writeCommandProblem(write.subarray(0, 5))!, /shorter than its header/);
  });
});
