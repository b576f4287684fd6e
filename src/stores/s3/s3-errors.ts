import { ButtersinkError, InterruptedError, messageOf, PermissionError, StoreError, TransferError } from '../../model/errors.js';
import { NoCredentialsError } from './s3-settings.js';

/** What the SDK attaches to service and network errors. */
interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $fault?: 'client' | 'server';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

function codeOf(error: unknown): string {
  const e = error as SdkError | undefined;
  return e?.name ?? e?.code ?? '';
}

export function httpStatus(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The server does not implement this call (s3rver: ListParts, AbortMultipartUpload, ...). */
export function isNotImplemented(error: unknown): boolean {
  const code = codeOf(error);
  const status = httpStatus(error);
  return code === 'NotImplemented' || code === 'MethodNotAllowed' || status === 501 || status === 405;
}

export function isNotFound(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchUpload' || httpStatus(error) === 404;
}

/**
 * Worth trying again after a pause: a 5xx, throttling, a dropped or reset connection, a body
 * cut short. The caller checks its own abort signal first: an abort is never transient.
 */
export function isTransient(error: unknown): boolean {
  const status = httpStatus(error);
  const code = codeOf(error);
  if (status !== undefined) return status >= 500 || status === 429 || code === 'SlowDown' || code === 'RequestTimeout';
  if (code === 'TimeoutError') return true;
  const errno = (error as { code?: string } | undefined)?.code;
  if (errno !== undefined && NETWORK_CODES.has(errno)) return true;
  const message = String((error as Error | undefined)?.message ?? '');
  return /socket hang up|premature close|ECONNRESET|terminated|other side closed|aborted|cut short/i.test(message);
}

/** The storage options an upload asked for (see {@link refusedOption}). */
export interface AskedOptions {
  readonly serverSideEncryption: string;
  readonly storageClass: string | undefined;
}

/**
 * A 400 answer to the request that starts an upload (CreateMultipartUpload, PutObject) that
 * refuses one of the options buttersink asked for, as a {@link StoreError} naming it and the
 * flag that changes it, or undefined. Retrying cannot help, and the generic
 * `InvalidRequest (HTTP 400)` says nothing: Ceph RGW answers `InvalidRequest` to SSE headers
 * over plain HTTP and `InvalidArgument` to a storage class it does not have; AWS answers
 * `InvalidStorageClass` and `InvalidEncryptionAlgorithmError`. Which option an
 * `InvalidRequest`/`InvalidArgument` is about is a guess made in that order (RGW's).
 */
export function refusedOption(error: unknown, what: string, asked: AskedOptions): StoreError | undefined {
  const code = codeOf(error);
  const status = httpStatus(error);
  if (status !== undefined && status !== 400) return undefined;
  const sse = asked.serverSideEncryption !== 'none';
  const storageClass = asked.storageClass !== undefined;
  let refused: 'sse' | 'storage-class' | undefined;
  if (code === 'InvalidEncryptionAlgorithmError') refused = sse ? 'sse' : undefined;
  else if (code === 'InvalidStorageClass') refused = storageClass ? 'storage-class' : undefined;
  else if (code === 'InvalidRequest') refused = sse ? 'sse' : storageClass ? 'storage-class' : undefined;
  else if (code === 'InvalidArgument') refused = storageClass ? 'storage-class' : sse ? 'sse' : undefined;
  if (refused === 'sse') {
    return new StoreError(`${what}: the server refused server-side encryption (${asked.serverSideEncryption}): ${code} (HTTP 400)`, {
      cause: error,
      hint: 'turn it off with --s3-sse none, or use an https:// endpoint: Ceph RGW refuses SSE over plain HTTP',
    });
  }
  if (refused === 'storage-class') {
    return new StoreError(`${what}: the server refused the storage class ${asked.storageClass}: ${code} (HTTP 400)`, {
      cause: error,
      hint: 'pick a class the server has with --s3-storage-class, or leave the flag out for its default',
    });
  }
  return undefined;
}

/**
 * The server did not answer (a connection refused, reset or cut, a timeout) rather than answer
 * no: after a transfer has started this is a failed transfer, not an unusable store.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = codeOf(error);
  if (code === 'AbortError' || code === 'InterruptedError') return false;
  return httpStatus(error) === undefined && isTransient(error);
}

/** A short name for a connection failure: the errno or the SDK's error name. */
export function connectionFailure(error: unknown): string {
  const errno = (error as { code?: string } | undefined)?.code;
  if (errno !== undefined && NETWORK_CODES.has(errno)) return errno;
  const code = codeOf(error);
  return code && code !== 'Error' ? code : messageOf(error).split('\n')[0]!;
}

/**
 * Turns what the SDK threw into buttersink's typed errors with one clear line.
 * Messages are built here from error names and codes, never copied from request data, so
 * no credential can leak into them; `what` says what was being done (`listing s3://b/p/`).
 */
export function toStoreError(error: unknown, what: string, where: { bucket: string; endpoint: string }): ButtersinkError {
  if (error instanceof ButtersinkError) return error;
  if (error instanceof NoCredentialsError) {
    return new PermissionError(`${what}: no S3 credentials found`, {
      hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or [Credentials] in ~/.boto',
    });
  }
  const code = codeOf(error);
  const status = httpStatus(error);
  if (code === 'AbortError' || code === 'InterruptedError') return new InterruptedError(`interrupted while ${what}`);
  if (code === 'NoSuchBucket') {
    return new StoreError(`${what}: bucket ${where.bucket} does not exist at ${where.endpoint}`, {
      hint: 'check the bucket name and --s3-endpoint/--s3-region; buttersink does not create buckets',
    });
  }
  if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'InvalidToken' || code === 'ExpiredToken') {
    return new PermissionError(`${what}: ${where.endpoint} refused the S3 credentials (${code})`, {
      hint: 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the AWS profile or ~/.boto',
    });
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403) {
    return new PermissionError(`${what}: access denied to bucket ${where.bucket} (${code || 'HTTP 403'})`, {
      hint: 'the credentials need s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it',
    });
  }
  const errno = (error as { code?: string }).code;
  if (errno === 'ECONNREFUSED' || errno === 'ENOTFOUND' || errno === 'EAI_AGAIN' || errno === 'EHOSTUNREACH') {
    return new StoreError(`${what}: cannot reach the S3 endpoint ${where.endpoint} (${errno})`, {
      hint: 'check --s3-endpoint / AWS_ENDPOINT_URL_S3 and the network',
    });
  }
  if (code === 'TimeoutError') {
    return new TransferError(`${what}: the S3 endpoint ${where.endpoint} did not answer (${messageOf(error)})`, { cause: error });
  }
  const detail = code && code !== 'Error' ? code : messageOf(error).split('\n')[0];
  return new TransferError(`${what}: ${detail}${status ? ` (HTTP ${status})` : ''}`, { cause: error });
}
