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
