/**
 * The protobuf wire primitives of the hand-written codecs: one module-level reader and one
 * module-level writer, so that a message costs no reader or writer object, no DataView and no
 * chunk list. Decoding and encoding are synchronous and never re-entered (nothing they call
 * decodes or encodes), so a single cursor of each is enough; every top-level entry point resets
 * it first.
 *
 * The reader reproduces @bufbuild/protobuf's BinaryReader exactly as ts-proto's generated code
 * uses it (the same results and the same errors on malformed input), so a fast decoder and the
 * generated one agree on every input, valid or not. int64 values go through a number when they
 * fit in 53 bits (exact), and through BigInt arithmetic only beyond.
 *
 * The writer encodes in two passes: `size*` functions compute the length of a message and
 * record the length of every nested message in pre-order on a stack (a slot is reserved before
 * the children are sized, and filled after), then `write*` functions write into a buffer of the
 * exact size, taking the nested lengths back from the stack in the same order. No byte is moved
 * after it is written.
 */

// ---------------------------------------------------------------------------------------------
// Reader

/** ts-proto's limit on nested message decodes (its `__tsProtoDecodeDepth`). */
export const DECODE_DEPTH_MAX = 100;
/** @bufbuild/protobuf's limit on nested groups skipped as unknown fields. */
const SKIP_GROUP_DEPTH_MAX = 100;

const EMPTY = new Uint8Array(0);

/** The bytes being decoded; the cursor; the end of the bytes; nested message decodes. */
export const reader = { buf: EMPTY as Uint8Array, pos: 0, len: 0, depth: 0 };

/** Points the reader at the start of `bytes` (every top-level decode begins here). */
export function startReading(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('protobuf decode: the input must be a Uint8Array');
  reader.buf = bytes;
  reader.pos = 0;
  reader.len = bytes.length;
  reader.depth = 0;
}

/** Entered by every message decode; throws past ts-proto's recursion limit. */
export function enterMessage(): void {
  if (reader.depth >= DECODE_DEPTH_MAX) throw new Error('protobuf decode recursion limit exceeded');
  reader.depth++;
}

export function leaveMessage(): void {
  reader.depth--;
}

function prematureEof(): never {
  throw new RangeError('premature EOF');
}

/** An unsigned 32-bit varint (tags, lengths, enum values before `| 0`), as BinaryReader.uint32. */
export function readUint32(): number {
  const r = reader;
  const buf = r.buf;
  let b = buf[r.pos++]!;
  if ((b & 0x80) === 0) {
    if (r.pos > r.len) prematureEof();
    return b;
  }
  let result = b & 0x7f;
  b = buf[r.pos++]!;
  result |= (b & 0x7f) << 7;
  if ((b & 0x80) === 0) {
    if (r.pos > r.len) prematureEof();
    return result;
  }
  b = buf[r.pos++]!;
  result |= (b & 0x7f) << 14;
  if ((b & 0x80) === 0) {
    if (r.pos > r.len) prematureEof();
    return result;
  }
  b = buf[r.pos++]!;
  result |= (b & 0x7f) << 21;
  if ((b & 0x80) === 0) {
    if (r.pos > r.len) prematureEof();
    return result;
  }
  b = buf[r.pos++]!;
  result |= (b & 0x0f) << 28;
  for (let readBytes = 5; (b & 0x80) !== 0 && readBytes < 10; readBytes++) b = buf[r.pos++]!;
  if ((b & 0x80) !== 0) throw new Error('invalid varint');
  if (r.pos > r.len) prematureEof();
  return result >>> 0;
}

/** A signed 32-bit varint (enums), as BinaryReader.int32. */
export function readInt32(): number {
  return readUint32() | 0;
}

// The two 32-bit halves of the last 64-bit varint read (signed int32 views of the bits).
let lo = 0;
let hi = 0;

/** Reads a 64-bit varint into `lo`/`hi`, as @bufbuild/protobuf's varint64read. */
function readVarint64(): void {
  const r = reader;
  const buf = r.buf;
  let pos = r.pos;
  let l = 0;
  let h = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    const b = buf[pos++]!;
    l |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) {
      r.pos = pos;
      if (pos > r.len) prematureEof();
      lo = l;
      hi = h;
      return;
    }
  }
  const middle = buf[pos++]!;
  l |= (middle & 0x0f) << 28;
  h = (middle & 0x70) >> 4;
  if ((middle & 0x80) === 0) {
    r.pos = pos;
    if (pos > r.len) prematureEof();
    lo = l;
    hi = h;
    return;
  }
  for (let shift = 3; shift <= 31; shift += 7) {
    const b = buf[pos++]!;
    h |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) {
      r.pos = pos;
      if (pos > r.len) prematureEof();
      lo = l;
      hi = h;
      return;
    }
  }
  throw new Error('invalid varint');
}

const TWO_32 = 4294967296;
/** |hi| below this: hi * 2^32 + lo is below 2^53 and exact as a number. */
const SAFE_HI = 0x200000;

/** An int64 varint as a bigint. */
export function readInt64(): bigint {
  readVarint64();
  if (hi >= -SAFE_HI && hi < SAFE_HI) return BigInt(hi * TWO_32 + (lo >>> 0));
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

/** A uint64 varint as a bigint. */
export function readUint64(): bigint {
  readVarint64();
  const h = hi >>> 0;
  if (h < SAFE_HI) return BigInt(h * TWO_32 + (lo >>> 0));
  return (BigInt(h) << 32n) | BigInt(lo >>> 0);
}

/** A bool varint, as BinaryReader.bool. */
export function readBool(): boolean {
  const r = reader;
  const b = r.buf[r.pos]!;
  if (b < 0x80) {
    r.pos++;
    return b !== 0;
  }
  readVarint64();
  return lo !== 0 || hi !== 0;
}

/** A bytes field: a view into the input (a Buffer when the input is one), as BinaryReader.bytes. */
export function readBytes(): Uint8Array {
  const n = readUint32();
  const r = reader;
  const start = r.pos;
  r.pos += n;
  if (r.pos > r.len) prematureEof();
  return r.buf.subarray(start, start + n);
}

/** Skips an unknown field of wire type `wireType`, as BinaryReader.skip. */
export function skipField(wireType: number, fieldNo?: number, groupDepth = SKIP_GROUP_DEPTH_MAX): void {
  const r = reader;
  switch (wireType) {
    case 0:
      while (r.buf[r.pos++]! & 0x80) {
        // continuation bytes
      }
      break;
    case 1:
      r.pos += 8;
      break;
    case 5:
      r.pos += 4;
      break;
    case 2: {
      const n = readUint32();
      r.pos += n;
      break;
    }
    case 3:
      if (groupDepth <= 0) throw new Error('maximum recursion depth reached');
      for (;;) {
        const start = r.pos;
        const tag = readUint32();
        const bytesRead = r.pos - start;
        if (bytesRead > 5 || (bytesRead === 5 && r.buf[r.pos - 1]! > 0x0f)) {
          throw new Error('illegal tag: varint overflows uint32');
        }
        const fn = tag >>> 3;
        const wt = tag & 7;
        if (fn <= 0 || wt > 5) throw new Error(`illegal tag: field no ${fn} wire type ${wt}`);
        if (wt === 4) {
          if (fieldNo !== undefined && fn !== fieldNo) throw new Error('invalid end group tag');
          break;
        }
        skipField(wt, fn, groupDepth - 1);
      }
      break;
    default:
      throw new Error(`cant skip wire type ${wireType}`);
  }
  if (r.pos > r.len) prematureEof();
}

/** The empty bytes of an absent field (ts-proto's `new Uint8Array(0)`); frozen, shared. */
export const NO_BYTES: Uint8Array = Object.freeze(new Uint8Array(0)) as Uint8Array;

// ---------------------------------------------------------------------------------------------
// Writer

/** Nested message lengths in pre-order, from the size pass to the write pass. */
let sizes = new Int32Array(256);
let sizesTop = 0;
let sizesRead = 0;

/** The output buffer and the write position. */
let out: Buffer = Buffer.alloc(0);
let at = 0;

/** Starts a size pass (every top-level encode begins here). */
export function startSizing(): void {
  sizesTop = 0;
  sizesRead = 0;
  numbersTop = 0;
  numbersRead = 0;
}

/** Reserves the slot of a nested message's length (filled by `fillSlot` once it is known). */
export function reserveSlot(): number {
  if (sizesTop === sizes.length) {
    const grown = new Int32Array(sizes.length * 2);
    grown.set(sizes);
    sizes = grown;
  }
  return sizesTop++;
}

export function fillSlot(slot: number, length: number): void {
  sizes[slot] = length;
}

/** The next nested message length recorded by the size pass. */
export function nextSlot(): number {
  return sizes[sizesRead++]!;
}

/**
 * Allocates the output: `headroomBytes` left free at the start (a gRPC frame header), then
 * `messageBytes` to be written. Buffers under 4 KiB come from Node's shared pool.
 */
export function startWriting(headroomBytes: number, messageBytes: number): Buffer {
  out = Buffer.allocUnsafe(headroomBytes + messageBytes);
  at = headroomBytes;
  return out;
}

/** Checks that the write pass filled exactly what the size pass measured, and releases the buffer. */
export function finishWriting(expectedEnd: number): void {
  if (at !== expectedEnd || sizesRead !== sizesTop || numbersRead !== numbersTop) {
    throw new Error(`protobuf encode: wrote ${at} bytes of ${expectedEnd}, read ${sizesRead} of ${sizesTop} lengths`);
  }
  out = EMPTY_BUFFER;
}

const EMPTY_BUFFER = Buffer.alloc(0);

/** Bytes of `value` as an unsigned varint; `value` is a uint32. */
export function varint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Bytes of a non-negative safe integer as an unsigned varint (for encoders with their own buffers). */
export function safeVarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

const TWO_POW_32 = 2 ** 32;

/** Writes a non-negative safe integer as an unsigned varint at `at`; returns the end. */
export function writeSafeVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= TWO_POW_32) {
    buf[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  // Below 2^32 the shifts are exact and cheaper than division.
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[at++] = n;
  return at;
}

export function writeByte(b: number): void {
  out[at++] = b;
}

/** An unsigned varint of a uint32 (tags, lengths, non-negative enum values). */
export function writeUint32(value: number): void {
  const o = out;
  while (value > 0x7f) {
    o[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  o[at++] = value;
}

export function writeBytes(value: Uint8Array): void {
  writeUint32(value.byteLength);
  out.set(value, at);
  at += value.byteLength;
}

/** A string: `byteLength` is its UTF-8 length from the size pass. */
export function writeString(value: string, byteLength: number): void {
  writeUint32(byteLength);
  const written = out.write(value, at, byteLength, 'utf8');
  if (written !== byteLength) throw new Error('protobuf encode: a string changed length between passes');
  at += byteLength;
}

/** UTF-8 length of a string, with lone surrogates counted as U+FFFD (as TextEncoder writes them). */
export function utf8Size(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}

// ---- int32 (enums) ----

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** Checks an enum value as BinaryWriter.int32's assertInt32 does. */
export function checkInt32(value: number): void {
  if (typeof value !== 'number') throw new Error(`invalid int32: ${typeof value}`);
  if (!Number.isInteger(value) || value > INT32_MAX || value < INT32_MIN) throw new Error(`invalid int32: ${value}`);
}

export function int32Size(value: number): number {
  return value >= 0 ? varint32Size(value) : 10;
}

export function writeInt32(value: number): void {
  if (value >= 0) {
    writeUint32(value);
    return;
  }
  // Negative: sign-extended to 64 bits, ten bytes.
  const o = out;
  for (let i = 0; i < 9; i++) {
    o[at++] = (value & 0x7f) | 0x80;
    value >>= 7;
  }
  o[at++] = 1;
}

// ---- int64 / uint64 ----
//
// A bigint is converted to a number once, in the size pass (BigInt comparisons and arithmetic
// cost far more than one conversion): within ±(2^53 - 1) the number is exact, and it waits on a
// stack for the write pass. Beyond, the varint comes from BigInt arithmetic (and a small cache).

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** The numbers of the int64 fields sized, in order, for the write pass; NaN beyond 2^53. */
let numbers = new Float64Array(256);
let numbersTop = 0;
let numbersRead = 0;

function pushNumber(n: number): void {
  if (numbersTop === numbers.length) {
    const grown = new Float64Array(numbers.length * 2);
    grown.set(numbers);
    numbers = grown;
  }
  numbers[numbersTop++] = n;
}

function notBigint(value: unknown): never {
  throw new TypeError(`Cannot convert ${String(value)} to a BigInt`);
}

/**
 * Bytes of an int64 field's varint (negative values take ten), with ts-proto's range check
 * (`BigInt.asIntN(64, v) !== v` throws "value provided for field message.<field> of type int64
 * too large").
 */
export function sizeInt64(value: bigint, field: string): number {
  if (typeof value !== 'bigint') notBigint(value);
  const n = Number(value);
  if (Number.isSafeInteger(n)) {
    pushNumber(n);
    return n >= 0 ? numberVarintSize(n) : 10;
  }
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new Error(`value provided for field message.${field} of type int64 too large`);
  }
  pushNumber(Number.NaN);
  return largeVarint(value).length;
}

/** Bytes of a uint64 field's varint, with ts-proto's range check (`BigInt.asUintN(64, v) !== v`). */
export function sizeUint64(value: bigint, field: string): number {
  if (typeof value !== 'bigint') notBigint(value);
  const n = Number(value);
  if (Number.isSafeInteger(n) && n >= 0) {
    pushNumber(n);
    return numberVarintSize(n);
  }
  if (value < 0n || value > UINT64_MAX) {
    throw new Error(`value provided for field message.${field} of type uint64 too large`);
  }
  pushNumber(Number.NaN);
  return largeVarint(value).length;
}

/** Bytes of a non-negative safe integer as a varint. */
function numberVarintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 0x800000000) return 5;
  if (n < 0x40000000000) return 6;
  if (n < 0x2000000000000) return 7;
  return 8;
}

/**
 * Writes the varint of an int64/uint64 field sized by `sizeInt64`/`sizeUint64` (the next one
 * in order), two's complement for negatives.
 */
export function writeInt64(value: bigint): void {
  let n = numbers[numbersRead++]!;
  const o = out;
  if (n >= 0) {
    while (n > 0x7fffffff) {
      o[at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    while (n > 0x7f) {
      o[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    o[at++] = n;
    return;
  }
  if (n < 0) {
    // Above -2^53: the high half is floor(n / 2^32), the low half what is left.
    const h = Math.floor(n / TWO_32);
    writeVarint64((n - h * TWO_32) >>> 0, h | 0);
    return;
  }
  const bytes = largeVarint(value);
  o.set(bytes, at);
  at += bytes.length;
}

// Varints of values beyond 2^53 or negative (member and cluster ids in every ResponseHeader,
// lease ids), remembered for the last few values: converting them costs BigInt arithmetic.
const LARGE_CACHE_SIZE = 4;
const largeValues: bigint[] = [];
const largeBytes: Uint8Array[] = [];
let largeNext = 0;

function largeVarint(value: bigint): Uint8Array {
  for (let i = 0; i < largeValues.length; i++) if (largeValues[i] === value) return largeBytes[i]!;
  const bits = BigInt.asUintN(64, value);
  const saveOut = out;
  const saveAt = at;
  out = Buffer.allocUnsafe(10);
  at = 0;
  writeVarint64(Number(bits & 0xffffffffn), Number(bits >> 32n));
  const bytes = new Uint8Array(out.subarray(0, at));
  out = saveOut;
  at = saveAt;
  largeValues[largeNext] = value;
  largeBytes[largeNext] = bytes;
  largeNext = (largeNext + 1) % LARGE_CACHE_SIZE;
  return bytes;
}

/** A 64-bit varint from its 32-bit halves, as BinaryWriter.writeVarint64. */
function writeVarint64(l: number, h: number): void {
  const o = out;
  for (let i = 0; i < 28; i += 7) {
    const shift = l >>> i;
    const hasNext = !(shift >>> 7 === 0 && h === 0);
    o[at++] = (hasNext ? shift | 0x80 : shift) & 0xff;
    if (!hasNext) return;
  }
  const splitBits = ((l >>> 28) & 0x0f) | ((h & 0x07) << 4);
  const hasMoreBits = h >>> 3 !== 0;
  o[at++] = (hasMoreBits ? splitBits | 0x80 : splitBits) & 0xff;
  if (!hasMoreBits) return;
  for (let i = 3; i < 31; i += 7) {
    const shift = h >>> i;
    const hasNext = shift >>> 7 !== 0;
    o[at++] = (hasNext ? shift | 0x80 : shift) & 0xff;
    if (!hasNext) return;
  }
  o[at++] = (h >>> 31) & 0x01;
}
