/**
 * gRPC status codes, the `GrpcError` a handler throws to answer with a status, etcd's catalogue
 * of gRPC errors (api/v3rpc/rpctypes: code and exact message, which clients parse), and the one
 * table that translates the lower layers' error codes into them.
 */

import { GrpcStatus } from '../proto/grpc-status.ts';

export { GrpcStatus };

const STATUS_NAMES: readonly string[] = Object.keys(GrpcStatus);

/** `UNIMPLEMENTED` for 12; `CODE(99)` for a code outside the canonical set. */
export function grpcStatusName(code: number): string {
  return STATUS_NAMES[code] ?? `CODE(${code})`;
}

/**
 * An error that carries the gRPC status to answer with. Anything else a handler throws is
 * translated by `toGrpcError` (the table below, or UNKNOWN with the error's message).
 */
export class GrpcError extends Error {
  readonly code: GrpcStatus;

  constructor(code: GrpcStatus, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GrpcError';
    this.code = code;
  }
}

/** One of etcd's gRPC errors: its status code and its exact message. */
export interface EtcdErrorSpec {
  readonly code: GrpcStatus;
  readonly message: string;
}

function spec(code: GrpcStatus, message: string): EtcdErrorSpec {
  return Object.freeze({ code, message });
}

const S = GrpcStatus;

/** etcd's server-side gRPC errors (api/v3rpc/rpctypes/error.go), by their Go name without `ErrGRPC`. */
export const ETCD_ERRORS = Object.freeze({
  EmptyKey: spec(S.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  KeyNotFound: spec(S.INVALID_ARGUMENT, 'etcdserver: key not found'),
  ValueProvided: spec(S.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  LeaseProvided: spec(S.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  TTLZero: spec(S.INVALID_ARGUMENT, 'etcdserver: ttl is 0'),
  TooManyOps: spec(S.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  DuplicateKey: spec(S.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  Compacted: spec(S.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  FutureRev: spec(S.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  NoSpace: spec(S.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),

  LeaseNotFound: spec(S.NOT_FOUND, 'etcdserver: requested lease not found'),
  LeaseExist: spec(S.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  LeaseTTLTooLarge: spec(S.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),

  MemberExist: spec(S.FAILED_PRECONDITION, 'etcdserver: member ID already exist'),
  PeerURLExist: spec(S.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  MemberNotEnoughStarted: spec(
    S.FAILED_PRECONDITION,
    'etcdserver: re-configuration failed due to not enough started members',
  ),
  MemberBadURLs: spec(S.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  MemberNotFound: spec(S.NOT_FOUND, 'etcdserver: member not found'),
  MemberNotLearner: spec(S.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  LearnerNotReady: spec(
    S.FAILED_PRECONDITION,
    'etcdserver: can only promote a learner member which is in sync with leader',
  ),
  TooManyLearners: spec(S.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'),

  RequestTooLarge: spec(S.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  RequestTooManyRequests: spec(S.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),

  RootUserNotExist: spec(S.FAILED_PRECONDITION, 'etcdserver: root user does not exist'),
  RootRoleNotExist: spec(S.FAILED_PRECONDITION, 'etcdserver: root user does not have root role'),
  UserAlreadyExist: spec(S.FAILED_PRECONDITION, 'etcdserver: user name already exists'),
  UserEmpty: spec(S.INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  UserNotFound: spec(S.FAILED_PRECONDITION, 'etcdserver: user name not found'),
  RoleAlreadyExist: spec(S.FAILED_PRECONDITION, 'etcdserver: role name already exists'),
  RoleNotFound: spec(S.FAILED_PRECONDITION, 'etcdserver: role name not found'),
  RoleEmpty: spec(S.INVALID_ARGUMENT, 'etcdserver: role name is empty'),
  AuthFailed: spec(S.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'),
  PermissionDenied: spec(S.PERMISSION_DENIED, 'etcdserver: permission denied'),
  RoleNotGranted: spec(S.FAILED_PRECONDITION, 'etcdserver: role is not granted to the user'),
  PermissionNotGranted: spec(S.FAILED_PRECONDITION, 'etcdserver: permission is not granted to the role'),
  AuthNotEnabled: spec(S.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
  InvalidAuthToken: spec(S.UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  InvalidAuthMgmt: spec(S.INVALID_ARGUMENT, 'etcdserver: invalid auth management'),
  AuthOldRevision: spec(S.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'),
  PermissionNotGiven: spec(S.INVALID_ARGUMENT, 'etcdserver: permission not given'),

  NoLeader: spec(S.UNAVAILABLE, 'etcdserver: no leader'),
  NotLeader: spec(S.FAILED_PRECONDITION, 'etcdserver: not leader'),
  LeaderChanged: spec(S.UNAVAILABLE, 'etcdserver: leader changed'),
  NotCapable: spec(S.UNAVAILABLE, 'etcdserver: not capable'),
  Stopped: spec(S.UNAVAILABLE, 'etcdserver: server stopped'),
  Timeout: spec(S.UNAVAILABLE, 'etcdserver: request timed out'),
  TimeoutDueToLeaderFail: spec(S.UNAVAILABLE, 'etcdserver: request timed out, possibly due to previous leader failure'),
  TimeoutDueToConnectionLost: spec(S.UNAVAILABLE, 'etcdserver: request timed out, possibly due to connection lost'),
  Unhealthy: spec(S.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  Corrupt: spec(S.DATA_LOSS, 'etcdserver: corrupt cluster'),
  NotSupportedForLearner: spec(S.UNAVAILABLE, 'etcdserver: rpc not supported for learner'),
  BadLeaderTransferee: spec(S.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),

  ClusterVersionUnavailable: spec(S.UNAVAILABLE, 'etcdserver: cluster version not found during downgrade'),
  WrongDowngradeVersionFormat: spec(S.INVALID_ARGUMENT, 'etcdserver: wrong downgrade target version format'),
  InvalidDowngradeTargetVersion: spec(S.INVALID_ARGUMENT, 'etcdserver: invalid downgrade target version'),
  DowngradeInProcess: spec(S.FAILED_PRECONDITION, 'etcdserver: cluster has a downgrade job in progress'),
  NoInflightDowngrade: spec(S.FAILED_PRECONDITION, 'etcdserver: no inflight downgrade job'),
} as const);
export type EtcdErrorName = keyof typeof ETCD_ERRORS;

/** A fresh `GrpcError` for one of etcd's errors: `throw etcdError('LeaseNotFound')`. */
export function etcdError(name: EtcdErrorName, cause?: unknown): GrpcError {
  const e = ETCD_ERRORS[name];
  return new GrpcError(e.code, e.message, cause === undefined ? undefined : { cause });
}

/** How one lower-layer error code answers: a status and etcd's message, or the error's own message. */
export interface ErrorTranslation {
  readonly code: GrpcStatus;
  /** Omitted: the error's own message is sent (for codes whose message varies). */
  readonly message?: string;
}

/**
 * The translation table: the stable `code` of a lower layer's error (server/, storage/, ...)
 * to the etcd gRPC error a client sees. Each layer keeps its own catalogue; this is the only
 * place where they meet the wire. Codes not listed here answer UNKNOWN with the error's message.
 */
export const ERROR_TRANSLATIONS: ReadonlyMap<string, ErrorTranslation> = new Map<string, ErrorTranslation>([
  // server/errors.ts (ServerErrorCode)
  ['EMPTY_KEY', ETCD_ERRORS.EmptyKey],
  ['KEY_NOT_FOUND', ETCD_ERRORS.KeyNotFound],
  ['VALUE_PROVIDED', ETCD_ERRORS.ValueProvided],
  ['LEASE_PROVIDED', ETCD_ERRORS.LeaseProvided],
  ['TOO_MANY_OPS', ETCD_ERRORS.TooManyOps],
  ['DUPLICATE_KEY', ETCD_ERRORS.DuplicateKey],
  ['COMPACTED', ETCD_ERRORS.Compacted],
  ['FUTURE_REV', ETCD_ERRORS.FutureRev],
  ['NO_SPACE', ETCD_ERRORS.NoSpace],
  ['LEASE_NOT_FOUND', ETCD_ERRORS.LeaseNotFound],
  ['LEASE_EXIST', ETCD_ERRORS.LeaseExist],
  ['LEASE_TTL_TOO_LARGE', ETCD_ERRORS.LeaseTTLTooLarge],
  ['REQUEST_TOO_LARGE', ETCD_ERRORS.RequestTooLarge],
  ['TOO_MANY_REQUESTS', ETCD_ERRORS.RequestTooManyRequests],
  ['NO_LEADER', ETCD_ERRORS.NoLeader],
  ['NOT_LEADER', ETCD_ERRORS.NotLeader],
  ['LEADER_CHANGED', ETCD_ERRORS.LeaderChanged],
  ['STOPPED', ETCD_ERRORS.Stopped],
  ['TIMEOUT', ETCD_ERRORS.Timeout],
  ['CORRUPT', ETCD_ERRORS.Corrupt],
  ['NOT_CAPABLE', ETCD_ERRORS.NotCapable],
  ['UNHEALTHY', ETCD_ERRORS.Unhealthy],
  ['INVALID_ARGUMENT', { code: S.INVALID_ARGUMENT }],
  ['MEMBER_EXIST', ETCD_ERRORS.MemberExist],
  ['PEER_URL_EXIST', ETCD_ERRORS.PeerURLExist],
  ['MEMBER_NOT_ENOUGH_STARTED', ETCD_ERRORS.MemberNotEnoughStarted],
  ['MEMBER_BAD_URLS', ETCD_ERRORS.MemberBadURLs],
  ['MEMBER_NOT_FOUND', ETCD_ERRORS.MemberNotFound],
  ['MEMBER_NOT_LEARNER', ETCD_ERRORS.MemberNotLearner],
  ['LEARNER_NOT_READY', ETCD_ERRORS.LearnerNotReady],
  ['TOO_MANY_LEARNERS', ETCD_ERRORS.TooManyLearners],
  ['BAD_LEADER_TRANSFEREE', ETCD_ERRORS.BadLeaderTransferee],
  ['NOT_SUPPORTED_FOR_LEARNER', ETCD_ERRORS.NotSupportedForLearner],
  // server/auth/errors.ts (AuthErrorCode); the others answer UNKNOWN with the auth store's message
  ['AUTH_ROOT_USER_NOT_EXIST', ETCD_ERRORS.RootUserNotExist],
  ['AUTH_ROOT_ROLE_NOT_EXIST', ETCD_ERRORS.RootRoleNotExist],
  ['AUTH_USER_ALREADY_EXIST', ETCD_ERRORS.UserAlreadyExist],
  ['AUTH_USER_EMPTY', ETCD_ERRORS.UserEmpty],
  ['AUTH_USER_NOT_FOUND', ETCD_ERRORS.UserNotFound],
  ['AUTH_ROLE_ALREADY_EXIST', ETCD_ERRORS.RoleAlreadyExist],
  ['AUTH_ROLE_NOT_FOUND', ETCD_ERRORS.RoleNotFound],
  ['AUTH_ROLE_EMPTY', ETCD_ERRORS.RoleEmpty],
  ['AUTH_PERMISSION_NOT_GIVEN', ETCD_ERRORS.PermissionNotGiven],
  ['AUTH_FAILED', ETCD_ERRORS.AuthFailed],
  ['AUTH_PERMISSION_DENIED', ETCD_ERRORS.PermissionDenied],
  ['AUTH_ROLE_NOT_GRANTED', ETCD_ERRORS.RoleNotGranted],
  ['AUTH_PERMISSION_NOT_GRANTED', ETCD_ERRORS.PermissionNotGranted],
  ['AUTH_NOT_ENABLED', ETCD_ERRORS.AuthNotEnabled],
  ['AUTH_OLD_REVISION', ETCD_ERRORS.AuthOldRevision],
  ['AUTH_INVALID_TOKEN', ETCD_ERRORS.InvalidAuthToken],
  ['AUTH_INVALID_MGMT', ETCD_ERRORS.InvalidAuthMgmt],
  ['AUTH_TOO_MANY_REQUESTS', ETCD_ERRORS.RequestTooManyRequests],
  // storage/mvcc errors that reach the API outside a request's apply
  ['ERR_MVCC_COMPACTED', ETCD_ERRORS.Compacted],
  ['ERR_MVCC_FUTURE_REV', ETCD_ERRORS.FutureRev],
  // proto/errors.ts: a request whose bytes are not a valid message (grpc-go answers INTERNAL).
  ['PROTO_DECODE', { code: S.INTERNAL }],
]);

/**
 * The status a thrown value answers with: a `GrpcError` as is; an error whose `code` is in
 * the translation table as etcd's error; anything else UNKNOWN with its message (as grpc-go
 * does for a plain Go error).
 */
export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof GrpcError) return err;
  if (err !== null && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') {
      const translated = ERROR_TRANSLATIONS.get(code);
      if (translated !== undefined) {
        return new GrpcError(translated.code, translated.message ?? messageOf(err), { cause: err });
      }
    }
    return new GrpcError(S.UNKNOWN, messageOf(err), { cause: err });
  }
  return new GrpcError(S.UNKNOWN, String(err));
}

function messageOf(err: object): string {
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' ? message : String(err);
}
