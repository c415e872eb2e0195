/**
 * KV requests built from options, and responses as the client returns them: etcd's messages
 * with every key and value as a Buffer and the header always present. Every int64 of the API
 * (revisions, versions, counts, lease ids) is a bigint.
 */
import {
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue as PbKeyValue,
  type ResponseHeader as PbResponseHeader,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
} from '../proto/index.ts';
import { type Bytes, keyRange, type RangeOptions, toBuffer, toInt64, view } from './bytes.ts';

export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  /** The store's revision when the request was served. */
  revision: bigint;
  raftTerm: bigint;
}

export interface KeyValue {
  key: Buffer;
  value: Buffer;
  /** Revision of the put that created the key (since its last deletion). */
  createRevision: bigint;
  /** Revision of the last put to the key. */
  modRevision: bigint;
  /** Puts since the key was created; 1 after the first. */
  version: bigint;
  /** Attached lease id; 0n for none. */
  lease: bigint;
}

export const SortTarget = { KEY: 'key', VERSION: 'version', CREATE: 'create', MOD: 'mod', VALUE: 'value' } as const;
export type SortTarget = (typeof SortTarget)[keyof typeof SortTarget];
export const SortOrder = { NONE: 'none', ASCEND: 'ascend', DESCEND: 'descend' } as const;
export type SortOrder = (typeof SortOrder)[keyof typeof SortOrder];

export interface GetOptions extends RangeOptions {
  /** Read the store as of this revision (0: the latest). */
  revision?: bigint | number;
  /** At most this many keys (0: no limit). */
  limit?: number;
  sort?: { target?: SortTarget; order?: SortOrder };
  /** Keys without values. */
  keysOnly?: boolean;
  /** Only the count of keys in the range. */
  countOnly?: boolean;
  /** Serve from the local member without consensus (may be stale). */
  serializable?: boolean;
  minModRevision?: bigint | number;
  maxModRevision?: bigint | number;
  minCreateRevision?: bigint | number;
  maxCreateRevision?: bigint | number;
}

export interface GetResult {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** More keys in the range than `limit` let through. */
  more: boolean;
  /** How many keys are in the range (regardless of limit). */
  count: bigint;
}

export interface PutOptions {
  /** Attach the key to this lease (0n: none). */
  lease?: bigint | { readonly id: bigint };
  /** Return the key's previous state. */
  prevKv?: boolean;
  /** Keep the current value (the key must exist). */
  ignoreValue?: boolean;
  /** Keep the current lease (the key must exist). */
  ignoreLease?: boolean;
}

export interface PutResult {
  header: ResponseHeader;
  prevKv: KeyValue | undefined;
}

export interface DeleteOptions extends RangeOptions {
  /** Return the deleted pairs. */
  prevKv?: boolean;
}

export interface DeleteResult {
  header: ResponseHeader;
  deleted: bigint;
  prevKvs: KeyValue[];
}

const SORT_TARGETS: Readonly<Record<SortTarget, RangeRequest_SortTarget>> = {
  key: RangeRequest_SortTarget.KEY,
  version: RangeRequest_SortTarget.VERSION,
  create: RangeRequest_SortTarget.CREATE,
  mod: RangeRequest_SortTarget.MOD,
  value: RangeRequest_SortTarget.VALUE,
};
const SORT_ORDERS: Readonly<Record<SortOrder, RangeRequest_SortOrder>> = {
  none: RangeRequest_SortOrder.NONE,
  ascend: RangeRequest_SortOrder.ASCEND,
  descend: RangeRequest_SortOrder.DESCEND,
};

function optionalInt64(value: bigint | number | undefined, what: string): bigint {
  return value === undefined ? 0n : toInt64(value, what);
}

export function rangeRequest(key: Bytes, options: GetOptions = {}): RangeRequest {
  const range = keyRange(key, options);
  const target = options.sort?.target ?? SortTarget.KEY;
  const order = options.sort?.order ?? SortOrder.NONE;
  const sortTarget = SORT_TARGETS[target];
  const sortOrder = SORT_ORDERS[order];
  if (sortTarget === undefined) throw new TypeError(`unknown sort target ${JSON.stringify(target)}`);
  if (sortOrder === undefined) throw new TypeError(`unknown sort order ${JSON.stringify(order)}`);
  const limit = options.limit ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer`);
  return {
    key: range.key,
    rangeEnd: range.rangeEnd,
    limit: BigInt(limit),
    revision: optionalInt64(options.revision, 'revision'),
    sortOrder,
    sortTarget,
    serializable: options.serializable === true,
    keysOnly: options.keysOnly === true,
    countOnly: options.countOnly === true,
    minModRevision: optionalInt64(options.minModRevision, 'minModRevision'),
    maxModRevision: optionalInt64(options.maxModRevision, 'maxModRevision'),
    minCreateRevision: optionalInt64(options.minCreateRevision, 'minCreateRevision'),
    maxCreateRevision: optionalInt64(options.maxCreateRevision, 'maxCreateRevision'),
  };
}

export function putRequest(key: Bytes, value: Bytes, options: PutOptions = {}): PutRequest {
  const lease = options.lease === undefined ? 0n : typeof options.lease === 'bigint' ? options.lease : options.lease.id;
  return {
    key: toBuffer(key),
    value: toBuffer(value),
    lease,
    prevKv: options.prevKv === true,
    ignoreValue: options.ignoreValue === true,
    ignoreLease: options.ignoreLease === true,
  };
}

export function deleteRequest(key: Bytes, options: DeleteOptions = {}): DeleteRangeRequest {
  const range = keyRange(key, options);
  return { key: range.key, rangeEnd: range.rangeEnd, prevKv: options.prevKv === true };
}

export function header(h: PbResponseHeader | undefined): ResponseHeader {
  return {
    clusterId: h?.clusterId ?? 0n,
    memberId: h?.memberId ?? 0n,
    revision: h?.revision ?? 0n,
    raftTerm: h?.raftTerm ?? 0n,
  };
}

export function keyValue(kv: PbKeyValue): KeyValue {
  return {
    key: view(kv.key),
    value: view(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

export function getResult(r: RangeResponse): GetResult {
  return { header: header(r.header), kvs: r.kvs.map(keyValue), more: r.more, count: r.count };
}

export function putResult(r: PutResponse): PutResult {
  return { header: header(r.header), prevKv: r.prevKv === undefined ? undefined : keyValue(r.prevKv) };
}

export function deleteResult(r: DeleteRangeResponse): DeleteResult {
  return { header: header(r.header), deleted: r.deleted, prevKvs: r.prevKvs.map(keyValue) };
}
