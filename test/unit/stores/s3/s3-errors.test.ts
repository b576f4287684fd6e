import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreError, TransferError } from '../../../../src/model/errors.js';
import { isTransient, toStoreError } from '../../../../src/stores/s3/s3-errors.js';

const where = { bucket: 'b', endpoint: 'http://127.0.0.1:9' };

test("the SDK's TimeoutError (connect or idle socket) is transient, and says the endpoint did not answer", () => {
  const timeout = Object.assign(new Error('Connection timed out after 60000 ms'), { name: 'TimeoutError' });
  assert.ok(isTransient(timeout));
  const error = toStoreError(timeout, 'listing s3://b/p/', where);
  assert.ok(error instanceof TransferError);
  assert.equal(error.message, 'listing s3://b/p/: the S3 endpoint http://127.0.0.1:9 did not answer (Connection timed out after 60000 ms)');
});

test('a refused connection is a StoreError naming the endpoint', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const error = toStoreError(refused, 'listing s3://b/p/', where);
  assert.ok(error instanceof StoreError);
  assert.match(error.message, /cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
});
