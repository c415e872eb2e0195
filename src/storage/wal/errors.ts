// The closed catalogue of WAL errors. Each condition is one class with a stable `code`; callers
// switch on `code` (or `instanceof`), never on the message, which is for people.

export const WalErrorCode = {
  /** The directory holds no WAL, or no segment holds the requested index. */
  NotFound: 'WAL_NOT_FOUND',
  /** `create` was called on a directory that already holds a WAL. */
  Exists: 'WAL_EXISTS',
  /** The log is damaged before its last valid record (bad record, missing segment, gap). */
  Corrupt: 'WAL_CORRUPT',
  /** A record fails its checksum and valid records follow it. */
  CrcMismatch: 'WAL_CRC_MISMATCH',
  /** Two segments carry different metadata. */
  MetadataConflict: 'WAL_METADATA_CONFLICT',
  /** `open` was given a snapshot marker that the log does not contain. */
  SnapshotNotFound: 'WAL_SNAPSHOT_NOT_FOUND',
  /** The log holds a snapshot marker at the requested index but with another term. */
  SnapshotMismatch: 'WAL_SNAPSHOT_MISMATCH',
  /** A caller passed a value the log cannot store; nothing was written. */
  InvalidArgument: 'WAL_INVALID_ARGUMENT',
  /** More bytes are queued for writing than `pendingBytesMax`; nothing was queued. */
  Overloaded: 'WAL_OVERLOADED',
  /** The WAL was closed. */
  Closed: 'WAL_CLOSED',
  /** An earlier write or fsync failed; what reached the disk is unknown, so the WAL stops. */
  Failed: 'WAL_FAILED',
} as const;

export type WalErrorCode = (typeof WalErrorCode)[keyof typeof WalErrorCode];

export abstract class WalError extends Error {
  abstract readonly code: WalErrorCode;
}

export class WalNotFoundError extends WalError {
  readonly code = WalErrorCode.NotFound;
  override readonly name = 'WalNotFoundError';
}

export class WalExistsError extends WalError {
  readonly code = WalErrorCode.Exists;
  override readonly name = 'WalExistsError';
}

/** Where in the log a problem was found, carried by the corruption errors. */
export interface WalLocation {
  readonly file: string;
  readonly offset: number;
}

export class WalCorruptError extends WalError {
  readonly code: WalErrorCode = WalErrorCode.Corrupt;
  override readonly name: string = 'WalCorruptError';
  readonly file: string;
  readonly offset: number;
  constructor(message: string, where: WalLocation, options?: ErrorOptions) {
    super(`${message} (${where.file} at byte ${where.offset})`, options);
    this.file = where.file;
    this.offset = where.offset;
  }
}

export class WalCrcMismatchError extends WalCorruptError {
  override readonly code = WalErrorCode.CrcMismatch;
  override readonly name = 'WalCrcMismatchError';
}

export class WalMetadataConflictError extends WalError {
  readonly code = WalErrorCode.MetadataConflict;
  override readonly name = 'WalMetadataConflictError';
}

export class WalSnapshotNotFoundError extends WalError {
  readonly code = WalErrorCode.SnapshotNotFound;
  override readonly name = 'WalSnapshotNotFoundError';
}

export class WalSnapshotMismatchError extends WalError {
  readonly code = WalErrorCode.SnapshotMismatch;
  override readonly name = 'WalSnapshotMismatchError';
}

export class WalInvalidArgumentError extends WalError {
  readonly code = WalErrorCode.InvalidArgument;
  override readonly name = 'WalInvalidArgumentError';
}

export class WalOverloadedError extends WalError {
  readonly code = WalErrorCode.Overloaded;
  override readonly name = 'WalOverloadedError';
}

export class WalClosedError extends WalError {
  readonly code = WalErrorCode.Closed;
  override readonly name = 'WalClosedError';
  constructor() {
    super('wal: the log is closed');
  }
}

export class WalFailedError extends WalError {
  readonly code = WalErrorCode.Failed;
  override readonly name = 'WalFailedError';
  constructor(cause: unknown) {
    super(`wal: an earlier write or fsync failed, the log cannot be used: ${describe(cause)}`, { cause });
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
