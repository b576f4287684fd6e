import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fromBotoFile, NoCredentialsError } from '../../../../src/stores/s3/s3-settings.js';
import { toStoreError } from '../../../../src/stores/s3/s3-errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'boto-'));
const write = (name: string, text: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

test("the original's ~/.boto [Credentials] is read as the last resort", async () => {
  const file = write('good', '[Credentials]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t/value\n[Boto]\ndebug = 0\n');
  assert.deepEqual(await fromBotoFile({ BOTO_CONFIG: file }), { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 's3cr3t/value' });
});

test('a missing, empty or incomplete ~/.boto means no credentials, and the error carries no value', async () => {
  for (const env of [
    { BOTO_CONFIG: path.join(dir, 'missing') },
    { BOTO_CONFIG: write('empty', '') },
    { BOTO_CONFIG: write('half', '[Credentials]\naws_access_key_id = AKIAEXAMPLE\n') },
  ]) {
    await assert.rejects(fromBotoFile(env), (e: unknown) => e instanceof NoCredentialsError && !/AKIA/.test((e as Error).message));
  }
});

test('SDK errors become typed one-line errors with the documented exit codes', () => {
  const where = { bucket: 'b', endpoint: 'http://127.0.0.1:9' };
  const sdk = (name: string, status: number) => Object.assign(new Error(`raw ${name}`), { name, $metadata: { httpStatusCode: status } });
  assert.equal(toStoreError(sdk('NoSuchBucket', 404), 'listing', where).exitCode, 4);
  assert.equal(toStoreError(sdk('InvalidAccessKeyId', 403), 'listing', where).exitCode, 3);
  assert.equal(toStoreError(sdk('AccessDenied', 403), 'listing', where).exitCode, 3);
  assert.equal(toStoreError(new NoCredentialsError(), 'listing', where).exitCode, 3);
  assert.equal(toStoreError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'listing', where).exitCode, 4);
  assert.equal(toStoreError(sdk('InternalError', 500), 'uploading', where).exitCode, 5);
  assert.match(
    toStoreError(sdk('InvalidAccessKeyId', 403), 'listing s3://b/p/', where).message,
    /^listing s3:\/\/b\/p\/: http:\/\/127\.0\.0\.1:9 refused the S3 credentials/,
  );
});
