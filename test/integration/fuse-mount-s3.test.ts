import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { freshDirectory, isMounted, mkdirAndWait, startMount, stopMounts, type RunningMount } from '../support/fuse-mount.js';
import { fuseSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';
import { s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import { treeDigest } from '../support/tree-digest.js';
import { closedPort, errnoOf, run, runAsync, sleep, uuidOf } from '../support/helpers.js';

// The mount and s3rver each run in a process of their own, so the synchronous fs calls and
// spawnSync below cannot deadlock anything served from this process.

const BUCKET = 'backups';
const suite = (() => {
  const fuse = fuseSuite();
  return fuse.skip ? fuse : s3Suite();
})();

describe('buttersink mount with an S3 store (s3rver on loopback) and local btrfs pools', suite, () => {
  let server: S3Server;
  let client: S3Client;
  let local: BtrfsPool;
  let restore: BtrfsPool;
  let env: NodeJS.ProcessEnv;
  let mount: RunningMount;
  let mnt: string;
  const mounts: RunningMount[] = [];
  const uuid: Record<string, string> = {};
  const snaps = (): string => `${local.mountPoint}/snaps`;
  const s3Url = `s3://${BUCKET}/host/`;

  before(async () => {
    server = await startS3Server([BUCKET]);
    client = server.client();
    local = createPool(1024);
    restore = createPool(512);
    const work = freshDirectory('work-s3-');
    env = {
      ...server.env,
      BUTTERSINK_CACHE_DIR: path.join(work, 'cache'),
      BUTTERSINK_RUN_DIR: path.join(work, 'run'),
      XDG_CONFIG_HOME: path.join(work, 'config'),
    };
    const data = makeRichSubvolume(local.mountPoint);
    snapshot(data, `${snaps()}/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${snaps()}/s2`);
    changeRichSubvolume(data, 2);
    snapshot(data, `${snaps()}/s3`);
    snapshot(data, `${snaps()}/daily/d1`);
    snapshot(data, `${snaps()}/solo`);
    for (const n of ['s1', 's2', 's3', 'daily/d1', 'solo']) uuid[n] = uuidOf(`${snaps()}/${n}`);
    // Big enough that its upload is still running when a test unmounts.
    sh(
      `btrfs -q subvolume create big && head -c 250000000 /dev/urandom > big/blob && btrfs -q subvolume snapshot -r big snaps/big`,
      local.mountPoint,
    );
    mkdirSync(`${restore.mountPoint}/snaps`);
    mount = await startMount(
      ['--store', `local=${snaps()}/`, '--store', `s3=${s3Url}`, '--store', `restore=${restore.mountPoint}/snaps/`, '--copy-idle', '1'],
      env,
    );
    mounts.push(mount);
    mnt = mount.mountPoint;
  });

  after(async () => {
    // Every mount goes, also when a test failed; then the server and the pools.
    await stopMounts(mounts);
    client?.destroy();
    await server?.stop();
    restore?.destroy();
    local?.destroy();
  });

  async function body(key: string): Promise<Buffer> {
    const answer = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await answer.Body!.transformToByteArray());
  }

  async function keys(prefix = ''): Promise<string[]> {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return (listed.Contents ?? []).map((o) => o.Key!).sort();
  }

  const status = (): string => readFileSync(`${mnt}/.buttersink/status`, 'utf8');
  const log = (): string => readFileSync(`${mnt}/.buttersink/log`, 'utf8');

  test('the S3 store is a directory; empty at first', () => {
    assert.deepEqual(readdirSync(mnt), ['.buttersink', 'local', 'restore', 's3']);
    assert.deepEqual(readdirSync(`${mnt}/s3`), []);
  });

  test('mkdir in the S3 store uploads the snapshot as a full stream under the original layout', async () => {
    mkdirAndWait(`${mnt}/s3/s1`);
    // The diff, and the index that makes it browsable (the original ButterSink skips it).
    assert.deepEqual(await keys('host/'), [`host/s1/${uuid.s1}_None`, `host/s1/${uuid.s1}_None.index.gz`]);
    assert.deepEqual(readdirSync(`${mnt}/s3`), ['s1']);
    assert.ok(statSync(`${mnt}/s3/s1`).isDirectory());
    await sleep(2500); // mkdir's copy window closes (idle 1 s): then the snapshot itself shows
    assert.deepEqual(
      treeDigest(`${mnt}/s3/s1`, { throughMount: true }),
      treeDigest(`${snaps()}/s1`, { throughMount: true }),
      'the S3 snapshot browses as the snapshot it holds: names, modes, owners, times, links, xattrs, bytes',
    );
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/s3/s1`)),
      'EEXIST',
    );
    assert.match(log(), /transfer s1: local -> s3 \(full/);
  });

  test('cp -r local/<snap> s3/ exits 0 and uploads an incremental diff from the parent S3 holds', async () => {
    const result = run('cp', ['-r', `${mnt}/local/s2`, `${mnt}/s3/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await keys('host/')).includes(`host/s2/${uuid.s2}_${uuid.s1}`), (await keys('host/')).join('\n'));
    assert.match(log(), /transfer s2: local -> s3 \(from s1/);
    await sleep(2500); // the copy window closes (idle 1 s)
    assert.match(log(), /copy into s3\/s2 finished: \d[\d.]* [KM]iB compared equal with the received snapshot/);
    assert.deepEqual(treeDigest(`${mnt}/s3/s2`, { throughMount: true }), treeDigest(`${snaps()}/s2`, { throughMount: true }));
  });

  test('reading a file whose data is corrupt in the bucket answers EIO with the reason in the status file; the rest reads', async () => {
    mkdirAndWait(`${mnt}/s3/s3`);
    const key = `host/s3/${uuid.s3}_${uuid.s2}`;
    assert.ok((await keys('host/')).includes(key), (await keys()).join('\n'));
    await sleep(2500); // mkdir's copy window closes
    const original = await body(key);
    // round-2.bin is new in s3: its bytes are in s3's diff (nothing read them yet). Flip one of them.
    const bytes = readFileSync(`${snaps()}/s3/round-2.bin`);
    const at = original.indexOf(bytes.subarray(0, 64));
    assert.ok(at > 0);
    const corrupt = Buffer.from(original);
    corrupt[at + 100]! ^= 0xff;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: corrupt }));
    try {
      const cat = run('cat', [`${mnt}/s3/s3/round-2.bin`]);
      assert.notEqual(cat.code, 0);
      assert.match(cat.stderr, /Input\/output error/);
      assert.match(status(), /round-2\.bin.*is corrupt: the write command at byte \d+ .*bad CRC32C/);
      // Files whose data is elsewhere in the chain still read.
      assert.deepEqual(readFileSync(`${mnt}/s3/s3/big.bin`), readFileSync(`${snaps()}/s3/big.bin`));
    } finally {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: original }));
    }
    assert.deepEqual(readFileSync(`${mnt}/s3/s3/round-2.bin`), bytes, 'once the object is whole again, the file reads');
  });

  test('cp -r of a nested name into S3: the listing shows the group and the snapshot in it', async () => {
    const result = run('cp', ['-r', `${mnt}/local/daily`, `${mnt}/s3/`]);
    assert.equal(result.code, 0, result.stderr);
    const stored = (await keys('host/daily/')).filter(
      (k) => k.startsWith(`host/daily/d1/${uuid['daily/d1']}_`) && !k.endsWith('.index.gz'),
    );
    assert.equal(stored.length, 1, (await keys()).join('\n'));
    await sleep(2500);
    assert.deepEqual(readdirSync(`${mnt}/s3`).sort(), ['daily', 's1', 's2', 's3']);
    assert.deepEqual(readdirSync(`${mnt}/s3/daily`), ['d1']);
  });

  test('S3 -> local: cp -r and mkdir restore from S3 byte for byte, and a later snapshot through its chain', async () => {
    // A mount where S3 is the only source, so the restore cannot come from the local pool.
    const only = await startMount(['--store', `s3=${s3Url}`, '--store', `restore=${restore.mountPoint}/snaps/`], env);
    mounts.push(only);
    try {
      const copied = run('cp', ['-r', `${only.mountPoint}/s3/s1`, `${only.mountPoint}/restore/`]);
      assert.equal(copied.code, 0, copied.stderr);
      assert.deepEqual(treeDigest(`${restore.mountPoint}/snaps/s1`), treeDigest(`${snaps()}/s1`));
      // s3 is stored only as a diff from s2, which is a diff from s1: the chain is replayed.
      mkdirAndWait(`${only.mountPoint}/restore/s3`);
      assert.deepEqual(treeDigest(`${restore.mountPoint}/snaps/s3`), treeDigest(`${snaps()}/s3`));
      // The chain's link s2 stays in the destination: it is the parent s3 was received onto.
      assert.deepEqual(readdirSync(`${only.mountPoint}/restore`).sort(), ['s1', 's2', 's3']);
      assert.deepEqual(treeDigest(`${restore.mountPoint}/snaps/s2`), treeDigest(`${snaps()}/s2`));
      await sleep(4000); // the copy window after mkdir (--copy-idle 3 s by default) closes
      assert.deepEqual(readdirSync(`${only.mountPoint}/restore/s3`).sort(), readdirSync(`${snaps()}/s3`).sort());
      assert.match(readFileSync(`${only.mountPoint}/.buttersink/log`, 'utf8'), /transfer s3: s3 -> restore/);
    } finally {
      await only.stop();
    }
    // The main mount shows what the other one restored once its listing is fresh again.
    assert.equal(
      errnoOf(() => mkdirSync(`${mnt}/restore/s1`)),
      'EEXIST',
    );
  });

  test('rm -r of a snapshot whose diff others depend on is EBUSY and deletes nothing', async () => {
    const before = await keys();
    // A bare rmdir answers ENOTEMPTY: the S3 snapshot shows its files.
    assert.equal(
      errnoOf(() => rmdirSync(`${mnt}/s3/s1`)),
      'ENOTEMPTY',
    );
    const removed = run('rm', ['-r', `${mnt}/s3/s1`]);
    assert.equal(removed.code, 1);
    assert.match(removed.stderr, /Device or resource busy/);
    assert.match(
      status(),
      /refusing to delete s1 from s3:\/\/backups\/host\/: s2 is stored as diffs from it \(delete it first, or keep s1\)/,
    );
    assert.equal(run('rm', ['-r', `${mnt}/s3/s2`]).code, 1, 'rm -r of s2 fails too (s3 depends on it)');
    assert.deepEqual(await keys(), before);
    assert.ok(readdirSync(`${mnt}/s3`).includes('s1'));
    assert.ok(readdirSync(`${mnt}/s3`).includes('s2'));
  });

  test('rm -r in the S3 store moves the objects (diffs and indexes) to trash/; then the parent may go', async () => {
    const nested = run('rm', ['-r', `${mnt}/s3/daily`]);
    assert.equal(nested.code, 0, nested.stderr);
    assert.deepEqual(await keys('host/daily/'), []);
    // The diff and its index.
    assert.equal((await keys('trash/host/daily/')).length, 2);
    const s3key = `host/s3/${uuid.s3}_${uuid.s2}`;
    const removed = run('rm', ['-r', `${mnt}/s3/s3`]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!(await keys('host/')).includes(s3key));
    assert.ok((await keys('trash/')).includes(`trash/${s3key}`));
    assert.ok((await keys('trash/')).includes(`trash/${s3key}.index.gz`));
    assert.ok(!readdirSync(`${mnt}/s3`).includes('s3'));
    // Nothing needs s2 any more.
    const result = run('rm', ['-r', `${mnt}/s3/s2`]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await keys('trash/')).includes(`trash/host/s2/${uuid.s2}_${uuid.s1}`));
    assert.deepEqual(readdirSync(`${mnt}/s3`).sort(), ['s1']);
    assert.ok(existsSync(`${snaps()}/s2`), 'the local source is untouched');
  });

  test('unmounting while an upload to S3 runs aborts it: nothing shows in the bucket; a later mkdir completes it', async () => {
    const other = await startMount(['--store', `local=${snaps()}/`, '--store', `s3=${s3Url}`], env);
    mounts.push(other);
    try {
      const upload = runAsync('cp', ['-r', '--attributes-only', `${other.mountPoint}/local/big`, `${other.mountPoint}/s3/`]);
      const otherStatus = (): string => readFileSync(`${other.mountPoint}/.buttersink/status`, 'utf8');
      for (let waited = 0; !/transfers in progress \(1\)/.test(otherStatus()); waited += 20) {
        assert.ok(waited < 30_000, `the upload did not start:\n${otherStatus()}`);
        await sleep(20);
      }
      const stopped = cli(['umount', other.mountPoint], { env });
      assert.equal(stopped.code, 0, `${stopped.stderr}\nmount output:\n${other.output()}`);
      const result = await upload;
      assert.notEqual(result.code, 0, 'the interrupted copy must not succeed');
      assert.match(result.stderr, /Interrupted system call/, 'EINTR, as documented');
      assert.ok(!isMounted(other.mountPoint));
      assert.deepEqual(await keys('host/big'), [], 'no object of the aborted upload is visible');
    } finally {
      await other.stop();
    }
    // A new mount (same cache directory) finishes it; then it goes to the trash again.
    const again = await startMount(['--store', `local=${snaps()}/`, '--store', `s3=${s3Url}`], env);
    mounts.push(again);
    try {
      mkdirAndWait(`${again.mountPoint}/s3/big`);
      const big = `host/big/${uuidOf(`${snaps()}/big`)}_None`;
      assert.deepEqual(await keys('host/big/'), [big, `${big}.index.gz`]);
      rmdirSync(`${again.mountPoint}/s3/big`);
      assert.deepEqual(await keys('host/big/'), []);
    } finally {
      await again.stop();
    }
  });

  test('an S3 store that cannot be reached fails the mount; with --no-check-stores it answers EIO with the reason, the other stores still work', async () => {
    const port = await closedPort();
    const downEnv = { ...env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` };
    const mountPoint = path.join(freshDirectory('s3-down-'), 'mnt');
    mkdirSync(mountPoint);
    const refused = cli(['mount', '--store', `local=${snaps()}/`, '--store', `s3=${s3Url}`, mountPoint], { env: downEnv });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^buttersink: cannot mount: store s3 \(s3:\/\/backups\/host\/\): .*127\.0\.0\.1:\d+/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.ok(!isMounted(mountPoint));
    const down = await startMount(['--no-check-stores', '--store', `local=${snaps()}/`, '--store', `s3=${s3Url}`], downEnv);
    mounts.push(down);
    try {
      const started = Date.now();
      assert.deepEqual(readdirSync(down.mountPoint), ['.buttersink', 'local', 's3'], 'the root needs no listing');
      assert.equal(
        errnoOf(() => readdirSync(`${down.mountPoint}/s3`)),
        'EIO',
      );
      assert.ok(Date.now() - started < 30_000, `the failed listing took ${Date.now() - started} ms`);
      const downStatus = readFileSync(`${down.mountPoint}/.buttersink/status`, 'utf8');
      assert.match(downStatus, /listing s3 \(s3:\/\/backups\/host\/\)/);
      assert.match(downStatus, /127\.0\.0\.1:\d+/, 'the reason names the endpoint');
      assert.equal(
        errnoOf(() => mkdirSync(`${down.mountPoint}/s3/solo`)),
        'EIO',
      );
      // A name no reachable store has might be in S3: EIO with the reason, not EPERM.
      assert.equal(
        errnoOf(() => mkdirSync(`${down.mountPoint}/local/only-in-s3`)),
        'EIO',
      );
      assert.match(
        readFileSync(`${down.mountPoint}/.buttersink/status`, 'utf8'),
        /no store that answered has a snapshot named only-in-s3; listing s3 \(s3:\/\/backups\/host\/\): .*ECONNREFUSED/,
      );
      assert.deepEqual(readdirSync(`${down.mountPoint}/local`).sort(), ['big', 'daily', 's1', 's2', 's3', 'solo']);
      assert.ok(readFileSync(`${down.mountPoint}/local/s1/dir with space/deeper/file`, 'utf8').length > 0);
    } finally {
      await down.stop();
    }
  });

  test('an S3 endpoint that accepts connections but never answers: ls is EIO after --store-timeout, with the reason', async () => {
    const held: net.Socket[] = [];
    const hole = net.createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    const { port } = hole.address() as net.AddressInfo;
    // The hole closes whatever happens: its held sockets would keep this test file alive.
    let hung: RunningMount | undefined;
    try {
      const mount = await startMount(
        ['--no-check-stores', '--store', `local=${snaps()}/`, '--store', `s3=${s3Url}`, '--store-timeout', '2'],
        {
          ...env,
          AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
        },
      );
      hung = mount;
      mounts.push(mount);
      const started = Date.now();
      assert.equal(
        errnoOf(() => readdirSync(`${mount.mountPoint}/s3`)),
        'EIO',
      );
      const took = Date.now() - started;
      assert.ok(took >= 1500 && took < 15_000, `answered after ${took} ms`);
      assert.match(
        readFileSync(`${mount.mountPoint}/.buttersink/status`, 'utf8'),
        /listing s3 \(s3:\/\/backups\/host\/\): no answer within 2 s/,
      );
      assert.ok(readdirSync(`${mount.mountPoint}/local`).includes('s1'), 'the local store still answers');
    } finally {
      await hung?.stop();
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => hole.close(resolve));
    }
    assert.ok(hung !== undefined && !isMounted(hung.mountPoint));
  });

  // Last: it stops the S3 server under the main mount.
  test('S3 going down under a running mount: mkdir and rmdir are EIO with the reason; local stores still work', async () => {
    await server.stop();
    assert.equal(
      errnoOf(() => mkdirAndWait(`${mnt}/s3/solo`)),
      'EIO',
    );
    assert.match(status(), /s3/);
    assert.equal(
      errnoOf(() => rmdirSync(`${mnt}/s3/s1`)),
      'EIO',
    );
    assert.ok(readdirSync(`${mnt}/local`).includes('solo'));
    mkdirAndWait(`${mnt}/restore/solo`);
    assert.deepEqual(treeDigest(`${restore.mountPoint}/snaps/solo`), treeDigest(`${snaps()}/solo`));
  });
});
