// etcd's own encoding of a key bucket value: a protobuf mvccpb.KeyValue as gogoproto writes it
// (fields in number order, zero values left out; a tombstone holds only the key). The store
// keeps its own compact encoding; this one is produced where etcd's bytes matter: HashKV (so
// that hashes agree with etcd's) and snapshots in etcd's format.

import { KvView } from './codec.ts';
import { isTombstoneKey, revisionMain } from './revision.ts';

const TWO_POW_7 = 128;
const LEASE_VARINT_MAX_BYTES = 10;
const view = new KvView();

/** Size of an unsigned varint of a non-negative safe integer. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= TWO_POW_7) {
    n = Math.floor(n / TWO_POW_7);
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= TWO_POW_7) {
    buf[pos++] = (n % TWO_POW_7) | 0x80;
    n = Math.floor(n / TWO_POW_7);
  }
  buf[pos++] = n;
  return pos;
}

/** An int64 as protobuf writes it: its two's complement uint64 as a varint (10 bytes if negative). */
function leaseVarint(lease: bigint): Uint8Array {
  const out = new Uint8Array(LEASE_VARINT_MAX_BYTES);
  let x = BigInt.asUintN(64, lease);
  let n = 0;
  while (x >= 0x80n) {
    out[n++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  out[n++] = Number(x);
  return out.subarray(0, n);
}

/** The bytes etcd stores for the entry at `revisionKey`, given the value as this store keeps it. */
export function etcdKeyValueBytes(revisionKey: Uint8Array, storedValue: Uint8Array): Uint8Array {
  view.parse(storedValue);
  const keyLength = view.keyEnd - view.keyStart;
  const valueLength = storedValue.length - view.valueStart;
  const tombstone = isTombstoneKey(revisionKey);
  const modRevision = revisionMain(revisionKey);
  const { createRevision, version } = view;
  const lease = tombstone || view.lease === 0n ? null : leaseVarint(view.lease);
  let size = keyLength > 0 ? 1 + varintSize(keyLength) + keyLength : 0;
  if (!tombstone) {
    if (createRevision !== 0) size += 1 + varintSize(createRevision);
    if (modRevision !== 0) size += 1 + varintSize(modRevision);
    if (version !== 0) size += 1 + varintSize(version);
    if (valueLength > 0) size += 1 + varintSize(valueLength) + valueLength;
    if (lease !== null) size += 1 + lease.length;
  }
  const out = new Uint8Array(size);
  let pos = 0;
  if (keyLength > 0) {
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint(out, pos, keyLength);
    out.set(storedValue.subarray(view.keyStart, view.keyEnd), pos);
    pos += keyLength;
  }
  if (!tombstone) {
    if (createRevision !== 0) {
      out[pos++] = 2 << 3;
      pos = writeVarint(out, pos, createRevision);
    }
    if (modRevision !== 0) {
      out[pos++] = 3 << 3;
      pos = writeVarint(out, pos, modRevision);
    }
    if (version !== 0) {
      out[pos++] = 4 << 3;
      pos = writeVarint(out, pos, version);
    }
    if (valueLength > 0) {
      out[pos++] = (5 << 3) | 2;
      pos = writeVarint(out, pos, valueLength);
      out.set(storedValue.subarray(view.valueStart), pos);
      pos += valueLength;
    }
    if (lease !== null) {
      out[pos++] = 6 << 3;
      out.set(lease, pos);
      pos += lease.length;
    }
  }
  if (pos !== size) throw new Error(`mvcc: etcd encoding wrote ${pos} of ${size} bytes`);
  return out;
}
