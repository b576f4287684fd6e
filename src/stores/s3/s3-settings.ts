import { S3Client, type S3ClientConfig, type ServerSideEncryption, type StorageClass } from '@aws-sdk/client-s3';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseIni } from 'ini';

/** How buttersink talks to an S3-compatible service. Every field has a working default. */
export interface S3Settings {
  /** Custom endpoint (MinIO, Ceph, Backblaze, ...); else `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, else AWS. */
  readonly endpoint?: string;
  /** Else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's region, else us-east-1 (AWS redirects are followed). */
  readonly region?: string;
  /** Path-style addressing (`endpoint/bucket/key`). Default: on for custom endpoints, off for AWS. */
  readonly pathStyle?: boolean;
  /**
   * When the SDK adds CRC checksums to requests and checks them on responses:
   * `when-supported` (the SDK's default) or `when-required`. Several S3-compatible servers
   * store `aws-chunked` bodies verbatim (silently corrupt objects), so the default for custom
   * endpoints is `when-required`; `AWS_REQUEST_CHECKSUM_CALCULATION` still wins over that default.
   */
  readonly checksum?: 'when-supported' | 'when-required';
  /** Server-side encryption; `AES256` by default, as in the original. */
  readonly serverSideEncryption: ServerSideEncryption | 'none';
  readonly storageClass?: StorageClass;
  /** Upload part size in bytes (the smallest; bigger for streams that would need more than 10,000 parts). */
  readonly partBytes: number;
  /** Parts uploaded at once; memory is about partBytes x (this + 1). */
  readonly uploadConcurrency: number;
}

export const DEFAULT_S3_SETTINGS: S3Settings = {
  serverSideEncryption: 'AES256',
  partBytes: 20 * 1024 * 1024,
  uploadConcurrency: 4,
};

/** Attempts per request (standard retry mode: exponential backoff with jitter for 5xx, throttling, resets). */
const MAX_ATTEMPTS = 6;
/**
 * The SDK waits forever by default: an endpoint that accepts connections but never answers
 * (a hung server, a dropped route) would hold a transfer, or the mount's `ls`, for good.
 * A connection must be made within this long...
 */
export const CONNECT_TIMEOUT_MS = 10_000;
/** ...and a socket may be idle (no byte either way) this long; each is a retried TimeoutError. */
export const SOCKET_IDLE_TIMEOUT_MS = 60_000;

export function customEndpoint(settings: S3Settings, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return settings.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? undefined;
}

/** Makes the SDK client; credentials are resolved lazily, at the first request. */
export function createS3Client(settings: S3Settings, env: NodeJS.ProcessEnv = process.env): S3Client {
  // The SDK warns on every Node 20 start that its 2027 releases need Node 22; this version
  // is pinned and supports Node 20, so the warning would only alarm users.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = customEndpoint(settings, env);
  const checksum =
    settings.checksum ?? (endpoint !== undefined && env.AWS_REQUEST_CHECKSUM_CALCULATION === undefined ? 'when-required' : undefined);
  const config: S3ClientConfig = {
    region: settings.region ?? (() => resolveRegion(env)),
    followRegionRedirects: true,
    forcePathStyle: settings.pathStyle ?? endpoint !== undefined,
    maxAttempts: MAX_ATTEMPTS,
    retryMode: 'standard',
    credentials: credentialChain(env),
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_IDLE_TIMEOUT_MS },
  };
  if (endpoint !== undefined) config.endpoint = endpoint;
  if (checksum !== undefined) {
    const value = checksum === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
    config.requestChecksumCalculation = value;
    config.responseChecksumValidation = value;
  }
  return new S3Client(config);
}

/**
 * The SDK's default chain (environment, ~/.aws profiles, SSO, web identity, instance roles),
 * then the original's `~/.boto`. The SDK chain's own error says where it looked; ours only
 * that nothing was found: neither ever carries a secret.
 */
function credentialChain(env: NodeJS.ProcessEnv): NonNullable<S3ClientConfig['credentials']> {
  const sdk = fromNodeProviderChain();
  return async () => {
    try {
      return await sdk();
    } catch (sdkError) {
      try {
        return await fromBotoFile(env);
      } catch {
        throw new NoCredentialsError({ cause: sdkError });
      }
    }
  };
}

/** Region from the environment or the AWS profile; us-east-1 when none is set anywhere. */
async function resolveRegion(env: NodeJS.ProcessEnv): Promise<string> {
  const fromEnv = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (fromEnv) return fromEnv;
  const file = env.AWS_CONFIG_FILE ?? path.join(os.homedir(), '.aws', 'config');
  const profile = env.AWS_PROFILE ?? 'default';
  try {
    const config = parseIni(await readFile(file, 'utf8')) as Record<string, Record<string, unknown> | undefined>;
    const section = config[profile === 'default' ? 'default' : `profile ${profile}`];
    if (typeof section?.region === 'string' && section.region !== '') return section.region;
  } catch {
    // no config file: fall through to the default
  }
  return 'us-east-1';
}

/**
 * The original ButterSink read credentials from `~/.boto` (`[Credentials]` with
 * `aws_access_key_id` and `aws_secret_access_key`): the last resort, after the SDK's chain
 * (environment, ~/.aws profiles, SSO, instance roles) found nothing.
 */
export async function fromBotoFile(env: NodeJS.ProcessEnv): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const file = env.BOTO_CONFIG ?? path.join(env.HOME ?? os.homedir(), '.boto');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new NoCredentialsError();
  }
  const credentials = (parseIni(text) as Record<string, Record<string, unknown> | undefined>).Credentials;
  const accessKeyId = credentials?.aws_access_key_id;
  const secretAccessKey = credentials?.aws_secret_access_key;
  if (typeof accessKeyId !== 'string' || typeof secretAccessKey !== 'string' || accessKeyId === '' || secretAccessKey === '') {
    throw new NoCredentialsError();
  }
  return { accessKeyId, secretAccessKey };
}

/** No credential source had credentials. Its message names the sources, never a value. */
export class NoCredentialsError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('no S3 credentials found', options);
    this.name = 'NoCredentialsError';
  }
}
