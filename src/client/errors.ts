/**
 * The client's errors: `EtcdError` and one subclass per condition, each with a stable `code`,
 * the gRPC status code it came with (`grpcCode`) and the server's text (`details`).
 *
 * etcd reports its errors as a gRPC status whose message is a fixed string
 * (`etcdserver: requested lease not found`); `fromGrpcError` turns those strings into the
 * matching class. Errors that are not etcd's own (a refused connection, a deadline) keep the
 * text Go's client gives them (`rpc error: code = Unavailable desc = ...`,
 * `context deadline exceeded`), so tools built on this client print what etcdctl prints.
 */
import { goStatusText } from '../proto/grpc-status.ts';
import { GrpcCallError, Status } from './channel.ts';

export interface EtcdErrorOptions {
  /** The message; default: `details`. */
  message?: string;
  cause?: unknown;
}

export class EtcdError extends Error {
  override name = 'EtcdError';
  /** Stable code of the condition, e.g. `ETCD_LEASE_NOT_FOUND`. */
  readonly code: string;
  /** gRPC status code the server (or the transport) reported; 2 (UNKNOWN) for client-side conditions. */
  readonly grpcCode: number;
  /** The status message as the server sent it (or the client's description). */
  readonly details: string;

  constructor(code: string, grpcCode: number, details: string, options: EtcdErrorOptions = {}) {
    super(options.message ?? details, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.grpcCode = grpcCode;
    this.details = details;
  }
}

type Sub = [grpcCode: number, details: string, options?: EtcdErrorOptions];

// --- KV ---
export class EmptyKeyError extends EtcdError {
  override name = 'EmptyKeyError';
  constructor(...a: Sub) {
    super('ETCD_EMPTY_KEY', ...a);
  }
}
export class KeyNotFoundError extends EtcdError {
  override name = 'KeyNotFoundError';
  constructor(...a: Sub) {
    super('ETCD_KEY_NOT_FOUND', ...a);
  }
}
export class ValueProvidedError extends EtcdError {
  override name = 'ValueProvidedError';
  constructor(...a: Sub) {
    super('ETCD_VALUE_PROVIDED', ...a);
  }
}
export class LeaseProvidedError extends EtcdError {
  override name = 'LeaseProvidedError';
  constructor(...a: Sub) {
    super('ETCD_LEASE_PROVIDED', ...a);
  }
}
export class TooManyOpsError extends EtcdError {
  override name = 'TooManyOpsError';
  constructor(...a: Sub) {
    super('ETCD_TOO_MANY_OPS', ...a);
  }
}
export class DuplicateKeyError extends EtcdError {
  override name = 'DuplicateKeyError';
  constructor(...a: Sub) {
    super('ETCD_DUPLICATE_KEY', ...a);
  }
}
/** The revision asked for was compacted away. A watch sets `compactRevision`: the oldest revision left. */
export class CompactedError extends EtcdError {
  override name = 'CompactedError';
  /** For a watch: the compaction revision the server reported; 0n when unknown. */
  readonly compactRevision: bigint;
  constructor(grpcCode: number, details: string, options: EtcdErrorOptions & { compactRevision?: bigint } = {}) {
    super('ETCD_COMPACTED', grpcCode, details, options);
    this.compactRevision = options.compactRevision ?? 0n;
  }
}
export class FutureRevisionError extends EtcdError {
  override name = 'FutureRevisionError';
  constructor(...a: Sub) {
    super('ETCD_FUTURE_REVISION', ...a);
  }
}
export class NoSpaceError extends EtcdError {
  override name = 'NoSpaceError';
  constructor(...a: Sub) {
    super('ETCD_NO_SPACE', ...a);
  }
}
export class RequestTooLargeError extends EtcdError {
  override name = 'RequestTooLargeError';
  constructor(...a: Sub) {
    super('ETCD_REQUEST_TOO_LARGE', ...a);
  }
}
export class TooManyRequestsError extends EtcdError {
  override name = 'TooManyRequestsError';
  constructor(...a: Sub) {
    super('ETCD_TOO_MANY_REQUESTS', ...a);
  }
}

// --- leases ---
export class LeaseNotFoundError extends EtcdError {
  override name = 'LeaseNotFoundError';
  constructor(...a: Sub) {
    super('ETCD_LEASE_NOT_FOUND', ...a);
  }
}
export class LeaseExistError extends EtcdError {
  override name = 'LeaseExistError';
  constructor(...a: Sub) {
    super('ETCD_LEASE_EXIST', ...a);
  }
}
export class LeaseTTLTooLargeError extends EtcdError {
  override name = 'LeaseTTLTooLargeError';
  constructor(...a: Sub) {
    super('ETCD_LEASE_TTL_TOO_LARGE', ...a);
  }
}

// --- membership ---
export class MemberExistError extends EtcdError {
  override name = 'MemberExistError';
  constructor(...a: Sub) {
    super('ETCD_MEMBER_EXIST', ...a);
  }
}
export class PeerURLExistError extends EtcdError {
  override name = 'PeerURLExistError';
  constructor(...a: Sub) {
    super('ETCD_PEER_URL_EXIST', ...a);
  }
}
export class MemberNotEnoughStartedError extends EtcdError {
  override name = 'MemberNotEnoughStartedError';
  constructor(...a: Sub) {
    super('ETCD_MEMBER_NOT_ENOUGH_STARTED', ...a);
  }
}
export class MemberBadURLsError extends EtcdError {
  override name = 'MemberBadURLsError';
  constructor(...a: Sub) {
    super('ETCD_MEMBER_BAD_URLS', ...a);
  }
}
export class MemberNotFoundError extends EtcdError {
  override name = 'MemberNotFoundError';
  constructor(...a: Sub) {
    super('ETCD_MEMBER_NOT_FOUND', ...a);
  }
}
export class MemberNotLearnerError extends EtcdError {
  override name = 'MemberNotLearnerError';
  constructor(...a: Sub) {
    super('ETCD_MEMBER_NOT_LEARNER', ...a);
  }
}
export class LearnerNotReadyError extends EtcdError {
  override name = 'LearnerNotReadyError';
  constructor(...a: Sub) {
    super('ETCD_LEARNER_NOT_READY', ...a);
  }
}
export class TooManyLearnersError extends EtcdError {
  override name = 'TooManyLearnersError';
  constructor(...a: Sub) {
    super('ETCD_TOO_MANY_LEARNERS', ...a);
  }
}

// --- auth ---
export class AuthFailedError extends EtcdError {
  override name = 'AuthFailedError';
  constructor(...a: Sub) {
    super('ETCD_AUTH_FAILED', ...a);
  }
}
export class PermissionDeniedError extends EtcdError {
  override name = 'PermissionDeniedError';
  constructor(...a: Sub) {
    super('ETCD_PERMISSION_DENIED', ...a);
  }
}
export class InvalidAuthTokenError extends EtcdError {
  override name = 'InvalidAuthTokenError';
  constructor(...a: Sub) {
    super('ETCD_INVALID_AUTH_TOKEN', ...a);
  }
}
export class AuthNotEnabledError extends EtcdError {
  override name = 'AuthNotEnabledError';
  constructor(...a: Sub) {
    super('ETCD_AUTH_NOT_ENABLED', ...a);
  }
}
/** The other auth management errors (user or role missing or duplicated, root missing...). */
export class AuthManagementError extends EtcdError {
  override name = 'AuthManagementError';
  constructor(...a: Sub) {
    super('ETCD_AUTH_MANAGEMENT', ...a);
  }
}

// --- cluster state ---
export class NoLeaderError extends EtcdError {
  override name = 'NoLeaderError';
  constructor(...a: Sub) {
    super('ETCD_NO_LEADER', ...a);
  }
}
export class NotLeaderError extends EtcdError {
  override name = 'NotLeaderError';
  constructor(...a: Sub) {
    super('ETCD_NOT_LEADER', ...a);
  }
}
export class LeaderChangedError extends EtcdError {
  override name = 'LeaderChangedError';
  constructor(...a: Sub) {
    super('ETCD_LEADER_CHANGED', ...a);
  }
}
export class NotCapableError extends EtcdError {
  override name = 'NotCapableError';
  constructor(...a: Sub) {
    super('ETCD_NOT_CAPABLE', ...a);
  }
}
export class StoppedError extends EtcdError {
  override name = 'StoppedError';
  constructor(...a: Sub) {
    super('ETCD_STOPPED', ...a);
  }
}
/** `etcdserver: request timed out` (and its variants): the server gave up waiting for consensus. */
export class RequestTimeoutError extends EtcdError {
  override name = 'RequestTimeoutError';
  constructor(...a: Sub) {
    super('ETCD_REQUEST_TIMEOUT', ...a);
  }
}
export class UnhealthyError extends EtcdError {
  override name = 'UnhealthyError';
  constructor(...a: Sub) {
    super('ETCD_UNHEALTHY', ...a);
  }
}
export class CorruptError extends EtcdError {
  override name = 'CorruptError';
  constructor(...a: Sub) {
    super('ETCD_CORRUPT', ...a);
  }
}
export class BadLeaderTransfereeError extends EtcdError {
  override name = 'BadLeaderTransfereeError';
  constructor(...a: Sub) {
    super('ETCD_BAD_LEADER_TRANSFEREE', ...a);
  }
}
export class NotSupportedForLearnerError extends EtcdError {
  override name = 'NotSupportedForLearnerError';
  constructor(...a: Sub) {
    super('ETCD_NOT_SUPPORTED_FOR_LEARNER', ...a);
  }
}

// --- transport and client-side conditions ---
/** No endpoint could be reached, or the connection failed during the call. */
export class UnavailableError extends EtcdError {
  override name = 'UnavailableError';
  constructor(...a: Sub) {
    super('ETCD_UNAVAILABLE', ...a);
  }
}
export class DeadlineExceededError extends EtcdError {
  override name = 'DeadlineExceededError';
  constructor(...a: Sub) {
    super('ETCD_DEADLINE_EXCEEDED', ...a);
  }
}
export class CancelledError extends EtcdError {
  override name = 'CancelledError';
  constructor(...a: Sub) {
    super('ETCD_CANCELLED', ...a);
  }
}
/** Any other gRPC status (UNIMPLEMENTED, INTERNAL, ...). */
export class GrpcStatusError extends EtcdError {
  override name = 'GrpcStatusError';
  constructor(...a: Sub) {
    super('ETCD_GRPC_STATUS', ...a);
  }
}
/** The client was closed; nothing more can be done with it. */
export class ClientClosedError extends EtcdError {
  override name = 'ClientClosedError';
  constructor(details = 'client closed') {
    super('ETCD_CLIENT_CLOSED', Status.CANCELLED, details);
  }
}
/** An STM transaction kept conflicting with other writers and ran out of retries. */
export class StmConflictError extends EtcdError {
  override name = 'StmConflictError';
  readonly attempts: number;
  constructor(attempts: number) {
    super('ETCD_STM_CONFLICT', Status.ABORTED, `stm: transaction conflicted ${attempts} times`);
    this.attempts = attempts;
  }
}
/** A kept-alive lease (and what depends on it: locks, elections, registrations) expired. */
export class LeaseLostError extends EtcdError {
  override name = 'LeaseLostError';
  readonly leaseId: bigint;
  constructor(leaseId: bigint, details: string) {
    super('ETCD_LEASE_LOST', Status.NOT_FOUND, details);
    this.leaseId = leaseId;
  }
}
/** `election: not leader`: proclaim or resign by a candidate that does not hold the election. */
export class ElectionNotLeaderError extends EtcdError {
  override name = 'ElectionNotLeaderError';
  constructor() {
    super('ETCD_ELECTION_NOT_LEADER', Status.FAILED_PRECONDITION, 'election: not leader');
  }
}
/** `election: no leader`: nobody holds the election. */
export class ElectionNoLeaderError extends EtcdError {
  override name = 'ElectionNoLeaderError';
  constructor() {
    super('ETCD_ELECTION_NO_LEADER', Status.NOT_FOUND, 'election: no leader');
  }
}
/** `mutex: Locked by another session`: tryLock found the lock held. */
export class LockedError extends EtcdError {
  override name = 'LockedError';
  constructor() {
    super('ETCD_LOCKED', Status.FAILED_PRECONDITION, 'mutex: Locked by another session');
  }
}

type ErrorClass = new (grpcCode: number, details: string, options?: EtcdErrorOptions) => EtcdError;

/** etcd's error strings (api/v3rpc/rpctypes) and the class each becomes. */
const BY_MESSAGE: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  ['etcdserver: key is not provided', EmptyKeyError],
  ['etcdserver: key not found', KeyNotFoundError],
  ['etcdserver: value is provided', ValueProvidedError],
  ['etcdserver: lease is provided', LeaseProvidedError],
  ['etcdserver: too many operations in txn request', TooManyOpsError],
  ['etcdserver: duplicate key given in txn request', DuplicateKeyError],
  ['etcdserver: mvcc: required revision has been compacted', CompactedError],
  ['etcdserver: mvcc: required revision is a future revision', FutureRevisionError],
  ['etcdserver: mvcc: database space exceeded', NoSpaceError],
  ['etcdserver: request is too large', RequestTooLargeError],
  ['etcdserver: too many requests', TooManyRequestsError],
  ['etcdserver: requested lease not found', LeaseNotFoundError],
  ['etcdserver: lease already exists', LeaseExistError],
  ['etcdserver: too large lease TTL', LeaseTTLTooLargeError],
  ['etcdserver: member ID already exist', MemberExistError],
  ['etcdserver: Peer URLs already exists', PeerURLExistError],
  ['etcdserver: re-configuration failed due to not enough started members', MemberNotEnoughStartedError],
  ['etcdserver: given member URLs are invalid', MemberBadURLsError],
  ['etcdserver: member not found', MemberNotFoundError],
  ['etcdserver: can only promote a learner member', MemberNotLearnerError],
  ['etcdserver: can only promote a learner member which is in sync with leader', LearnerNotReadyError],
  ['etcdserver: too many learner members in cluster', TooManyLearnersError],
  ['etcdserver: authentication failed, invalid user ID or password', AuthFailedError],
  ['etcdserver: permission denied', PermissionDeniedError],
  ['etcdserver: invalid auth token', InvalidAuthTokenError],
  ['etcdserver: authentication is not enabled', AuthNotEnabledError],
  ['etcdserver: root user does not exist', AuthManagementError],
  ['etcdserver: root user does not have root role', AuthManagementError],
  ['etcdserver: user name already exists', AuthManagementError],
  ['etcdserver: user name is empty', AuthManagementError],
  ['etcdserver: user name not found', AuthManagementError],
  ['etcdserver: role name already exists', AuthManagementError],
  ['etcdserver: role name not found', AuthManagementError],
  ['etcdserver: role name is empty', AuthManagementError],
  ['etcdserver: role is not granted to the user', AuthManagementError],
  ['etcdserver: permission is not granted to the role', AuthManagementError],
  ['etcdserver: invalid auth management', AuthManagementError],
  ['etcdserver: no leader', NoLeaderError],
  ['etcdserver: not leader', NotLeaderError],
  ['etcdserver: leader changed', LeaderChangedError],
  ['etcdserver: not capable', NotCapableError],
  ['etcdserver: server stopped', StoppedError],
  ['etcdserver: request timed out', RequestTimeoutError],
  ['etcdserver: request timed out, possibly due to previous leader failure', RequestTimeoutError],
  ['etcdserver: request timed out, possibly due to connection lost', RequestTimeoutError],
  ['etcdserver: unhealthy cluster', UnhealthyError],
  ['etcdserver: corrupt cluster', CorruptError],
  ['etcdserver: bad leader transferee', BadLeaderTransfereeError],
  ['etcdserver: rpc not supported for learner', NotSupportedForLearnerError],
]);

export { goStatusText };

/** The `EtcdError` for a failed call. Anything that is not a `GrpcCallError` is returned as is if an EtcdError, else wrapped. */
export function fromGrpcError(err: unknown): EtcdError {
  if (err instanceof EtcdError) return err;
  if (!(err instanceof GrpcCallError)) {
    const text = err instanceof Error ? err.message : String(err);
    return new GrpcStatusError(Status.UNKNOWN, text, { cause: err });
  }
  const known = BY_MESSAGE.get(err.details);
  if (known !== undefined) return new known(err.code, err.details, { cause: err });
  switch (err.code) {
    case Status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(err.code, err.details, { message: 'context deadline exceeded', cause: err });
    case Status.CANCELLED:
      return new CancelledError(err.code, err.details, { message: 'context canceled', cause: err });
    case Status.UNAVAILABLE:
      return new UnavailableError(err.code, err.details, { message: goStatusText(err.code, err.details), cause: err });
    case Status.PERMISSION_DENIED:
      return new PermissionDeniedError(err.code, err.details, { cause: err });
    default:
      return new GrpcStatusError(err.code, err.details, { message: goStatusText(err.code, err.details), cause: err });
  }
}
