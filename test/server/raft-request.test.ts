/**
 * The bytes of a raft entry's request: what is encoded comes back decoded, and entries do not
 * share their memory with anything but other entries.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRaftRequest, encodeRaftRequest, RequestKind } from '../../src/server/raft-request.ts';

test('entries are cut from slabs of their own, each with exactly its bytes', () => {
  const pool = Buffer.allocUnsafe(16).buffer;
  const entries: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) {
    const payload = Buffer.alloc(1 + (i % 300), i & 0xff);
    const caller = i % 3 === 0 ? { username: `user-${i}`, revision: i * 1_000_003 } : undefined;
    entries.push(encodeRaftRequest(RequestKind.Put, BigInt(i), payload, caller));
  }
  const slabs = new Set(entries.map((e) => e.buffer));
  assert.ok(!slabs.has(pool), "an entry's bytes were cut from Node's shared pool");
  // About 250 bytes each: a few dozen 64 KiB slabs, not one buffer per entry.
  assert.ok(slabs.size < 20, `${slabs.size} buffers for 1000 entries`);
  for (let i = 0; i < entries.length; i++) {
    const decoded = decodeRaftRequest(entries[i]!);
    assert.equal(decoded.id, BigInt(i));
    assert.deepEqual(Buffer.from(decoded.payload), Buffer.alloc(1 + (i % 300), i & 0xff));
    if (i % 3 === 0) assert.deepEqual(decoded.caller, { username: `user-${i}`, revision: i * 1_000_003 });
    else assert.equal(decoded.caller, undefined);
  }
  // Writing one entry's bytes again leaves its neighbours alone.
  const before = entries.map((e) => Buffer.from(e));
  const again = encodeRaftRequest(RequestKind.Put, 7n, Buffer.alloc(40, 1));
  for (let i = 0; i < entries.length; i++) assert.deepEqual(Buffer.from(entries[i]!), before[i]);
  assert.equal(decodeRaftRequest(again).id, 7n);
});

test('a large entry gets a buffer of exactly its size', () => {
  const payload = Buffer.alloc(100_000, 7);
  const entry = encodeRaftRequest(RequestKind.Put, 1n, payload);
  assert.equal(entry.buffer.byteLength, entry.length);
  assert.deepEqual(Buffer.from(decodeRaftRequest(entry).payload), payload);
});
