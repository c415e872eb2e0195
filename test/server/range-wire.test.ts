// A Range encoded as it is read (src/server/range-wire.ts) against the reference path: applyRange
// then the codec. Same bytes, same errors, on random stores and random requests (history reads,
// limits, keys-only, count-only, leases, values read back from lmdb and from pending writes),
// also with the KeyValues cached across the store's whole history (kv-field-cache.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeRangeResponse } from '../../src/proto/fast/index.ts';
import {
  RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeResponse,
  type ResponseHeader,
} from '../../src/proto/index.ts';
import { applyRange } from '../../src/server/kv-apply.ts';
import { KvFieldCache } from '../../src/server/kv-field-cache.ts';
import { encodeRange, isPlainRange } from '../../src/server/range-wire.ts';
import { Backend } from '../../src/storage/backend/index.ts';
import { MvccStore } from '../../src/storage/mvcc/index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-range-wire-'));
after(() => rmSync(root, { recursive: true, force: true }));

const HEADROOM = 5;

/** xorshift32: the same histories on every run. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const header = (): ResponseHeader => ({
  clusterId: 0x1234n,
  memberId: 0xfedcba9876543210n,
  revision: 0n,
  raftTerm: 7n,
});
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/**
 * Both paths on one request: equal bytes, or the same error. With `caches`, the encoded path
 * runs once more with each of them, twice (the second time from what the first one cached).
 */
function check(store: MvccStore, req: RangeRequest, what: string, caches: KvFieldCache[] = []): void {
  let expected: Buffer | Error;
  try {
    const resp = applyRange(store, req);
    const h = header();
    h.revision = resp.header?.revision ?? 0n;
    resp.header = h;
    expected = encodeRangeResponse(resp, 0);
  } catch (err) {
    expected = err as Error;
  }
  compare(expected, () => encodeRange(store, req, header(), HEADROOM), what);
  caches.forEach((cache, i) => {
    compare(expected, () => encodeRange(store, req, header(), HEADROOM, cache), `${what} (cache ${i})`);
    compare(expected, () => encodeRange(store, req, header(), HEADROOM, cache), `${what} (cache ${i} again)`);
  });
}

function compare(expected: Buffer | Error, encode: () => Buffer[], what: string): void {
  let actual: Buffer | Error;
  try {
    actual = Buffer.concat(encode()).subarray(HEADROOM);
  } catch (err) {
    actual = err as Error;
  }
  if (expected instanceof Error) {
    assert.ok(actual instanceof Error, `${what}: expected ${expected.message}, got a response`);
    assert.equal(actual.constructor, expected.constructor, what);
    assert.equal(actual.message, expected.message, what);
    return;
  }
  assert.ok(!(actual instanceof Error), `${what}: ${actual instanceof Error ? actual.message : ''}`);
  assert.deepEqual(RangeResponse.decode(actual), RangeResponse.decode(expected), what);
  assert.ok(Buffer.from(actual).equals(expected), `${what}: bytes differ`);
}

function randomRequest(next: (n: number) => number, keys: string[], rev: number): RangeRequest {
  const pick = (): Uint8Array => bytes(keys[next(keys.length)] ?? 'k');
  const shape = next(5);
  const key = shape === 4 ? bytes('\x00') : pick();
  let rangeEnd: Uint8Array = new Uint8Array(0);
  if (shape === 1) rangeEnd = pick();
  else if (shape === 2) rangeEnd = new Uint8Array([0]);
  else if (shape === 3 || shape === 4) rangeEnd = bytes('\xff');
  const sorted = next(6) === 0;
  const filtered = next(8) === 0;
  return RangeRequest.fromPartial({
    key,
    rangeEnd,
    limit: BigInt(next(3) === 0 ? next(6) : 0),
    revision: BigInt(next(3) === 0 ? next(rev + 2) : 0),
    keysOnly: next(5) === 0,
    countOnly: next(8) === 0,
    sortOrder: sorted
      ? (next(3) as RangeRequest_SortOrder)
      : next(4) === 0
        ? RangeRequest_SortOrder.ASCEND
        : RangeRequest_SortOrder.NONE,
    sortTarget: sorted ? (next(5) as RangeRequest_SortTarget) : RangeRequest_SortTarget.KEY,
    minModRevision: BigInt(filtered ? next(rev + 1) : 0),
    maxCreateRevision: BigInt(filtered && next(2) === 0 ? next(rev + 1) : 0),
  });
}

test('a Range encoded as it is read equals applyRange encoded by the codec', async () => {
  const leases = [0n, 0n, 1n, 0x7fffffffffffffffn, 2n ** 53n + 3n, -5n];
  for (let seed = 1; seed <= 12; seed++) {
    const next = rng(seed * 7919);
    const backend = Backend.open(join(root, `s${seed}`));
    const store = MvccStore.open(backend);
    try {
      const keys = Array.from({ length: 3 + next(40) }, (_, i) => `${String.fromCharCode(97 + next(4))}/${i}`);
      let compacted = 0;
      // Caches that live as long as the store: one that keeps everything, one of four 1 KiB
      // slabs that keeps evicting (and cannot hold a 3000-byte value at all).
      const caches = [new KvFieldCache(1 << 24), new KvFieldCache(4096, 1024)];
      for (let step = 0; step < 120; step++) {
        const w = store.write();
        const op = next(10);
        const key = bytes(keys[next(keys.length)]!);
        if (op < 7) {
          // Values from empty to past 32 bytes (the copy switches method there) and beyond 2 KiB;
          // now and then a second key in the same transaction (a sub revision above 0).
          const size = [0, 1, 32, 33, 64, 256, 3000][next(7)]!;
          w.put(key, new Uint8Array(size).fill(33 + next(90)), leases[next(leases.length)]!);
          if (next(4) === 0) w.put(bytes(keys[next(keys.length)]!), new Uint8Array(next(300)).fill(33 + next(90)));
        } else if (op < 9) {
          w.deleteRange(key, new Uint8Array(0));
        } else {
          w.deleteRange(key, bytes(keys[next(keys.length)]!));
        }
        w.end();
        if (next(15) === 0) await backend.forceCommit();
        if (next(40) === 0 && store.rev() > compacted + 1) {
          compacted += 1 + next(store.rev() - compacted);
          await store.compact(compacted).done;
        }
        for (let q = 0; q < 4; q++) {
          const req = randomRequest(next, keys, store.rev());
          check(store, req, `seed ${seed} step ${step} ${JSON.stringify(RangeRequest.toJSON(req))}`, caches);
        }
      }
      // Every key from the start, at every revision the store still has.
      for (let rev = compacted; rev <= store.rev() + 1; rev++) {
        const req = RangeRequest.fromPartial({
          key: bytes('\x00'),
          rangeEnd: new Uint8Array([0]),
          revision: BigInt(rev),
        });
        check(store, req, `seed ${seed} all keys at ${rev}`, caches);
      }
    } finally {
      await store.close();
      await backend.close();
    }
  }
});

test('sorting or filtering ranges take the reference path; key order with or without ASCEND does not', () => {
  const base = { key: bytes('a'), rangeEnd: bytes('b') };
  assert.equal(isPlainRange(RangeRequest.fromPartial(base)), true);
  assert.equal(isPlainRange(RangeRequest.fromPartial({ ...base, sortOrder: RangeRequest_SortOrder.ASCEND })), true);
  assert.equal(isPlainRange(RangeRequest.fromPartial({ ...base, sortOrder: RangeRequest_SortOrder.DESCEND })), false);
  assert.equal(isPlainRange(RangeRequest.fromPartial({ ...base, sortTarget: RangeRequest_SortTarget.MOD })), false);
  assert.equal(isPlainRange(RangeRequest.fromPartial({ ...base, minModRevision: 1n })), false);
  assert.equal(isPlainRange(RangeRequest.fromPartial({ ...base, maxCreateRevision: 1n })), false);
});
