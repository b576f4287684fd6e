import { createRequire } from 'node:module';

/**
 * CRC-32C (Castagnoli) as btrfs send streams use it: seed 0, no final xor (FACTS). `seed`
 * continues a checksum over several pieces: `crc32c(b, crc32c(a))` is the checksum of a+b.
 *
 * Every byte of a stream from another machine is checked (the validator), so speed matters:
 * `@node-rs/crc32` (SSE4.2/ARMv8 instructions, ~5.8 GB/s here) when its prebuilt binary loads,
 * else a table in JavaScript (~450 MB/s here), so that an unusual platform still works.
 */
export function crc32c(data: Uint8Array, seed = 0): number {
  implementation ??= loadNative() ?? crc32cTable;
  return implementation(data, seed);
}

/**
 * Chosen on the first checksum, not when the module loads: every run that lists a local store
 * loads this module, few check a stream (loading the binary costs ~9 ms).
 */
let implementation: ((data: Uint8Array, seed: number) => number) | undefined;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32cTable(data: Uint8Array, seed = 0): number {
  let crc = seed >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

/** The native one computes the standard CRC-32C (inverted in and out): undo both inversions. */
function loadNative(): ((data: Uint8Array, seed: number) => number) | undefined {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c(input: Uint8Array, initialState?: number): number };
    const fast = (data: Uint8Array, seed: number): number => ~native.crc32c(data, ~seed >>> 0) >>> 0;
    const probe = Buffer.from('btrfs-stream');
    return fast(probe, 7) === crc32cTable(probe, 7) ? fast : undefined;
  } catch {
    return undefined;
  }
}
