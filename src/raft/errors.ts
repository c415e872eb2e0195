// The Raft library's error catalogue: one class per condition, each with a stable `code`.
// Messages are etcd's (raft/storage.go, raft/raft.go, raft/rawnode.go).
//
// Operating errors (a proposal dropped, an index compacted away, a malformed message from the
// network) are thrown as one of these. Programmer errors (an invariant of the library or of
// the caller's contract broken) throw RaftInvariantError: they mean a bug, not a condition to
// handle.

export const RaftErrorCode = {
  Compacted: 'ErrCompacted',
  SnapOutOfDate: 'ErrSnapOutOfDate',
  Unavailable: 'ErrUnavailable',
  SnapshotTemporarilyUnavailable: 'ErrSnapshotTemporarilyUnavailable',
  ProposalDropped: 'ErrProposalDropped',
  StepLocalMsg: 'ErrStepLocalMsg',
  StepPeerNotFound: 'ErrStepPeerNotFound',
  InvalidConfig: 'ErrInvalidConfig',
  InvalidConfChange: 'ErrInvalidConfChange',
  InvalidMessage: 'ErrInvalidMessage',
  Decode: 'ErrDecode',
  Invariant: 'ErrInvariant',
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

export abstract class RaftError extends Error {
  abstract readonly code: RaftErrorCode;
}

// --- Storage errors: the closed set a Storage implementation may throw. ---

/** The requested index is at or below the storage's compaction point. */
export class ErrCompacted extends RaftError {
  readonly code = RaftErrorCode.Compacted;
  constructor() {
    super('requested index is unavailable due to compaction');
    this.name = 'ErrCompacted';
  }
}

/** A snapshot older than the one the storage already holds was offered. */
export class ErrSnapOutOfDate extends RaftError {
  readonly code = RaftErrorCode.SnapOutOfDate;
  constructor() {
    super('requested index is older than the existing snapshot');
    this.name = 'ErrSnapOutOfDate';
  }
}

/** The requested index is beyond the storage's last index. */
export class ErrUnavailable extends RaftError {
  readonly code = RaftErrorCode.Unavailable;
  constructor() {
    super('requested entry at index is unavailable');
    this.name = 'ErrUnavailable';
  }
}

/** The storage is building a snapshot and cannot return one yet; Raft retries later. */
export class ErrSnapshotTemporarilyUnavailable extends RaftError {
  readonly code = RaftErrorCode.SnapshotTemporarilyUnavailable;
  constructor() {
    super('snapshot is temporarily unavailable');
    this.name = 'ErrSnapshotTemporarilyUnavailable';
  }
}

export type StorageError = ErrCompacted | ErrSnapOutOfDate | ErrUnavailable | ErrSnapshotTemporarilyUnavailable;

// --- Errors of the RawNode API. ---

/**
 * A proposal (or read request) was not accepted: there is no known leader, a leader transfer
 * is in progress, a conf change is still pending, this member was removed, or a size limit was
 * reached. Nothing was appended; the caller may retry later.
 */
export class ErrProposalDropped extends RaftError {
  readonly code = RaftErrorCode.ProposalDropped;
  constructor(readonly reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = 'ErrProposalDropped';
  }
}

/** A local-only message type (MsgHup, MsgBeat, ...) was passed to step() as if from the network. */
export class ErrStepLocalMsg extends RaftError {
  readonly code = RaftErrorCode.StepLocalMsg;
  constructor() {
    super('raft: cannot step raft local message');
    this.name = 'ErrStepLocalMsg';
  }
}

/** A response came from a member that is not in the configuration. */
export class ErrStepPeerNotFound extends RaftError {
  readonly code = RaftErrorCode.StepPeerNotFound;
  constructor() {
    super('raft: cannot step as peer not found');
    this.name = 'ErrStepPeerNotFound';
  }
}

export class ErrInvalidConfig extends RaftError {
  readonly code = RaftErrorCode.InvalidConfig;
  constructor(detail: string) {
    super(`raft: invalid config: ${detail}`);
    this.name = 'ErrInvalidConfig';
  }
}

/** A membership change that cannot be applied (removing the last voter, a zero id, ...). Nothing changed. */
export class ErrInvalidConfChange extends RaftError {
  readonly code = RaftErrorCode.InvalidConfChange;
  constructor(detail: string) {
    super(`raft: invalid conf change: ${detail}`);
    this.name = 'ErrInvalidConfChange';
  }
}

/** A message that is not well formed (unknown type, bad fields). Nothing changed. */
export class ErrInvalidMessage extends RaftError {
  readonly code = RaftErrorCode.InvalidMessage;
  constructor(detail: string) {
    super(`raft: invalid message: ${detail}`);
    this.name = 'ErrInvalidMessage';
  }
}

/** Bytes that do not decode to the expected record. */
export class ErrDecode extends RaftError {
  readonly code = RaftErrorCode.Decode;
  constructor(detail: string) {
    super(`raft: cannot decode: ${detail}`);
    this.name = 'ErrDecode';
  }
}

/** A broken invariant: a bug in this library or a violation of the caller's contract. */
export class RaftInvariantError extends RaftError {
  readonly code = RaftErrorCode.Invariant;
  constructor(detail: string) {
    super(`raft: invariant violated: ${detail}`);
    this.name = 'RaftInvariantError';
  }
}

export function invariant(cond: boolean, detail: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof detail === 'string' ? detail : detail());
}
