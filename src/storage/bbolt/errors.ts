// Errors of the bbolt file module: one class per condition, each with a stable code.

export class BboltError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BboltError';
    this.code = code;
  }
}

/**
 * The file is not a bbolt database, or its pages do not hold together. Messages are bbolt's
 * where bbolt has one (`invalid database`, `file size too small`, `checksum error`).
 */
export class BboltCorruptError extends BboltError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BBOLT_CORRUPT', message, options);
    this.name = 'BboltCorruptError';
  }
}

/** The caller broke the writer's contract (keys out of order, a bucket twice, sizes over bbolt's limits). */
export class BboltUsageError extends BboltError {
  constructor(message: string) {
    super('ERR_BBOLT_USAGE', `bbolt writer: ${message}`);
    this.name = 'BboltUsageError';
  }
}
