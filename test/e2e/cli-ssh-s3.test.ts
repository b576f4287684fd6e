import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { createPool, type BtrfsPool } from '../support/btrfs-pool.js';
import { changeRichSubvolume, makeRichSubvolume, snapshot } from '../support/fixtures.js';
import { sshSuite } from '../support/prerequisites.js';
import { cli } from '../support/run-cli.js';
import { s3Suite, startS3Server, type S3Server } from '../support/s3-server.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { treeDigest } from '../support/tree-digest.js';
import { uuidOf } from '../support/helpers.js';

const suite = (() => {
  const ssh = sshSuite();
  return ssh.skip ? ssh : s3Suite();
})();

// A remote btrfs directory on one side, an S3 bucket on the other: the stream passes through
// the local machine (SshStore.send into S3Store.receive, and back).
describe('SSH <-> S3 through the local machine (real sshd and s3rver on loopback)', suite, () => {
  let sshd: TestSshd;
  let server: S3Server;
  let client: S3Client;
  let remote: BtrfsPool;
  let scratch: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    sshd = await startSshd();
    server = await startS3Server(['relay']);
    client = server.client();
    remote = createPool(512);
    const data = makeRichSubvolume(remote.mountPoint);
    snapshot(data, `${remote.mountPoint}/snaps/r1`);
    changeRichSubvolume(data, 1);
    snapshot(data, `${remote.mountPoint}/snaps/r2`);
    scratch = mkdtempSync(path.join(server.directory, '..', 'ssh-s3-'));
    env = { ...sshd.env, ...server.env, BUTTERSINK_CACHE_DIR: path.join(scratch, 'cache') };
  });
  after(async () => {
    client?.destroy();
    await server?.stop();
    await sshd?.stop();
    remote?.destroy();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('ssh:// -> s3:// uploads the remote chain as diffs; s3:// -> ssh:// restores it byte for byte', async () => {
    const [u1, u2] = [uuidOf(`${remote.mountPoint}/snaps/r1`), uuidOf(`${remote.mountPoint}/snaps/r2`)];
    const up = cli([`ssh://buttersink-test${remote.mountPoint}/snaps/`, 's3://relay/nas/'], { env });
    assert.equal(up.code, 0, up.stderr);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'relay', Prefix: 'nas/' }));
    // Each diff with the index stored next to it.
    assert.deepEqual(
      (listed.Contents ?? []).map((o) => o.Key).sort(),
      [`nas/r1/${u1}_None`, `nas/r2/${u2}_${u1}`].flatMap((k) => [k, `${k}.index.gz`]).sort(),
    );

    mkdirSync(`${remote.mountPoint}/restored`);
    const down = cli(['s3://relay/nas/', `ssh://buttersink-test${remote.mountPoint}/restored/`], { env });
    assert.equal(down.code, 0, down.stderr);
    for (const name of ['r1', 'r2']) {
      assert.deepEqual(treeDigest(`${remote.mountPoint}/restored/${name}`), treeDigest(`${remote.mountPoint}/snaps/${name}`), name);
    }
  });
});
