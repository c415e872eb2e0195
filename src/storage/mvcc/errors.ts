// The MVCC store's closed error catalogue. Messages are etcd's where etcd has the condition
// (the api layer prefixes "etcdserver: " and picks the gRPC code); every class has a stable code.

export const MvccErrorCode = {
  compacted: 'ERR_MVCC_COMPACTED',
  futureRevision: 'ERR_MVCC_FUTURE_REV',
  closed: 'ERR_MVCC_CLOSED',
  txnEnded: 'ERR_MVCC_TXN_ENDED',
  txnInProgress: 'ERR_MVCC_TXN_IN_PROGRESS',
  invalidArgument: 'ERR_MVCC_INVALID_ARGUMENT',
  corrupt: 'ERR_MVCC_CORRUPT',
} as const;

export type MvccErrorCode = (typeof MvccErrorCode)[keyof typeof MvccErrorCode];

export class MvccError extends Error {
  readonly code: MvccErrorCode;

  constructor(code: MvccErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MvccError';
    this.code = code;
  }
}

/** etcd's ErrCompacted. */
export class CompactedError extends MvccError {
  constructor() {
    super(MvccErrorCode.compacted, 'mvcc: required revision has been compacted');
  }
}

/** etcd's ErrFutureRev. */
export class FutureRevisionError extends MvccError {
  constructor() {
    super(MvccErrorCode.futureRevision, 'mvcc: required revision is a future revision');
  }
}

/** etcd's ErrClosed. */
export class MvccClosedError extends MvccError {
  constructor() {
    super(MvccErrorCode.closed, 'mvcc: closed');
  }
}

/** A write transaction used after end(). */
export class TxnEndedError extends MvccError {
  constructor() {
    super(MvccErrorCode.txnEnded, 'mvcc: write transaction has ended');
  }
}

/** write() while another write transaction is open: write transactions do not nest. */
export class TxnInProgressError extends MvccError {
  constructor() {
    super(MvccErrorCode.txnInProgress, 'mvcc: a write transaction is already open');
  }
}

/** A key, range end, value, lease or revision of the wrong type or out of range. */
export class InvalidArgumentError extends MvccError {
  constructor(detail: string) {
    super(MvccErrorCode.invalidArgument, `mvcc: invalid argument: ${detail}`);
  }
}

/** The backend holds data the store cannot decode. */
export class MvccCorruptError extends MvccError {
  constructor(detail: string) {
    super(MvccErrorCode.corrupt, `mvcc: corrupt data: ${detail}`);
  }
}
