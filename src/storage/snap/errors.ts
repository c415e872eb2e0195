// The closed catalogue of snapshot-file errors, each with a stable `code`.

export const SnapErrorCode = {
  /** No snapshot file with that term and index, or none that reads back whole. */
  NotFound: 'SNAP_NOT_FOUND',
  /** The file is not a snapshot of ours, is cut short, or disagrees with its own name. */
  Corrupt: 'SNAP_CORRUPT',
  /** The file's checksum does not match its contents. */
  CrcMismatch: 'SNAP_CRC_MISMATCH',
  /** A caller passed a value that cannot be stored; nothing was written. */
  InvalidArgument: 'SNAP_INVALID_ARGUMENT',
} as const;

export type SnapErrorCode = (typeof SnapErrorCode)[keyof typeof SnapErrorCode];

export abstract class SnapError extends Error {
  abstract readonly code: SnapErrorCode;
}

export class SnapNotFoundError extends SnapError {
  readonly code = SnapErrorCode.NotFound;
  override readonly name = 'SnapNotFoundError';
}

export class SnapCorruptError extends SnapError {
  readonly code = SnapErrorCode.Corrupt;
  override readonly name = 'SnapCorruptError';
}

export class SnapCrcMismatchError extends SnapError {
  readonly code = SnapErrorCode.CrcMismatch;
  override readonly name = 'SnapCrcMismatchError';
}

export class SnapInvalidArgumentError extends SnapError {
  readonly code = SnapErrorCode.InvalidArgument;
  override readonly name = 'SnapInvalidArgumentError';
}
