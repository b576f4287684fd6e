import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode, UsageError } from '../../../src/model/errors.js';
import { parseStoreUrl } from '../../../src/stores/parse-store-url.js';

const CWD = '/home/me/work';

function usageError(text: string, message?: RegExp): void {
  assert.throws(
    () => parseStoreUrl(text, CWD),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `${JSON.stringify(text)}: expected a UsageError, got ${String(error)}`);
      assert.equal(error.exitCode, ExitCode.Usage);
      assert.equal(error.exitCode, 2);
      if (message) assert.match(error.message, message);
      return true;
    },
    `${JSON.stringify(text)} should be rejected`,
  );
}

describe('parseStoreUrl: local paths', () => {
  test('a trailing slash names a directory of snapshots', () => {
    assert.deepEqual(parseStoreUrl('/mnt/pool/snaps/', CWD), {
      kind: 'btrfs',
      url: '/mnt/pool/snaps/',
      directory: '/mnt/pool/snaps',
      selection: null,
    });
  });

  test('no trailing slash names one snapshot in its directory', () => {
    assert.deepEqual(parseStoreUrl('/mnt/pool/snaps/2026-11-28', CWD), {
      kind: 'btrfs',
      url: '/mnt/pool/snaps/2026-11-28',
      directory: '/mnt/pool/snaps',
      selection: '2026-11-28',
    });
  });

  test('relative paths resolve against the cwd argument', () => {
    assert.deepEqual(parseStoreUrl('snaps/', CWD), { kind: 'btrfs', url: 'snaps/', directory: '/home/me/work/snaps', selection: null });
    assert.deepEqual(parseStoreUrl('snaps/daily', CWD), {
      kind: 'btrfs',
      url: 'snaps/daily',
      directory: '/home/me/work/snaps',
      selection: 'daily',
    });
    assert.deepEqual(parseStoreUrl('../other/x', CWD), { kind: 'btrfs', url: '../other/x', directory: '/home/me/other', selection: 'x' });
    assert.deepEqual(parseStoreUrl('./', CWD), { kind: 'btrfs', url: './', directory: '/home/me/work', selection: null });
    assert.deepEqual(parseStoreUrl('snap', '/b'), { kind: 'btrfs', url: 'snap', directory: '/b', selection: 'snap' });
  });

  test('the cwd argument is used, not process.cwd()', () => {
    const a = parseStoreUrl('s/', '/first');
    const b = parseStoreUrl('s/', '/second');
    assert.equal(a.kind === 'btrfs' && a.directory, '/first/s');
    assert.equal(b.kind === 'btrfs' && b.directory, '/second/s');
  });

  test('redundant slashes and dots are normalized', () => {
    assert.deepEqual(parseStoreUrl('/mnt//pool/./snaps//', CWD), {
      kind: 'btrfs',
      url: '/mnt//pool/./snaps//',
      directory: '/mnt/pool/snaps',
      selection: null,
    });
    assert.deepEqual(parseStoreUrl('/mnt/a/../b/snap', CWD), {
      kind: 'btrfs',
      url: '/mnt/a/../b/snap',
      directory: '/mnt/b',
      selection: 'snap',
    });
  });

  test('the root directory', () => {
    assert.deepEqual(parseStoreUrl('/', CWD), { kind: 'btrfs', url: '/', directory: '/', selection: null });
  });

  test('a colon after the first slash is part of a local path', () => {
    assert.deepEqual(parseStoreUrl('/mnt/snap:1', CWD), { kind: 'btrfs', url: '/mnt/snap:1', directory: '/mnt', selection: 'snap:1' });
    assert.deepEqual(parseStoreUrl('./a:b/', CWD), { kind: 'btrfs', url: './a:b/', directory: '/home/me/work/a:b', selection: null });
  });

  test('plain paths are taken literally: no %-decoding', () => {
    assert.deepEqual(parseStoreUrl('/mnt/100%25/', CWD), { kind: 'btrfs', url: '/mnt/100%25/', directory: '/mnt/100%25', selection: null });
    assert.deepEqual(parseStoreUrl('/mnt/50%/', CWD), { kind: 'btrfs', url: '/mnt/50%/', directory: '/mnt/50%', selection: null });
  });
});

describe('parseStoreUrl: btrfs:// and file://', () => {
  test('btrfs:///p/ is a local directory', () => {
    assert.deepEqual(parseStoreUrl('btrfs:///mnt/snaps/', CWD), {
      kind: 'btrfs',
      url: 'btrfs:///mnt/snaps/',
      directory: '/mnt/snaps',
      selection: null,
    });
  });

  test('file:///p/x is one local snapshot', () => {
    assert.deepEqual(parseStoreUrl('file:///mnt/snaps/x', CWD), {
      kind: 'btrfs',
      url: 'file:///mnt/snaps/x',
      directory: '/mnt/snaps',
      selection: 'x',
    });
  });

  test('the scheme is case-insensitive', () => {
    assert.deepEqual(parseStoreUrl('BTRFS:///mnt/snaps/', CWD), {
      kind: 'btrfs',
      url: 'BTRFS:///mnt/snaps/',
      directory: '/mnt/snaps',
      selection: null,
    });
    assert.deepEqual(parseStoreUrl('File:///m/s', CWD), { kind: 'btrfs', url: 'File:///m/s', directory: '/m', selection: 's' });
  });

  test('%-escapes are decoded', () => {
    assert.deepEqual(parseStoreUrl('btrfs:///mnt/my%20snaps/', CWD), {
      kind: 'btrfs',
      url: 'btrfs:///mnt/my%20snaps/',
      directory: '/mnt/my snaps',
      selection: null,
    });
    assert.deepEqual(parseStoreUrl('file:///mnt/s/snap%201%25', CWD), {
      kind: 'btrfs',
      url: 'file:///mnt/s/snap%201%25',
      directory: '/mnt/s',
      selection: 'snap 1%',
    });
    assert.deepEqual(parseStoreUrl('file:///mnt/caf%C3%A9/', CWD), {
      kind: 'btrfs',
      url: 'file:///mnt/caf%C3%A9/',
      directory: '/mnt/café',
      selection: null,
    });
  });

  test('a relative path after the scheme is rejected', () => {
    usageError('btrfs://relative', /absolute/);
    usageError('btrfs://relative/dir/', /absolute/);
    usageError('file://host/mnt/', /absolute/);
  });

  test('a bad %-escape is rejected', () => {
    usageError('file:///mnt/%zz/', /%-escape/);
    usageError('btrfs:///mnt/snap%', /%-escape/);
    usageError('btrfs:///mnt/%E0%A4%A/', /%-escape/);
  });
});

describe('parseStoreUrl: ssh://', () => {
  test('user, host, port, directory', () => {
    assert.deepEqual(parseStoreUrl('ssh://backup@nas.local:2222/pool/snaps/', CWD), {
      kind: 'ssh',
      url: 'ssh://backup@nas.local:2222/pool/snaps/',
      user: 'backup',
      host: 'nas.local',
      port: 2222,
      directory: '/pool/snaps',
      selection: null,
    });
  });

  test('host only, one snapshot', () => {
    assert.deepEqual(parseStoreUrl('ssh://host/p/x', CWD), {
      kind: 'ssh',
      url: 'ssh://host/p/x',
      user: null,
      host: 'host',
      port: null,
      directory: '/p',
      selection: 'x',
    });
  });

  test('is not resolved against the cwd', () => {
    const location = parseStoreUrl('ssh://host/snaps/', '/elsewhere');
    assert.equal(location.kind === 'ssh' && location.directory, '/snaps');
  });

  test('bracketed IPv6 host', () => {
    const location = parseStoreUrl('ssh://root@[fe80::1]:22/srv/', CWD);
    assert.deepEqual(location, {
      kind: 'ssh',
      url: 'ssh://root@[fe80::1]:22/srv/',
      user: 'root',
      host: 'fe80::1',
      port: 22,
      directory: '/srv',
      selection: null,
    });
  });

  test('%-escapes in the path are decoded', () => {
    const location = parseStoreUrl('ssh://h/my%20snaps/snap%231', CWD);
    assert.deepEqual(location, {
      kind: 'ssh',
      url: 'ssh://h/my%20snaps/snap%231',
      user: null,
      host: 'h',
      port: null,
      directory: '/my snaps',
      selection: 'snap#1',
    });
    usageError('ssh://h/bad%g0/', /%-escape/);
  });

  test('port bounds', () => {
    assert.equal((parseStoreUrl('ssh://h:1/p/', CWD) as { port: number }).port, 1);
    assert.equal((parseStoreUrl('ssh://h:65535/p/', CWD) as { port: number }).port, 65535);
    usageError('ssh://h:0/p/', /port/);
    usageError('ssh://h:65536/p/', /port/);
    usageError('ssh://h:99999999/p/', /port/);
    usageError('ssh://h:ssh/p/');
    usageError('ssh://h:/p/');
    usageError('ssh://h:-1/p/');
  });

  test('a missing path or host is rejected', () => {
    usageError('ssh://host');
    usageError('ssh://host:22');
    usageError('ssh:///p/');
    usageError('ssh://user@');
  });

  test('an empty user or host around "@" is rejected', () => {
    // Neither is a usable ssh destination; the host must not swallow the "@".
    usageError('ssh://user@/p/');
    usageError('ssh://@host/p/');
  });

  test('a host or user starting with "-" is rejected (it would reach ssh as an option)', () => {
    usageError('ssh://-oProxyCommand=touch%20pwned/p/');
    usageError('ssh://-oProxyCommand=x@host/p/');
  });
});

describe('parseStoreUrl: s3://', () => {
  test('bucket and prefix directory', () => {
    assert.deepEqual(parseStoreUrl('s3://my-bucket/backups/laptop/', CWD), {
      kind: 's3',
      url: 's3://my-bucket/backups/laptop/',
      bucket: 'my-bucket',
      prefix: 'backups/laptop',
      selection: null,
    });
  });

  test('bucket root, with and without slash', () => {
    assert.deepEqual(parseStoreUrl('s3://bucket/', CWD), {
      kind: 's3',
      url: 's3://bucket/',
      bucket: 'bucket',
      prefix: '',
      selection: null,
    });
    assert.deepEqual(parseStoreUrl('s3://bucket', CWD), { kind: 's3', url: 's3://bucket', bucket: 'bucket', prefix: '', selection: null });
  });

  test('one snapshot under a prefix, and at the bucket root', () => {
    assert.deepEqual(parseStoreUrl('s3://bucket/a/b/snap', CWD), {
      kind: 's3',
      url: 's3://bucket/a/b/snap',
      bucket: 'bucket',
      prefix: 'a/b',
      selection: 'snap',
    });
    assert.deepEqual(parseStoreUrl('s3://bucket/snap', CWD), {
      kind: 's3',
      url: 's3://bucket/snap',
      bucket: 'bucket',
      prefix: '',
      selection: 'snap',
    });
  });

  test('bucket names with dots and digits, 3 and 63 characters', () => {
    assert.equal((parseStoreUrl('s3://my.bucket.2026/', CWD) as { bucket: string }).bucket, 'my.bucket.2026');
    assert.equal((parseStoreUrl('s3://abc/', CWD) as { bucket: string }).bucket, 'abc');
    assert.equal((parseStoreUrl(`s3://${'a'.repeat(63)}/`, CWD) as { bucket: string }).bucket, 'a'.repeat(63));
  });

  test('invalid bucket names are rejected', () => {
    for (const bucket of ['ab', 'a'.repeat(64), 'My-Bucket', 'my_bucket', '-bucket', 'bucket-', '.bucket', 'bucket.', 'buc ket', '']) {
      usageError(`s3://${bucket}/prefix/`, /bucket/);
    }
  });

  test('bucket names AWS forbids beyond the character set are rejected', () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html:
    // "must not contain two adjacent periods", "must not be formatted as an IP address".
    usageError('s3://my..bucket/', /bucket/);
    usageError('s3://192.168.5.4/', /bucket/);
  });
});

describe('parseStoreUrl: other input', () => {
  test('an unknown scheme', () => {
    usageError('ftp://x/', /scheme/);
    usageError('http://example.com/snaps/', /scheme/);
  });

  test('scp-style host:path is refused rather than taken as a local path', () => {
    usageError('host:/path');
    usageError('user@host:/path/snaps/');
    usageError('host:snaps/');
  });

  test('empty or blank', () => {
    usageError('', /empty/);
    usageError('   ', /empty/);
  });

  test('a NUL byte', () => {
    usageError('/mnt/a\0b/');
  });

  test('a hint lists the accepted forms for an unknown one', () => {
    try {
      parseStoreUrl('ftp://x/', CWD);
      assert.fail('should throw');
    } catch (error) {
      assert.ok(error instanceof UsageError);
      assert.match(error.hint ?? '', /ssh:\/\//);
      assert.match(error.hint ?? '', /s3:\/\//);
    }
  });
});
