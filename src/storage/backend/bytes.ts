// Byte helpers shared by the storage layer.

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: Latin1Slice }).latin1Slice;

/**
 * The bytes as a string of code units 0..255. JavaScript compares such strings code unit by
 * code unit, which is exactly the byte order of the keys, so they serve as ordered map keys.
 */
export function latin1(bytes: Uint8Array): string {
  return latin1Slice.call(bytes, 0, bytes.length);
}

/** The inverse of `latin1`. */
export function fromLatin1(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

const TWO_POW_32 = 0x1_0000_0000;

/** Writes a non-negative safe integer as 8 bytes big endian. */
export function writeUint64BE(buf: Uint8Array, offset: number, n: number): void {
  const hi = Math.floor(n / TWO_POW_32);
  const lo = n >>> 0;
  buf[offset] = hi >>> 24;
  buf[offset + 1] = (hi >>> 16) & 0xff;
  buf[offset + 2] = (hi >>> 8) & 0xff;
  buf[offset + 3] = hi & 0xff;
  buf[offset + 4] = lo >>> 24;
  buf[offset + 5] = (lo >>> 16) & 0xff;
  buf[offset + 6] = (lo >>> 8) & 0xff;
  buf[offset + 7] = lo & 0xff;
}

/** Reads 8 bytes big endian as a number; values above 2^53 lose precision (callers bound them). */
export function readUint64BE(buf: Uint8Array, offset: number): number {
  const hi = ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
  const lo = ((buf[offset + 4]! << 24) | (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!) >>> 0;
  return hi * TWO_POW_32 + lo;
}

export function uint64BE(n: number): Uint8Array {
  const buf = new Uint8Array(8);
  writeUint64BE(buf, 0, n);
  return buf;
}
