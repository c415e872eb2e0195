/**
 * A Range answered straight from the store's bytes into the wire form of its RangeResponse.
 *
 * `applyRange` copies every value out of the backend, builds a KeyValue object per key and
 * leaves the encoding to the gRPC layer: for a range of thousands of keys, the copies, the
 * objects and their garbage cost more than the reads. Here each stored KeyValue is read in
 * place (the backend's transient buffer) and encoded at once into a list of chunks, with the
 * same bytes as the codec would write for `applyRange`'s response (fields in number order,
 * zero values left out). Ranges that sort or filter still go through `applyRange`: they need
 * every KeyValue before the first one can be written.
 *
 * With a KvFieldCache, a KeyValue field once written is kept by revision, and a key read again
 * at the same revision is copied from there (kv-field-cache.ts): neither read from the backend
 * nor encoded again.
 */
import { encodeRangeResponse, encodeResponseHeader, safeVarintSize, writeSafeVarint } from '../proto/fast/index.ts';
import {
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type ResponseHeader,
} from '../proto/index.ts';
import type { KvView, MvccStore } from '../storage/mvcc/index.ts';
import { applyRange } from './kv-apply.ts';
import { FieldRun, type KvFieldCache } from './kv-field-cache.ts';

const FIRST_CHUNK_BYTES = 1024;
const CHUNK_MAX_BYTES = 256 * 1024;
/** Copies up to this size go byte by byte: cheaper than a view and a native copy. */
const SHORT_COPY_BYTES = 32;
const TAG_HEADER = 10;
const TAG_KVS = 18;
const TAG_MORE = 24;
const TAG_COUNT = 32;
const TAG_KEY = 10;
const TAG_CREATE_REVISION = 16;
const TAG_MOD_REVISION = 24;
const TAG_VERSION = 32;
const TAG_VALUE = 42;
const TAG_LEASE = 48;

/** True when a Range returns the store's keys as they come: key order, no revision filter. */
export function isPlainRange(r: RangeRequest): boolean {
  if (r.minModRevision !== 0n || r.maxModRevision !== 0n || r.minCreateRevision !== 0n || r.maxCreateRevision !== 0n) {
    return false;
  }
  if (r.sortTarget !== RangeRequest_SortTarget.KEY) return false;
  return r.sortOrder === RangeRequest_SortOrder.NONE || r.sortOrder === RangeRequest_SortOrder.ASCEND;
}

/**
 * The RangeResponse of `r` on `store`, encoded: the message's bytes are the chunks in order,
 * after `headroomBytes` free at the start of the first one (a gRPC frame header). `header` is
 * the response's header; its revision is set here.
 */
export function encodeRange(
  store: MvccStore,
  r: RangeRequest,
  header: ResponseHeader,
  headroomBytes: number,
  cache?: KvFieldCache,
): Buffer[] {
  if (!isPlainRange(r)) {
    const resp = applyRange(store, r);
    header.revision = resp.header?.revision ?? 0n;
    resp.header = header;
    return [encodeRangeResponse(resp, headroomBytes)];
  }
  header.revision = BigInt(store.rev());
  const requestedLimit = Number(r.limit);
  const keysOnly = r.keysOnly;
  const out = new ChunkedOutput(headroomBytes);
  const headerBytes = encodeResponseHeader(header);
  out.byte(TAG_HEADER);
  out.varint(headerBytes.length);
  out.bytes(headerBytes, 0, headerBytes.length);
  const opts = { rev: Number(r.revision), limit: requestedLimit, countOnly: r.countOnly, keysOnly };
  let count: number;
  if (cache === undefined || !cache.enabled || keysOnly || r.countOnly) {
    count = store.rangeStored(r.key, r.rangeEnd, opts, (stored, kv, main) =>
      writeStoredKv(out, stored, kv, main, keysOnly),
    );
  } else {
    // Fields already cached are copied in runs; the others are read, written and cached, up
    // to half the cache: a range larger than that does not push out everything else (nor
    // its own first keys) on its way through.
    const run = new FieldRun(cache, out.copy);
    let admitBytes = cache.capacityBytes / 2;
    count = store.rangeStored(
      r.key,
      r.rangeEnd,
      opts,
      (stored, kv, main, sub) => {
        run.flush();
        const start = writeStoredKv(out, stored, kv, main, false);
        if (admitBytes > 0) {
          cache.add(main, sub, out.buf, start, out.at);
          admitBytes -= out.at - start;
        }
      },
      (main, sub) => {
        const loc = cache.find(main, sub);
        if (loc < 0) return false;
        run.extend(loc);
        return true;
      },
    );
    run.flush();
  }
  // etcd's `more`: keys beyond the limit exist (count counts them all, whatever the limit).
  if (requestedLimit > 0 && !r.countOnly && count > requestedLimit) {
    out.byte(TAG_MORE);
    out.byte(1);
  }
  if (count !== 0) {
    out.byte(TAG_COUNT);
    out.varint(count);
  }
  return out.result();
}

/**
 * One KeyValue field of the response from its stored form, in one piece of the current chunk:
 * returns the offset of its first byte there (it ends at `out.at`).
 */
function writeStoredKv(
  out: ChunkedOutput,
  stored: Uint8Array,
  kv: KvView,
  modRevision: number,
  keysOnly: boolean,
): number {
  const keyLength = kv.keyEnd - kv.keyStart;
  const valueLength = keysOnly ? 0 : stored.length - kv.valueStart;
  const lease = kv.lease;
  const size =
    (keyLength > 0 ? 1 + safeVarintSize(keyLength) + keyLength : 0) +
    (kv.createRevision !== 0 ? 1 + safeVarintSize(kv.createRevision) : 0) +
    (modRevision !== 0 ? 1 + safeVarintSize(modRevision) : 0) +
    (kv.version !== 0 ? 1 + safeVarintSize(kv.version) : 0) +
    (valueLength > 0 ? 1 + safeVarintSize(valueLength) + valueLength : 0) +
    (lease !== 0n ? 1 + int64Size(lease) : 0);
  out.reserve(1 + safeVarintSize(size) + size);
  // Everything fits in the current chunk: written without further checks.
  const buf = out.buf;
  const start = out.at;
  let at = start;
  buf[at++] = TAG_KVS;
  at = writeSafeVarint(buf, at, size);
  if (keyLength > 0) {
    buf[at++] = TAG_KEY;
    at = writeSafeVarint(buf, at, keyLength);
    at = copyBytes(buf, at, stored, kv.keyStart, kv.keyEnd);
  }
  if (kv.createRevision !== 0) {
    buf[at++] = TAG_CREATE_REVISION;
    at = writeSafeVarint(buf, at, kv.createRevision);
  }
  if (modRevision !== 0) {
    buf[at++] = TAG_MOD_REVISION;
    at = writeSafeVarint(buf, at, modRevision);
  }
  if (kv.version !== 0) {
    buf[at++] = TAG_VERSION;
    at = writeSafeVarint(buf, at, kv.version);
  }
  if (valueLength > 0) {
    buf[at++] = TAG_VALUE;
    at = writeSafeVarint(buf, at, valueLength);
    at = copyBytes(buf, at, stored, kv.valueStart, stored.length);
  }
  if (lease !== 0n) {
    buf[at++] = TAG_LEASE;
    at = writeInt64(buf, at, lease);
  }
  out.at = at;
  return start;
}

/** Copies `src[start, end)` to `buf` at `at`; returns the offset after it. */
function copyBytes(buf: Buffer, at: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n > SHORT_COPY_BYTES) {
    buf.set(new Uint8Array(src.buffer, src.byteOffset + start, n), at);
    return at + n;
  }
  for (let i = start; i < end; i++) buf[at++] = src[i]!;
  return at;
}

/** `v` as a varint (two's complement) at `at`; returns the offset after it. */
function writeInt64(buf: Buffer, at: number, v: bigint): number {
  let u = BigInt.asUintN(64, v);
  while (u >= 0x80n) {
    buf[at++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[at++] = Number(u);
  return at;
}

/** Bytes of an int64 as a varint (a negative value takes ten, as two's complement). */
function int64Size(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  let size = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    size++;
  }
  return size;
}

/**
 * Output written front to back into chunks: the first small (most ranges are), each next one
 * twice the size of the one before up to CHUNK_MAX_BYTES, so that no byte is ever copied to
 * grow the output. `reserve` keeps what it reserved in one chunk.
 */
class ChunkedOutput {
  private readonly chunks: Buffer[] = [];
  /** The current chunk and the offset of its first free byte (after `reserve(n)`, n bytes may be written there directly). */
  buf: Buffer;
  at: number;

  constructor(headroom: number) {
    this.buf = Buffer.allocUnsafe(Math.max(FIRST_CHUNK_BYTES, headroom * 2));
    this.at = headroom;
  }

  /** Makes room for `n` more bytes in the current chunk. */
  reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    this.chunks.push(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(n, Math.min(CHUNK_MAX_BYTES, this.buf.length * 2)));
    this.at = 0;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.at++] = b;
  }

  /** A non-negative safe integer. */
  varint(n: number): void {
    this.reserve(8);
    this.at = writeSafeVarint(this.buf, this.at, n);
  }

  /** `src[start, end)`. */
  bytes(src: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    this.at = copyBytes(this.buf, this.at, src, start, end);
  }

  /** `bytes` as a function of its own. */
  readonly copy = (src: Uint8Array, start: number, end: number): void => this.bytes(src, start, end);

  /** The chunks written, the first one with its headroom. */
  result(): Buffer[] {
    this.chunks.push(this.buf.subarray(0, this.at));
    return this.chunks;
  }
}
