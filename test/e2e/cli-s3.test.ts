import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { cli, cliInBackground } from '../support/run-cli.js';
import { FaultProxy, s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import { treeDigest } from '../support/tree-digest.js';
import { uuidOf } from '../support/helpers.js';

const BUCKET = 'backups';
const suite = (() => {
  const btrfs = btrfsSuite();
  return btrfs.skip ? btrfs : s3Suite();
})();

/** Subvolumes in `dir` (a directory at the top of its pool) as the filesystem shows them, partial or not. */
function subvolumesIn(dir: string): string[] {
  const name = path.basename(dir);
  return execFileSync('btrfs', ['subvolume', 'list', dir], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^.* path /, ''))
    .filter((p) => p.startsWith(`${name}/`))
    .sort();
}

describe('buttersink with S3 stores (s3rver on loopback, real btrfs)', suite, () => {
  let server: S3Server;
  let client: S3Client;
  let src: BtrfsPool;
  let dst: BtrfsPool;
  let data: string;
  let root: string;
  let env: NodeJS.ProcessEnv;
  const snaps = (): string => `${src.mountPoint}/snaps`;
  const extraPools: BtrfsPool[] = [];
  /** A fresh destination pool, destroyed with the suite. */
  const ownPool = (): BtrfsPool => {
    const pool = createPool(256);
    extraPools.push(pool);
    return pool;
  };

  before(async () => {
    server = await startS3Server([BUCKET]);
    client = server.client();
    src = createPool(512);
    dst = createPool(512);
    root = mkdtempSync(path.join(server.directory, '..', 'cli-s3-'));
    env = { ...server.env, BUTTERSINK_CACHE_DIR: path.join(root, 'cache') };
    data = makeRichSubvolume(src.mountPoint);
    // Enough data for several 5 MiB parts.
    sh('head -c 14000000 /dev/urandom > data/big2.bin', src.mountPoint);
    snapshot(data, `${snaps()}/s1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${snaps()}/s2`);
  });

  after(async () => {
    for (const pool of extraPools) pool.destroy();
    client?.destroy();
    await server?.stop();
    src?.destroy();
    dst?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** The keys of these diffs with the index each upload stores next to its diff. */
  const indexed = (diffs: string[]): string[] => diffs.flatMap((k) => [k, `${k}.index.gz`]).sort();

  async function keys(prefix: string): Promise<string[]> {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return (listed.Contents ?? []).map((o) => o.Key!).sort();
  }

  async function body(key: string): Promise<Buffer> {
    const answer = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await answer.Body!.transformToByteArray());
  }

  test('local -> S3 -> a fresh pool: original layout, incremental second run, byte-for-byte restore', async () => {
    const [u1, u2] = [uuidOf(`${snaps()}/s1`), uuidOf(`${snaps()}/s2`)];
    const first = cli([`${snaps()}/`, `s3://${BUCKET}/host/`, '--part-size', '5'], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /sent 2 snapshots/);
    // Neither s3rver nor RGW over http (rgw_crypt_require_ssl=false) confirms the AES256 asked
    // for: one warning for the run, not one per upload.
    assert.equal(
      first.stderr.match(/warning: asked for server-side encryption \(AES256\) but the server does not say/g)?.length,
      1,
      first.stderr,
    );
    assert.deepEqual(await keys('host/'), indexed([`host/s1/${u1}_None`, `host/s2/${u2}_${u1}`]));

    // Every diff carries the SHA-256 of its stream (an index is checked by its own decoder).
    for (const key of (await keys('host/')).filter((k) => !k.endsWith('.index.gz'))) {
      const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.equal(
        head.Metadata?.['buttersink-sha256'],
        createHash('sha256')
          .update(await body(key))
          .digest('hex'),
        key,
      );
    }

    changeRichSubvolume(data, 2);
    snapshot(data, `${snaps()}/s3`);
    const u3 = uuidOf(`${snaps()}/s3`);
    const second = cli([`${snaps()}/`, `s3://${BUCKET}/host/`], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /sent 1 snapshot /);
    assert.deepEqual(await keys('host/'), indexed([`host/s1/${u1}_None`, `host/s2/${u2}_${u1}`, `host/s3/${u3}_${u2}`]));

    const listing = cli([`s3://${BUCKET}/host/`], { env });
    assert.equal(listing.code, 0, listing.stderr);
    assert.match(listing.stdout, /^s1 .* full$/m);
    assert.match(listing.stdout, /^s3 .* from s2$/m);

    mkdirSync(`${dst.mountPoint}/restore`);
    const restore = cli([`s3://${BUCKET}/host/`, `${dst.mountPoint}/restore/`], { env });
    assert.equal(restore.code, 0, restore.stderr);
    for (const name of ['s1', 's2', 's3']) {
      assert.deepEqual(treeDigest(`${dst.mountPoint}/restore/${name}`), treeDigest(`${snaps()}/${name}`), name);
    }
    const again = cli([`s3://${BUCKET}/host/`, `${dst.mountPoint}/restore/`], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /up to date \(3 snapshots\)/);
  });

  test('--rate-limit to and from S3: no faster than asked either way (a Throttle in the stream), byte for byte', () => {
    sh(
      `btrfs -q subvolume create rate-data && head -c 3145728 /dev/urandom > rate-data/blob && mkdir rate-src &&
       btrfs -q subvolume snapshot -r rate-data rate-src/r1`,
      src.mountPoint,
    );
    const timed = (args: string[]): number => {
      const started = performance.now();
      const res = cli(['-q', '--rate-limit', '1M', ...args], { env });
      assert.equal(res.code, 0, res.stderr);
      return (performance.now() - started) / 1000;
    };
    // Lower bounds only (a slow machine takes longer anyway): 3 MiB at 1 MiB/s, of which at
    // most a second's worth may go at once, cannot take under 2 s.
    const up = timed([`${src.mountPoint}/rate-src/`, `s3://${BUCKET}/rate/`]);
    assert.ok(up >= 2, `uploading 3 MiB at --rate-limit 1M took ${up.toFixed(2)} s`);
    const pool = ownPool();
    const down = timed([`s3://${BUCKET}/rate/`, `${pool.mountPoint}/`]);
    assert.ok(down >= 2, `restoring 3 MiB at --rate-limit 1M took ${down.toFixed(2)} s`);
    assert.deepEqual(treeDigest(`${pool.mountPoint}/r1`), treeDigest(`${src.mountPoint}/rate-src/r1`));
  });

  test('restoring one snapshot from S3 replays its chain', () => {
    // A pool of its own: the restores above hold the same chain, which makes parents ambiguous (next test).
    const pool = ownPool();
    mkdirSync(`${pool.mountPoint}/one`);
    const res = cli([`s3://${BUCKET}/host/s3`, `${pool.mountPoint}/one/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(treeDigest(`${pool.mountPoint}/one/s3`), treeDigest(`${snaps()}/s3`));
  });

  test('a second restore of a chain onto the same filesystem is refused: btrfs receive could take the other copy as parent', () => {
    // dst holds restore/s1..s3 (first test). s1 arrives (a full stream names no parent); s2 would
    // name s1's UUID, which two subvolumes on this filesystem now carry.
    mkdirSync(`${dst.mountPoint}/second`);
    const res = cli([`s3://${BUCKET}/host/s2`, `${dst.mountPoint}/second/`], { env });
    assert.equal(res.code, 5, res.stderr);
    assert.match(
      res.stderr,
      /receiving s2 from s3:\/\/[^ ]+: the stream was refused: 2 subvolumes on this filesystem carry received UUID [0-9a-f-]{36}/,
    );
    assert.deepEqual(
      subvolumesIn(`${dst.mountPoint}/second`).map((p) => path.basename(p)),
      ['s1'],
    );
  });

  test('an object corrupted in the bucket is detected before the snapshot becomes visible', async () => {
    const key = (await keys('host/s2/'))[0]!;
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    const original = await body(key);
    const bad = Buffer.from(original);
    bad[bad.length - 200] = bad[bad.length - 200]! ^ 0x55;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bad, Metadata: head.Metadata }));
    try {
      // A pool of its own: on dst the restores above hold the same chain, and s2's parent
      // would be refused as ambiguous whenever its first bytes reach the check before the
      // download's checksum is known (a matter of how the response comes in chunks).
      const pool = ownPool();
      mkdirSync(`${pool.mountPoint}/corrupt`);
      const res = cli([`s3://${BUCKET}/host/`, `${pool.mountPoint}/corrupt/`], { env });
      assert.equal(res.code, 5, res.stderr);
      assert.match(res.stderr, new RegExp(`${key.replaceAll('/', '\\/')} is corrupt`));
      const errors = res.stderr.split('\n').filter((l) => l.startsWith('buttersink: '));
      assert.equal(errors.length, 1, res.stderr);
      // s1 arrived before; nothing of s2 is there, not even a partial.
      assert.deepEqual(
        subvolumesIn(`${pool.mountPoint}/corrupt`).map((p) => path.basename(p)),
        ['s1'],
      );
    } finally {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: original, Metadata: head.Metadata }));
    }
  });

  test('a bucket written by the original ButterSink (no metadata, .bs info files) is listed and restored', async () => {
    const [u1, u2] = [uuidOf(`${snaps()}/s1`), uuidOf(`${snaps()}/s2`)];
    const full = execFileSync('btrfs', ['send', '-q', `${snaps()}/s1`], { maxBuffer: 1 << 30 });
    const diff = execFileSync('btrfs', ['send', '-q', '-p', `${snaps()}/s1`, `${snaps()}/s2`], { maxBuffer: 1 << 30 });
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `legacy/box/s1/${u1}_None`, Body: full }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `legacy/box/s2/${u2}_${u1}`, Body: diff }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'legacy/box/s2.bs', Body: `${u2}\t${u1}\t${diff.length}\n` }));
    const listing = cli(['--json', `s3://${BUCKET}/legacy/box/`], { env });
    assert.equal(listing.code, 0, listing.stderr);
    const listed = JSON.parse(listing.stdout) as { name: string; uuid: string; diffs: { from: string | null; bytes: number }[] }[];
    assert.deepEqual(
      listed.map((s) => [s.name, s.uuid, s.diffs]),
      [
        ['s1', u1, [{ from: null, bytes: full.length }]],
        ['s2', u2, [{ from: 's1', bytes: diff.length }]],
      ],
    );
    const pool = ownPool();
    mkdirSync(`${pool.mountPoint}/legacy`);
    const res = cli([`s3://${BUCKET}/legacy/box/`, `${pool.mountPoint}/legacy/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(treeDigest(`${pool.mountPoint}/legacy/s2`), treeDigest(`${snaps()}/s2`));
  });

  test('-n changes nothing in the bucket; -d moves to trash/ and keeps parents that stored diffs need', async () => {
    const dir = `${src.mountPoint}/rotating`;
    snapshot(data, `${dir}/x1`);
    changeRichSubvolume(data, 3);
    snapshot(data, `${dir}/x2`);
    assert.equal(cli([`${dir}/`, `s3://${BUCKET}/rot/`], { env }).code, 0);
    const [u1, u2] = [uuidOf(`${dir}/x1`), uuidOf(`${dir}/x2`)];

    // x1 leaves the source: x2 is stored as a diff from it, so -d keeps it.
    sh(`btrfs -q subvolume delete ${dir}/x1`);
    const before = await keys('');
    const dry = cli(['-n', '-d', `${dir}/`, `s3://${BUCKET}/rot/`], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /keep x1 +\(not in source, but diffs stored in the destination start from it\)/);
    assert.deepEqual(await keys(''), before, '-n changes nothing');
    const keep = cli(['-d', `${dir}/`, `s3://${BUCKET}/rot/`], { env });
    assert.equal(keep.code, 0, keep.stderr);
    assert.deepEqual(await keys('rot/'), indexed([`rot/x1/${u1}_None`, `rot/x2/${u2}_${u1}`]));

    // Once x2 goes too, both go, to trash/, the dependent first.
    changeRichSubvolume(data, 4);
    snapshot(data, `${dir}/x3`);
    sh(`btrfs -q subvolume delete ${dir}/x2`);
    const u3 = uuidOf(`${dir}/x3`);
    const res = cli(['-d', `${dir}/`, `s3://${BUCKET}/rot/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /deleted 2/);
    assert.deepEqual(await keys('rot/'), indexed([`rot/x3/${u3}_None`]));
    assert.deepEqual(await keys('trash/rot/'), indexed([`trash/rot/x1/${u1}_None`, `trash/rot/x2/${u2}_${u1}`]));
  });

  test('kill -9 mid-upload: nothing visible, and the rerun resumes without re-sending stored parts', async () => {
    const proxy = await new FaultProxy(server.endpoint).start();
    const cache = path.join(root, 'kill-cache');
    const killEnv = { ...env, AWS_ENDPOINT_URL_S3: proxy.endpoint, BUTTERSINK_CACHE_DIR: cache };
    const journalDir = path.join(cache, 's3-uploads');
    const partPuts = (): string[] =>
      proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('partNumber=')).map((r) => /partNumber=(\d+)/.exec(r.url)![1]!);
    try {
      // Slow parts make the kill land mid-upload.
      proxy.rule = (method, url) => (method === 'PUT' && url.includes('partNumber=') ? { kind: 'delay', ms: 400 } : undefined);
      const run = cliInBackground([`${snaps()}/s1`, `s3://${BUCKET}/killed/`, '--part-size', '5', '--s3-parallel', '1'], killEnv);
      let journaled = 0;
      for (let i = 0; i < 200 && journaled < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const files = existsSync(journalDir) ? readdirSync(journalDir).filter((f) => f.endsWith('.json')) : [];
        journaled = files.length
          ? (JSON.parse(readFileSync(path.join(journalDir, files[0]!), 'utf8')) as { parts: unknown[] }).parts.length
          : 0;
      }
      assert.ok(journaled >= 2, 'two parts were stored before the kill');
      // Server-side encryption is asked for when the upload starts (s3rver does not echo it back).
      const started = proxy.requests.find((r) => r.method === 'POST' && r.url.includes('uploads'));
      assert.equal(started?.headers['x-amz-server-side-encryption'], 'AES256');
      run.child.kill('SIGKILL');
      await run.done;
      assert.deepEqual(await keys('killed/'), [], 'nothing is visible after the kill');

      proxy.rule = () => undefined;
      const sentBefore = partPuts().length;
      // Not cli(): spawnSync would block this process, and with it the proxy the CLI talks to.
      const rerun = await cliInBackground([`${snaps()}/s1`, `s3://${BUCKET}/killed/`, '--part-size', '5'], killEnv).done;
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.match(
        rerun.stderr,
        new RegExp(
          `warning: resumed the interrupted upload of s1 to s3://${BUCKET}/killed/: ${journaled} parts \\(${journaled * 5} MiB of [\\d.]+ MiB\\) an earlier run had stored were not sent again`,
        ),
      );
      const resent = partPuts().slice(sentBefore).map(Number);
      assert.ok(
        resent.length > 0 && Math.min(...resent) > journaled,
        `re-sent parts ${resent} must all come after the ${journaled} stored`,
      );

      mkdirSync(`${dst.mountPoint}/killed`);
      const restore = cli([`s3://${BUCKET}/killed/`, `${dst.mountPoint}/killed/`], { env });
      assert.equal(restore.code, 0, restore.stderr);
      assert.deepEqual(treeDigest(`${dst.mountPoint}/killed/s1`), treeDigest(`${snaps()}/s1`));
    } finally {
      await proxy.stop();
    }
  });

  test('a server that refuses server-side encryption (RGW over http): exit 4, says so and that --s3-sse none turns it off', async () => {
    const proxy = await new FaultProxy(server.endpoint).start();
    proxy.rule = (method, url) =>
      method === 'POST' && url.includes('uploads') && !url.includes('uploadId')
        ? { kind: 'status', status: 400, code: 'InvalidRequest' }
        : undefined;
    try {
      const refusing = { ...env, AWS_ENDPOINT_URL_S3: proxy.endpoint };
      const res = await cliInBackground([`${snaps()}/s1`, `s3://${BUCKET}/refused/`], refusing).done;
      assert.equal(res.code, 4, res.stderr);
      assert.match(
        res.stderr,
        /^buttersink: uploading s3:\/\/backups\/refused\/s1\/[0-9a-f-]+_None: the server refused server-side encryption \(AES256\): InvalidRequest \(HTTP 400\) \(turn it off with --s3-sse none/m,
      );
      assert.deepEqual(await keys('refused/'), []);
    } finally {
      await proxy.stop();
    }
  });

  test('bad buckets, credentials and endpoints: one clear line, documented exit code, nothing changed', async () => {
    const before = await keys('');
    const noBucket = cli([`${snaps()}/`, 's3://no-such-bucket/p/'], { env });
    assert.equal(noBucket.code, 4, noBucket.stderr);
    assert.match(noBucket.stderr, /^buttersink: .*bucket no-such-bucket does not exist/m);

    const wrongKey = cli([`s3://${BUCKET}/host/`], {
      env: { ...env, AWS_ACCESS_KEY_ID: 'WRONGKEY', AWS_SECRET_ACCESS_KEY: 'very-secret-value' },
    });
    assert.equal(wrongKey.code, 3, wrongKey.stderr);
    assert.match(wrongKey.stderr, /refused the S3 credentials/);
    assert.doesNotMatch(wrongKey.stderr + wrongKey.stdout, /very-secret-value/);

    const badPartSize = cli([`${snaps()}/`, `s3://${BUCKET}/host/`, '--part-size', '2'], { env });
    assert.equal(badPartSize.code, 2, badPartSize.stderr);
    assert.match(badPartSize.stderr, /5 to 5120/);
    assert.deepEqual(await keys(''), before);
  });
});
