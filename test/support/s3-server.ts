import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isCI } from './prerequisites.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-main.js');
export const S3_KEY = 'S3RVER';
export const S3_SECRET = 'S3RVER';

/**
 * An external S3 server to test against instead of s3rver (opt-in; CI uses s3rver):
 * `BUTTERSINK_TEST_S3_ENDPOINT` (e.g. a Ceph radosgw that `scripts/test-radosgw` started),
 * with `BUTTERSINK_TEST_S3_ACCESS_KEY`, `BUTTERSINK_TEST_S3_SECRET_KEY` and optionally
 * `BUTTERSINK_TEST_S3_REGION`. The tests create their buckets there and empty and delete them
 * when they stop, so the server must be a throwaway one.
 */
export const externalS3 = ((env: NodeJS.ProcessEnv) => {
  const endpoint = env.BUTTERSINK_TEST_S3_ENDPOINT;
  if (!endpoint) return undefined;
  const accessKeyId = env.BUTTERSINK_TEST_S3_ACCESS_KEY;
  const secretAccessKey = env.BUTTERSINK_TEST_S3_SECRET_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('BUTTERSINK_TEST_S3_ENDPOINT needs BUTTERSINK_TEST_S3_ACCESS_KEY and BUTTERSINK_TEST_S3_SECRET_KEY');
  }
  return { endpoint, accessKeyId, secretAccessKey, region: env.BUTTERSINK_TEST_S3_REGION || 'us-east-1' };
})(process.env);

/**
 * For a test that relies on what only s3rver does (or does not do): skipped, with the reason,
 * when the tests run against an external server.
 */
export function s3rverOnly(reason: string): { skip: string | false } {
  return { skip: externalS3 === undefined ? false : `s3rver only (BUTTERSINK_TEST_S3_ENDPOINT is set): ${reason}` };
}

/**
 * A real S3 server on 127.0.0.1: s3rver in its own process with its data in a temp dir, or the
 * external one {@link externalS3} names.
 */
export interface S3Server {
  readonly endpoint: string;
  readonly port: number;
  readonly directory: string;
  /** Environment for the CLI and SDK clients: endpoint, credentials, region, checksum mode. */
  readonly env: NodeJS.ProcessEnv;
  client(endpoint?: string): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

// The SDK's Node 20 notice would clutter test output; buttersink itself sets the same.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Why the S3 tests cannot run here, or null. s3rver is a dev dependency: missing means `npm ci` was not run. */
export function missingForS3(): string | null {
  if (externalS3 !== undefined) return null;
  try {
    return import.meta.resolve('s3rver') ? null : 's3rver is not installed';
  } catch {
    return 's3rver is not installed (run npm ci)';
  }
}

/** Suite options: skipped without s3rver, except in CI, where that fails. */
export function s3Suite(): { skip: string | false } {
  const missing = missingForS3();
  if (missing !== null && isCI) throw new Error(`prerequisite missing in CI: ${missing}`);
  return { skip: missing ?? false };
}

export async function startS3Server(buckets: readonly string[] = []): Promise<S3Server> {
  const root = process.env.BUTTERSINK_TEST_ROOT ?? os.tmpdir();
  mkdirSync(root, { recursive: true });
  const directory = mkdtempSync(path.join(root, 's3-'));
  if (externalS3 !== undefined) return useExternalServer(externalS3, buckets, directory);
  const child = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, directory, ...buckets], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: S3_KEY,
    AWS_SECRET_ACCESS_KEY: S3_SECRET,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const server: S3Server = {
    endpoint,
    port,
    directory,
    env,
    client: (at = endpoint) =>
      new S3Client({
        endpoint: at,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_SECRET },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    async createBucket(name) {
      const client = server.client();
      await client.send(new CreateBucketCommand({ Bucket: name }));
      client.destroy();
    },
    async stop() {
      if (!running.has(child)) return;
      running.delete(child);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      rmSync(directory, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * The external server as an {@link S3Server}: `directory` is only a scratch directory; the
 * buckets are created now (an existing one of ours is reused) and emptied (objects,
 * unfinished uploads) and deleted by `stop()`.
 */
async function useExternalServer(
  external: NonNullable<typeof externalS3>,
  buckets: readonly string[],
  directory: string,
): Promise<S3Server> {
  const { endpoint, accessKeyId, secretAccessKey, region } = external;
  const port = Number(new URL(endpoint).port || 80);
  const created = new Set<string>();
  const makeClient = (at = endpoint): S3Client =>
    new S3Client({
      endpoint: at,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const server: S3Server = {
    endpoint,
    port,
    directory,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_REGION: region,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    client: makeClient,
    async createBucket(name) {
      const client = makeClient();
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } catch (error) {
        if ((error as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw error;
      } finally {
        client.destroy();
      }
      created.add(name);
    },
    async stop() {
      const client = makeClient();
      try {
        for (const bucket of created) await emptyAndDelete(client, bucket);
      } finally {
        created.clear();
        client.destroy();
        rmSync(directory, { recursive: true, force: true });
      }
    },
  };
  for (const bucket of buckets) await server.createBucket(bucket);
  return server;
}

async function emptyAndDelete(client: S3Client, bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** What the fault proxy does to one request; `undefined` passes it through. */
export type Fault =
  | { readonly kind: 'status'; readonly status: number; readonly code?: string }
  /** Forward the request, then cut the response body after `afterBytes` and reset the connection. */
  | { readonly kind: 'cut-response'; readonly afterBytes: number }
  /** Forward the request, then flip one byte of the response body at `offset` (of this response). */
  | { readonly kind: 'corrupt-response'; readonly offset: number }
  /** Reset the connection while the request body is still arriving. */
  | { readonly kind: 'reset-request' }
  /** Hold the request this long before forwarding it (to make kills land mid-upload). */
  | { readonly kind: 'delay'; readonly ms: number };

export interface ProxiedRequest {
  readonly method: string;
  readonly url: string;
  readonly bodyBytes: number;
  /** The MD5 of the body as it arrived, base64 (as in Content-MD5); empty for a reset request. */
  readonly bodyMd5: string;
  readonly range: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
}

/**
 * A small HTTP proxy in front of the S3 server that injects faults: 5xx and throttling
 * answers, connections reset mid-body, truncated and corrupted downloads. `rule` decides per
 * request; every request is recorded, so tests can count what was (re)sent.
 */
export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  rule: (method: string, url: string, index: number) => Fault | undefined = () => undefined;
  readonly #server: http.Server;
  readonly #upstream: URL;
  #port = 0;

  constructor(upstream: string) {
    this.#upstream = new URL(upstream);
    // A client killed mid-request (kill -9 tests) aborts its request: nothing to answer then.
    this.#server = http.createServer((req, res) => void this.#handle(req, res).catch(() => res.socket?.destroy()));
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const index = this.requests.length;
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const fault = this.rule(method, url, index);
    if (fault?.kind === 'reset-request') {
      // Read a little of the body, then drop the connection under the client's feet.
      req.once('data', () => req.socket.destroy());
      req.once('end', () => req.socket.destroy());
      this.requests.push({ method, url, bodyBytes: 0, bodyMd5: '', range: req.headers.range, headers: req.headers });
      return;
    }
    const body: Buffer[] = [];
    for await (const chunk of req) body.push(chunk as Buffer);
    const payload = Buffer.concat(body);
    const bodyMd5 = createHash('md5').update(payload).digest('base64');
    this.requests.push({ method, url, bodyBytes: payload.length, bodyMd5, range: req.headers.range, headers: req.headers });
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'status') {
      const code = fault.code ?? (fault.status === 503 ? 'SlowDown' : 'InternalError');
      res.writeHead(fault.status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`);
      return;
    }
    const upstream = http.request(
      { host: this.#upstream.hostname, port: this.#upstream.port, method, path: url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (fault?.kind === 'cut-response') {
          let sent = 0;
          answer.on('data', (chunk: Buffer) => {
            const room = fault.afterBytes - sent;
            if (room <= 0) return;
            res.write(chunk.subarray(0, room));
            sent += Math.min(room, chunk.length);
            if (sent >= fault.afterBytes) setTimeout(() => res.socket?.destroy(), 20);
          });
          answer.on('end', () => res.socket?.destroy());
          return;
        }
        if (fault?.kind === 'corrupt-response') {
          let seen = 0;
          answer.on('data', (chunk: Buffer) => {
            const at = fault.offset - seen;
            if (at >= 0 && at < chunk.length) {
              chunk = Buffer.from(chunk);
              chunk[at] = chunk[at]! ^ 0xff;
            }
            seen += chunk.length;
            res.write(chunk);
          });
          answer.on('end', () => res.end());
          return;
        }
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    upstream.end(payload);
  }
}
