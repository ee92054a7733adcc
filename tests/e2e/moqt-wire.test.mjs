// The page's MoQT encoder/decoder against the spec's own examples.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  SETUP,
  SetupOption,
  decodeControlMessage,
  decodeKeyValuePairs,
  decodeVarint,
  encodeKeyValuePairs,
  encodeSetup,
  encodeVarint,
} from './lib/moqt-wire.mjs';

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));

test('varint examples from draft-18', () => {
  const examples = [
    ['25', 37n],
    ['8025', 37n],
    ['bbbd', 15293n],
    ['ed7f3e7d', 226442877n],
    ['faa1a0e403d8', 2893212287960n],
    ['fc8998abc66bc0', 151288809941952n],
    ['fefa318fa8e3ca11', 70423237261249041n],
    ['ffffffffffffffffff', 18446744073709551615n],
  ];
  for (const [h, value] of examples) {
    assert.deepEqual(decodeVarint(bytes(h)), { value, size: h.length / 2 }, h);
  }
  // Minimal encodings (the 0x8025 example is a non-minimal 37).
  assert.equal(hex(encodeVarint(37)), '25');
  for (const [h, value] of examples.slice(2)) assert.equal(hex(encodeVarint(value)), h);
  assert.equal(decodeVarint(bytes('80')), null, 'truncated');
});

test('varint boundaries round-trip', () => {
  for (let bits = 1; bits <= 64; bits++) {
    for (const v of [(1n << BigInt(bits)) - 1n, 1n << BigInt(bits - 1)]) {
      const enc = encodeVarint(v);
      const expected = bits <= 56 ? Math.ceil(bits / 7) : 9;
      assert.equal(enc.length, expected, `${bits} bits`);
      assert.deepEqual(decodeVarint(enc), { value: v, size: enc.length });
    }
  }
});

test('SETUP framing', () => {
  assert.equal(hex(encodeVarint(SETUP)), 'af00');
  const setup = encodeSetup([[SetupOption.MOQT_IMPLEMENTATION, 'x']]);
  // type 0x2F00, length 3, option delta 7, length 1, 'x'
  assert.equal(hex(setup), 'af00' + '0003' + '07' + '01' + '78');
  const msg = decodeControlMessage(setup);
  assert.equal(msg.type, SETUP);
  assert.equal(msg.size, setup.length);
  assert.deepEqual(decodeKeyValuePairs(msg.payload), [{ type: 7n, value: bytes('78') }]);
  assert.equal(decodeControlMessage(setup.slice(0, -1)), null);
});

test('key-value pairs are delta-encoded', () => {
  const kvp = encodeKeyValuePairs([
    [SetupOption.PATH, '/a'],
    [SetupOption.MAX_AUTH_TOKEN_CACHE_SIZE, 300],
    [SetupOption.MOQT_IMPLEMENTATION, ''],
  ]);
  // 1 → delta 1, len 2 "/a"; 4 → delta 3, varint 300 (0x812c); 7 → delta 3, len 0
  assert.equal(hex(kvp), '01022f61' + '03812c' + '0300');
  assert.deepEqual(decodeKeyValuePairs(kvp), [
    { type: 1n, value: bytes('2f61') },
    { type: 4n, value: 300n },
    { type: 7n, value: new Uint8Array(0) },
  ]);
});
