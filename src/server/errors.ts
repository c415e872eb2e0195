/**
 * The server's error catalogue: one class, one stable code per condition. The message is
 * etcd's own wording; `src/api/errors.ts` maps each code to its gRPC status in one table.
 */
export const ServerErrorCode = {
  EmptyKey: 'EMPTY_KEY',
  KeyNotFound: 'KEY_NOT_FOUND',
  ValueProvided: 'VALUE_PROVIDED',
  LeaseProvided: 'LEASE_PROVIDED',
  TooManyOps: 'TOO_MANY_OPS',
  DuplicateKey: 'DUPLICATE_KEY',
  Compacted: 'COMPACTED',
  FutureRev: 'FUTURE_REV',
  NoSpace: 'NO_SPACE',
  LeaseNotFound: 'LEASE_NOT_FOUND',
  LeaseExist: 'LEASE_EXIST',
  LeaseTTLTooLarge: 'LEASE_TTL_TOO_LARGE',
  RequestTooLarge: 'REQUEST_TOO_LARGE',
  TooManyRequests: 'TOO_MANY_REQUESTS',
  NoLeader: 'NO_LEADER',
  NotLeader: 'NOT_LEADER',
  LeaderChanged: 'LEADER_CHANGED',
  Stopped: 'STOPPED',
  Timeout: 'TIMEOUT',
  Corrupt: 'CORRUPT',
  NotCapable: 'NOT_CAPABLE',
  Unhealthy: 'UNHEALTHY',
  InvalidArgument: 'INVALID_ARGUMENT',
  MemberExist: 'MEMBER_EXIST',
  PeerURLExist: 'PEER_URL_EXIST',
  MemberNotEnoughStarted: 'MEMBER_NOT_ENOUGH_STARTED',
  MemberBadURLs: 'MEMBER_BAD_URLS',
  MemberNotFound: 'MEMBER_NOT_FOUND',
  MemberNotLearner: 'MEMBER_NOT_LEARNER',
  LearnerNotReady: 'LEARNER_NOT_READY',
  TooManyLearners: 'TOO_MANY_LEARNERS',
  BadLeaderTransferee: 'BAD_LEADER_TRANSFEREE',
  NotSupportedForLearner: 'NOT_SUPPORTED_FOR_LEARNER',
} as const;
export type ServerErrorCode = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];

export const SERVER_ERROR_MESSAGES: Readonly<Record<ServerErrorCode, string>> = {
  EMPTY_KEY: 'etcdserver: key is not provided',
  KEY_NOT_FOUND: 'etcdserver: key not found',
  VALUE_PROVIDED: 'etcdserver: value is provided',
  LEASE_PROVIDED: 'etcdserver: lease is provided',
  TOO_MANY_OPS: 'etcdserver: too many operations in txn request',
  DUPLICATE_KEY: 'etcdserver: duplicate key given in txn request',
  COMPACTED: 'etcdserver: mvcc: required revision has been compacted',
  FUTURE_REV: 'etcdserver: mvcc: required revision is a future revision',
  NO_SPACE: 'etcdserver: mvcc: database space exceeded',
  LEASE_NOT_FOUND: 'etcdserver: requested lease not found',
  LEASE_EXIST: 'etcdserver: lease already exists',
  LEASE_TTL_TOO_LARGE: 'etcdserver: too large lease TTL',
  REQUEST_TOO_LARGE: 'etcdserver: request is too large',
  TOO_MANY_REQUESTS: 'etcdserver: too many requests',
  NO_LEADER: 'etcdserver: no leader',
  NOT_LEADER: 'etcdserver: not leader',
  LEADER_CHANGED: 'etcdserver: leader changed',
  STOPPED: 'etcdserver: server stopped',
  TIMEOUT: 'etcdserver: request timed out',
  CORRUPT: 'etcdserver: corrupt cluster',
  NOT_CAPABLE: 'etcdserver: not capable',
  UNHEALTHY: 'etcdserver: unhealthy cluster',
  INVALID_ARGUMENT: 'etcdserver: invalid argument',
  MEMBER_EXIST: 'etcdserver: member ID already exist',
  PEER_URL_EXIST: 'etcdserver: Peer URLs already exists',
  MEMBER_NOT_ENOUGH_STARTED: 'etcdserver: re-configuration failed due to not enough started members',
  MEMBER_BAD_URLS: 'etcdserver: given member URLs are invalid',
  MEMBER_NOT_FOUND: 'etcdserver: member not found',
  MEMBER_NOT_LEARNER: 'etcdserver: can only promote a learner member',
  LEARNER_NOT_READY: 'etcdserver: can only promote a learner member which is in sync with leader',
  TOO_MANY_LEARNERS: 'etcdserver: too many learner members in cluster',
  BAD_LEADER_TRANSFEREE: 'etcdserver: bad leader transferee',
  NOT_SUPPORTED_FOR_LEARNER: 'etcdserver: rpc not supported for learner',
};

export class ServerError extends Error {
  readonly code: ServerErrorCode;

  constructor(code: ServerErrorCode, message: string = SERVER_ERROR_MESSAGES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerError';
    this.code = code;
  }
}

export function serverError(code: ServerErrorCode): ServerError {
  return new ServerError(code);
}
