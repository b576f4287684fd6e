import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkHello,
  encodeDataAnswer,
  encodeMessage,
  FrameDecoder,
  makeHello,
  modeAllows,
  parseFrameHeader,
  PROTOCOL_VERSION,
  ProtocolError,
} from '../../../src/remote/protocol.js';

describe('protocol frames', () => {
  test('messages survive any split of the byte stream, and the raw bytes after them are handed over intact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.constant(null))), { maxLength: 5 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }),
        (messages, raw, sizes) => {
          const values = [...messages.map((m, i) => ({ ...m, id: i })), { id: -1, ready: true }];
          const wire = Buffer.concat([...values.map(encodeMessage), Buffer.from(raw)]);
          const decoder = new FrameDecoder();
          const decoded: unknown[] = [];
          let rest: Buffer = Buffer.alloc(0);
          let isRaw = false;
          for (let offset = 0, i = 0; offset < wire.length; i++) {
            const piece = wire.subarray(offset, offset + sizes[i % sizes.length]!);
            offset += piece.length;
            if (isRaw) {
              rest = Buffer.concat([rest, piece]);
              continue;
            }
            decoder.push(piece);
            for (let m = decoder.next(); m !== undefined; m = isRaw ? undefined : decoder.next()) {
              decoded.push(m);
              if (m.ready === true) {
                isRaw = true;
                rest = decoder.takeRest();
              }
            }
          }
          assert.deepEqual(decoded, JSON.parse(JSON.stringify(values)));
          assert.deepEqual(rest, Buffer.from(raw));
        },
      ),
    );
  });

  test('data frames carry raw bytes as result.data, whatever the split, between JSON messages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 97 }), (bytes, size) => {
        const data = Buffer.from(bytes);
        const wire = Buffer.concat([
          encodeMessage(makeHello('1')),
          encodeDataAnswer(7, { note: 'x' }, data),
          encodeMessage({ id: 8, ok: true, result: 1 }),
        ]);
        const decoder = new FrameDecoder();
        const decoded: Record<string, unknown>[] = [];
        for (let offset = 0; offset < wire.length; offset += size) {
          decoder.push(wire.subarray(offset, offset + size));
          for (let m = decoder.next(); m !== undefined; m = decoder.next()) decoded.push(m);
        }
        assert.equal(decoded.length, 3);
        const answer = decoded[1] as { id: number; ok: boolean; result: { note: string; data: Buffer } };
        assert.equal(answer.id, 7);
        assert.equal(answer.result.note, 'x');
        assert.ok(Buffer.isBuffer(answer.result.data) && answer.result.data.equals(data));
        assert.deepEqual(decoded[2], { id: 8, ok: true, result: 1 });
      }),
    );
  });

  test('a data frame is refused as a first frame and where only messages are allowed (the server reading requests)', () => {
    const frame = encodeDataAnswer(1, {}, Buffer.from('abc'));
    const decoder = new FrameDecoder();
    decoder.push(frame);
    assert.throws(() => decoder.next(), ProtocolError);
    assert.throws(() => parseFrameHeader(frame, false), ProtocolError);
    assert.equal(parseFrameHeader(frame, false, true), frame.length - 5);
  });

  test('an incomplete frame waits for more bytes', () => {
    const decoder = new FrameDecoder();
    const frame = encodeMessage({ id: 1 });
    decoder.push(frame.subarray(0, 7));
    assert.equal(decoder.next(), undefined);
    decoder.push(frame.subarray(7));
    assert.deepEqual(decoder.next(), { id: 1 });
  });

  test('text that is not the protocol (a shell banner) is refused, showing its start', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.from('Welcome to the backup server!\n'));
    assert.throws(
      () => decoder.next(),
      (e: unknown) => e instanceof ProtocolError && /"Welcome/.test(e.message),
    );
  });

  test('oversized or non-object messages are refused', () => {
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(0xffffffff, 0);
    huge.writeUInt8(1, 4);
    assert.throws(() => parseFrameHeader(huge, false), ProtocolError);
    const decoder = new FrameDecoder();
    decoder.push(encodeMessage([1, 2]));
    assert.throws(() => decoder.next(), /not a JSON object/);
  });
});

describe('protocol handshake', () => {
  test('the same protocol version is accepted', () => {
    assert.equal(checkHello({ ...makeHello('9.9.9', 'r') }, { version: '1.0.0' }), null);
  });

  test('a mismatch names both versions and which end is older', () => {
    const newer = checkHello({ program: 'buttersink', protocol: PROTOCOL_VERSION + 1, version: '2.0.0' }, { version: '0.1.0' });
    assert.match(
      newer!,
      new RegExp(
        `mismatch: local buttersink 0\\.1\\.0 speaks protocol ${PROTOCOL_VERSION}, remote 2\\.0\\.0 speaks ${PROTOCOL_VERSION + 1} \\(the local one is older\\)`,
      ),
    );
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
