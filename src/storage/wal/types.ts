// Record shapes stored in the WAL. They are structural on purpose: the storage layer knows
// nothing of raft, and the server passes raft's entries and hard state, which have these shapes.

/** One log entry. `index` and `term` are non-negative safe integers, `type` an unsigned 32-bit value. */
export interface WalEntry {
  index: number;
  term: number;
  type: number;
  data: Uint8Array;
}

/** Raft's persistent state besides the log. `vote` is a 64-bit member id. */
export interface WalHardState {
  term: number;
  vote: bigint;
  commit: number;
}

/** Marks that a snapshot at (index, term) exists; `open` starts reading after it. */
export interface WalSnapshotMarker {
  index: number;
  term: number;
}

export const EMPTY_HARD_STATE: Readonly<WalHardState> = Object.freeze({ term: 0, vote: 0n, commit: 0 });

/** How a new segment's space is reserved (Node has no `fallocate`). */
export const Preallocation = {
  /** `ftruncate` to the segment size: instant, the file is sparse until written. */
  Sparse: 'sparse',
  /** Write zeros over the whole segment: blocks are allocated up front, at the cost of the write. */
  Zeros: 'zeros',
  /** No reservation; the file grows with each write. */
  None: 'none',
} as const;

export type Preallocation = (typeof Preallocation)[keyof typeof Preallocation];

/** How a group commit is made durable. */
export const WalSyncMode = {
  /** One positional `write`, then one `fdatasync`: two calls through libuv's thread pool. */
  Fdatasync: 'fdatasync',
  /**
   * Segments are opened with `O_DSYNC`: the `write` itself returns once the data is durable, so a
   * group commit is one call through the thread pool instead of two.
   */
  Dsync: 'dsync',
} as const;

export type WalSyncMode = (typeof WalSyncMode)[keyof typeof WalSyncMode];

export interface WalOptions {
  /** A segment is cut once it holds this many bytes. Default 64 MiB, as etcd. */
  segmentSizeBytes?: number;
  /** How segments are preallocated. Default `sparse`. */
  preallocate?: Preallocation;
  /** Upper bound on the bytes of one group commit (one write + one fdatasync). Default 16 MiB. */
  groupBytesMax?: number;
  /** Upper bound on the bytes queued and not yet written; a `save` beyond it is refused. Default 256 MiB. */
  pendingBytesMax?: number;
  /** Skip fdatasync (etcd's `--unsafe-no-fsync`): acknowledged writes can be lost on power failure. */
  unsafeNoFsync?: boolean;
  /** How a group commit is made durable. Default `dsync`. */
  syncMode?: WalSyncMode;
  /**
   * Called after every durable group commit with the duration of its sync (`fdatasync` mode) or of
   * its synchronous write (`dsync` mode), e.g. for `etcd_disk_wal_fsync_duration_seconds`.
   */
  onFsync?: (durationMs: number) => void;
}

/** Counters since the WAL was opened; they only grow. */
export interface WalStats {
  /** Group commits written (one write call each). */
  writes: number;
  /** Group commits made durable (an fdatasync, or a write on an O_DSYNC segment). */
  syncs: number;
  /** Calls to `save` and `saveSnapshot` acknowledged. */
  batches: number;
  /** Hard states written that `deferHardState` queued (a deferred one replaced by a later one is not counted). */
  deferredWritten: number;
  /** Bytes of records written, padding included. */
  bytesWritten: number;
  /** Segments cut (not counting the one opened or created). */
  segmentsCut: number;
}
