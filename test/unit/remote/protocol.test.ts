import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkHello,
  dataHeader,
  encodeEnd,
  encodeMessage,
  FrameDecoder,
  makeHello,
  modeAllows,
  PROTOCOL_VERSION,
  ProtocolError,
  type DecodedEvent,
} from '../../../src/remote/protocol.js';

/** Decodes `bytes` fed in the given piece sizes; data pieces are joined per frame run. */
function decodeInPieces(bytes: Buffer, sizes: readonly number[]): { messages: unknown[]; data: Buffer; ends: number } {
  const decoder = new FrameDecoder();
  const events: DecodedEvent[] = [];
  let offset = 0;
  let i = 0;
  while (offset < bytes.length) {
    const size = Math.max(1, sizes[i++ % Math.max(1, sizes.length)] ?? 1);
    events.push(...decoder.push(bytes.subarray(offset, offset + size)));
    offset += size;
  }
  assert.equal(decoder.isMidFrame, false);
  return {
    messages: events.filter((e) => e.kind === 'message').map((e) => (e as { value: unknown }).value),
    data: Buffer.concat(events.filter((e) => e.kind === 'data').map((e) => (e as { chunk: Buffer }).chunk)),
    ends: events.filter((e) => e.kind === 'end').length,
  };
}

describe('protocol frames', () => {
  test('messages, data and the end mark survive any split of the byte stream', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }),
        (chunks, sizes) => {
          const payload = chunks.map((c) => Buffer.from(c));
          const wire = Buffer.concat([
            encodeMessage({ id: 1, op: 'send' }),
            ...payload.flatMap((c) => [dataHeader(c.length), c]),
            encodeEnd(),
            encodeMessage({ id: 1, ok: true, result: null }),
          ]);
          const decoded = decodeInPieces(wire, sizes);
          assert.deepEqual(decoded.messages, [{ id: 1, op: 'send' }, { id: 1, ok: true, result: null }]);
          assert.deepEqual(decoded.data, Buffer.concat(payload));
          assert.equal(decoded.ends, 1);
        },
      ),
    );
  });

  test('a stream cut in the middle of a frame is visible as such', () => {
    const decoder = new FrameDecoder();
    const frame = Buffer.concat([dataHeader(10), Buffer.alloc(10)]);
    decoder.push(frame.subarray(0, 8));
    assert.equal(decoder.isMidFrame, true);
    decoder.push(frame.subarray(8));
    assert.equal(decoder.isMidFrame, false);
  });

  test('text that is not the protocol (a shell banner) is refused, showing its start', () => {
    const decoder = new FrameDecoder();
    assert.throws(() => decoder.push(Buffer.from('Welcome to the backup server!\n')), (e: unknown) => e instanceof ProtocolError && /"Welcome/.test(e.message));
  });

  test('oversized or non-object messages are refused', () => {
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(0xffffffff, 0);
    huge.writeUInt8(1, 4);
    assert.throws(() => new FrameDecoder().push(huge), ProtocolError);
    assert.throws(() => new FrameDecoder().push(encodeMessage([1, 2])), /not a JSON object/);
  });
});

describe('protocol handshake', () => {
  test('the same protocol version is accepted', () => {
    assert.equal(checkHello({ ...makeHello('9.9.9', 'r') }, { version: '1.0.0' }), null);
  });

  test('a mismatch names both versions and which end is older', () => {
    const newer = checkHello({ program: 'buttersink', protocol: PROTOCOL_VERSION + 1, version: '2.0.0' }, { version: '0.1.0' });
    assert.match(newer!, /mismatch: local buttersink 0\.1\.0 speaks protocol 1, remote 2\.0\.0 speaks 2 \(the local one is older\)/);
    const older = checkHello({ program: 'buttersink', protocol: 0, version: '0.0.1' }, { version: '0.1.0' });
    assert.match(older!, /the remote one is older/);
    assert.match(checkHello({ hello: 'something else' }, { version: '0.1.0' })!, /did not greet as buttersink/);
  });

  test('modes include the ones before them', () => {
    assert.equal(modeAllows('r', 'send'), true);
    assert.equal(modeAllows('r', 'receive'), false);
    assert.equal(modeAllows('r', 'lock'), false);
    assert.equal(modeAllows('a', 'receive'), true);
    assert.equal(modeAllows('a', 'delete'), false);
    assert.equal(modeAllows('w', 'delete'), true);
  });
});
