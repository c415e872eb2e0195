import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeHuffman, encodeHeaders, HpackDecoder, HpackError, huffmanCodes } from '../../src/api/h2/hpack.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK Huffman code (RFC 7541 Appendix B)', () => {
  test('the canonical codes from the lengths match the table', () => {
    const codes = huffmanCodes();
    assert.equal(codes.length, 257);
    // A few entries of the RFC's table.
    assert.deepEqual(codes[48], { code: 0x0, length: 5 }); // '0'
    assert.deepEqual(codes[32], { code: 0x14, length: 6 }); // ' '
    assert.deepEqual(codes[0], { code: 0x1ff8, length: 13 });
    assert.deepEqual(codes[127], { code: 0xffffffc, length: 28 });
    assert.deepEqual(codes[255], { code: 0x3ffffee, length: 26 });
    assert.deepEqual(codes[256], { code: 0x3fffffff, length: 30 }); // EOS
  });

  test('decodes the RFC examples', () => {
    const www = hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff');
    assert.equal(decodeHuffman(www, 0, www.length), 'www.example.com');
    const noCache = hex('a8eb 1064 9cbf');
    assert.equal(decodeHuffman(noCache, 0, noCache.length), 'no-cache');
  });

  test('every octet round-trips through its code', () => {
    const codes = huffmanCodes();
    for (let s = 0; s < 256; s++) {
      const { code, length } = codes[s] as { code: number; length: number };
      // The code, then 1s up to the byte boundary (EOS's prefix as padding).
      const padded = Math.ceil(length / 8) * 8;
      let value = BigInt(code) << BigInt(padded - length);
      value |= (1n << BigInt(padded - length)) - 1n;
      const bytes = Buffer.from(value.toString(16).padStart(padded / 4, '0'), 'hex');
      assert.equal(decodeHuffman(bytes, 0, bytes.length), String.fromCharCode(s), `octet ${s}`);
    }
  });

  test('padding that is not EOS-prefix 1s, or longer than 7 bits, is refused', () => {
    // '0' is 00000; padded with 000 instead of 111.
    assert.throws(() => decodeHuffman(Buffer.from([0x00]), 0, 1), HpackError);
    // 'a' (00011) then a whole byte of 1s: 11 bits of padding.
    assert.throws(() => decodeHuffman(Buffer.from([0x1f, 0xff]), 0, 2), HpackError);
    // EOS itself (30 ones) inside a string.
    assert.throws(() => decodeHuffman(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4), HpackError);
  });
});

describe('HPACK decoder (RFC 7541 Appendix C)', () => {
  test('C.3: requests without Huffman share one dynamic table', () => {
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.equal(d.tableBytes, 57);
    assert.deepEqual(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    assert.equal(d.tableBytes, 110);
    assert.deepEqual(d.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')), [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    assert.equal(d.tableBytes, 164);
  });

  test('C.4: the same requests with Huffman strings', () => {
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')).at(-1), [
      ':authority',
      'www.example.com',
    ]);
    assert.deepEqual(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf')).at(-1), ['cache-control', 'no-cache']);
    assert.deepEqual(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')).at(-1), [
      'custom-key',
      'custom-value',
    ]);
    assert.equal(d.tableBytes, 164);
  });

  test('entries are evicted oldest first to stay within the table size', () => {
    const d = new HpackDecoder(100);
    // Two literals with incremental indexing, 32 + 1 + 30 = 63 bytes each: the second evicts the first.
    const literal = (name: string, value: string): Buffer =>
      Buffer.concat([
        Buffer.from([0x40, name.length]),
        Buffer.from(name),
        Buffer.from([value.length]),
        Buffer.from(value),
      ]);
    d.decode(literal('a', 'x'.repeat(30)));
    assert.equal(d.tableBytes, 63);
    d.decode(literal('b', 'y'.repeat(30)));
    assert.equal(d.tableBytes, 63);
    assert.deepEqual(d.decode(Buffer.from([0xbe])), [['b', 'y'.repeat(30)]]); // index 62: the newest
    assert.throws(() => d.decode(Buffer.from([0xbf])), HpackError); // index 63: evicted
    // A size update to 0 empties the table; one above the limit is refused.
    d.decode(Buffer.from([0x20]));
    assert.equal(d.tableBytes, 0);
    assert.throws(() => d.decode(Buffer.from([0x3f, 0x60])), HpackError); // 31 + 96 = 127 > 100
  });

  test('malformed blocks throw HpackError, never anything else', () => {
    const d = new HpackDecoder();
    assert.throws(() => d.decode(Buffer.from([0x80])), HpackError); // index 0
    assert.throws(() => d.decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), HpackError); // huge integer
    assert.throws(() => d.decode(Buffer.from([0x00, 0x05, 0x61])), HpackError); // truncated name
    assert.throws(() => d.decode(Buffer.from([0x41])), HpackError); // value missing
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let i = 0; i < 3000; i++) {
      const block = Buffer.from(Array.from({ length: 1 + (random() % 24) }, random));
      try {
        new HpackDecoder().decode(block);
      } catch (err) {
        assert.ok(err instanceof HpackError, `block ${block.toString('hex')}: ${String(err)}`);
      }
    }
  });

  test('a header list larger than the limit is refused', () => {
    const d = new HpackDecoder(4096, 200);
    const block = encodeHeaders([
      ['a', 'x'.repeat(100)],
      ['b', 'y'.repeat(100)],
    ]);
    assert.throws(() => d.decode(block), HpackError);
  });
});

describe('HPACK encoder', () => {
  test('exact static matches are one byte; other fields are literals any decoder reads back', () => {
    assert.deepEqual(encodeHeaders([[':status', '200']]), Buffer.from([0x88]));
    const fields: [string, string][] = [
      [':status', '404'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '0'],
      ['grpc-message', 'x'.repeat(300)],
      ['date', 'Sat, 21 Nov 2026 10:00:00 GMT'],
    ];
    const block = encodeHeaders(fields);
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(block), fields);
    // Nothing was added to the decoder's table: the encoder never indexes.
    assert.equal(d.tableBytes, 0);
  });
});
