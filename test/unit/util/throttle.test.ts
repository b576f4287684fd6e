import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { parseRate, Throttle, type ThrottleClock } from '../../../src/util/throttle.js';

/** A clock that only moves when the throttle waits: what it waited for, in order. */
function fakeClock(): ThrottleClock & { waits: number[]; t: number } {
  const clock = {
    t: 0,
    waits: [] as number[],
    now: () => clock.t,
    wait: (ms: number, then: () => void) => {
      clock.waits.push(Math.round(ms));
      clock.t += ms;
      then();
    },
  };
  return clock;
}

async function through(throttle: Throttle, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), throttle, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  return Buffer.concat(out);
}

describe('Throttle', () => {
  test('each chunk waits until the bytes before it are due: 1 MiB at 1 MiB/s takes a second; bytes unchanged', async () => {
    const clock = fakeClock();
    const chunks = Array.from({ length: 16 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const out = await through(new Throttle(1024 * 1024, clock), chunks);
    assert.ok(out.equals(Buffer.concat(chunks)));
    assert.deepEqual(clock.waits, Array(16).fill(63), 'every 64 KiB chunk waits 62.5 ms');
    assert.ok(Math.abs(clock.t - 1000) < 1, `took ${clock.t} ms`);
  });

  test('a consumer that was slow earns at most a second of catching up', async () => {
    const clock = fakeClock();
    const throttle = new Throttle(1000, clock);
    const chunks = [Buffer.alloc(1000), Buffer.alloc(1000), Buffer.alloc(1000)];
    // Ten seconds pass before anything is written: only one second of it counts.
    clock.t = 10_000;
    await through(throttle, chunks);
    // Uncapped, all three would go at once; capped, the first goes at once, then the rate again.
    assert.deepEqual(clock.waits, [1000, 1000]);
  });
});

describe('parseRate', () => {
  test('bytes per second with binary units, as pv -L takes them', () => {
    assert.equal(parseRate('500k'), 500 * 1024);
    assert.equal(parseRate('10M'), 10 * 1024 ** 2);
    assert.equal(parseRate('1.5G'), 1.5 * 1024 ** 3);
    assert.equal(parseRate('10MiB/s'), 10 * 1024 ** 2);
    assert.equal(parseRate('2048'), 2048);
  });

  test('refuses what is no rate, and rates under 1k', () => {
    for (const bad of ['fast', '10 mbit', '-5M', '0', '100', 'M']) assert.throws(() => parseRate(bad), /is no rate of at least 1k/, bad);
  });
});
