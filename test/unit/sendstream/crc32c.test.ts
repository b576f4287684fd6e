import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32c } from '../../../src/sendstream/crc32c.js';
import { crc32cBitwise } from './stream-builder.js';

const CHECK = Buffer.from('123456789', 'ascii');

test('standard CRC-32C check value: seed ~0 and a final xor give 0xE3069283', () => {
  // The table is the standard Castagnoli one: with the standard pre/post inversion it
  // reproduces the catalogued check value.
  assert.equal((crc32c(CHECK, 0xffffffff) ^ 0xffffffff) >>> 0, 0xe3069283);
});

test("btrfs's variant (seed 0, no final xor) differs from standard CRC-32C", () => {
  const btrfs = crc32c(CHECK);
  assert.notEqual(btrfs, 0xe3069283);
  assert.equal(btrfs, crc32cBitwise(CHECK));
});

test('seed 0, no final xor: empty and all-zero input give 0', () => {
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  assert.equal(crc32c(Buffer.alloc(64)), 0);
  assert.notEqual(crc32c(Buffer.from([1])), 0);
});

test('matches a bitwise Castagnoli implementation on random buffers', () => {
  for (let i = 0; i < 200; i++) {
    const data = randomBytes(i < 20 ? i : Math.floor(Math.random() * 3000));
    assert.equal(crc32c(data), crc32cBitwise(data), `buffer ${data.toString('hex').slice(0, 64)}`);
    const seed = randomBytes(4).readUInt32LE();
    assert.equal(crc32c(data, seed), crc32cBitwise(data, seed));
  }
});

test('a seed continues a computation: crc(a + b) = crc(b, crc(a))', () => {
  const a = randomBytes(100);
  const b = randomBytes(57);
  assert.equal(crc32c(Buffer.concat([a, b])), crc32c(b, crc32c(a)));
});

test('returns an unsigned 32-bit number', () => {
  for (let i = 0; i < 50; i++) {
    const value = crc32c(randomBytes(16));
    assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffffffff, String(value));
  }
});

test('the table fallback and the native implementation agree, also when a checksum continues over pieces', async () => {
  const { crc32cTable } = await import('../../../src/sendstream/crc32c.js');
  for (let i = 0; i < 50; i++) {
    const data = randomBytes(Math.floor(Math.random() * 70_000));
    const cut = Math.floor(Math.random() * data.length);
    assert.equal(crc32c(data), crc32cTable(data));
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32cTable(data));
  }
});
