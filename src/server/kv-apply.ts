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

/**
 * etcd's checks of a Txn before it is proposed: the op limit and empty keys of the whole
 * request tree first, then (top level only, covering nested txns) the duplicate-key rule.
 */
export function checkTxn(r: TxnRequest, maxTxnOps: number): void {
  checkTxnRequest(r, maxTxnOps);
  checkWriteIntervals(r.success);
  checkWriteIntervals(r.failure);
}

function checkTxnRequest(r: TxnRequest, maxTxnOps: number): void {
  const opCount = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opCount > maxTxnOps) throw new ServerError(ServerErrorCode.TooManyOps);
  for (const c of r.compare) {
    if (c.key.length === 0) throw new ServerError(ServerErrorCode.EmptyKey);
  }
  for (const op of r.success) checkRequestOp(op, maxTxnOps - opCount);
  for (const op of r.failure) checkRequestOp(op, maxTxnOps - opCount);
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
      checkTxnRequest(req.value, maxTxnOps);
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
    // etcd builds the interval [key, "\x00") for a delete to the end of the key space: it is
    // empty, so such a delete never conflicts with a put.
    else if (!(d.rangeEnd.length === 1 && d.rangeEnd[0] === 0)) {
      dels.push({ start: latin1(d.key), end: latin1(d.rangeEnd), point: false });
    }
  }
  const deleted = (k: string) => dels.some((iv) => containsKey(iv, k));
  const puts = new Set<string>();
  // Nested txns in order: each one's puts meet the deletes of this level and of the nested
  // txns before it; its own deletes count for those after it and for this level's puts.
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
    dels.push(...then.dels, ...otherwise.dels);
  }
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
  // A sort by value (any order: NONE sorts ascending) reads the values even for keys_only: etcd
  // sorts the full key-values and strips the values after.
  const sortsByValue = r.sortTarget === RangeRequest_SortTarget.VALUE;
  const result = view.range(r.key, r.rangeEnd, {
    rev: Number(r.revision),
    limit,
    countOnly: r.countOnly,
    keysOnly: r.keysOnly && !sortsByValue,
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

/** A plain Put: the lease must exist, then (with ignore_value/ignore_lease) the key. */
export function applyPut(view: WriteView, r: PutRequest, leases: LeaseChecker): PutResponse {
  if (r.lease !== 0n && !leases.exists(r.lease)) throw new ServerError(ServerErrorCode.LeaseNotFound);
  if ((r.ignoreValue || r.ignoreLease) && view.range(r.key, EMPTY, {}).kvs.length === 0) {
    throw new ServerError(ServerErrorCode.KeyNotFound);
  }
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
 * The branch each txn of a request tree takes, decided on the store as it is before the txn
 * writes anything (etcd's compareToPath): nested compares do not see the outer txn's writes.
 */
interface TxnPath {
  succeeded: boolean;
  /** The paths of the nested txns of the chosen branch, in op order. */
  nested: TxnPath[];
}

function compareToPath(view: ReadView, r: TxnRequest): TxnPath {
  const succeeded = txnSucceeds(view, r);
  const nested: TxnPath[] = [];
  for (const op of succeeded ? r.success : r.failure) {
    if (op.request?.$case === 'requestTxn') nested.push(compareToPath(view, op.request.value));
  }
  return { succeeded, nested };
}

/** Visits the ops of the branches a path takes, depth first in op order. */
function forEachOp(r: TxnRequest, path: TxnPath, fn: (op: RequestOp) => void): void {
  let n = 0;
  for (const op of path.succeeded ? r.success : r.failure) {
    if (op.request?.$case === 'requestTxn') forEachOp(op.request.value, path.nested[n++]!, fn);
    else fn(op);
  }
}

/**
 * etcd's checks against the store before a txn writes anything, so a failing txn changes
 * nothing: every put of the path (key present for ignore_value/ignore_lease, lease exists),
 * then every range (not a future revision; not below the first revision kept, which is -1
 * before any compaction).
 */
function checkTxnAgainstStore(view: ReadView, r: TxnRequest, path: TxnPath, leases: LeaseChecker | null): void {
  if (leases !== null) {
    forEachOp(r, path, (op) => {
      if (op.request?.$case !== 'requestPut') return;
      const p = op.request.value;
      if ((p.ignoreValue || p.ignoreLease) && view.range(p.key, EMPTY, {}).kvs.length === 0) {
        throw new ServerError(ServerErrorCode.KeyNotFound);
      }
      if (p.lease !== 0n && !leases.exists(p.lease)) throw new ServerError(ServerErrorCode.LeaseNotFound);
    });
  }
  const firstRev = view.compactRev() > 0 ? view.compactRev() : -1;
  forEachOp(r, path, (op) => {
    if (op.request?.$case !== 'requestRange') return;
    const rev = Number(op.request.value.revision);
    if (rev === 0) return;
    if (rev > view.rev()) throw new ServerError(ServerErrorCode.FutureRev);
    if (rev < firstRev) throw new ServerError(ServerErrorCode.Compacted);
  });
}

/** A read-only txn against a read view (no write transaction, no new revision). */
export function applyReadOnlyTxn(view: ReadView, r: TxnRequest): TxnResponse {
  const path = compareToPath(view, r);
  checkTxnAgainstStore(view, r, path, null);
  const resp = runTxn(view as WriteView, r, path);
  resp.header!.revision = BigInt(view.rev());
  return resp;
}

/** A txn inside `view`'s write transaction; the caller ends the transaction and sets the top header. */
export function applyTxn(view: WriteView, r: TxnRequest, leases: LeaseChecker): TxnResponse {
  const path = compareToPath(view, r);
  checkTxnAgainstStore(view, r, path, leases);
  return runTxn(view, r, path);
}

/**
 * Runs the ops of the path. Like etcd, each op's header carries the txn's revision as it
 * stands after that op (the next revision once anything was written, the current one before);
 * a nested txn's own header stays empty.
 */
function runTxn(view: WriteView, r: TxnRequest, path: TxnPath): TxnResponse {
  const branch = path.succeeded ? r.success : r.failure;
  const responses: ResponseOp[] = new Array(branch.length);
  let nested = 0;
  for (let i = 0; i < branch.length; i++) {
    const q = branch[i]!.request;
    if (q === undefined) {
      responses[i] = { response: undefined };
      continue;
    }
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
        responses[i] = { response: { $case: 'responseTxn', value: runTxn(view, q.value, path.nested[nested++]!) } };
        break;
    }
  }
  return { header: header(), succeeded: path.succeeded, responses };
}
