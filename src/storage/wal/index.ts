// The write-ahead log's public surface.

export {
  WalClosedError,
  WalCorruptError,
  WalCrcMismatchError,
  WalError,
  WalErrorCode,
  WalExistsError,
  WalFailedError,
  WalInvalidArgumentError,
  type WalLocation,
  WalMetadataConflictError,
  WalNotFoundError,
  WalOverloadedError,
  WalSnapshotMismatchError,
  WalSnapshotNotFoundError,
} from './errors.ts';
export {
  EMPTY_HARD_STATE,
  Preallocation,
  type WalEntry,
  type WalHardState,
  type WalOptions,
  type WalSnapshotMarker,
  type WalStats,
  WalSyncMode,
} from './types.ts';
export {
  GROUP_BYTES_MAX_DEFAULT,
  PENDING_BYTES_MAX_DEFAULT,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_MIN,
  Wal,
  type WalOpenResult,
} from './wal.ts';
