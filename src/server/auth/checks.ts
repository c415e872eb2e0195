/**
 * Permission checks of whole requests, shared by the read path (checked before the read, as
 * etcd's doSerialize) and the apply path (checked when the entry applies, as etcd's
 * authApplierV3): every key and range a request touches, in every branch of a txn.
 */
import type { DeleteRangeRequest, PutRequest, RequestOp, TxnRequest } from '../../proto/index.ts';
import { currentCaller } from './context.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import type { AuthStore } from './store.ts';
import type { AuthInfo } from './tokens.ts';

const EMPTY = new Uint8Array(0);

/** Keys (latin1) attached to a lease, or undefined when there is no such lease. */
export type LeaseKeys = (id: bigint) => Iterable<string> | undefined;

/**
 * A lease may only be revoked, or given to one more key, by a user who may write every key
 * attached to it (or by root): otherwise revoking would delete keys the user cannot write.
 */
export function checkLeasePuts(store: AuthStore, ai: AuthInfo, leaseKeys: LeaseKeys, id: bigint): void {
  if (id === 0n || store.isAdmin(ai)) return;
  const keys = leaseKeys(id);
  if (keys === undefined) return;
  for (const key of keys) store.checkPut(ai, Buffer.from(key, 'latin1'));
}

export function checkPutAuth(store: AuthStore, ai: AuthInfo, r: PutRequest, leaseKeys: LeaseKeys | null): void {
  store.checkPut(ai, r.key);
  if (leaseKeys !== null) checkLeasePuts(store, ai, leaseKeys, r.lease);
  // The previous value is a read.
  if (r.prevKv) store.checkRange(ai, r.key, EMPTY);
}

export function checkDeleteRangeAuth(store: AuthStore, ai: AuthInfo, r: DeleteRangeRequest): void {
  store.checkDeleteRange(ai, r.key, r.rangeEnd);
  if (r.prevKv) store.checkRange(ai, r.key, r.rangeEnd);
}

/**
 * Every compare is a read; every op of both branches (whichever runs) is checked, nested txns
 * included. `leaseKeys` is null on the read path (a read-only txn has no puts).
 */
export function checkTxnAuth(store: AuthStore, ai: AuthInfo, r: TxnRequest, leaseKeys: LeaseKeys | null): void {
  for (const c of r.compare) store.checkRange(ai, c.key, c.rangeEnd);
  checkOps(store, ai, r.success, leaseKeys);
  checkOps(store, ai, r.failure, leaseKeys);
}

function checkOps(store: AuthStore, ai: AuthInfo, ops: readonly RequestOp[], leaseKeys: LeaseKeys | null): void {
  for (const op of ops) {
    const q = op.request;
    if (q === undefined) continue;
    switch (q.$case) {
      case 'requestRange':
        store.checkRange(ai, q.value.key, q.value.rangeEnd);
        break;
      case 'requestPut':
        checkPutAuth(store, ai, q.value, leaseKeys);
        break;
      case 'requestDeleteRange':
        checkDeleteRangeAuth(store, ai, q.value);
        break;
      case 'requestTxn':
        checkTxnAuth(store, ai, q.value, leaseKeys);
        break;
    }
  }
}

/**
 * etcd's doSerialize for a read: the caller's identity is checked before the read, and the
 * answer is refused if the auth store moved on while it was read.
 */
export function serializeRead<T>(store: AuthStore, check: (ai: AuthInfo) => void, read: () => T): T {
  if (!store.enabled) return read();
  const ai = currentCaller();
  check(ai);
  const out = read();
  if (ai.revision !== 0 && ai.revision !== store.revision) throw new AuthError(AuthErrorCode.AuthOldRevision);
  return out;
}

/** With auth enabled, a caller must have credentials (etcd's requireAuthInfo). */
export function requireCaller(store: AuthStore): AuthInfo {
  const ai = currentCaller();
  if (store.enabled && ai.username === '') throw new AuthError(AuthErrorCode.UserEmpty);
  return ai;
}
