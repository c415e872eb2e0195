// The record frame and the payload of each record type. The layout is documented in README.md;
// keep the two in step.

import { crc32c } from '../crc32c.ts';
import type { WalEntry, WalHardState, WalSnapshotMarker } from './types.ts';

export const RecordType = {
  Metadata: 1,
  Entry: 2,
  HardState: 3,
  Snapshot: 4,
} as const;

export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** crc (4) + length (4) + type (1) + padding (1) + reserved (2). */
export const HEADER_BYTES = 12;
/** Every record starts and ends on a multiple of this. */
export const ALIGN_BYTES = 8;
/** Largest payload one record may carry (a sanity bound; etcd's requests are at most a few MiB). */
export const PAYLOAD_BYTES_MAX = 256 * 1024 * 1024;
/** index (8) + term (8) + type (4), followed by the entry's data. */
export const ENTRY_HEADER_BYTES = 20;
export const HARD_STATE_BYTES = 24;
export const SNAPSHOT_BYTES = 16;
export const METADATA_BYTES_MAX = 1024 * 1024;

const TWO_POW_32 = 0x1_0000_0000;
/** High word of the largest safe integer: values above it do not survive a round trip through `number`. */
const SAFE_HIGH_WORD_MAX = 0x1f_ffff;

/** Bytes a record with a payload of `payloadBytes` occupies on disk, header and padding included. */
export function recordBytes(payloadBytes: number): number {
  return alignUp(HEADER_BYTES + payloadBytes);
}

export function alignUp(n: number): number {
  return Math.ceil(n / ALIGN_BYTES) * ALIGN_BYTES;
}

export function entryRecordBytes(entry: WalEntry): number {
  return recordBytes(ENTRY_HEADER_BYTES + entry.data.length);
}

export const HARD_STATE_RECORD_BYTES = recordBytes(HARD_STATE_BYTES);
export const SNAPSHOT_RECORD_BYTES = recordBytes(SNAPSHOT_BYTES);

/**
 * Encodes records into one growing buffer that is reused from batch to batch, so that a group
 * commit is a single contiguous write.
 */
export class RecordWriter {
  private buffer: Buffer;
  private length: number;
  /** Bounds of the record between `begin` and `finish`. */
  private recordStart: number;
  private recordEnd: number;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.alloc(initialBytes);
    this.length = 0;
    this.recordStart = 0;
    this.recordEnd = 0;
  }

  get byteLength(): number {
    return this.length;
  }

  /** The encoded bytes; valid until the next call that writes. */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }

  metadata(metadata: Uint8Array): void {
    const payload = this.begin(RecordType.Metadata, metadata.length);
    this.buffer.set(metadata, payload);
    this.finish();
  }

  entry(entry: WalEntry): void {
    const payload = this.begin(RecordType.Entry, ENTRY_HEADER_BYTES + entry.data.length);
    writeU64(this.buffer, payload, entry.index);
    writeU64(this.buffer, payload + 8, entry.term);
    this.buffer.writeUInt32LE(entry.type, payload + 16);
    this.buffer.set(entry.data, payload + ENTRY_HEADER_BYTES);
    this.finish();
  }

  hardState(state: WalHardState): void {
    const payload = this.begin(RecordType.HardState, HARD_STATE_BYTES);
    writeU64(this.buffer, payload, state.term);
    this.buffer.writeBigUInt64LE(state.vote, payload + 8);
    writeU64(this.buffer, payload + 16, state.commit);
    this.finish();
  }

  snapshot(marker: WalSnapshotMarker): void {
    const payload = this.begin(RecordType.Snapshot, SNAPSHOT_BYTES);
    writeU64(this.buffer, payload, marker.index);
    writeU64(this.buffer, payload + 8, marker.term);
    this.finish();
  }

  /** Writes the header except the CRC, zeroes the padding, and returns where the payload goes. */
  private begin(type: RecordType, payloadBytes: number): number {
    const total = recordBytes(payloadBytes);
    this.ensure(total);
    const at = this.length;
    const padding = total - HEADER_BYTES - payloadBytes;
    const b = this.buffer;
    b.writeUInt32LE(payloadBytes, at + 4);
    b[at + 8] = type;
    b[at + 9] = padding;
    b[at + 10] = 0;
    b[at + 11] = 0;
    b.fill(0, at + total - padding, at + total);
    this.recordStart = at;
    this.recordEnd = at + total;
    return at + HEADER_BYTES;
  }

  private finish(): void {
    const at = this.recordStart;
    const end = this.recordEnd;
    this.buffer.writeUInt32LE(crc32c(this.buffer.subarray(at + 4, end)), at);
    this.length = end;
  }

  private ensure(extraBytes: number): void {
    const needed = this.length + extraBytes;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.alloc(size);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

function writeU64(b: Buffer, at: number, value: number): void {
  b.writeUInt32LE(value % TWO_POW_32, at);
  b.writeUInt32LE(Math.floor(value / TWO_POW_32), at + 4);
}

/** Reads an unsigned 64-bit integer that must fit a safe `number`; returns -1 when it does not. */
function readU64(b: Buffer, at: number): number {
  const high = b.readUInt32LE(at + 4);
  if (high > SAFE_HIGH_WORD_MAX) return -1;
  return high * TWO_POW_32 + b.readUInt32LE(at);
}

/** What `readRecord` found at an offset. */
export const ReadOutcome = {
  /** A whole record with a good checksum. */
  Ok: 0,
  /** Zero bytes where a header should be: the end of written data. */
  Zero: 1,
  /** The header cannot be a record's (unknown type, bad padding, reserved bits, length past the end). */
  BadHeader: 2,
  /** The header is plausible and the record fits, but the checksum does not match. */
  BadCrc: 3,
} as const;

export type ReadOutcome = (typeof ReadOutcome)[keyof typeof ReadOutcome];

/** Result of `readRecord`; one object reused by a scan. */
export class RecordView {
  outcome: ReadOutcome = ReadOutcome.Zero;
  type: RecordType = RecordType.Metadata;
  payloadStart = 0;
  payloadEnd = 0;
  /** Offset just after this record (its padding included), when the header was plausible. */
  end = 0;
}

/** Decodes the frame at `at` (a multiple of ALIGN_BYTES) of `b[0, limit)` into `view`. */
export function readRecord(b: Buffer, at: number, limit: number, view: RecordView): ReadOutcome {
  view.end = 0;
  if (isZero(b, at, Math.min(at + HEADER_BYTES, limit))) return (view.outcome = ReadOutcome.Zero);
  if (at + HEADER_BYTES > limit) return (view.outcome = ReadOutcome.BadHeader);
  const payloadBytes = b.readUInt32LE(at + 4);
  const type = b[at + 8]!;
  const padding = b[at + 9]!;
  if (
    type < RecordType.Metadata ||
    type > RecordType.Snapshot ||
    payloadBytes > PAYLOAD_BYTES_MAX ||
    b[at + 10] !== 0 ||
    b[at + 11] !== 0 ||
    padding !== recordBytes(payloadBytes) - HEADER_BYTES - payloadBytes
  ) {
    return (view.outcome = ReadOutcome.BadHeader);
  }
  const end = at + recordBytes(payloadBytes);
  if (end > limit) return (view.outcome = ReadOutcome.BadHeader);
  view.end = end;
  view.type = type as RecordType;
  view.payloadStart = at + HEADER_BYTES;
  view.payloadEnd = at + HEADER_BYTES + payloadBytes;
  if (crc32c(b.subarray(at + 4, end)) !== b.readUInt32LE(at)) return (view.outcome = ReadOutcome.BadCrc);
  return (view.outcome = ReadOutcome.Ok);
}

/** Compared against with memcmp when checking long ranges for zeros. */
const ZEROS = Buffer.alloc(64 * 1024);
const SHORT_RANGE_BYTES = 64;

/** True when b[from, to) is all zeros. */
export function isZero(b: Uint8Array, from: number, to: number): boolean {
  if (to - from <= SHORT_RANGE_BYTES) {
    for (let i = from; i < to; i++) if (b[i] !== 0) return false;
    return true;
  }
  for (let at = from; at < to; at += ZEROS.length) {
    const end = Math.min(to, at + ZEROS.length);
    if (ZEROS.compare(b, at, end, 0, end - at) !== 0) return false;
  }
  return true;
}

/** Why a payload could not be decoded, or null when it was. */
export type PayloadProblem = string | null;

export function decodeEntry(b: Buffer, view: RecordView): WalEntry | PayloadProblem {
  if (view.payloadEnd - view.payloadStart < ENTRY_HEADER_BYTES) return 'entry record shorter than its header';
  const index = readU64(b, view.payloadStart);
  const term = readU64(b, view.payloadStart + 8);
  if (index < 0 || term < 0) return 'entry index or term beyond 2^53';
  return {
    index,
    term,
    type: b.readUInt32LE(view.payloadStart + 16),
    data: new Uint8Array(b.subarray(view.payloadStart + ENTRY_HEADER_BYTES, view.payloadEnd)),
  };
}

export function decodeHardState(b: Buffer, view: RecordView): WalHardState | PayloadProblem {
  if (view.payloadEnd - view.payloadStart !== HARD_STATE_BYTES) return 'hard state record of the wrong size';
  const term = readU64(b, view.payloadStart);
  const commit = readU64(b, view.payloadStart + 16);
  if (term < 0 || commit < 0) return 'hard state term or commit beyond 2^53';
  return { term, vote: b.readBigUInt64LE(view.payloadStart + 8), commit };
}

export function decodeSnapshot(b: Buffer, view: RecordView): WalSnapshotMarker | PayloadProblem {
  if (view.payloadEnd - view.payloadStart !== SNAPSHOT_BYTES) return 'snapshot record of the wrong size';
  const index = readU64(b, view.payloadStart);
  const term = readU64(b, view.payloadStart + 8);
  if (index < 0 || term < 0) return 'snapshot index or term beyond 2^53';
  return { index, term };
}

export function decodeMetadata(b: Buffer, view: RecordView): Uint8Array {
  return new Uint8Array(b.subarray(view.payloadStart, view.payloadEnd));
}
