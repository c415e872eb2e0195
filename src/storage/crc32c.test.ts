import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from './crc32c.ts';

/** Bit-at-a-time reference implementation, straight from the definition. */
function crc32cBitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('check value of "123456789" is 0xE3069283', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
});

test('RFC 3720 (iSCSI) test vectors', () => {
  const zeros = new Uint8Array(32);
  const ones = new Uint8Array(32).fill(0xff);
  const incrementing = Uint8Array.from({ length: 32 }, (_, i) => i);
  const decrementing = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
  assert.equal(crc32c(zeros), 0x8a9136aa);
  assert.equal(crc32c(ones), 0x62a8ab43);
  assert.equal(crc32c(incrementing), 0x46dd794e);
  assert.equal(crc32c(decrementing), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('agrees with the bitwise definition for every length 0..300 and unaligned views', () => {
  const backing = new Uint8Array(512);
  let seed = 12345;
  for (let i = 0; i < backing.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    backing[i] = seed >>> 24;
  }
  for (let length = 0; length <= 300; length++) {
    for (const offset of [0, 1, 3, 7]) {
      const view = backing.subarray(offset, offset + length);
      assert.equal(crc32c(view), crc32cBitwise(view), `length ${length} offset ${offset}`);
    }
  }
});

test('continues across concatenated chunks', () => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 0xff);
  const whole = crc32c(data);
  for (const split of [0, 1, 5, 8, 13, 500, 999, 1000]) {
    assert.equal(crc32c(data.subarray(split), crc32c(data.subarray(0, split))), whole, `split at ${split}`);
  }
});

test('a single flipped bit changes the checksum', () => {
  const data = new Uint8Array(4096).fill(0x5a);
  const original = crc32c(data);
  for (const bit of [0, 1, 4095 * 8 + 7, 2048 * 8 + 3]) {
    const copy = data.slice();
    copy[bit >>> 3]! ^= 1 << (bit & 7);
    assert.notEqual(crc32c(copy), original);
  }
});

test('throughput is at least 100 MiB/s', () => {
  const data = new Uint8Array(8 << 20).fill(0xa5);
  crc32c(data); // warm up the JIT
  const started = performance.now();
  const rounds = 4;
  for (let i = 0; i < rounds; i++) crc32c(data);
  const elapsedMs = performance.now() - started;
  const mibPerSecond = (rounds * 8) / (elapsedMs / 1000);
  assert.ok(mibPerSecond > 100, `crc32c ran at ${mibPerSecond.toFixed(0)} MiB/s`);
});
