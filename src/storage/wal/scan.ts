// Reading a segment back: every valid record is handed to a visitor, and the end of the data
// is classified as clean, as a torn tail to truncate, or as corruption that stops the member.

import { WalCorruptError, WalCrcMismatchError } from './errors.ts';
import { ALIGN_BYTES, HEADER_BYTES, isZero, ReadOutcome, RecordType, RecordView, readRecord } from './record.ts';

export interface ScanResult {
  /** Offset just after the last valid record. */
  readonly validEnd: number;
  /** True when bytes after `validEnd` are not all zero and must be cleared before writing on. */
  readonly dirtyTail: boolean;
}

/**
 * Visits the records of one segment in order. `isLast` says whether the segment is the newest:
 * only there can a write have been interrupted. Throws WalCorruptError / WalCrcMismatchError
 * when damage is found that a crash cannot explain.
 */
export function scanSegment(
  bytes: Buffer,
  file: string,
  isLast: boolean,
  visit: (view: RecordView, offset: number) => void,
): ScanResult {
  const view = new RecordView();
  const limit = bytes.length;
  let at = 0;
  while (at < limit) {
    const outcome = readRecord(bytes, at, limit, view);
    if (outcome === ReadOutcome.Ok) {
      visit(view, at);
      at = view.end;
      continue;
    }
    const zeroTail = isZero(bytes, at, limit);
    classifyEnd(bytes, file, isLast, at, outcome, zeroTail);
    return { validEnd: at, dirtyTail: !zeroTail };
  }
  return { validEnd: at, dirtyTail: false };
}

/**
 * Returns when the data ending at `at` is a clean end or a torn tail; throws when it is
 * corruption. The rule: in the newest segment, damage with no valid record anywhere after it is
 * the write that was under way when the process stopped (a torn tail); damage followed by a
 * valid record would lose that record and everything after it, so it is an error. Sealed
 * segments were fsynced and trimmed to their data before the next segment was created, so any
 * damage there is an error.
 */
function classifyEnd(
  bytes: Buffer,
  file: string,
  isLast: boolean,
  at: number,
  outcome: ReadOutcome,
  zeroTail: boolean,
): void {
  if (!isLast) {
    if (outcome === ReadOutcome.Zero && zeroTail) return;
    throw sealedSegmentError(file, at, outcome);
  }
  // Zeros to the end: nothing was written after this point (the common case), or a torn write.
  if (zeroTail) return;
  // The damaged record's own end is unknown when its length is damaged: look from the next slot.
  const next = findValidRecord(bytes, at + ALIGN_BYTES);
  if (next < 0) return;
  const what =
    outcome === ReadOutcome.BadCrc
      ? 'fails its checksum'
      : outcome === ReadOutcome.Zero
        ? 'is zeros'
        : 'has an invalid header';
  const message =
    `wal: the record at byte ${at} ${what} but a valid record follows at byte ${next}; ` +
    'the log is corrupt before its end and this member cannot start from it ' +
    '(restore the member from a snapshot, or remove it from the cluster and add it back)';
  throw outcome === ReadOutcome.BadCrc
    ? new WalCrcMismatchError(message, { file, offset: at })
    : new WalCorruptError(message, { file, offset: at });
}

function sealedSegmentError(file: string, at: number, outcome: ReadOutcome): WalCorruptError {
  const what =
    outcome === ReadOutcome.BadCrc
      ? 'fails its checksum'
      : outcome === ReadOutcome.Zero
        ? 'is zeros followed by data'
        : 'has an invalid header';
  const message =
    `wal: the record at byte ${at} ${what} in a segment that later segments follow; ` +
    'the log is corrupt and this member cannot start from it ' +
    '(restore the member from a snapshot, or remove it from the cluster and add it back)';
  return outcome === ReadOutcome.BadCrc
    ? new WalCrcMismatchError(message, { file, offset: at })
    : new WalCorruptError(message, { file, offset: at });
}

/** Length of the zero runs `findValidRecord` skips at once. */
const SKIP_BYTES = 4096;

/** Offset of the first valid record at or after `from` (8-byte aligned positions), or -1. */
export function findValidRecord(bytes: Buffer, from: number): number {
  const view = new RecordView();
  const limit = bytes.length;
  for (let at = from; at + HEADER_BYTES <= limit; at += ALIGN_BYTES) {
    // A run of zeros cannot hold a header's non-zero type byte: skip it whole.
    if (at + SKIP_BYTES <= limit && isZero(bytes, at, at + SKIP_BYTES)) {
      at += SKIP_BYTES - ALIGN_BYTES * 2;
      continue;
    }
    // Cheap rejections first: most positions are not a header.
    const type = bytes[at + 8]!;
    if (type < RecordType.Metadata || type > RecordType.Snapshot || bytes[at + 10] !== 0 || bytes[at + 11] !== 0)
      continue;
    if (readRecord(bytes, at, limit, view) === ReadOutcome.Ok) return at;
  }
  return -1;
}
