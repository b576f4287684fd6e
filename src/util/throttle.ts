import { Transform, type TransformCallback } from 'node:stream';

/** Time for a {@link Throttle} (tests pass their own). */
export interface ThrottleClock {
  now(): number;
  wait(ms: number, then: () => void): void;
}

const REAL_CLOCK: ThrottleClock = { now: () => performance.now(), wait: (ms, then) => void setTimeout(then, ms) };

/** How far behind its rate a throttled stream may fall and then catch up at full speed. */
const BURST_MS = 1000;

/**
 * Passes bytes on at no more than `bytesPerSecond` on average (`--rate-limit`): each chunk
 * waits until the bytes before it are due. A consumer that was slow for a while (a full
 * disk, a slow network) does not earn more than {@link BURST_MS} of catching up at full
 * speed. Backpressure is kept: the next chunk comes only after this one went on.
 */
export class Throttle extends Transform {
  readonly #bytesPerSecond: number;
  readonly #clock: ThrottleClock;
  /** When the bytes passed so far are due, in the clock's milliseconds. */
  #due: number;

  constructor(bytesPerSecond: number, clock: ThrottleClock = REAL_CLOCK) {
    super();
    this.#bytesPerSecond = bytesPerSecond;
    this.#clock = clock;
    this.#due = clock.now();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const now = this.#clock.now();
    this.#due = Math.max(this.#due, now - BURST_MS) + (chunk.length / this.#bytesPerSecond) * 1000;
    const wait = this.#due - now;
    if (wait <= 0) callback(null, chunk);
    else this.#clock.wait(wait, () => callback(null, chunk));
  }
}

/**
 * A rate as people write it: bytes per second with an optional binary unit, as pv -L takes
 * it (`500k`, `10M`, `1.5G`; `10MiB`, `10M/s` too). @throws Error saying what is allowed.
 */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:\/s)?$/i.exec(text.trim());
  const value = match ? Number(match[1]) * 1024 ** ' kmgt'.indexOf((match[2] || ' ').toLowerCase()) : Number.NaN;
  if (!Number.isFinite(value) || value < 1024) {
    throw new Error(`${JSON.stringify(text)} is no rate of at least 1k: bytes per second, with k, M, G or T (binary: 10M is 10 MiB/s)`);
  }
  return Math.round(value);
}
