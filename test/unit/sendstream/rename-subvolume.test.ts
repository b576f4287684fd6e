import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NotASendStreamError, SubvolumeRenamer } from '../../../src/sendstream/rename-subvolume.js';
import {
  ATTR,
  CMD,
  chunks,
  command,
  commands,
  expectedCrc,
  parseCommands,
  sendStream,
  streamHeader,
  through,
  tlv,
  u64,
  uuidBytes,
} from './stream-builder.js';

async function rename(
  stream: Buffer,
  newName: string,
  chunkSize = stream.length || 1,
): Promise<{ out: Buffer; renamer: SubvolumeRenamer }> {
  const renamer = new SubvolumeRenamer(newName);
  const out = await through(renamer, chunks(stream, chunkSize));
  return { out, renamer };
}

const rest = [commands.mkfile('file one'), commands.updateExtent('file one', 0, 4096), commands.mkfile('dir/two'), commands.end()];

describe('SubvolumeRenamer', () => {
  test('renames a subvol command, with a valid CRC, and leaves everything else byte-identical', async () => {
    const original = sendStream(commands.subvol('2026-11-28', uuidBytes(5), 1234), ...rest);
    const { out, renamer } = await rename(original, '.buttersink-tmp.2026-11-28.12345');

    assert.equal(renamer.originalName, '2026-11-28');
    assert.deepEqual(out.subarray(0, 17), streamHeader());
    const [first, ...others] = parseCommands(out);
    assert.equal(first!.cmd, CMD.subvol);
    assert.equal(first!.attributes.get(ATTR.path)!.toString('utf8'), '.buttersink-tmp.2026-11-28.12345');
    assert.deepEqual(first!.attributes.get(ATTR.uuid), uuidBytes(5));
    assert.deepEqual(first!.attributes.get(ATTR.ctransid), u64(1234));
    assert.equal(first!.bytes.readUInt32LE(0), first!.bytes.length - 10, 'payload length updated');
    assert.equal(first!.crc, expectedCrc(first!.bytes));

    // The rest: the same bytes as the input after its first command.
    const originalFirstLength = parseCommands(original)[0]!.bytes.length;
    assert.deepEqual(out.subarray(17 + first!.bytes.length), original.subarray(17 + originalFirstLength));
    assert.deepEqual(
      others.map((c) => c.bytes),
      rest,
    );
  });

  test('renames a snapshot command and keeps its clone UUID and transid', async () => {
    const original = sendStream(commands.snapshot('daily/old name', uuidBytes(9), 50, uuidBytes(3), 40), ...rest);
    const { out, renamer } = await rename(original, 'x');

    assert.equal(renamer.originalName, 'daily/old name');
    const [first] = parseCommands(out);
    assert.equal(first!.cmd, CMD.snapshot);
    assert.equal(first!.attributes.get(ATTR.path)!.toString(), 'x');
    assert.deepEqual(first!.attributes.get(ATTR.uuid), uuidBytes(9));
    assert.deepEqual(first!.attributes.get(ATTR.ctransid), u64(50));
    assert.deepEqual(first!.attributes.get(ATTR.cloneUuid), uuidBytes(3));
    assert.deepEqual(first!.attributes.get(ATTR.cloneCtransid), u64(40));
    assert.equal(first!.crc, expectedCrc(first!.bytes));
    assert.equal(out.length, original.length - 'daily/old name'.length + 1);
  });

  test('a longer name than the original, with multibyte UTF-8', async () => {
    const original = sendStream(commands.subvol('a'), ...rest);
    const name = 'snäpshot ✓ '.repeat(3).trim();
    const { out } = await rename(original, name);
    const [first] = parseCommands(out);
    assert.equal(first!.attributes.get(ATTR.path)!.toString('utf8'), name);
    assert.equal(first!.attributes.get(ATTR.path)!.length, Buffer.byteLength(name));
    assert.equal(first!.crc, expectedCrc(first!.bytes));
    assert.equal(out.length, original.length - 1 + Buffer.byteLength(name));
  });

  test('byte by byte and in odd chunks gives the same output as one chunk', async () => {
    const original = sendStream(commands.snapshot('snap'), ...rest);
    const { out: whole } = await rename(original, 'renamed');
    for (const size of [1, 2, 7, 17, 18, 27]) {
      const { out, renamer } = await rename(original, 'renamed', size);
      assert.deepEqual(out, whole, `chunks of ${size}`);
      assert.equal(renamer.originalName, 'snap');
    }
  });

  test('originalName is undefined before the first command went by', () => {
    assert.equal(new SubvolumeRenamer('x').originalName, undefined);
  });

  test('rejects empty and over-long new names', () => {
    assert.throws(() => new SubvolumeRenamer(''));
    assert.throws(() => new SubvolumeRenamer('x'.repeat(256)));
    assert.doesNotThrow(() => new SubvolumeRenamer('x'.repeat(255)));
  });
});

describe('SubvolumeRenamer: not a send stream', () => {
  const notASendStream = async (stream: Buffer, chunkSize?: number): Promise<void> => {
    await assert.rejects(rename(stream, 'new', chunkSize), (error: unknown) => {
      assert.ok(error instanceof NotASendStreamError, `got ${String(error)}`);
      return true;
    });
  };

  test('garbage input', async () => {
    await notASendStream(Buffer.from('this is not a btrfs send stream at all, just text\n'));
    await notASendStream(Buffer.from('this is not a btrfs send stream at all, just text\n'), 1);
    await notASendStream(Buffer.alloc(4096));
  });

  test('a first command that is neither subvol nor snapshot', async () => {
    await notASendStream(sendStream(commands.mkfile('f'), commands.end()));
    await notASendStream(sendStream(commands.end()));
    await notASendStream(sendStream(commands.mkfile('f'), commands.end()), 1);
  });

  test('a stream shorter than its first command', async () => {
    const full = sendStream(commands.subvol('snap'), commands.end());
    const firstEnd = 17 + parseCommands(full)[0]!.bytes.length;
    for (const length of [0, 5, 13, 17, 20, 27, firstEnd - 1]) {
      await notASendStream(full.subarray(0, length));
      await notASendStream(full.subarray(0, length), 1);
    }
  });

  test('a first command that names no subvolume', async () => {
    const noPath = command(CMD.subvol, [tlv(ATTR.uuid, uuidBytes(1)), tlv(ATTR.ctransid, u64(7))]);
    await notASendStream(sendStream(noPath, commands.end()));
  });
});
