// The backend's closed error catalogue: one class per condition, each with a stable `code`.

export const BackendErrorCode = {
  closed: 'ERR_BACKEND_CLOSED',
  unknownBucket: 'ERR_BACKEND_UNKNOWN_BUCKET',
  invalidKey: 'ERR_BACKEND_INVALID_KEY',
  invalidValue: 'ERR_BACKEND_INVALID_VALUE',
  invalidOption: 'ERR_BACKEND_INVALID_OPTION',
  corrupt: 'ERR_BACKEND_CORRUPT',
  commitFailed: 'ERR_BACKEND_COMMIT_FAILED',
  notEmpty: 'ERR_BACKEND_NOT_EMPTY',
} as const;

export type BackendErrorCode = (typeof BackendErrorCode)[keyof typeof BackendErrorCode];

export class BackendError extends Error {
  readonly code: BackendErrorCode;

  constructor(code: BackendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendError';
    this.code = code;
  }
}

/** An operation on a backend after `close()`. */
export class BackendClosedError extends BackendError {
  constructor() {
    super(BackendErrorCode.closed, 'backend: closed');
  }
}

export class UnknownBucketError extends BackendError {
  constructor(bucket: unknown) {
    super(BackendErrorCode.unknownBucket, `backend: unknown bucket ${JSON.stringify(String(bucket))}`);
  }
}

/** A key that is not a Uint8Array, is empty, or is longer than LMDB allows. */
export class InvalidKeyError extends BackendError {
  constructor(detail: string) {
    super(BackendErrorCode.invalidKey, `backend: invalid key: ${detail}`);
  }
}

export class InvalidValueError extends BackendError {
  constructor(detail: string) {
    super(BackendErrorCode.invalidValue, `backend: invalid value: ${detail}`);
  }
}

export class InvalidOptionError extends BackendError {
  constructor(detail: string) {
    super(BackendErrorCode.invalidOption, `backend: invalid option: ${detail}`);
  }
}

/** The data directory or a snapshot stream is not in the expected format. */
export class BackendCorruptError extends BackendError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(BackendErrorCode.corrupt, `backend: corrupt: ${detail}`, options);
  }
}

/**
 * LMDB refused a commit (disk full, I/O error). The pending batch is kept, and the backend
 * refuses further work: the member has to stop, as etcd does when bbolt cannot commit.
 */
export class CommitFailedError extends BackendError {
  constructor(cause: unknown) {
    super(BackendErrorCode.commitFailed, `backend: commit failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

/** Restoring a snapshot into a directory that already holds a backend. */
export class BackendNotEmptyError extends BackendError {
  constructor(dir: string) {
    super(BackendErrorCode.notEmpty, `backend: ${dir} already holds a backend`);
  }
}
