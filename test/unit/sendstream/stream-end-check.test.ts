import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IncompleteStreamError, StreamEndCheck } from '../../../src/sendstream/stream-end-check.js';
import { chunks, commands, sendStream, through } from './stream-builder.js';

const whole = sendStream(commands.subvol('snap'), commands.mkfile('a'), commands.end());

test('a whole stream passes through unchanged, whatever the chunking', async () => {
  for (const size of [1, 3, 10, 17, 64, whole.length]) {
    const out = await through(new StreamEndCheck(), chunks(whole, size));
    assert.deepEqual(out, whole, `chunks of ${size}`);
  }
});

test('a stream cut at a command boundary (no end command) fails at its end', async () => {
  const cut = sendStream(commands.subvol('snap'), commands.mkfile('a'));
  await assert.rejects(
    through(new StreamEndCheck(), chunks(cut, 7)),
    (e) => e instanceof IncompleteStreamError && /no end command/.test(e.message),
  );
});

test('a stream cut inside a command fails', async () => {
  for (const drop of [1, 5, 11]) {
    const cut = whole.subarray(0, whole.length - drop);
    await assert.rejects(through(new StreamEndCheck(), [cut]), IncompleteStreamError, `dropped ${drop}`);
  }
});

test('garbage, an empty stream and data after the end command are refused', async () => {
  await assert.rejects(through(new StreamEndCheck(), [Buffer.from('this is not a btrfs send stream at all')]), /bad magic/);
  await assert.rejects(through(new StreamEndCheck(), []), /ends before its header/);
  await assert.rejects(through(new StreamEndCheck(), [Buffer.concat([whole, Buffer.from('x')])]), /after its end command/);
});
