// The snapshot files' public surface.

export {
  SnapCorruptError,
  SnapCrcMismatchError,
  SnapError,
  SnapErrorCode,
  SnapInvalidArgumentError,
  SnapNotFoundError,
} from './errors.ts';
export {
  type BrokenSnapshot,
  SNAPSHOT_DATA_BYTES_MAX,
  type Snapshot,
  type SnapshotFile,
  Snapshotter,
  type SnapshotterOptions,
  snapshotName,
} from './snapshotter.ts';
