// The snapshot stream format: every entry of every bucket, as one checksummed byte stream.
//
//   magic    8 bytes  "ETSBKUP1"
//   entry*            u8 bucket id (position in BUCKET_NAMES), u32 BE key length,
//                     u32 BE value length, key bytes, value bytes
//   trailer           u8 0xFF, u64 BE number of entries, u32 BE CRC-32C of every byte before
//                     this checksum (magic, entries, 0xFF and the count)
//
// Entries come bucket by bucket in bucket-id order and, within a bucket, in key order. The
// stream is cut into chunks of a fixed size regardless of entry boundaries; a reader must
// accept any split.

import { BUCKET_COUNT } from './buckets.ts';
import { readUint64BE, writeUint64BE } from './bytes.ts';
import { crc32c } from './crc32c.ts';
import { BackendCorruptError } from './errors.ts';

export const SNAPSHOT_MAGIC: Uint8Array = Buffer.from('ETSBKUP1', 'latin1');
const TRAILER_TAG = 0xff;
const ENTRY_HEADER_BYTES = 9;
const TRAILER_BYTES = 1 + 8 + 4;
/** Default chunk size of a snapshot stream. */
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;

/** Encodes entries into fixed-size chunks, collected in `ready` until the caller takes them. */
export class SnapshotWriter {
  readonly ready: Uint8Array[] = [];
  private readonly chunkBytes: number;
  private chunk: Uint8Array;
  private pos = 0;
  private crc = 0;
  private count = 0;
  private readonly header = new Uint8Array(ENTRY_HEADER_BYTES);

  constructor(chunkBytes: number) {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 64) throw new RangeError(`chunkBytes ${chunkBytes} < 64`);
    this.chunkBytes = chunkBytes;
    this.chunk = new Uint8Array(chunkBytes);
    this.write(SNAPSHOT_MAGIC);
  }

  /** Bytes waiting in `ready`. */
  get readyBytes(): number {
    return this.ready.length * this.chunkBytes;
  }

  writeEntry(bucket: number, key: Uint8Array, value: Uint8Array): void {
    const h = this.header;
    h[0] = bucket;
    writeUint32BE(h, 1, key.length);
    writeUint32BE(h, 5, value.length);
    this.write(h);
    this.write(key);
    this.write(value);
    this.count++;
  }

  /** Writes the trailer and hands out the last, partial chunk. */
  finish(): void {
    const t = new Uint8Array(TRAILER_BYTES);
    t[0] = TRAILER_TAG;
    writeUint64BE(t, 1, this.count);
    this.write(t.subarray(0, 9));
    writeUint32BE(t, 9, this.crc);
    this.copy(t.subarray(9));
    if (this.pos > 0) this.ready.push(this.chunk.subarray(0, this.pos));
    this.pos = 0;
  }

  private write(bytes: Uint8Array): void {
    this.crc = crc32c(bytes, this.crc);
    this.copy(bytes);
  }

  private copy(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(bytes.length - off, this.chunkBytes - this.pos);
      this.chunk.set(bytes.subarray(off, off + n), this.pos);
      this.pos += n;
      off += n;
      if (this.pos === this.chunkBytes) {
        this.ready.push(this.chunk);
        this.chunk = new Uint8Array(this.chunkBytes);
        this.pos = 0;
      }
    }
  }
}

/** A FIFO of byte chunks read in exact-size pieces. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private offset = 0;
  private buffered = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  get length(): number {
    return this.buffered;
  }

  /** The next `n` bytes (a view when they lie in one chunk, else a copy), or null if fewer are buffered. */
  read(n: number): Uint8Array | null {
    if (n > this.buffered) return null;
    this.buffered -= n;
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.advance(first, n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const take = Math.min(n - filled, c.length - this.offset);
      out.set(c.subarray(this.offset, this.offset + take), filled);
      filled += take;
      this.advance(c, take);
    }
    return out;
  }

  private advance(chunk: Uint8Array, n: number): void {
    this.offset += n;
    if (this.offset === chunk.length) {
      this.head++;
      this.offset = 0;
      if (this.head > 64) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    }
  }
}

const State = { magic: 0, tag: 1, lengths: 2, body: 3, trailer: 4, done: 5 } as const;
type State = (typeof State)[keyof typeof State];

/**
 * Decodes a snapshot stream pushed chunk by chunk. Decoded entries collect in `buckets`,
 * `keys` and `values` until the caller drains them; `end()` verifies count and checksum.
 */
export class SnapshotReader {
  readonly buckets: number[] = [];
  readonly keys: Uint8Array[] = [];
  readonly values: Uint8Array[] = [];
  private readonly queue = new ByteQueue();
  private state: State = State.magic;
  private crc = 0;
  private count = 0;
  private bucket = 0;
  private keyLength = 0;
  private valueLength = 0;

  push(chunk: Uint8Array): void {
    if (this.state === State.done && chunk.length > 0)
      throw new BackendCorruptError('snapshot: bytes after the trailer');
    this.queue.push(chunk);
    for (;;) {
      switch (this.state) {
        case State.magic: {
          const b = this.take(SNAPSHOT_MAGIC.length);
          if (b === null) return;
          if (Buffer.compare(b, SNAPSHOT_MAGIC) !== 0) throw new BackendCorruptError('snapshot: bad magic');
          this.state = State.tag;
          break;
        }
        case State.tag: {
          const b = this.take(1);
          if (b === null) return;
          const tag = b[0]!;
          if (tag === TRAILER_TAG) this.state = State.trailer;
          else if (tag < BUCKET_COUNT) {
            this.bucket = tag;
            this.state = State.lengths;
          } else throw new BackendCorruptError(`snapshot: bad bucket id ${tag}`);
          break;
        }
        case State.lengths: {
          const b = this.take(ENTRY_HEADER_BYTES - 1);
          if (b === null) return;
          this.keyLength = readUint32BE(b, 0);
          this.valueLength = readUint32BE(b, 4);
          if (this.keyLength === 0) throw new BackendCorruptError('snapshot: empty key');
          this.state = State.body;
          break;
        }
        case State.body: {
          const b = this.take(this.keyLength + this.valueLength);
          if (b === null) return;
          this.buckets.push(this.bucket);
          this.keys.push(b.subarray(0, this.keyLength));
          this.values.push(b.subarray(this.keyLength));
          this.count++;
          this.state = State.tag;
          break;
        }
        case State.trailer: {
          if (this.queue.length < TRAILER_BYTES - 1) return;
          const countBytes = this.take(8)!;
          const expectedCrc = this.crc;
          const crcBytes = this.queue.read(4)!;
          if (readUint64BE(countBytes, 0) !== this.count)
            throw new BackendCorruptError('snapshot: entry count mismatch');
          if (readUint32BE(crcBytes, 0) !== expectedCrc) throw new BackendCorruptError('snapshot: checksum mismatch');
          this.state = State.done;
          if (this.queue.length > 0) throw new BackendCorruptError('snapshot: bytes after the trailer');
          return;
        }
        case State.done:
          return;
      }
    }
  }

  /** Empties the decoded-entry lists. */
  drain(): void {
    this.buckets.length = 0;
    this.keys.length = 0;
    this.values.length = 0;
  }

  end(): void {
    if (this.state !== State.done) throw new BackendCorruptError('snapshot: stream ended before its trailer');
  }

  private take(n: number): Uint8Array | null {
    const b = this.queue.read(n);
    if (b !== null) this.crc = crc32c(b, this.crc);
    return b;
  }
}

function writeUint32BE(buf: Uint8Array, off: number, n: number): void {
  buf[off] = n >>> 24;
  buf[off + 1] = (n >>> 16) & 0xff;
  buf[off + 2] = (n >>> 8) & 0xff;
  buf[off + 3] = n & 0xff;
}

function readUint32BE(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}
