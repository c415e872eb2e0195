/**
 * Applies KV requests (Range, Put, DeleteRange, Txn) to the MVCC store with etcd's semantics.
 *
 * The applier sees the store only through the small views below; it knows nothing of raft.
 * Writes run inside one store write transaction, so a whole request gets one revision.
 */
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../proto/index.ts';
import { ServerError, ServerErrorCode } from './errors.ts';

/** A key-value as the MVCC store returns it (revisions as numbers, lease as bigint). */
export interface StoreKeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  lease: bigint;
}

export interface StoreRangeOptions {
  rev?: number;
  limit?: number;
  countOnly?: boolean;
  keysOnly?: boolean;
}

export interface StoreRangeResult {
  kvs: StoreKeyValue[];
  count: number;
  rev: number;
}

/** Reads: `end` empty = the single key, `[0x00]` = every key >= key, else [key, end). */
export interface ReadView {
  range(key: Uint8Array, end: Uint8Array, options: StoreRangeOptions): StoreRangeResult;
  rev(): number;
  compactRev(): number;
}

/** A write transaction; `rev()` is the revision as seen inside it (the next one once it wrote). */
export interface WriteView extends ReadView {
  put(key: Uint8Array, value: Uint8Array, lease: bigint): void;
  deleteRange(
    key: Uint8Array,
    end: Uint8Array,
    opts?: { prevKv?: boolean },
  ): { deleted: number; prevKvs: StoreKeyValue[] };
}

/** What the applier asks of leases; the lessor lives elsewhere. */
export interface LeaseChecker {
  exists(id: bigint): boolean;
}

export const NO_LEASES: LeaseChecker = { exists: () => false };

const EMPTY = new Uint8Array(0);

export function toProtoKv(kv: StoreKeyValue, keysOnly = false): KeyValue {
  return {
    key: kv.key,
    createRevision: BigInt(kv.createRevision),
    modRevision: BigInt(kv.modRevision),
    version: BigInt(kv.version),
    value: keysOnly ? EMPTY : kv.value,
    lease: kv.lease,
  };
}

function header(): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n };
}

// ---------------------------------------------------------------------------------------------
// Validation done before a request is proposed (etcd's v3rpc checks).

export function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw new ServerError(ServerErrorCode.EmptyKey);
}

export function checkPut(r: PutRequest): void {
  if (r.key.length === 0) throw new ServerError(ServerErrorCode.EmptyKey);
  if (r.ignoreValue && r.value.length !== 0) throw new ServerError(ServerErrorCode.ValueProvided);
  if (r.ignoreLease && r.lease !== 0n) throw new ServerError(ServerErrorCode.LeaseProvided);
}

export function checkDeleteRange(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw new ServerError(ServerErrorCode.EmptyKey);
}

export function checkTxn(r: TxnRequest, maxTxnOps: number): void {
  const opCount = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opCount > maxTxnOps) throw new ServerError(ServerErrorCode.TooManyOps);
  for (const c of r.compare) {
    if (c.key.length === 0) throw new ServerError(ServerErrorCode.EmptyKey);
  }
  for (const op of r.success) checkRequestOp(op, maxTxnOps - opCount);
  for (const op of r.failure) checkRequestOp(op, maxTxnOps - opCount);
  checkWriteIntervals(r.success);
  checkWriteIntervals(r.failure);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  const req = op.request;
  if (req === undefined) return;
  switch (req.$case) {
    case 'requestRange':
      checkRange(req.value);
      break;
    case 'requestPut':
      checkPut(req.value);
      break;
    case 'requestDeleteRange':
      checkDeleteRange(req.value);
      break;
    case 'requestTxn':
      checkTxn(req.value, maxTxnOps);
      break;
  }
}

/** A key range [start, end) in byte order; `end` null means unbounded, `point` a single key. */
interface KeyInterval {
  start: string;
  end: string | null;
  point: boolean;
}

function containsKey(iv: KeyInterval, key: string): boolean {
  if (iv.point) return iv.start === key;
  return key >= iv.start && (iv.end === null || key < iv.end);
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/**
 * etcd refuses a txn branch that writes a key twice: two puts of one key, or a put inside a
 * range the same branch deletes (nested txns included; then/else of one nested txn may put the
 * same key since only one of them runs).
 */
function checkWriteIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: KeyInterval[] } {
  const dels: KeyInterval[] = [];
  for (const op of ops) {
    if (op.request?.$case !== 'requestDeleteRange') continue;
    const d = op.request.value;
    if (d.rangeEnd.length === 0) dels.push({ start: latin1(d.key), end: null, point: true });
    else if (d.rangeEnd.length === 1 && d.rangeEnd[0] === 0)
      dels.push({ start: latin1(d.key), end: null, point: false });
    else dels.push({ start: latin1(d.key), end: latin1(d.rangeEnd), point: false });
  }
  const deleted = (k: string) => dels.some((iv) => containsKey(iv, k));
  const puts = new Set<string>();
  const nestedDels: KeyInterval[] = [];
  for (const op of ops) {
    if (op.request?.$case !== 'requestTxn') continue;
    const then = checkWriteIntervals(op.request.value.success);
    const otherwise = checkWriteIntervals(op.request.value.failure);
    for (const k of then.puts) {
      if (puts.has(k) || deleted(k)) throw new ServerError(ServerErrorCode.DuplicateKey);
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || deleted(k)) throw new ServerError(ServerErrorCode.DuplicateKey);
      puts.add(k);
    }
    nestedDels.push(...then.dels, ...otherwise.dels);
  }
  dels.push(...nestedDels);
  for (const op of ops) {
    if (op.request?.$case !== 'requestPut') continue;
    const k = latin1(op.request.value.key);
    if (puts.has(k) || deleted(k)) throw new ServerError(ServerErrorCode.DuplicateKey);
    puts.add(k);
  }
  return { puts, dels };
}

// ---------------------------------------------------------------------------------------------
// Reads

/** A Range at `view`'s revision (or the request's), with etcd's filters, sorting and limit. */
export function applyRange(view: ReadView, r: RangeRequest): RangeResponse {
  const requestedLimit = Number(r.limit);
  const filtered =
    r.minModRevision !== 0n || r.maxModRevision !== 0n || r.minCreateRevision !== 0n || r.maxCreateRevision !== 0n;
  let limit = r.sortOrder !== RangeRequest_SortOrder.NONE || filtered ? 0 : requestedLimit;
  if (limit > 0) limit += 1; // one more than asked tells whether there is more
  const result = view.range(r.key, r.rangeEnd, {
    rev: Number(r.revision),
    limit,
    countOnly: r.countOnly,
    keysOnly: r.keysOnly,
  });
  let kvs = result.kvs;
  if (filtered) {
    const minMod = Number(r.minModRevision);
    const maxMod = Number(r.maxModRevision);
    const minCreate = Number(r.minCreateRevision);
    const maxCreate = Number(r.maxCreateRevision);
    kvs = kvs.filter(
      (kv) =>
        (maxMod === 0 || kv.modRevision <= maxMod) &&
        (minMod === 0 || kv.modRevision >= minMod) &&
        (maxCreate === 0 || kv.createRevision <= maxCreate) &&
        (minCreate === 0 || kv.createRevision >= minCreate),
    );
  }
  let order: number = r.sortOrder;
  if (r.sortTarget !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE) {
    order = RangeRequest_SortOrder.ASCEND;
  } else if (r.sortTarget === RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.ASCEND) {
    order = RangeRequest_SortOrder.NONE; // the store already returns keys in ascending order
  }
  if (order !== RangeRequest_SortOrder.NONE) {
    const cmp = sortComparator(r.sortTarget);
    kvs = [...kvs].sort(order === RangeRequest_SortOrder.DESCEND ? (a, b) => cmp(b, a) : cmp);
  }
  let more = false;
  if (requestedLimit > 0 && kvs.length > requestedLimit) {
    kvs = kvs.slice(0, requestedLimit);
    more = true;
  }
  const out = new Array<KeyValue>(r.countOnly ? 0 : kvs.length);
  if (!r.countOnly) for (let i = 0; i < kvs.length; i++) out[i] = toProtoKv(kvs[i]!, r.keysOnly);
  const h = header();
  h.revision = BigInt(result.rev);
  return { header: h, kvs: out, more, count: BigInt(result.count) };
}

function sortComparator(target: number): (a: StoreKeyValue, b: StoreKeyValue) => number {
  switch (target) {
    case RangeRequest_SortTarget.VERSION:
      return (a, b) => a.version - b.version;
    case RangeRequest_SortTarget.CREATE:
      return (a, b) => a.createRevision - b.createRevision;
    case RangeRequest_SortTarget.MOD:
      return (a, b) => a.modRevision - b.modRevision;
    case RangeRequest_SortTarget.VALUE:
      return (a, b) => Buffer.compare(a.value, b.value);
    default:
      return (a, b) => Buffer.compare(a.key, b.key);
  }
}

// ---------------------------------------------------------------------------------------------
// Writes

/** Checks done against the store before any write of a request, so that a failure changes nothing. */
function checkPutAgainstStore(view: WriteView, r: PutRequest, leases: LeaseChecker): void {
  if ((r.ignoreValue || r.ignoreLease) && view.range(r.key, EMPTY, {}).kvs.length === 0) {
    throw new ServerError(ServerErrorCode.KeyNotFound);
  }
  if (r.lease !== 0n && !leases.exists(r.lease)) throw new ServerError(ServerErrorCode.LeaseNotFound);
}

export function applyPut(view: WriteView, r: PutRequest, leases: LeaseChecker): PutResponse {
  checkPutAgainstStore(view, r, leases);
  return putUnchecked(view, r);
}

function putUnchecked(view: WriteView, r: PutRequest): PutResponse {
  let value = r.value;
  let lease = r.lease;
  let prev: StoreKeyValue | undefined;
  if (r.prevKv || r.ignoreValue || r.ignoreLease) {
    prev = view.range(r.key, EMPTY, {}).kvs[0];
    if (prev !== undefined) {
      if (r.ignoreValue) value = prev.value;
      if (r.ignoreLease) lease = prev.lease;
    }
  }
  view.put(r.key, value, lease);
  return { header: header(), prevKv: r.prevKv && prev !== undefined ? toProtoKv(prev) : undefined };
}

export function applyDeleteRange(view: WriteView, r: DeleteRangeRequest): DeleteRangeResponse {
  const { deleted, prevKvs } = view.deleteRange(r.key, r.rangeEnd, { prevKv: r.prevKv });
  return {
    header: header(),
    deleted: BigInt(deleted),
    prevKvs: r.prevKv ? prevKvs.map((kv) => toProtoKv(kv)) : [],
  };
}

function compareKv(c: Compare, kv: StoreKeyValue | undefined): boolean {
  let result: number;
  const u = c.targetUnion;
  switch (c.target) {
    case Compare_CompareTarget.VALUE: {
      const want = u?.$case === 'value' ? u.value : EMPTY;
      result = Buffer.compare(kv?.value ?? EMPTY, want);
      break;
    }
    case Compare_CompareTarget.CREATE:
      result = cmpBig(BigInt(kv?.createRevision ?? 0), u?.$case === 'createRevision' ? u.value : 0n);
      break;
    case Compare_CompareTarget.MOD:
      result = cmpBig(BigInt(kv?.modRevision ?? 0), u?.$case === 'modRevision' ? u.value : 0n);
      break;
    case Compare_CompareTarget.VERSION:
      result = cmpBig(BigInt(kv?.version ?? 0), u?.$case === 'version' ? u.value : 0n);
      break;
    case Compare_CompareTarget.LEASE:
      result = cmpBig(kv?.lease ?? 0n, u?.$case === 'lease' ? u.value : 0n);
      break;
    default:
      return false;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return result === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return result !== 0;
    case Compare_CompareResult.GREATER:
      return result > 0;
    case Compare_CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function applyCompare(view: ReadView, c: Compare): boolean {
  const { kvs } = view.range(c.key, c.rangeEnd, {});
  if (kvs.length === 0) {
    // A value compare on a missing key always fails: a missing value is not the empty value.
    if (c.target === Compare_CompareTarget.VALUE) return false;
    return compareKv(c, undefined);
  }
  for (const kv of kvs) if (!compareKv(c, kv)) return false;
  return true;
}

export function txnSucceeds(view: ReadView, r: TxnRequest): boolean {
  for (const c of r.compare) if (!applyCompare(view, c)) return false;
  return true;
}

/** True when the txn (and every nested txn) only reads. */
export function isTxnReadOnly(r: TxnRequest): boolean {
  const ops = (list: readonly RequestOp[]) =>
    list.every((op) => {
      const q = op.request;
      if (q === undefined || q.$case === 'requestRange') return true;
      if (q.$case === 'requestTxn') return isTxnReadOnly(q.value);
      return false;
    });
  return ops(r.success) && ops(r.failure);
}

export function isTxnSerializable(r: TxnRequest): boolean {
  const ops = (list: readonly RequestOp[]) =>
    list.every((op) => {
      const q = op.request;
      if (q === undefined) return true;
      if (q.$case === 'requestRange') return q.value.serializable;
      if (q.$case === 'requestTxn') return isTxnSerializable(q.value);
      return true;
    });
  return ops(r.success) && ops(r.failure);
}

/**
 * Checks every operation of the branches that will run, before anything is written, so a
 * failing txn changes nothing: ranges at a future or compacted revision, puts on a missing
 * key with ignore_value/ignore_lease, puts with an unknown lease.
 */
function checkTxnAgainstStore(view: WriteView, r: TxnRequest, leases: LeaseChecker): void {
  const branch = txnSucceeds(view, r) ? r.success : r.failure;
  for (const op of branch) {
    const q = op.request;
    if (q === undefined) continue;
    if (q.$case === 'requestRange') {
      const rev = Number(q.value.revision);
      if (rev > view.rev()) throw new ServerError(ServerErrorCode.FutureRev);
      if (rev > 0 && rev < view.compactRev()) throw new ServerError(ServerErrorCode.Compacted);
    } else if (q.$case === 'requestPut') {
      checkPutAgainstStore(view, q.value, leases);
    } else if (q.$case === 'requestTxn') {
      checkTxnAgainstStore(view, q.value, leases);
    }
  }
}

/** A read-only txn against a read view (no write transaction, no new revision). */
export function applyReadOnlyTxn(view: ReadView, r: TxnRequest): TxnResponse {
  const succeeded = txnSucceeds(view, r);
  const branch = succeeded ? r.success : r.failure;
  const responses: ResponseOp[] = [];
  for (const op of branch) {
    const q = op.request;
    if (q === undefined) continue;
    if (q.$case === 'requestRange') {
      responses.push({ response: { $case: 'responseRange', value: applyRange(view, q.value) } });
    } else if (q.$case === 'requestTxn') {
      responses.push({ response: { $case: 'responseTxn', value: applyReadOnlyTxn(view, q.value) } });
    }
  }
  const h = header();
  h.revision = BigInt(view.rev());
  return { header: h, succeeded, responses };
}

/** A txn inside `view`'s write transaction; the caller ends the transaction and sets headers. */
export function applyTxn(view: WriteView, r: TxnRequest, leases: LeaseChecker): TxnResponse {
  checkTxnAgainstStore(view, r, leases);
  return runTxn(view, r);
}

function runTxn(view: WriteView, r: TxnRequest): TxnResponse {
  const succeeded = txnSucceeds(view, r);
  const branch = succeeded ? r.success : r.failure;
  const responses: ResponseOp[] = new Array(branch.length);
  for (let i = 0; i < branch.length; i++) {
    const q = branch[i]!.request;
    if (q === undefined) {
      responses[i] = { response: undefined };
      continue;
    }
    // Like etcd, each operation's header carries the txn's revision as it stands after that
    // operation: the next revision once anything was written, the current one before.
    switch (q.$case) {
      case 'requestRange':
        responses[i] = { response: { $case: 'responseRange', value: applyRange(view, q.value) } };
        break;
      case 'requestPut': {
        const value = putUnchecked(view, q.value);
        value.header!.revision = BigInt(view.rev());
        responses[i] = { response: { $case: 'responsePut', value } };
        break;
      }
      case 'requestDeleteRange': {
        const value = applyDeleteRange(view, q.value);
        value.header!.revision = BigInt(view.rev());
        responses[i] = { response: { $case: 'responseDeleteRange', value } };
        break;
      }
      case 'requestTxn':
        responses[i] = { response: { $case: 'responseTxn', value: runTxn(view, q.value) } };
        break;
    }
  }
  return { header: header(), succeeded, responses };
}
