/**
 * The member's lessor on a real backend with a controlled clock: the minimum TTL, expiry only
 * on the leader (primary), a full TTL again on promotion, keys following the store's events,
 * the lease records in etcd's leasepb format, leases reloaded from the backend, and a renew of
 * a lease that has expired but is not revoked yet (etcd refuses it: the revoke is on its way).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ServerError, ServerErrorCode } from '../../src/server/errors.ts';
import { decodeLeaseRecord, encodeLeaseRecord, Lessor } from '../../src/server/lessor.ts';
import { Backend } from '../../src/storage/backend/index.ts';
import type { MvccEvent } from '../../src/storage/mvcc/index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-lessor-'));
after(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
const backends: Backend[] = [];
after(async () => {
  for (const b of backends) await b.close().catch(() => {});
});

function openBackend(dir = join(root, `b${dirs++}`)): { backend: Backend; dir: string } {
  const backend = Backend.open({ dir });
  backends.push(backend);
  return { backend, dir };
}

/** A clock the test moves. */
function clock(startMs = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function put(key: string, lease: bigint, rev: number): MvccEvent {
  return {
    type: 'put',
    kv: { key: Buffer.from(key), createRevision: rev, modRevision: rev, version: 1, value: Buffer.from('v'), lease },
  };
}

function del(key: string, rev: number): MvccEvent {
  return {
    type: 'delete',
    kv: { key: Buffer.from(key), createRevision: 0, modRevision: rev, version: 0, value: new Uint8Array(0), lease: 0n },
  };
}

test('grant: the minimum TTL, one lease per id, expiry only while primary', () => {
  const c = clock();
  const lessor = new Lessor(openBackend().backend, { minTtlSec: 2, now: c.now });
  assert.equal(lessor.grant(1n, 1).ttlSec, 2);
  assert.equal(lessor.grant(2n, 10).ttlSec, 10);
  assert.throws(
    () => lessor.grant(2n, 10),
    (err: unknown) => err instanceof ServerError && err.code === ServerErrorCode.LeaseExist,
  );
  // Not primary: nothing expires, renew keeps no clock.
  c.advance(60_000);
  assert.deepEqual(lessor.expired(10), []);
  lessor.promote();
  assert.deepEqual(lessor.expired(10), []);
  c.advance(2_000);
  assert.deepEqual(lessor.expired(10), [1n]);
  c.advance(8_000);
  assert.deepEqual(lessor.expired(10).sort(), [1n, 2n]);
  assert.deepEqual(lessor.expired(1).length, 1, 'the batch bound');
  lessor.demote();
  assert.deepEqual(lessor.expired(10), [], 'a member that does not lead expires nothing');
});

test('renew: extends a live lease; an expired lease awaiting its revoke is not renewed', () => {
  const c = clock();
  const lessor = new Lessor(openBackend().backend, { minTtlSec: 2, now: c.now });
  lessor.promote();
  const lease = lessor.grant(7n, 5);
  c.advance(4_000);
  assert.equal(lessor.renew(7n), 5);
  c.advance(4_000);
  assert.deepEqual(lessor.expired(10), [], 'the renew moved the expiry');
  assert.equal(lessor.remaining(lease), 1);
  c.advance(1_000);
  assert.deepEqual(lessor.expired(10), [7n]);
  // Expired, its revoke not applied yet: etcd answers the keep-alive with TTL 0, and the lease
  // stays expired (a late keep-alive must not bring it back while its revoke is on its way).
  assert.equal(lessor.renew(7n), 0);
  assert.deepEqual(lessor.expired(10), [7n]);
  assert.equal(lessor.renew(99n), 0, 'unknown lease');
});

test('keys follow the store: attached, moved, detached by a put without lease, deleted', () => {
  const lessor = new Lessor(openBackend().backend, { minTtlSec: 2 });
  lessor.grant(1n, 30);
  lessor.grant(2n, 30);
  lessor.observe([put('a', 1n, 2), put('b', 1n, 2), put('c', 1n, 2)]);
  lessor.observe([put('a', 2n, 3)]);
  lessor.observe([put('b', 0n, 4)]);
  lessor.observe([del('c', 5), put('unknown-lease', 9n, 5)]);
  assert.deepEqual([...lessor.get(1n)!.keys], []);
  assert.deepEqual([...lessor.get(2n)!.keys], ['a']);
  assert.deepEqual(
    lessor.revoke(2n).map((k) => Buffer.from(k).toString()),
    ['a'],
  );
  assert.equal(lessor.exists(2n), false);
  assert.throws(
    () => lessor.revoke(2n),
    (err: unknown) => err instanceof ServerError && err.code === ServerErrorCode.LeaseNotFound,
  );
});

test("lease records are etcd's leasepb.Lease and are reloaded with their keys", async () => {
  // leasepb.Lease{ID: 0x1234, TTL: 30}: field 1 varint, field 2 varint.
  assert.deepEqual([...encodeLeaseRecord(0x1234n, 30)], [0x08, 0xb4, 0x24, 0x10, 0x1e]);
  const big = 0x7fff_ffff_ffff_fff0n;
  assert.deepEqual(decodeLeaseRecord(encodeLeaseRecord(big, 9_000_000_000)), { id: big, ttlSec: 9_000_000_000 });
  assert.throws(() => decodeLeaseRecord(Uint8Array.of(0x08, 0x80)), /truncated/);

  const { backend, dir } = openBackend();
  const first = new Lessor(backend, { minTtlSec: 2 });
  first.grant(big, 100);
  first.grant(5n, 3);
  first.observe([put('k1', big, 2), put('k2', big, 3)]);
  first.revoke(5n);
  backend.forceCommit();
  await backend.close();
  backends.splice(backends.indexOf(backend), 1);

  const reopened = openBackend(dir).backend;
  const second = new Lessor(reopened, { minTtlSec: 2 });
  assert.deepEqual(second.ids(), [big]);
  assert.equal(second.get(big)!.ttlSec, 100);
  // The store rebuilds its index and tells the lessor which keys live with which lease.
  second.restoreKey(Buffer.from('k1'), big);
  second.restoreKey(Buffer.from('k2'), big);
  second.restoreKey(Buffer.from('k3'), 5n);
  assert.deepEqual([...second.get(big)!.keys].sort(), ['k1', 'k2']);
});

test('promotion gives every lease a full TTL from then on', () => {
  const c = clock();
  const lessor = new Lessor(openBackend().backend, { minTtlSec: 2, now: c.now });
  lessor.promote();
  lessor.grant(1n, 10);
  c.advance(9_000);
  lessor.demote();
  c.advance(30_000);
  lessor.promote();
  assert.equal(lessor.remaining(lessor.get(1n)!), 10);
  c.advance(9_999);
  assert.deepEqual(lessor.expired(10), []);
  c.advance(1);
  assert.deepEqual(lessor.expired(10), [1n]);
});
