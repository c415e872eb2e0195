// The store's public data shapes.

export interface KeyValue {
  key: Uint8Array;
  /** Revision of the put that created the key in its current life (0 in a delete event). */
  createRevision: number;
  /** Revision of the last change to the key. */
  modRevision: number;
  /** Number of puts to the key since its creation, counting from 1 (0 in a delete event). */
  version: number;
  value: Uint8Array;
  /** Lease the key is attached to, 0n for none. */
  lease: bigint;
}

export interface RangeOptions {
  /** Read the store as of this revision; 0 or absent for the current revision. */
  rev?: number;
  /** At most this many keys in `kvs`; 0 or absent for no limit. `count` still counts all. */
  limit?: number;
  /** Only count: `kvs` stays empty. */
  countOnly?: boolean;
  /** Leave values out (empty). */
  keysOnly?: boolean;
}

export interface RangeResult {
  /** Matching keys in key order, at most `limit`. */
  kvs: KeyValue[];
  /** Number of matching keys, whatever the limit. */
  count: number;
  /** The store's current revision (the response header revision), not the revision read. */
  rev: number;
}

export type EventType = 'put' | 'delete';

export interface MvccEvent {
  type: EventType;
  /** For a delete: the key, modRevision = the delete's revision, everything else empty. */
  kv: KeyValue;
}

export interface DeleteResult {
  deleted: number;
  /** The deleted keys as they were just before, in key order (empty when prevKv: false). */
  prevKvs: KeyValue[];
}

export interface TxnResult {
  /** The revision of the transaction's changes, or the unchanged current revision when none. */
  rev: number;
  events: MvccEvent[];
}

export interface HashKVResult {
  /** CRC-32C (Castagnoli) over "key" and the key bucket's entries, as etcd's HashKV. */
  hash: number;
  /** The compacted revision the hash is relative to (-1 if the store was never compacted). */
  compactRevision: number;
  /** The revision hashed. */
  revision: number;
  /** The store's current revision. */
  currentRevision: number;
}

export interface HashResult {
  hash: number;
  revision: number;
}
