import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hasControlCharacter, quoteName } from '../../../src/model/printable-name.js';

describe('names shown in messages', () => {
  test('C0 controls and DEL are control characters; other text is not', () => {
    for (const c of ['\0', '\n', '\r', '\t', '\x1b', '\x1f', '\x7f']) assert.equal(hasControlCharacter(`a${c}b`), true, JSON.stringify(c));
    for (const text of ['plain', 'a b', 'ü..x', '日本', '~!@#$%^&*()']) assert.equal(hasControlCharacter(text), false, text);
  });

  test('property: a quoted name is one line of printable characters, whatever it holds', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 500 }), (text) => {
        const quoted = quoteName(text);
        assert.doesNotMatch(quoted, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/);
        assert.ok(quoted.length <= 2 + 200 * 6 + 1 + 6);
      }),
    );
  });

  test('short plain names are quoted as JSON would', () => {
    assert.equal(quoteName('a "b"'), '"a \\"b\\""');
    assert.equal(quoteName('x\ny'), '"x\\ny"');
  });
});
