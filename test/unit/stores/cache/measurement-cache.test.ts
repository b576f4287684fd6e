import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { MeasurementCache } from '../../../../src/stores/cache/measurement-cache.js';

const UUID = '2f5bd1e4-8c0e-4b6a-9d0e-3f4a5b6c7d8e';

describe('MeasurementCache', () => {
  const made: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'buttersink-cache-'));
    made.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  test('sizes, heads and creation times survive a save and a load in another process', async () => {
    const dir = tempDir();
    const cache = new MeasurementCache(dir);
    await cache.set(UUID, null, { bytes: 1234, head: Buffer.from('head') });
    cache.setCreatedAt(UUID, new Date('2026-12-01T10:20:30Z'));
    await cache.save();
    const again = new MeasurementCache(dir);
    assert.equal(again.createdAt(UUID), undefined, 'nothing before load');
    await again.load();
    assert.deepEqual(again.peek(UUID, null), { bytes: 1234, head: Buffer.from('head') });
    assert.equal(again.createdAt(UUID)?.toISOString(), '2026-12-01T10:20:30.000Z');
    assert.equal(again.createdAt('another'), undefined);
  });

  test('an unknown time is not kept, and one told again does not rewrite the file', async () => {
    const dir = tempDir();
    const cache = new MeasurementCache(dir);
    await cache.load();
    cache.setCreatedAt(UUID, new Date(Number.NaN));
    await cache.save();
    assert.throws(() => readFileSync(path.join(dir, 'measurements.json')), /ENOENT/, 'nothing changed, nothing written');
    cache.setCreatedAt(UUID, new Date(5000));
    await cache.save();
    writeFileSync(path.join(dir, 'measurements.json'), '{"created":{"x":"not a number","y":1e400}}');
    const other = new MeasurementCache(dir);
    await other.load();
    assert.equal(other.createdAt('x'), undefined, 'a value of the wrong type is dropped');
    assert.equal(other.createdAt('y'), undefined, 'Infinity is dropped');
    other.setCreatedAt('z', new Date(7000));
    await other.save();
    const parsed = JSON.parse(readFileSync(path.join(dir, 'measurements.json'), 'utf8')) as { created: Record<string, number> };
    assert.deepEqual(parsed.created, { z: 7000 });
  });

  test('lower bounds: kept across a load, only raised, dropped once the exact size is known; bad values ignored', async () => {
    const dir = tempDir();
    const cache = new MeasurementCache(dir);
    await cache.setLowerBound(UUID, null, 5000);
    await cache.setLowerBound(UUID, null, 3000);
    assert.equal(await cache.lowerBound(UUID, null), 5000, 'a lower bound never goes down');
    assert.equal(await cache.get(UUID, null), undefined, 'a bound is not a size');
    await cache.setLowerBound(UUID, 'parent', 10);
    await cache.save();
    const again = new MeasurementCache(dir);
    assert.equal(await again.lowerBound(UUID, null), 5000);
    await again.set(UUID, null, { bytes: 9000 });
    assert.equal(await again.lowerBound(UUID, null), undefined);
    await again.setLowerBound(UUID, null, 6000);
    assert.equal(await again.lowerBound(UUID, null), undefined, 'the exact size is known');
    await again.save();
    const parsed = JSON.parse(readFileSync(path.join(dir, 'measurements.json'), 'utf8')) as { atLeast: Record<string, number> };
    assert.deepEqual(parsed.atLeast, { [`${UUID}<parent`]: 10 });
    writeFileSync(path.join(dir, 'measurements.json'), '{"atLeast":{"a<full":-1,"b<full":1.5,"c<full":"7","d<full":7}}');
    const bad = new MeasurementCache(dir);
    assert.deepEqual(await Promise.all(['a', 'b', 'c', 'd'].map((to) => bad.lowerBound(to, null))), [undefined, undefined, undefined, 7]);
  });
});
