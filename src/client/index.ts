/**
 * etcd-ts/client: a client for etcd's v3 API (the real etcd and etcd-ts alike).
 *
 * Every int64 of the API (revisions, versions, counts, lease and member ids) is a bigint;
 * TTLs are numbers of seconds; keys and values are strings (UTF-8) or bytes, and come back as
 * Buffers.
 */
export type { Bytes, RangeOptions } from './bytes.ts';
export { prefixEnd } from './bytes.ts';
export type { TlsOptions } from './channel.ts';
export { Status as GrpcStatus } from './channel.ts';
export type {
  AlarmInfo,
  GrantOptions,
  HashKVResult,
  MemberAddResult,
  MemberInfo,
  MemberListResult,
  StatusResult,
} from './client.ts';
export { Client } from './client.ts';
export type { CallOptions, ClientOptions } from './core.ts';
export type { ElectionOptions } from './election.ts';
export { Election } from './election.ts';
export {
  AuthFailedError,
  AuthManagementError,
  AuthNotEnabledError,
  BadLeaderTransfereeError,
  CancelledError,
  ClientClosedError,
  CompactedError,
  CorruptError,
  DeadlineExceededError,
  DuplicateKeyError,
  ElectionNoLeaderError,
  ElectionNotLeaderError,
  EmptyKeyError,
  EtcdError,
  FutureRevisionError,
  GrpcStatusError,
  InvalidAuthTokenError,
  KeyNotFoundError,
  LeaderChangedError,
  LearnerNotReadyError,
  LeaseExistError,
  LeaseLostError,
  LeaseNotFoundError,
  LeaseProvidedError,
  LeaseTTLTooLargeError,
  LockedError,
  MemberBadURLsError,
  MemberExistError,
  MemberNotEnoughStartedError,
  MemberNotFoundError,
  MemberNotLearnerError,
  NoLeaderError,
  NoSpaceError,
  NotCapableError,
  NotLeaderError,
  NotSupportedForLearnerError,
  PeerURLExistError,
  PermissionDeniedError,
  RequestTimeoutError,
  RequestTooLargeError,
  StmConflictError,
  StoppedError,
  TooManyLearnersError,
  TooManyOpsError,
  TooManyRequestsError,
  UnavailableError,
  UnhealthyError,
  ValueProvidedError,
} from './errors.ts';
export type {
  DeleteOptions,
  DeleteResult,
  GetOptions,
  GetResult,
  KeyValue,
  PutOptions,
  PutResult,
  ResponseHeader,
} from './kv.ts';
export { SortOrder, SortTarget } from './kv.ts';
export type { KeepAliveResult, LeaseInfo } from './lease.ts';
export { Lease } from './lease.ts';
export type { LockOptions } from './lock.ts';
export { Lock } from './lock.ts';
export type { DiscoveryOptions, Instance, RegisterOptions } from './registry.ts';
export { Discovery, Registration } from './registry.ts';
export type { StmOptions, StmTx } from './stm.ts';
export type { CompareOperator, Comparison, Operation, OpResult, TxnResult } from './txn.ts';
export { compare, op, Txn } from './txn.ts';
export type { WatchBatch, WatchEvent, WatchOptions } from './watch.ts';
export { EventType, Watcher, WatchOverflowError } from './watch.ts';
