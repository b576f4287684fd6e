// The peer of scripts/bench-s3: moves a stream to or from one S3 object with the AWS SDK
// alone, with the client settings buttersink uses (src/stores/s3/s3-settings.ts): the
// endpoint and credentials from the standard environment, path-style addressing and CRC
// checksums only when required for a custom endpoint, SSE AES256 on upload.
//
//   node dist/scripts/s3-direct.js upload BUCKET KEY PART_MIB QUEUE < stream
//       @aws-sdk/lib-storage's Upload with partSize PART_MIB MiB and queueSize QUEUE
//       (buttersink's --part-size and --s3-parallel); prints {"etag":...}
//   node dist/scripts/s3-direct.js head BUCKET KEY
//       prints {"bytes":N,"sse":...} (HeadObject): how the benchmark checks what was stored
//   node dist/scripts/s3-direct.js copy BUCKET KEY SHA256 BYTES
//       the metadata-replacing CopyObject onto itself that ends buttersink's multipart
//       uploads, timed; prints {"seconds":S}
//   node dist/scripts/s3-direct.js download BUCKET KEY > stream
//       one GetObject, its body piped to stdout; prints {"bytes":N} on stderr
//
// No hashing, no journal, no metadata copy: what the SDK does by itself.
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function client(): S3Client {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = { forcePathStyle: endpoint !== undefined, maxAttempts: 6, retryMode: 'standard' };
  if (endpoint !== undefined) {
    config.endpoint = endpoint;
    if (process.env.AWS_REQUEST_CHECKSUM_CALCULATION === undefined) {
      config.requestChecksumCalculation = 'WHEN_REQUIRED';
      config.responseChecksumValidation = 'WHEN_REQUIRED';
    }
  }
  return new S3Client(config);
}

async function upload(bucket: string, key: string, partMib: number, queueSize: number): Promise<void> {
  const answer = await new Upload({
    client: client(),
    params: { Bucket: bucket, Key: key, Body: process.stdin, ServerSideEncryption: 'AES256' },
    partSize: partMib * 1024 * 1024,
    queueSize,
    leavePartsOnError: false,
  }).done();
  process.stdout.write(`${JSON.stringify({ etag: answer.ETag })}\n`);
}

async function head(bucket: string, key: string): Promise<void> {
  const answer = await client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  process.stdout.write(`${JSON.stringify({ bytes: answer.ContentLength, sse: answer.ServerSideEncryption ?? null })}\n`);
}

/** buttersink's last step after CompleteMultipartUpload (upload-stream.ts), timed alone. */
async function copy(bucket: string, key: string, sha256: string, bytes: string): Promise<void> {
  const started = performance.now();
  await client().send(
    new CopyObjectCommand({
      Bucket: bucket,
      Key: key,
      CopySource: `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
      MetadataDirective: 'REPLACE',
      Metadata: { 'buttersink-format': '1', 'buttersink-sha256': sha256, 'buttersink-bytes': bytes },
      ServerSideEncryption: 'AES256',
    }),
  );
  process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - started) / 1000 })}\n`);
}

async function download(bucket: string, key: string): Promise<void> {
  const answer = await client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let bytes = 0;
  const body = answer.Body as Readable;
  body.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  await pipeline(body, process.stdout);
  if (bytes !== answer.ContentLength) throw new Error(`got ${bytes} bytes of ${answer.ContentLength}`);
  process.stderr.write(`${JSON.stringify({ bytes })}\n`);
}

const [mode, bucket, key, partMib, queue] = process.argv.slice(2);
if (mode === 'upload' && bucket && key && Number(partMib) > 0 && Number(queue) > 0) {
  await upload(bucket, key, Number(partMib), Number(queue));
} else if (mode === 'head' && bucket && key) {
  await head(bucket, key);
} else if (mode === 'copy' && bucket && key && partMib && queue) {
  await copy(bucket, key, partMib, queue);
} else if (mode === 'download' && bucket && key) {
  await download(bucket, key);
} else {
  process.stderr.write(
    'usage: s3-direct.js upload BUCKET KEY PART_MIB QUEUE < stream | head BUCKET KEY | copy BUCKET KEY SHA256 BYTES | download BUCKET KEY > stream\n',
  );
  process.exit(2);
}
