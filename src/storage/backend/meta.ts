// Keys of the `meta` bucket and helpers for the consistent (applied) index, as etcd stores them.

import type { Backend } from './backend.ts';
import { Bucket } from './buckets.ts';
import { readUint64BE, uint64BE } from './bytes.ts';
import { BackendCorruptError } from './errors.ts';

export const MetaKey = {
  consistentIndex: Buffer.from('consistent_index', 'latin1') as Uint8Array,
  term: Buffer.from('term', 'latin1') as Uint8Array,
  confState: Buffer.from('confState', 'latin1') as Uint8Array,
  storageVersion: Buffer.from('storageVersion', 'latin1') as Uint8Array,
  scheduledCompactRev: Buffer.from('scheduledCompactRev', 'latin1') as Uint8Array,
  finishedCompactRev: Buffer.from('finishedCompactRev', 'latin1') as Uint8Array,
} as const;

export interface ConsistentIndex {
  /** Index of the last raft entry applied to the backend (0 when none). */
  index: number;
  /** Term of that entry (0 when none). */
  term: number;
}

/**
 * Records the applied raft index and term (8 bytes big endian each, etcd's encoding). Call it
 * synchronously right after the writes it covers so that both land in one LMDB transaction.
 */
export function putConsistentIndex(backend: Backend, index: number, term: number): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`consistent index ${index} is not a uint64`);
  if (!Number.isSafeInteger(term) || term < 0) throw new RangeError(`term ${term} is not a uint64`);
  backend.put(Bucket.meta, MetaKey.consistentIndex, uint64BE(index));
  backend.put(Bucket.meta, MetaKey.term, uint64BE(term));
}

export function readConsistentIndex(backend: Backend): ConsistentIndex {
  return {
    index: readU64(backend.get(Bucket.meta, MetaKey.consistentIndex), 'consistent_index'),
    term: readU64(backend.get(Bucket.meta, MetaKey.term), 'term'),
  };
}

function readU64(v: Uint8Array | undefined, name: string): number {
  if (v === undefined) return 0;
  if (v.length !== 8) throw new BackendCorruptError(`meta ${name} is ${v.length} bytes, not 8`);
  return readUint64BE(v, 0);
}

/** etcd's DefaultIgnores for hashing the whole backend: meta keys that legitimately differ between members. */
export function etcdHashIgnores(bucket: string, key: Uint8Array): boolean {
  if (bucket !== Bucket.meta) return false;
  return (
    Buffer.compare(key, MetaKey.consistentIndex) === 0 ||
    Buffer.compare(key, MetaKey.term) === 0 ||
    Buffer.compare(key, MetaKey.storageVersion) === 0
  );
}
