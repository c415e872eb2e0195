// etcd's own encoding of a key bucket value: a protobuf mvccpb.KeyValue as gogoproto writes it
// (fields in number order, zero values left out; a tombstone holds only the key). The store
// keeps its own compact encoding; this one is produced where etcd's bytes matter: HashKV (so
// that hashes agree with etcd's) and snapshots in etcd's format.

import { decodeKeyValue } from './codec.ts';
import { isTombstoneKey, revisionMain } from './revision.ts';

function varintSize(v: bigint): number {
  let n = 1;
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    x >>= 7n;
    n++;
  }
  return n;
}

function writeVarint(buf: Uint8Array, pos: number, v: bigint): number {
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    buf[pos++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  buf[pos++] = Number(x);
  return pos;
}

/** The bytes etcd stores for the entry at `revisionKey`, given the value as this store keeps it. */
export function etcdKeyValueBytes(revisionKey: Uint8Array, storedValue: Uint8Array): Uint8Array {
  const modRevision = revisionMain(revisionKey);
  const kv = decodeKeyValue(storedValue, modRevision);
  const tombstone = isTombstoneKey(revisionKey);
  const fields: [number, bigint | Uint8Array][] = [];
  if (kv.key.length > 0) fields.push([1, kv.key]);
  if (!tombstone) {
    if (kv.createRevision !== 0) fields.push([2, BigInt(kv.createRevision)]);
    if (modRevision !== 0) fields.push([3, BigInt(modRevision)]);
    if (kv.version !== 0) fields.push([4, BigInt(kv.version)]);
    if (kv.value.length > 0) fields.push([5, kv.value]);
    if (kv.lease !== 0n) fields.push([6, kv.lease]);
  }
  let size = 0;
  for (const [, v] of fields) {
    size += 1 + (typeof v === 'bigint' ? varintSize(v) : varintSize(BigInt(v.length)) + v.length);
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const [field, v] of fields) {
    if (typeof v === 'bigint') {
      out[pos++] = field << 3;
      pos = writeVarint(out, pos, v);
    } else {
      out[pos++] = (field << 3) | 2;
      pos = writeVarint(out, pos, BigInt(v.length));
      out.set(v, pos);
      pos += v.length;
    }
  }
  return out;
}
