import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createPool, sh, type BtrfsPool } from '../support/btrfs-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';
import { s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import { closedPort } from '../support/helpers.js';

// The bad-input matrix (with the cases in cli-sync.test.ts): every case is refused with one
// line on stderr, a documented exit code, and no change to any store.

const BUCKET = 'matrix';
const suite = (() => {
  const btrfs = btrfsSuite();
  return btrfs.skip ? btrfs : s3Suite();
})();

describe('bad input with S3 and local stores: one line, documented exit code, nothing changed', suite, () => {
  let server: S3Server;
  let client: S3Client;
  let pool: BtrfsPool;
  let env: NodeJS.ProcessEnv;
  let scratch: string;
  let deadPort: number;

  before(async () => {
    server = await startS3Server([BUCKET]);
    client = server.client();
    pool = createPool(256);
    scratch = mkdtempSync(path.join(os.tmpdir(), 'bad-input-'));
    env = { ...server.env, BUTTERSINK_CACHE_DIR: path.join(scratch, 'cache') };
    deadPort = await closedPort();
    sh(
      `btrfs -q subvolume create data && head -c 100000 /dev/urandom > data/f && mkdir snaps restore rw-only &&
       btrfs -q subvolume snapshot -r data snaps/one && btrfs -q subvolume snapshot -r data "snaps/$(printf 'new\\nline')" &&
       btrfs -q subvolume snapshot data rw-only/writable && touch plain-file`,
      pool.mountPoint,
    );
    // In the bucket: one good snapshot, a garbage object in the diff layout, a corrupt .bs file,
    // and a snapshot named "one" whose data differs from the local "one".
    const stream = execFileSync('btrfs', ['send', '-q', `${pool.mountPoint}/snaps/one`], { maxBuffer: 1 << 28 });
    const put = (Key: string, Body: Buffer | string) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body }));
    await put('good/one/aaaaaaaa-0000-0000-0000-000000000001_None', stream);
    await put('good/one.bs', 'this is not\tan info file\n\x00\x01');
    await put('garbage/junk/aaaaaaaa-0000-0000-0000-000000000002_None', 'definitely not a btrfs send stream');
    await put('other/one/aaaaaaaa-0000-0000-0000-000000000003_None', stream);
  });

  after(async () => {
    client?.destroy();
    await server?.stop();
    pool?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function bucketState(): Promise<string[]> {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    return (listed.Contents ?? []).map((o) => `${o.Key} ${o.Size} ${o.ETag}`).sort();
  }
  const subvolumes = (): string => execFileSync('btrfs', ['subvolume', 'list', pool.mountPoint], { encoding: 'utf8' });

  const m = (): string => pool.mountPoint;
  const cases: [string, () => string[], number, RegExp, NodeJS.ProcessEnv?][] = [
    ['invalid bucket name', () => ['s3://Bad_Bucket/p/'], 2, /valid bucket name/],
    ['bucket that does not exist', () => ['s3://no-such-bucket/p/'], 4, /bucket no-such-bucket does not exist/],
    [
      'S3 endpoint nobody answers',
      () => ['--s3-endpoint', `http://127.0.0.1:${deadPort}`, `s3://${BUCKET}/p/`],
      4,
      /cannot reach the S3 endpoint/,
    ],
    ['unknown --s3-sse', () => ['--s3-sse', 'rot13', `s3://${BUCKET}/good/`], 2, /'AES256', 'aws:kms' or 'none'/],
    ['unknown --s3-checksum', () => ['--s3-checksum', 'sometimes', `s3://${BUCKET}/good/`], 2, /when-supported/],
    ['--s3-parallel 0', () => ['--s3-parallel', '0', `s3://${BUCKET}/good/`], 2, /from 1 to 64/],
    [
      'empty S3 prefix as source',
      () => [`s3://${BUCKET}/empty/`, `${m()}/restore/`],
      4,
      /no read-only snapshots in s3:\/\/matrix\/empty\//,
    ],
    ['S3 snapshot that is not there', () => [`s3://${BUCKET}/good/two`, `${m()}/restore/`], 4, /no read-only snapshot named "two"/],
    ['garbage instead of a send stream', () => [`s3://${BUCKET}/garbage/`, `${m()}/restore/`], 5, /not a btrfs send stream|receiving junk/],
    [
      'a different snapshot of that name in S3',
      () => [`${m()}/snaps/one`, `s3://${BUCKET}/other/`],
      4,
      /already has a different snapshot named "one"/,
    ],
    [
      'a snapshot name S3 keys cannot hold (newline)',
      () => [`${m()}/snaps/`, `s3://${BUCKET}/fresh/`],
      4,
      /cannot store a snapshot named "new\\nline"/,
    ],
    ['-q with -v', () => ['-q', '-v', `${m()}/snaps/`], 2, /-q and -v contradict each other/],
    ['-q with --progress', () => ['-q', '--progress', `${m()}/snaps/`], 2, /-q and --progress contradict/],
    ['three store URLs', () => [`${m()}/snaps/`, `${m()}/restore/`, `${m()}/x/`], 2, /too many arguments/],
    ['empty store URL', () => [''], 2, /empty store URL/],
    ['log file that cannot be written', () => ['-l', '/proc/version/log', `${m()}/snaps/`], 2, /cannot write the log file/],
    ['source that is a file', () => [`${m()}/plain-file/`, `${m()}/restore/`], 4, /not a directory|does not exist|plain-file/],
    ['only read-write subvolumes', () => [`${m()}/rw-only/`, `${m()}/restore/`], 4, /no read-only snapshots in/],
    ['a typo in a directory', () => [`${m()}/snpas/`, `${m()}/restore/`], 4, /snpas does not exist \(did you mean .*\/snaps\?\)$/m],
    [
      'a directory under one that does not exist',
      () => [`${m()}/snaps/`, `${m()}/no/such/dir/`],
      4,
      /no\/such\/dir does not exist \(.*[0-9a-z] is the deepest part of it that exists; for a new directory: mkdir -p .*no\/such\/dir\)$/m,
    ],
    [
      '-n with one URL',
      () => ['-n', `${m()}/snaps/`],
      2,
      /-n\/--dry-run needs a source and a destination; with one URL buttersink only lists it/,
    ],
    [
      '-n -d with one URL',
      () => ['-n', '-d', `${m()}/snaps/`],
      2,
      /-n\/--dry-run and -d\/--delete need a source and a destination.*\(buttersink -n -d SRC\/ /,
    ],
    [
      '--exclude with a glob',
      () => ['--exclude', '*.4', `${m()}/snaps/`, `${m()}/restore/`],
      2,
      /--exclude.*not a valid regular expression \(Nothing to repeat\); it is a regular expression, not a glob: for '\*\.4' write '\^\.\*\\\.4\$'/,
    ],
    [
      'no S3 credentials anywhere',
      () => [`s3://${BUCKET}/good/`],
      3,
      /no S3 credentials found/,
      {
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        HOME: '/nonexistent',
        AWS_CONFIG_FILE: '/nonexistent',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      },
    ],
  ];

  for (const [name, args, code, message, extraEnv] of cases) {
    test(name, async () => {
      const [bucketBefore, subvolumesBefore] = [await bucketState(), subvolumes()];
      const res = cli(args(), { env: { ...env, ...extraEnv } });
      assert.equal(res.code, code, `exit ${res.code}: ${res.stderr}`);
      assert.match(res.stderr, message);
      const errors = res.stderr.split('\n').filter((l) => l.startsWith('buttersink: '));
      assert.equal(errors.length, 1, `not one error line: ${res.stderr}`);
      assert.equal(res.stderr.trim().split('\n').at(-1), errors[0], 'the error is the last line');
      assert.deepEqual(await bucketState(), bucketBefore, 'the bucket changed');
      assert.equal(subvolumes(), subvolumesBefore, 'the pool changed');
    });
  }

  test('names with a newline are no bad input between btrfs stores: they sync and list', () => {
    const res = cli([`${pool.mountPoint}/snaps/`, `${pool.mountPoint}/restore/`], { env });
    assert.equal(res.code, 0, res.stderr);
    const listed = cli(['--json', `${pool.mountPoint}/restore/`], { env });
    assert.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((s) => s.name).sort(), ['new\nline', 'one']);
  });

  test('a corrupt .bs info file is ignored: the listing works', () => {
    const res = cli([`s3://${BUCKET}/good/`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^one .* full$/m);
  });
});
