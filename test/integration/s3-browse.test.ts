import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { DEFAULT_S3_SETTINGS } from '../../src/stores/s3/s3-settings.js';
import { CANNOT_BROWSE_FILE } from '../../src/stores/s3/s3-snapshot-files.js';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';
import { s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import { compareWithDirectory } from '../support/compare-trees.js';
import { makeRandomChain } from '../support/random-chain.js';
import { cmd, fullStream, newUuid } from '../support/send-stream-builder.js';

const BUCKET = 'browse';
const suite = (() => {
  const btrfs = btrfsSuite();
  return btrfs.skip ? btrfs : s3Suite();
})();

describe('S3 snapshots browsed from their indexes (s3rver on loopback, real btrfs)', suite, () => {
  let server: S3Server;
  let client: S3Client;
  let src: BtrfsPool;
  let root: string;
  let env: NodeJS.ProcessEnv;
  const snaps = (): string => `${src.mountPoint}/snaps`;
  const stores: S3Store[] = [];
  const storeAt = (prefix: string, cacheName = 'cache'): S3Store => {
    const store = new S3Store({
      url: `s3://${BUCKET}/${prefix}/`,
      bucket: BUCKET,
      prefix,
      settings: { ...DEFAULT_S3_SETTINGS, endpoint: server.endpoint, region: 'us-east-1' },
      cacheDirectory: path.join(root, cacheName),
      client: server.client(),
    });
    stores.push(store);
    return store;
  };

  before(async () => {
    server = await startS3Server([BUCKET]);
    client = server.client();
    src = createPool(512);
    root = mkdtempSync(path.join(server.directory, '..', 's3-browse-'));
    env = { ...server.env, BUTTERSINK_CACHE_DIR: path.join(root, 'cache') };
    const data = makeRichSubvolume(src.mountPoint);
    snapshot(data, `${snaps()}/s1`);
    changeRichSubvolume(data, 1);
    // A reflink copy of a file the parent holds: the incremental stream carries a clone.
    sh(
      'cp --reflink=always big.bin big-copy.bin && head -c 200000 /dev/urandom | dd of=big-copy.bin bs=1 seek=100000 conv=notrunc status=none',
      data,
    );
    snapshot(data, `${snaps()}/s2`);
    changeRichSubvolume(data, 2);
    snapshot(data, `${snaps()}/s3`);
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: server.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: server.env.AWS_SECRET_ACCESS_KEY,
    });
  });

  after(async () => {
    for (const store of stores) await store.close();
    client?.destroy();
    await server?.stop();
    src?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function keys(prefix: string): Promise<string[]> {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return (listed.Contents ?? []).map((o) => o.Key!).sort();
  }

  test('every snapshot of an uploaded chain browses as the real snapshot, from the index stored with each diff', async () => {
    const sent = cli([`${snaps()}/`, `s3://${BUCKET}/host/`], { env });
    assert.equal(sent.code, 0, sent.stderr);
    const stored = await keys('host/');
    assert.equal(stored.filter((k) => k.endsWith('.index.gz')).length, 3, stored.join('\n'));
    // A fresh store with an empty cache: the indexes come from the bucket.
    const store = storeAt('host', 'fresh-cache');
    await store.list();
    for (const name of ['s1', 's2', 's3']) {
      const files = store.snapshotFiles({ name });
      await files.readdir(''); // the first look inside loads the index (see the next test)
      assert.deepEqual(await compareWithDirectory(files, `${snaps()}/${name}`), [], name);
    }
  });

  test('a bucket without indexes (the original layout) browses too: the first look builds the index from the chain', async () => {
    const sent = cli([`${snaps()}/`, `s3://${BUCKET}/legacy/`], { env });
    assert.equal(sent.code, 0, sent.stderr);
    for (const key of (await keys('legacy/')).filter((k) => k.endsWith('.index.gz'))) {
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    }
    const store = storeAt('legacy', 'legacy-cache');
    await store.list();
    const files = store.snapshotFiles({ name: 's3' });
    // `ls -l` of the store stats every snapshot directory: that alone reads no chain.
    const root = await files.lstat('');
    assert.equal(root.mode & 0o170000, 0o040000);
    assert.deepEqual(
      (await keys('legacy/')).filter((k) => k.endsWith('.index.gz')),
      [],
    );
    await files.readdir('');
    assert.deepEqual(await compareWithDirectory(files, `${snaps()}/s3`), []);
    // ... and stores what it built, for the next reader.
    assert.equal((await keys('legacy/')).filter((k) => k.endsWith('.index.gz')).length, 3);
  });

  for (const seed of [11, 12]) {
    test(`random chain ${seed} (renames, deletes, hard links, reflinks, holes, xattrs, links, special files): every S3 snapshot equals the real one, with or without stored indexes`, async () => {
      const directory = `${src.mountPoint}/random-${seed}`;
      sh(`mkdir -p ${directory}`);
      const chain = makeRandomChain(directory, seed);
      const sent = cli([`${directory}/`, `s3://${BUCKET}/random-${seed}/`], { env });
      assert.equal(sent.code, 0, sent.stderr);
      const objects = (await keys(`random-${seed}/`)).filter((k) => !k.endsWith('.index.gz'));
      const streamBytes = (
        await Promise.all(
          objects.map(async (k) => (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }))).ContentLength ?? 0),
        )
      ).reduce((a, b) => a + b, 0);
      for (const [round, cache] of [
        ['indexes from the bucket', `random-${seed}-a`],
        ['indexes built from the chain', `random-${seed}-b`],
      ] as const) {
        if (round === 'indexes built from the chain') {
          for (const key of (await keys(`random-${seed}/`)).filter((k) => k.endsWith('.index.gz'))) {
            await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
          }
        }
        const store = storeAt(`random-${seed}`, cache);
        const listed = await store.list();
        assert.equal(listed.length, chain.length);
        for (const snapshot of chain) {
          const name = path.basename(snapshot);
          const files = store.snapshotFiles({ name });
          await files.readdir('');
          // The index keeps the sender's times, ctime too: all three equal the original's.
          assert.deepEqual(await compareWithDirectory(files, snapshot, { atime: true, ctime: true }), [], `${round}: ${name}`);
        }
        // Every file read whole and in pieces, yet no command was fetched twice: the bytes
        // fetched stay below the streams' own size.
        assert.ok(store.fetchedBytes <= streamBytes, `${round}: fetched ${store.fetchedBytes} of ${streamBytes} stream bytes`);
      }
    });
  }

  test('reading 1 MiB of a large snapshot fetches about that much, not the snapshot', async () => {
    const store = storeAt('host', 'fetch-cache');
    await store.list();
    const files = store.snapshotFiles({ name: 's3' });
    const before = store.fetchedBytes;
    const bytes = await files.read('big.bin', 1_000_000, 1024 * 1024);
    assert.deepEqual(bytes, readFileSync(`${snaps()}/s3/big.bin`).subarray(1_000_000, 1_000_000 + 1024 * 1024));
    const fetched = store.fetchedBytes - before;
    assert.ok(fetched < 2 * 1024 * 1024 + 4 * 1024 * 1024, `fetched ${fetched} bytes (read-ahead included)`);
  });

  test('a corrupted object answers EIO for the files whose data it holds, and everything else still reads', async () => {
    const sent = cli([`${snaps()}/s1`, `s3://${BUCKET}/rot/`], { env });
    assert.equal(sent.code, 0, sent.stderr);
    const [key] = (await keys('rot/')).filter((k) => !k.endsWith('.index.gz'));
    const answer = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key! }));
    const body = Buffer.from(await answer.Body!.transformToByteArray());
    const at = body.indexOf(readFileSync(`${snaps()}/s1/big.bin`).subarray(0, 64)); // in big.bin's first write
    assert.ok(at > 0);
    body[at + 10]! ^= 0xff;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key!, Body: body }));
    const corrupt: string[] = [];
    const store = new S3Store({
      url: `s3://${BUCKET}/rot/`,
      bucket: BUCKET,
      prefix: 'rot',
      settings: { ...DEFAULT_S3_SETTINGS, endpoint: server.endpoint, region: 'us-east-1' },
      cacheDirectory: path.join(root, 'cache'),
      client: server.client(),
      onCorrupt: (message) => corrupt.push(message),
    });
    stores.push(store);
    await store.list();
    const files = store.snapshotFiles({ name: 's1' });
    await assert.rejects(files.read('big.bin', 0, 4096), (error: NodeJS.ErrnoException) => error.code === 'EIO');
    assert.equal(corrupt.length, 1, corrupt.join('\n'));
    assert.deepEqual(await files.read('small.bin', 0, 5000), readFileSync(`${snaps()}/s1/small.bin`));
    assert.deepEqual((await files.readdir('')).sort(), readdirSync(`${snaps()}/s1`).sort());
  });

  test('a stream the index cannot serve (compressed extents) shows one file that says so, nothing that passes for the snapshot', async () => {
    const uuid = newUuid();
    const stream = fullStream(
      'packed',
      uuid,
      1,
      [
        cmd.mkfile('f', 257),
        cmd.encodedWrite('f', 0, { unencodedFileLen: 4096, unencodedLen: 4096, unencodedOffset: 0, compression: 2 }, 'x'),
      ],
      { version: 2 },
    );
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `packed/p1/${uuid}_None`, Body: stream }));
    const store = storeAt('packed');
    await store.list();
    const files = store.snapshotFiles({ name: 'p1' });
    assert.deepEqual(await files.readdir(''), [CANNOT_BROWSE_FILE]);
    const note = (await files.read(CANNOT_BROWSE_FILE, 0, 10_000)).toString();
    assert.match(note, /cannot be browsed here: the stream carries compressed extents/);
    assert.match(note, /buttersink sync s3:\/\/browse\/packed\/p1 /);
    await assert.rejects(files.lstat('f'), (error: NodeJS.ErrnoException) => error.code === 'ENOENT');
  });
});
