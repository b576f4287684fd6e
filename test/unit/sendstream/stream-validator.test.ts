import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import type { EntryKind, SourceTree } from '../../../src/sendstream/path-model.js';
import { RefusedStreamError, StreamValidator, type ReceiveScope } from '../../../src/sendstream/stream-validator.js';
import { chunks, command, streamHeader, tlv, u64, uuidBytes } from './stream-builder.js';

const C = {
  subvol: 1,
  snapshot: 2,
  mkfile: 3,
  mkdir: 4,
  mknod: 5,
  symlink: 8,
  rename: 9,
  link: 10,
  unlink: 11,
  setXattr: 13,
  write: 15,
  clone: 16,
  truncate: 17,
  chmod: 18,
  chown: 19,
  end: 21,
  updateExtent: 22,
  fallocate: 23,
} as const;
const A = {
  uuid: 1,
  ctransid: 2,
  ino: 3,
  size: 4,
  mode: 5,
  uid: 6,
  gid: 7,
  rdev: 8,
  xattrName: 13,
  xattrData: 14,
  path: 15,
  pathTo: 16,
  pathLink: 17,
  offset: 18,
  data: 19,
  cloneUuid: 20,
  cloneCtransid: 21,
  clonePath: 22,
  cloneOffset: 23,
  cloneLen: 24,
} as const;

const dashed = (b: Buffer): string => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const SELF = uuidBytes(1);
const PARENT = uuidBytes(2);
const OTHER = uuidBytes(3);

const cmd = {
  subvol: (uuid = SELF) => command(C.subvol, [tlv(A.path, 'snap'), tlv(A.uuid, uuid), tlv(A.ctransid, u64(5))]),
  snapshot: (parent = PARENT, uuid = SELF) =>
    command(C.snapshot, [
      tlv(A.path, 'snap'),
      tlv(A.uuid, uuid),
      tlv(A.ctransid, u64(5)),
      tlv(A.cloneUuid, parent),
      tlv(A.cloneCtransid, u64(4)),
    ]),
  mkfile: (path: string) => command(C.mkfile, [tlv(A.path, path), tlv(A.ino, u64(257))]),
  mkdir: (path: string) => command(C.mkdir, [tlv(A.path, path), tlv(A.ino, u64(258))]),
  mknod: (path: string, mode: number) =>
    command(C.mknod, [tlv(A.path, path), tlv(A.ino, u64(259)), tlv(A.mode, u64(mode)), tlv(A.rdev, u64(0))]),
  symlink: (path: string, target: string) => command(C.symlink, [tlv(A.path, path), tlv(A.ino, u64(260)), tlv(A.pathLink, target)]),
  rename: (from: string, to: string) => command(C.rename, [tlv(A.path, from), tlv(A.pathTo, to)]),
  link: (path: string, existing: string) => command(C.link, [tlv(A.path, path), tlv(A.pathLink, existing)]),
  write: (path: string, data = Buffer.from('payload')) => command(C.write, [tlv(A.path, path), tlv(A.offset, u64(0)), tlv(A.data, data)]),
  truncate: (path: string) => command(C.truncate, [tlv(A.path, path), tlv(A.size, u64(0))]),
  chmod: (path: string) => command(C.chmod, [tlv(A.path, path), tlv(A.mode, u64(0o4755))]),
  chown: (path: string) => command(C.chown, [tlv(A.path, path), tlv(A.uid, u64(0)), tlv(A.gid, u64(0))]),
  setXattr: (path: string) => command(C.setXattr, [tlv(A.path, path), tlv(A.xattrName, 'user.x'), tlv(A.xattrData, 'y')]),
  clone: (path: string, source: Buffer, sourcePath: string) =>
    command(C.clone, [
      tlv(A.path, path),
      tlv(A.offset, u64(0)),
      tlv(A.cloneLen, u64(4096)),
      tlv(A.cloneUuid, source),
      tlv(A.cloneCtransid, u64(4)),
      tlv(A.clonePath, sourcePath),
      tlv(A.cloneOffset, u64(0)),
    ]),
  end: () => command(C.end, []),
};

function tree(entries: Record<string, EntryKind>): SourceTree {
  return { kindOf: async (relative) => (relative === '' ? 'directory' : (entries[relative] ?? 'missing')) };
}

function scope(options: { parent?: Buffer | null; sources?: [Buffer, SourceTree][]; unsafe?: [Buffer, string][] } = {}): ReceiveScope {
  const parent = options.parent === undefined ? null : options.parent;
  return {
    uuid: dashed(SELF),
    parentUuid: parent === null ? null : dashed(parent),
    sources: new Map((options.sources ?? [[PARENT, tree({})]]).map(([u, t]) => [dashed(u), t])),
    unsafe: new Map((options.unsafe ?? []).map(([u, why]) => [dashed(u), why])),
  };
}

/** Runs `stream` through a validator in `size`-byte chunks; resolves with what came out and the error, if any. */
async function validate(stream: Buffer, s: ReceiveScope, size = 65536): Promise<{ out: Buffer; error?: Error }> {
  const out: Buffer[] = [];
  try {
    await pipeline(
      Readable.from(chunks(stream, size)),
      new StreamValidator(s),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    return { out: Buffer.concat(out) };
  } catch (error) {
    return { out: Buffer.concat(out), error: error as Error };
  }
}

const full = (...body: Buffer[]): Buffer => Buffer.concat([streamHeader(), cmd.subvol(), ...body, cmd.end()]);
const incremental = (...body: Buffer[]): Buffer => Buffer.concat([streamHeader(), cmd.snapshot(), ...body, cmd.end()]);

async function refused(stream: Buffer, s: ReceiveScope, reason: RegExp): Promise<void> {
  const { out, error } = await validate(stream, s);
  assert.ok(error instanceof RefusedStreamError, `expected a refusal, got ${error?.message ?? 'success'}`);
  assert.match(error.message, reason);
  assert.match(error.message, /^the stream was refused: /);
  // Only whole, checked commands went on: what came out is a prefix of the stream without its END.
  assert.ok(stream.subarray(0, out.length).equals(out) && out.length < stream.length, 'passed on more than the checked commands');
}

describe('StreamValidator: honest streams pass unchanged', () => {
  const honest = full(
    cmd.mkdir('d'),
    cmd.mkfile('d/f'),
    cmd.write('d/f', Buffer.alloc(100_000 - 100_000 + 40_000, 7)),
    cmd.symlink('d/lnk', '/etc/passwd'),
    cmd.chown('d/lnk'),
    cmd.setXattr('d/lnk'),
    cmd.mkfile('o261-7-0'),
    cmd.rename('o261-7-0', 'd/g'),
    cmd.link('d/h', 'd/g'),
    cmd.clone('d/g', SELF, 'd/f'),
    cmd.chmod(''),
    cmd.chown(''),
  );

  for (const size of [1, 7, 4096, 1 << 20]) {
    test(`a full stream with files, links, renames, clones and root attributes, in ${size}-byte chunks`, async () => {
      const { out, error } = await validate(honest, scope(), size);
      assert.equal(error, undefined);
      assert.ok(out.equals(honest));
    });
  }

  test('an incremental stream from the announced parent, writing where the parent has directories', async () => {
    const stream = incremental(cmd.write('dir/file'), cmd.rename('dir', 'renamed'), cmd.truncate('renamed/file'));
    const { out, error } = await validate(
      stream,
      scope({ parent: PARENT, sources: [[PARENT, tree({ dir: 'directory', 'dir/file': 'file' })]] }),
    );
    assert.equal(error, undefined);
    assert.ok(out.equals(stream));
  });
});

describe('StreamValidator: what a stream must be', () => {
  test('a stream creating another snapshot than the requested one is refused', () =>
    refused(Buffer.concat([streamHeader(), cmd.subvol(OTHER), cmd.end()]), scope(), /creates snapshot .* not the requested/));
  test('a full stream where an incremental was announced is refused, and the reverse', async () => {
    await refused(full(), scope({ parent: PARENT }), /full stream, but an incremental one/);
    await refused(incremental(), scope(), /incremental stream from .*, but a full one/);
  });
  test('a parent other than the announced one is refused', () =>
    refused(
      Buffer.concat([streamHeader(), cmd.snapshot(OTHER), cmd.end()]),
      scope({
        parent: PARENT,
        sources: [
          [PARENT, tree({})],
          [OTHER, tree({})],
        ],
      }),
      /its parent .* not the announced/,
    ));
  test('a parent outside the receiving directory is refused, with the reason when it is known', async () => {
    await refused(incremental(), scope({ parent: PARENT, sources: [] }), /not a read-only snapshot of the receiving directory/);
    await refused(
      incremental(),
      scope({ parent: PARENT, sources: [], unsafe: [[PARENT, '2 subvolumes carry it']] }),
      /2 subvolumes carry it/,
    );
  });
  test('a second subvol command, and anything after END, are refused', async () => {
    await refused(Buffer.concat([streamHeader(), cmd.subvol(), cmd.subvol(), cmd.end()]), scope(), /second subvolume/);
    await refused(Buffer.concat([full(), streamHeader(), cmd.subvol(), cmd.end()]), scope(), /data after its end command/);
  });
  test('a stream that does not start with subvol/snapshot is refused', () =>
    refused(Buffer.concat([streamHeader(), cmd.mkfile('x'), cmd.end()]), scope(), /does not start with a subvol or snapshot/));
  test('a cut stream is refused at its end', async () => {
    const { error } = await validate(Buffer.concat([streamHeader(), cmd.subvol(), cmd.mkfile('x')]), scope());
    assert.match(String(error?.message), /cut \(no end command\)/);
    const { error: inside } = await validate(full().subarray(0, -3), scope());
    assert.match(String(inside?.message), /cut inside a command|no end command/);
  });
  test('a bad CRC, an unknown command, a version 3 stream and update_extent are refused', async () => {
    const bad = cmd.mkfile('x');
    bad.writeUInt32LE((bad.readUInt32LE(6) ^ 1) >>> 0, 6);
    await refused(full(bad), scope(), /bad CRC/);
    await refused(full(command(23, [tlv(A.path, 'x')])), scope(), /unknown command 23 for a version 1 stream/);
    await refused(full(command(C.updateExtent, [tlv(A.path, 'x'), tlv(A.offset, u64(0)), tlv(A.size, u64(1))])), scope(), /--no-data/);
    const v3 = Buffer.concat([streamHeader(3), cmd.subvol(), cmd.end()]);
    await refused(v3, scope(), /version 3 is not supported/);
  });
  test('an oversized command is refused before it is buffered', async () => {
    const head = Buffer.alloc(10);
    head.writeUInt32LE(64 << 20, 0);
    head.writeUInt16LE(C.write, 4);
    await refused(Buffer.concat([streamHeader(), cmd.subvol(), head, Buffer.alloc(1000)]), scope(), /larger than any btrfs send produces/);
  });
  test('a repeated attribute is refused (btrfs-progs would take the last one)', () =>
    refused(full(command(C.mkfile, [tlv(A.path, 'ok'), tlv(A.ino, u64(1)), tlv(A.path, '../x')])), scope(), /repeats attribute 15/));
});

describe('StreamValidator: paths stay inside the new subvolume', () => {
  for (const [label, path] of [
    ['..', '../x'],
    ['.. inside', 'a/../../x'],
    ['absolute', '/etc/passwd'],
    ['.', './x'],
    ['empty component', 'a//b'],
    ['trailing slash', 'a/'],
  ] as const) {
    test(`a path with ${label} is refused in every path-taking attribute`, async () => {
      await refused(full(cmd.mkfile(path)), scope(), /absolute or has an empty/);
      await refused(full(cmd.mkfile('ok'), cmd.rename('ok', path)), scope(), /absolute or has an empty/);
      await refused(full(cmd.mkfile('ok'), cmd.link(path, 'ok')), scope(), /absolute or has an empty/);
      await refused(full(cmd.mkfile('ok'), cmd.link('new', path)), scope(), /absolute or has an empty/);
      await refused(full(cmd.mkfile('ok'), cmd.clone('ok', SELF, path)), scope(), /absolute or has an empty/);
    });
  }
  test('NUL bytes, names over NAME_MAX and paths over PATH_MAX are refused', async () => {
    await refused(full(cmd.mkfile('ok\0/../../x')), scope(), /NUL byte/);
    await refused(full(cmd.mkfile('n'.repeat(256))), scope(), /longer than NAME_MAX/);
    await refused(full(cmd.mkfile(Array.from({ length: 30 }, () => 'd'.repeat(200)).join('/'))), scope(), /longer than PATH_MAX/);
  });
  test('the empty path (the subvolume root) is refused where it makes no sense', () => refused(full(cmd.write('')), scope(), /empty path/));
  test('mknod of a link or directory type is refused', () => refused(full(cmd.mknod('x', 0o120777)), scope(), /unsupported file type/));
});

describe('StreamValidator: no path goes through a symbolic link', () => {
  test('a file written through a link the stream made is refused (as prefix and as the opened file)', async () => {
    await refused(full(cmd.symlink('lnk', '/etc'), cmd.mkfile('lnk/sudoers')), scope(), /goes through "lnk", a symbolic link/);
    await refused(full(cmd.symlink('lnk', '/etc/passwd'), cmd.write('lnk')), scope(), /"lnk" is a symbolic link, which write would follow/);
    await refused(full(cmd.symlink('lnk', '/etc/passwd'), cmd.truncate('lnk')), scope(), /truncate would follow/);
    await refused(full(cmd.symlink('lnk', '/etc/passwd'), cmd.chmod('lnk')), scope(), /chmod would follow/);
    await refused(full(cmd.symlink('lnk', '/etc/passwd'), cmd.mkfile('lnk')), scope(), /mkfile would follow/);
  });
  test('after a rename of the link, of its directory, and through a hard link of it', async () => {
    await refused(full(cmd.symlink('lnk', '/etc'), cmd.rename('lnk', 'moved'), cmd.mkfile('moved/x')), scope(), /"moved", a symbolic link/);
    await refused(
      full(cmd.mkdir('d'), cmd.symlink('d/lnk', '/etc'), cmd.rename('d', 'e'), cmd.write('e/lnk/x')),
      scope(),
      /"e\/lnk", a symbolic link/,
    );
    await refused(full(cmd.symlink('lnk', '/etc'), cmd.link('hard', 'lnk'), cmd.mkfile('hard/x')), scope(), /"hard", a symbolic link/);
  });
  test('a link inherited from the parent snapshot is refused as a prefix and as a written file', async () => {
    const s = scope({ parent: PARENT, sources: [[PARENT, tree({ lnk: 'symlink', d: 'directory', 'd/inner': 'symlink' })]] });
    await refused(incremental(cmd.write('lnk')), s, /"lnk" is a symbolic link/);
    await refused(incremental(cmd.mkfile('d/inner/x')), s, /"d\/inner", a symbolic link/);
    await refused(incremental(cmd.rename('d', 'o300-1-0'), cmd.mkfile('o300-1-0/inner/x')), s, /"o300-1-0\/inner", a symbolic link/);
  });
  test('the metadata of a link itself may change (lchown, lsetxattr): nothing is followed', async () => {
    const { error } = await validate(full(cmd.symlink('lnk', '/etc/passwd'), cmd.chown('lnk'), cmd.setXattr('lnk')), scope());
    assert.equal(error, undefined);
  });
  test('clone sources: another snapshot must be in scope, and no link on the way in it or in the new subvolume', async () => {
    await refused(full(cmd.mkfile('f'), cmd.clone('f', OTHER, 'x')), scope(), /clone source .* is not a read-only snapshot/);
    const s = scope({ sources: [[OTHER, tree({ lnk: 'symlink', d: 'directory', 'd/f': 'file' })]] });
    await refused(full(cmd.mkfile('f'), cmd.clone('f', OTHER, 'lnk/shadow')), s, /clone source path "lnk" in .* is a symbolic link/);
    await refused(full(cmd.mkfile('f'), cmd.clone('f', OTHER, 'lnk')), s, /clone source path "lnk" in .* is a symbolic link/);
    await refused(
      full(cmd.mkfile('f'), cmd.symlink('lnk', '/etc/shadow'), cmd.clone('f', SELF, 'lnk')),
      s,
      /clone source "lnk" is a symbolic link/,
    );
    const { error } = await validate(full(cmd.mkfile('f'), cmd.clone('f', OTHER, 'd/f')), s);
    assert.equal(error, undefined);
  });
});

describe('StreamValidator: answers from a source tree are confirmed before what they allowed goes on', () => {
  test('a parent snapshot that went away mid-stream refuses the stream, and nothing checked against it passes', async () => {
    let confirms = 0;
    const vanishing: SourceTree = {
      kindOf: async () => 'missing',
      confirm: async () => {
        confirms++;
        throw new Error('the snapshot went away');
      },
    };
    const stream = incremental(cmd.mkfile('new'), cmd.write('new'));
    const { out, error } = await validate(stream, scope({ parent: PARENT, sources: [[PARENT, vanishing]] }));
    assert.ok(error instanceof RefusedStreamError);
    assert.match(error.message, /could not be checked: the snapshot went away/);
    assert.ok(confirms >= 1);
    assert.equal(out.length, 0, 'nothing may go on unconfirmed');
  });
});
