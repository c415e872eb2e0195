// The value stored under a revision in the backend's `key` bucket: a compact binary KeyValue.
//
//   byte 0    flags: low nibble = format version (1); 0x10 = a lease follows
//   varint    key length (unsigned LEB128), then the key bytes
//   varint    create revision
//   varint    version
//   8 bytes   lease, int64 big endian two's complement (only with flag 0x10)
//   rest      the value bytes
//
// The mod revision is not stored: it is the main revision of the entry's bucket key. A
// tombstone (bucket key ending in 't') stores the key with create revision and version 0.
// The key comes first so that rebuilding the index reads only the head of each value.

import { MvccCorruptError } from './errors.ts';
import type { KeyValue } from './kv.ts';

const FORMAT_V1 = 0x01;
const FORMAT_MASK = 0x0f;
const FLAG_LEASE = 0x10;
const LEASE_BYTES = 8;
const TWO_POW_7 = 128;

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: Latin1Slice }).latin1Slice;

export const EMPTY: Uint8Array = new Uint8Array(0);

function varintSize(n: number): number {
  let size = 1;
  while (n >= TWO_POW_7) {
    n = Math.floor(n / TWO_POW_7);
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= TWO_POW_7) {
    buf[pos++] = (n % TWO_POW_7) | 0x80;
    n = Math.floor(n / TWO_POW_7);
  }
  buf[pos++] = n;
  return pos;
}

/** Encodes a KeyValue for the `key` bucket into a new buffer. */
export function encodeKeyValue(
  key: Uint8Array,
  createRevision: number,
  version: number,
  lease: bigint,
  value: Uint8Array,
): Uint8Array {
  const hasLease = lease !== 0n;
  const size =
    1 +
    varintSize(key.length) +
    key.length +
    varintSize(createRevision) +
    varintSize(version) +
    (hasLease ? LEASE_BYTES : 0) +
    value.length;
  const buf = Buffer.allocUnsafe(size);
  buf[0] = FORMAT_V1 | (hasLease ? FLAG_LEASE : 0);
  let pos = writeVarint(buf, 1, key.length);
  buf.set(key, pos);
  pos += key.length;
  pos = writeVarint(buf, pos, createRevision);
  pos = writeVarint(buf, pos, version);
  if (hasLease) {
    buf.writeBigInt64BE(lease, pos);
    pos += LEASE_BYTES;
  }
  buf.set(value, pos);
  return buf;
}

/** The fields of an encoded KeyValue, by offset into the buffer (reused to avoid allocations). */
export class KvView {
  keyStart = 0;
  keyEnd = 0;
  createRevision = 0;
  version = 0;
  lease = 0n;
  valueStart = 0;

  /** Parses `buf`; throws MvccCorruptError when it is not an encoded KeyValue. */
  parse(buf: Uint8Array): this {
    const n = buf.length;
    if (n < 4 || (buf[0]! & FORMAT_MASK) !== FORMAT_V1) throw corrupt('bad format byte');
    let pos = 1;
    let keyLength = 0;
    let scale = 1;
    for (;;) {
      if (pos >= n || scale > 2 ** 49) throw corrupt('bad key length');
      const b = buf[pos++]!;
      keyLength += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= TWO_POW_7;
    }
    this.keyStart = pos;
    this.keyEnd = pos + keyLength;
    if (this.keyEnd > n) throw corrupt('key runs past the value');
    pos = this.keyEnd;
    let v = 0;
    scale = 1;
    for (;;) {
      if (pos >= n || scale > 2 ** 49) throw corrupt('bad create revision');
      const b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= TWO_POW_7;
    }
    this.createRevision = v;
    v = 0;
    scale = 1;
    for (;;) {
      if (pos >= n || scale > 2 ** 49) throw corrupt('bad version');
      const b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= TWO_POW_7;
    }
    this.version = v;
    if (buf[0]! & FLAG_LEASE) {
      if (pos + LEASE_BYTES > n) throw corrupt('lease runs past the value');
      this.lease = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readBigInt64BE(pos);
      pos += LEASE_BYTES;
    } else this.lease = 0n;
    this.valueStart = pos;
    return this;
  }

  /** The key: a view into `buf` (a plain Uint8Array, cheaper to make than a Buffer view). */
  key(buf: Uint8Array): Uint8Array {
    return new Uint8Array(buf.buffer, buf.byteOffset + this.keyStart, this.keyEnd - this.keyStart);
  }

  /** The value: a view into `buf`. */
  value(buf: Uint8Array): Uint8Array {
    return new Uint8Array(buf.buffer, buf.byteOffset + this.valueStart, buf.length - this.valueStart);
  }

  /** The key as a latin1 string (the index's key form). */
  keyString(buf: Uint8Array): string {
    return latin1Slice.call(buf, this.keyStart, this.keyEnd);
  }
}

function corrupt(detail: string): MvccCorruptError {
  return new MvccCorruptError(`key bucket value: ${detail}`);
}

const view = new KvView();

/** Decodes an encoded KeyValue; key and value are views into `buf`. */
export function decodeKeyValue(buf: Uint8Array, modRevision: number, keysOnly = false): KeyValue {
  view.parse(buf);
  return {
    key: view.key(buf),
    createRevision: view.createRevision,
    modRevision,
    version: view.version,
    value: keysOnly ? EMPTY : view.value(buf),
    lease: view.lease,
  };
}

/** A KeyValue as a delete event carries it. */
export function deletedKeyValue(key: Uint8Array, modRevision: number): KeyValue {
  return { key, createRevision: 0, modRevision, version: 0, value: EMPTY, lease: 0n };
}
