import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CopyWindow, finalNameOf, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, WindowError } from '../../../src/fuse/copy-window.js';

/** A window over a "received snapshot" held in memory, with a clock the test moves. */
function windowOver(files: Record<string, Buffer | null>) {
  const clock = { t: 1_000_000 };
  const window = new CopyWindow({
    now: () => clock.t,
    root: { mode: 0o755, uid: 0, gid: 0 },
    readReceived: async (relative, offset, length) => {
      const file = files[relative];
      if (file === null) return null;
      if (file === undefined) return Buffer.alloc(0);
      return file.subarray(offset, offset + length);
    },
  });
  return { window, clock };
}

function errno(code: string) {
  return (e: unknown) => e instanceof WindowError && e.errno === code;
}

describe('CopyWindow: the scratch tree cp -r writes into', () => {
  test('starts empty; creates and mkdirs appear at once with what was set', () => {
    const { window } = windowOver({});
    assert.deepEqual(window.list(''), []);
    window.mkdir('dir', 0o700);
    window.create('dir/file', 0o640);
    window.symlink('link', 'dir/file');
    window.mknod('fifo', 0o010644);
    assert.deepEqual(window.list(''), ['dir', 'fifo', 'link']);
    assert.deepEqual(window.list('dir'), ['file']);
    assert.equal(window.lookup('dir')!.mode, S_IFDIR | 0o700);
    assert.equal(window.lookup('dir/file')!.mode, S_IFREG | 0o640);
    assert.equal(window.lookup('link')!.mode & S_IFMT, S_IFLNK);
    assert.equal(window.lookup('link')!.target, 'dir/file');
    assert.equal(window.lookup('fifo')!.mode, 0o010644);
  });

  test('an entry already there is EEXIST (cp opens with O_EXCL); a missing parent is ENOENT', () => {
    const { window } = windowOver({});
    window.create('a', 0o644);
    assert.throws(() => window.create('a', 0o644), errno('EEXIST'));
    assert.throws(() => window.mkdir('a', 0o755), errno('EEXIST'));
    assert.throws(() => window.create('missing/b', 0o644), errno('ENOENT'));
    assert.throws(() => window.create('a/b', 0o644), errno('ENOTDIR'));
  });

  test('writes equal to the received file pass and count as verified; size follows', async () => {
    const { window } = windowOver({ f: Buffer.from('hello world') });
    window.create('f', 0o644);
    await window.write('f', 0, Buffer.from('hello'));
    await window.write('f', 5, Buffer.from(' world'));
    assert.equal(window.lookup('f')!.size, 11);
    assert.equal(window.verifiedBytes, 11);
    assert.equal(window.mismatch, undefined);
  });

  test('a byte that differs is EIO, and the mismatch is kept for the status file', async () => {
    const { window } = windowOver({ f: Buffer.from('hello world') });
    window.create('f', 0o644);
    await assert.rejects(window.write('f', 6, Buffer.from('WORLD')), errno('EIO'));
    assert.match(window.mismatch!, /f differs from the received snapshot at byte 6/);
  });

  test('writing past the received end, or a file the snapshot lacks, is EIO', async () => {
    const { window } = windowOver({ f: Buffer.from('abc') });
    window.create('f', 0o644);
    await assert.rejects(window.write('f', 2, Buffer.from('cd')), errno('EIO'));
    window.create('extra', 0o644);
    await assert.rejects(window.write('extra', 0, Buffer.from('x')), errno('EIO'));
  });

  test('a store that cannot read the file (S3) compares nothing and accepts the bytes', async () => {
    const { window } = windowOver({ f: null });
    window.create('f', 0o644);
    await window.write('f', 0, Buffer.from('anything'));
    assert.equal(window.verifiedBytes, 0);
    assert.equal(window.lookup('f')!.size, 8);
  });

  test('chmod, chown, utimens, truncate and xattrs are recorded; chmod keeps the type', () => {
    const { window } = windowOver({});
    window.create('f', 0o600);
    window.chmod('f', 0o4755);
    window.chown('f', 1234, 0xffffffff);
    window.truncate('f', 50_000_000);
    window.utimens('f', 111, 222);
    window.setxattr('f', 'user.note', Buffer.from('v'));
    const f = window.lookup('f')!;
    assert.equal(f.mode, S_IFREG | 0o4755);
    assert.equal(f.uid, 1234);
    assert.equal(f.gid, 0, 'gid -1 leaves it');
    assert.equal(f.atime, 111);
    assert.equal(f.mtime, 222);
    assert.equal(f.size, 50_000_000);
    assert.deepEqual([...f.xattrs.keys()], ['user.note']);
    assert.ok(window.removexattr('f', 'user.note'));
    assert.ok(!window.removexattr('f', 'user.note'));
    window.chmod('', 0o700);
    assert.equal(window.lookup('')!.mode, S_IFDIR | 0o700);
    assert.throws(() => window.chmod('nope', 0o700), errno('ENOENT'));
  });

  test('unlink and rmdir remove what the copy made; a non-empty directory stays', () => {
    const { window } = windowOver({});
    window.mkdir('d', 0o755);
    window.create('d/f', 0o644);
    assert.throws(() => window.remove('d', true), errno('ENOTEMPTY'));
    assert.throws(() => window.remove('d', false), errno('EISDIR'));
    assert.throws(() => window.remove('d/f', true), errno('ENOTDIR'));
    window.remove('d/f', false);
    window.remove('d', true);
    assert.deepEqual(window.list(''), []);
  });

  test('goes idle after the delay without operations, but not while a file is open or a write runs', async () => {
    let release: (b: Buffer) => void = () => {};
    const clock = { t: 0 };
    const window = new CopyWindow({
      now: () => clock.t,
      root: { mode: 0o755, uid: 0, gid: 0 },
      readReceived: () => new Promise<Buffer>((resolve) => (release = resolve)),
    });
    assert.ok(!window.isIdle(3000));
    clock.t = 3000;
    assert.ok(window.isIdle(3000));
    window.create('f', 0o644);
    window.hold();
    clock.t = 10_000;
    assert.ok(!window.isIdle(3000), 'an open file keeps it');
    window.letGo();
    assert.ok(!window.isIdle(3000), 'letting go is activity too');
    const writing = window.write('f', 0, Buffer.from('x'));
    clock.t = 20_000;
    assert.ok(!window.isIdle(3000), 'a write being compared keeps it');
    release(Buffer.from('x'));
    await writing;
    clock.t = 23_000;
    assert.ok(window.isIdle(3000));
  });

  test('rsync: a temporary .NAME.XXXXXX is compared with the received NAME and renamed into place', async () => {
    const { window } = windowOver({ 'dir/data.bin': Buffer.from('hello world') });
    window.mkdir('dir', 0o755);
    window.create('dir/.data.bin.a1B2c3', 0o600);
    await window.write('dir/.data.bin.a1B2c3', 0, Buffer.from('hello '));
    await window.write('dir/.data.bin.a1B2c3', 6, Buffer.from('world'));
    assert.equal(window.verifiedBytes, 11);
    window.rename('dir/.data.bin.a1B2c3', 'dir/data.bin');
    assert.deepEqual(window.list('dir'), ['data.bin']);
    assert.equal(window.lookup('dir/data.bin')!.size, 11);
    assert.equal(window.mismatch, undefined);
  });

  test('rsync: wrong bytes under a temporary name are EIO naming the final file; renaming elsewhere than compared is EIO', async () => {
    const { window } = windowOver({ 'a.bin': Buffer.from('aaaa'), 'b.bin': Buffer.from('bbbb') });
    window.create('.a.bin.XXXXXX', 0o600);
    await assert.rejects(window.write('.a.bin.XXXXXX', 0, Buffer.from('zzzz')), errno('EIO'));
    window.create('.b.bin.YYYYYY', 0o600);
    await window.write('.b.bin.YYYYYY', 0, Buffer.from('bbbb'));
    assert.throws(
      () => window.rename('.b.bin.YYYYYY', 'a.bin'),
      (e: unknown) => errno('EIO')(e) && /compared with the received snapshot's b\.bin, not with a\.bin/.test((e as Error).message),
    );
    window.rename('.b.bin.YYYYYY', 'b.bin');
    window.mkdir('d', 0o755);
    assert.throws(() => window.rename('d', 'e'), errno('EXDEV'), 'a directory is copied, not renamed');
    assert.equal(finalNameOf('dir/.new\nline.Ab12Cd'), 'dir/new\nline', 'names may hold newlines');
    assert.equal(finalNameOf('plain'), undefined);
  });

  test('each mismatch reports its own file, not the first one seen', async () => {
    const { window } = windowOver({ one: Buffer.from('1111'), two: Buffer.from('2222') });
    window.create('one', 0o644);
    window.create('two', 0o644);
    await assert.rejects(window.write('one', 0, Buffer.from('xxxx')), (e: unknown) => /^one differs/.test((e as Error).message));
    await assert.rejects(window.write('two', 2, Buffer.from('2x')), (e: unknown) =>
      /^two differs from the received snapshot at byte 3/.test((e as Error).message),
    );
    assert.match(window.mismatch!, /^one differs/, 'the status keeps the first');
  });
});
