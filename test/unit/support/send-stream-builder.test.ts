import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { btrfsToolsSuite } from '../../support/prerequisites.js';
import {
  ATTRIBUTE_NUMBERS,
  cmd,
  COMMAND_NUMBERS,
  corruptCrc,
  crc32c,
  decodeStream,
  encodeCommand,
  encodeStream,
  fullStream,
  incrementalStream,
  rawCommand,
  type StreamCommand,
} from '../../support/send-stream-builder.js';

/** `btrfs receive --dump` of `stream`: its stdout lines, stderr and exit status (times in UTC). */
function dump(stream: Buffer): { lines: string[]; stderr: string; status: number | null } {
  const result = spawnSync('btrfs', ['receive', '--dump'], { input: stream, encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  return { lines: result.stdout.split('\n').filter(Boolean), stderr: result.stderr, status: result.status };
}

/** A dump line: the title padded to 16, the path, and (if any) details aligned at column 48. */
function line(title: string, path: string, details?: string): string {
  const head = title.padEnd(16) + path;
  return details === undefined ? head : `${head.padEnd(47)} ${details}`;
}

const U = '11111111-2222-3333-4444-555555555555';
const P = '66666666-7777-8888-9999-aaaaaaaaaaaa';
const t = (sec: number) => ({ sec, nsec: 0 });

/** One of every version-1 command but subvol/snapshot/end, with what --dump prints for it. */
const V1: readonly [StreamCommand, string][] = [
  [cmd.mkfile('f'), line('mkfile', './snap/f')],
  [cmd.mkdir('d'), line('mkdir', './snap/d')],
  [cmd.mknod('n', 0o060600, 0x801), line('mknod', './snap/n', 'mode=60600 dev=0x801')],
  [cmd.mkfifo('p'), line('mkfifo', './snap/p')],
  [cmd.mksock('s'), line('mksock', './snap/s')],
  [cmd.symlink('l', 'target with space'), line('symlink', './snap/l', 'dest=target\\ with\\ space')],
  [cmd.rename('f', 'g'), line('rename', './snap/f', 'dest=./snap/g')],
  [cmd.link('h', 'g'), line('link', './snap/h', 'dest=g')],
  [cmd.unlink('h'), line('unlink', './snap/h')],
  [cmd.rmdir('d'), line('rmdir', './snap/d')],
  [cmd.setXattr('g', 'user.k', 'v'), line('set_xattr', './snap/g', 'name=user.k data=v len=1')],
  [cmd.removeXattr('g', 'user.k'), line('remove_xattr', './snap/g', 'name=user.k')],
  [cmd.write('g', 4096, Buffer.alloc(35000, 1)), line('write', './snap/g', 'offset=4096 len=35000')],
  [cmd.clone('g', 0, 4096, U, 5, 'g', 4096), line('clone', './snap/g', 'offset=0 len=4096 from=./snap/g clone_offset=4096')],
  [cmd.truncate('g', 3), line('truncate', './snap/g', 'size=3')],
  [cmd.chmod('g', 0o4755), line('chmod', './snap/g', 'mode=4755')],
  [cmd.chown('g', 1000, 100), line('chown', './snap/g', 'gid=100 uid=1000')],
  [
    cmd.utimes('g', t(1_700_000_000), t(1_700_000_001), t(1_700_000_002)),
    line('utimes', './snap/g', 'atime=2023-11-14T22:13:20+0000 mtime=2023-11-14T22:13:21+0000 ctime=2023-11-14T22:13:22+0000'),
  ],
  [cmd.updateExtent('g', 0, 10), line('update_extent', './snap/g', 'offset=0 len=10')],
  // The root of the subvolume is the empty path, as the kernel sends it.
  [cmd.chown('', 0, 0), line('chown', './snap/', 'gid=0 uid=0')],
];

/** The three version-2 commands. */
const V2: readonly [StreamCommand, string][] = [
  [cmd.fallocate('g', 3, 0, 4096), line('fallocate', './snap/g', 'mode=3 offset=0 len=4096')],
  // btrfs-progs 6.2 prints the attribute in decimal after a "0x".
  [cmd.fileattr('g', 16), line('fileattr', './snap/g', 'fileattr=0x16')],
  [
    cmd.encodedWrite('g', 0, { unencodedFileLen: 5, unencodedLen: 5, unencodedOffset: 0, compression: 1 }, deflateSync('hello')),
    line(
      'encoded_write',
      './snap/g',
      'offset=0 len=13, unencoded_file_len=5, unencoded_len=5, unencoded_offset=0, compression=1, encryption=0',
    ),
  ],
];

describe('send-stream-builder, read back by btrfs receive --dump', btrfsToolsSuite(), () => {
  test('a version-1 full stream with every v1 command dumps line for line', () => {
    const { lines, status, stderr } = dump(
      fullStream(
        'snap',
        U,
        9,
        V1.map(([c]) => c),
      ),
    );
    assert.equal(status, 0, stderr);
    assert.deepEqual(lines, [line('subvol', './snap', `uuid=${U} transid=9`), ...V1.map(([, l]) => l)]);
  });

  test('a version-2 incremental stream with every command (v2 DATA without a length) dumps line for line', () => {
    const all = [...V1, ...V2];
    const { lines, status, stderr } = dump(
      incrementalStream(
        'snap',
        U,
        9,
        P,
        7,
        all.map(([c]) => c),
        { version: 2 },
      ),
    );
    assert.equal(status, 0, stderr);
    assert.deepEqual(lines, [
      line('snapshot', './snap', `uuid=${U} transid=9 parent_uuid=${P} parent_transid=7`),
      ...all.map(([, l]) => l),
    ]);
  });

  test('a corrupt CRC is what btrfs receive calls a crc32 mismatch', () => {
    const { status, stderr } = dump(fullStream('snap', U, 9, [corruptCrc(cmd.mkfile('f'))]));
    assert.notEqual(status, 0);
    assert.match(stderr, /crc32 mismatch in command/);
  });

  test('btrfs receive skips an unknown command number without a word (so buttersink must not)', () => {
    const { lines, status } = dump(fullStream('snap', U, 9, [rawCommand(99, { path: '../x' }), cmd.mkfile('f')]));
    assert.equal(status, 0);
    assert.deepEqual(lines.slice(1), [line('mkfile', './snap/f')]);
  });
});

describe('send-stream-builder bytes', () => {
  test('CRC-32C: the standard check value with the standard inversions; btrfs uses seed 0 and no final xor', () => {
    const check = Buffer.from('123456789');
    assert.equal((crc32c(check, 0xffffffff) ^ 0xffffffff) >>> 0, 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0);
  });

  test('a command is u32 length, u16 command, u32 CRC over the command with the CRC zeroed, then TLVs', () => {
    const bytes = encodeCommand(cmd.truncate('ab', 258));
    assert.equal(bytes.readUInt32LE(0), bytes.length - 10);
    assert.equal(bytes.readUInt16LE(4), COMMAND_NUMBERS.truncate);
    const zeroed = Buffer.from(bytes);
    zeroed.writeUInt32LE(0, 6);
    assert.equal(bytes.readUInt32LE(6), crc32c(zeroed));
    assert.deepEqual(bytes.subarray(10), Buffer.from([15, 0, 2, 0, 0x61, 0x62, 4, 0, 8, 0, 2, 1, 0, 0, 0, 0, 0, 0]));
    assert.notEqual(encodeCommand(corruptCrc(cmd.truncate('ab', 258))).readUInt32LE(6), bytes.readUInt32LE(6));
  });

  test('in version 2 DATA is written last, with its type only, and runs to the end of the command', () => {
    const write = cmd.write('f', 0, 'payload');
    const v2 = encodeCommand({ ...write, attributes: { data: 'payload', path: 'f', fileOffset: 0 } }, 2);
    assert.deepEqual(v2.subarray(-9), Buffer.from([19, 0, ...Buffer.from('payload')]));
    const v1 = encodeCommand(write, 1);
    assert.deepEqual(v1.subarray(-11), Buffer.from([19, 0, 7, 0, ...Buffer.from('payload')]));
    for (const [version, stream] of [
      [1, encodeStream([write], 1)],
      [2, encodeStream([write], 2)],
    ] as const) {
      const decoded = decodeStream(stream);
      assert.equal(decoded.version, version);
      assert.equal(decoded.commands[0]!.attributes.get(ATTRIBUTE_NUMBERS.data)!.toString(), 'payload');
      assert.ok(decoded.commands[0]!.crcOk);
    }
  });

  test('raw TLVs and bytes that are not UTF-8 go out as given', () => {
    const bytes = encodeCommand(rawCommand(200, { path: Buffer.from([0x2e, 0x00, 0xff]) }, [{ type: 77, value: Buffer.from([1, 2]) }]));
    const [decoded] = decodeStream(Buffer.concat([encodeStream([]), bytes])).commands;
    assert.equal(decoded!.command, 200);
    assert.deepEqual(decoded!.attributes.get(ATTRIBUTE_NUMBERS.path), Buffer.from([0x2e, 0x00, 0xff]));
    assert.deepEqual(decoded!.attributes.get(77), Buffer.from([1, 2]));
  });
});
