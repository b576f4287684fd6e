import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { DEFAULT_S3_SETTINGS, type S3Settings } from '../../src/stores/s3/s3-settings.js';
import { UploadJournal } from '../../src/stores/s3/upload-journal.js';
import { uploadStream } from '../../src/stores/s3/upload-stream.js';
import { createContractPool } from '../support/contract-pool.js';
import { POOL_ROOT } from '../support/btrfs-pool.js';
import { btrfsSuite } from '../support/prerequisites.js';
import { s3Suite, startS3Server } from '../support/s3-server.js';
import { storeContract } from '../support/store-contract.js';

const BUCKET = 'contract';
const MiB = 1024 * 1024;

// Real `btrfs send` streams come from a loop-device pool: S3 stores what btrfs sends.
const btrfs = btrfsSuite();

storeContract(
  's3',
  async () => {
    const server = await startS3Server([BUCKET]);
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: server.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: server.env.AWS_SECRET_ACCESS_KEY,
    });
    const pool = await createContractPool();
    const cacheDirectory = mkdtempSync(path.join(POOL_ROOT, 's3-contract-cache-'));
    const settings: S3Settings = {
      ...DEFAULT_S3_SETTINGS,
      endpoint: server.endpoint,
      region: 'us-east-1',
      partBytes: 5 * MiB,
      uploadConcurrency: 2,
    };
    const client = server.client();
    const journal = new UploadJournal(cacheDirectory);
    const at = (bucket: string, prefix: string): S3Store =>
      new S3Store({ url: `s3://${bucket}/${prefix}/`, bucket, prefix, settings, cacheDirectory });
    const keys = async (prefix: string): Promise<string[]> => {
      const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
      return (page.Contents ?? []).map((o) => o.Key!);
    };
    const put = (key: string, body: string): Promise<unknown> =>
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
    let locations = 0;
    return {
      source: pool.source,
      snapshots: pool.snapshots,
      // S3 snapshots browse from the index each upload stores.
      baseFiles: pool.baseFiles,
      unstorableName: 'daily/../escape',
      async open() {
        const prefix = `location-${++locations}/snapshots`;
        return {
          store: at(BUCKET, prefix),
          reopen: () => at(BUCKET, prefix),
          async contents() {
            const uploads = await journal.list(server.endpoint, BUCKET, `${prefix}/`);
            return [...(await keys(`${prefix}/`)), ...(await keys(`trash/${prefix}/`)), ...uploads.map((u) => `upload ${u.key}`)].sort();
          },
          async clutter() {
            // Not diffs: a stray object, the original's info file, a key without UUIDs.
            await put(`${prefix}/notes.txt`, 'not a diff');
            await put(`${prefix}/base.bs`, '');
            await put(`${prefix}/stray/None_None`, 'x');
          },
          async leaveStale() {
            // An upload cut in its third part: open on the server, recorded for resuming.
            const data = randomBytes(5 * MiB);
            const broken = (async function* () {
              yield data;
              yield data;
              yield data.subarray(0, 1024);
              throw new Error('the source broke off');
            })();
            await uploadStream(broken, {
              client,
              endpoint: server.endpoint,
              bucket: BUCKET,
              key: `${prefix}/stale/0123_None`,
              serverSideEncryption: 'AES256',
              storageClass: undefined,
              journal,
              partBytes: 5 * MiB,
              concurrency: 1,
            }).catch(() => {});
          },
        };
      },
      missing: () => at('no-such-bucket', 'snapshots'),
      async close() {
        client.destroy();
        await pool.source.close();
        await server.stop();
        pool.destroy();
        rmSync(cacheDirectory, { recursive: true, force: true });
      },
    };
  },
  btrfs.skip ? btrfs : s3Suite(),
);
