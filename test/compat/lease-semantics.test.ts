/**
 * Lease semantics on one member, against etcd-ts (or the real etcd with COMPAT_TARGET=etcd, to
 * prove the test): the minimum and maximum TTL, a put on an unknown lease, a revoke deleting
 * every attached key in one revision, a keep-alive of an unknown lease, and a restart: leases
 * and their attached keys are reloaded, a lease kept alive survives and one that is not expires,
 * exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel } from '../../src/client/channel.ts';
import { GrpcCallError, Status } from '../../src/client/channel.ts';
import {
  Event_EventType,
  KVService,
  LeaseGrantRequest,
  LeaseService,
  PutRequest,
  RangeRequest,
} from '../../src/proto/index.ts';
import { compatTarget, Member } from '../helpers/member.ts';
import { KeepAliveClient, WatchClient } from './watch-client.ts';

const SUITE_TIMEOUT_MS = 60_000;
const CALL = { timeoutMs: 5_000 };
/** etcd's MaxLeaseTTL. */
const MAX_LEASE_TTL_SEC = 9_000_000_000n;
/** With the default 1000 ms election timeout: ceil(1.5 x 1000 ms) = 2 s. */
const MIN_LEASE_TTL_SEC = 2n;

const text = (s: string) => Buffer.from(s);

let member: Member;

async function grant(channel: Channel, ttlSec: bigint): Promise<bigint> {
  const resp = await channel.unary(LeaseService.LeaseGrant, LeaseGrantRequest.fromPartial({ TTL: ttlSec }), CALL);
  assert.equal(resp.error, '');
  return resp.ID;
}

async function putWithLease(channel: Channel, key: string, lease: bigint): Promise<number> {
  const resp = await channel.unary(
    KVService.Put,
    PutRequest.fromPartial({ key: text(key), value: text(`value of ${key}`), lease }),
    CALL,
  );
  return Number(resp.header!.revision);
}

async function keysUnder(channel: Channel, prefix: string): Promise<string[]> {
  const resp = await channel.unary(
    KVService.Range,
    RangeRequest.fromPartial({ key: text(prefix), rangeEnd: text(`${prefix.slice(0, -1)}0`) }),
    CALL,
  );
  return resp.kvs.map((kv) => Buffer.from(kv.key).toString());
}

async function rejects(call: Promise<unknown>, code: number, message: string): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof GrpcCallError, `not a gRPC error: ${String(err)}`);
    assert.equal(err.details, message);
    assert.equal(err.code, code);
    return true;
  });
}

describe(`leases (${compatTarget()})`, { timeout: SUITE_TIMEOUT_MS }, () => {
  before(async () => {
    member = await Member.start({ kind: compatTarget(), name: 'lease' });
  });

  after(async () => {
    await member?.stop();
  });

  test('a TTL below the minimum is raised to it; one above the maximum is refused', async () => {
    const c = member.channel;
    for (const ttl of [0n, 1n]) {
      const resp = await c.unary(LeaseService.LeaseGrant, LeaseGrantRequest.fromPartial({ TTL: ttl }), CALL);
      assert.equal(resp.TTL, MIN_LEASE_TTL_SEC, `granted TTL for a request of ${ttl}`);
      const ttlResp = await c.unary(LeaseService.LeaseTimeToLive, { ID: resp.ID, keys: false }, CALL);
      assert.equal(ttlResp.grantedTTL, MIN_LEASE_TTL_SEC);
      await c.unary(LeaseService.LeaseRevoke, { ID: resp.ID }, CALL);
    }
    const leasesBefore = (await c.unary(LeaseService.LeaseLeases, {}, CALL)).leases.length;
    await rejects(
      c.unary(LeaseService.LeaseGrant, LeaseGrantRequest.fromPartial({ TTL: MAX_LEASE_TTL_SEC + 1n }), CALL),
      Status.OUT_OF_RANGE,
      'etcdserver: too large lease TTL',
    );
    assert.equal((await c.unary(LeaseService.LeaseLeases, {}, CALL)).leases.length, leasesBefore);
    const max = await grant(c, MAX_LEASE_TTL_SEC);
    assert.equal(
      (await c.unary(LeaseService.LeaseTimeToLive, { ID: max, keys: false }, CALL)).grantedTTL,
      MAX_LEASE_TTL_SEC,
    );
    await c.unary(LeaseService.LeaseRevoke, { ID: max }, CALL);
  });

  test('a put on an unknown lease is refused and writes nothing', async () => {
    const c = member.channel;
    const before = await c.unary(KVService.Range, RangeRequest.fromPartial({ key: text('unknown-lease') }), CALL);
    await rejects(
      c.unary(
        KVService.Put,
        PutRequest.fromPartial({ key: text('unknown-lease'), value: text('v'), lease: 0x1234n }),
        CALL,
      ),
      Status.NOT_FOUND,
      'etcdserver: requested lease not found',
    );
    const afterPut = await c.unary(KVService.Range, RangeRequest.fromPartial({ key: text('unknown-lease') }), CALL);
    assert.equal(afterPut.kvs.length, 0);
    assert.equal(afterPut.header!.revision, before.header!.revision);
  });

  test('a revoke deletes every attached key in one revision', async () => {
    const c = member.channel;
    const lease = await grant(c, 60n);
    for (let i = 0; i < 5; i++) await putWithLease(c, `revoke/${i}`, lease);
    await putWithLease(c, 'revoke/unleased', 0n);
    const watch = new WatchClient(member.endpoint);
    try {
      const id = await watch.create({ key: text('revoke/'), rangeEnd: text('revoke0') });
      const ttl = await c.unary(LeaseService.LeaseTimeToLive, { ID: lease, keys: true }, CALL);
      assert.deepEqual(
        ttl.keys.map((k) => Buffer.from(k).toString()).sort(),
        [0, 1, 2, 3, 4].map((i) => `revoke/${i}`),
      );
      const revoked = await c.unary(LeaseService.LeaseRevoke, { ID: lease }, CALL);
      const events = await watch.waitEvents(id, 5);
      await sleep(200);
      const responses = watch.responses(id);
      assert.equal(responses.length, 1, 'the deletes came in more than one response');
      assert.equal(events.length, 5);
      for (const e of events) {
        assert.equal(e.type, Event_EventType.DELETE);
        assert.equal(e.kv!.modRevision, revoked.header!.revision);
      }
      assert.deepEqual(await keysUnder(c, 'revoke/'), ['revoke/unleased']);
      const gone = await c.unary(LeaseService.LeaseTimeToLive, { ID: lease, keys: true }, CALL);
      assert.equal(gone.TTL, -1n);
      await rejects(
        c.unary(LeaseService.LeaseRevoke, { ID: lease }, CALL),
        Status.NOT_FOUND,
        'etcdserver: requested lease not found',
      );
    } finally {
      watch.close();
    }
  });

  test('a key follows its last put: moved to another lease, detached, or deleted', async () => {
    const c = member.channel;
    const first = await grant(c, 60n);
    const second = await grant(c, 60n);
    for (const key of ['move/a', 'move/b', 'move/c', 'move/d']) await putWithLease(c, key, first);
    await putWithLease(c, 'move/a', second);
    await putWithLease(c, 'move/b', 0n);
    await c.unary(
      KVService.Put,
      PutRequest.fromPartial({ key: text('move/c'), value: text('kept'), ignoreLease: true }),
      CALL,
    );
    await c.unary(KVService.DeleteRange, { key: text('move/d'), rangeEnd: new Uint8Array(0), prevKv: false }, CALL);
    const keysOf = async (lease: bigint) =>
      (await c.unary(LeaseService.LeaseTimeToLive, { ID: lease, keys: true }, CALL)).keys
        .map((k) => Buffer.from(k).toString())
        .sort();
    assert.deepEqual(await keysOf(first), ['move/c']);
    assert.deepEqual(await keysOf(second), ['move/a']);
    const watch = new WatchClient(member.endpoint);
    try {
      const id = await watch.create({ key: text('move/'), rangeEnd: text('move0') });
      await c.unary(LeaseService.LeaseRevoke, { ID: first }, CALL);
      await watch.waitEvents(id, 1);
      await sleep(200);
      assert.deepEqual(
        watch.events(id).map((e) => `${e.type} ${Buffer.from(e.kv!.key).toString()}`),
        [`${Event_EventType.DELETE} move/c`],
      );
      assert.deepEqual(await keysUnder(c, 'move/'), ['move/a', 'move/b']);
      await c.unary(LeaseService.LeaseRevoke, { ID: second }, CALL);
      assert.deepEqual(await keysUnder(c, 'move/'), ['move/b']);
    } finally {
      watch.close();
    }
  });

  test('a keep-alive of an unknown lease answers TTL 0', async () => {
    const keepAlive = new KeepAliveClient(member.endpoint);
    try {
      const resp = await keepAlive.keepAlive(0x4321n);
      assert.equal(resp.ID, 0x4321n);
      assert.equal(resp.TTL, 0n);
      // The stream stays usable.
      const lease = await grant(member.channel, 30n);
      assert.equal((await keepAlive.keepAlive(lease)).TTL, 30n);
      await member.channel.unary(LeaseService.LeaseRevoke, { ID: lease }, CALL);
    } finally {
      keepAlive.close();
    }
  });

  test('after a restart: leases reloaded with their keys, kept alive or expired once', async () => {
    const c = member.channel;
    const kept = await grant(c, 3n);
    const dropped = await grant(c, 3n);
    for (const key of ['restart/kept/a', 'restart/kept/b']) await putWithLease(c, key, kept);
    for (const key of ['restart/dropped/a', 'restart/dropped/b']) await putWithLease(c, key, dropped);
    await member.kill('SIGKILL');
    await member.restart();
    const restartedAtMs = Date.now();
    const rc = member.channel;
    const watch = new WatchClient(member.endpoint);
    const keepAlive = new KeepAliveClient(member.endpoint);
    try {
      const id = await watch.create({ key: text('restart/'), rangeEnd: text('restart0') });
      // Both leases came back, with their keys.
      const leases = (await rc.unary(LeaseService.LeaseLeases, {}, CALL)).leases.map((l) => l.ID);
      assert.ok(leases.includes(kept) && leases.includes(dropped), `leases after the restart: ${leases}`);
      const keptTtl = await rc.unary(LeaseService.LeaseTimeToLive, { ID: kept, keys: true }, CALL);
      assert.deepEqual(keptTtl.keys.map((k) => Buffer.from(k).toString()).sort(), ['restart/kept/a', 'restart/kept/b']);
      // Keep one alive for a few TTLs; the other expires.
      let deleteAtMs = 0;
      while (Date.now() - restartedAtMs < 7_000) {
        assert.equal((await keepAlive.keepAlive(kept)).TTL, 3n);
        if (deleteAtMs === 0 && watch.events(id).length > 0) deleteAtMs = Date.now();
        await sleep(500);
      }
      const events = watch.events(id);
      assert.deepEqual(
        events.map(
          (e) => `${e.type === Event_EventType.DELETE ? 'DELETE' : 'PUT'} ${Buffer.from(e.kv!.key).toString()}`,
        ),
        ['DELETE restart/dropped/a', 'DELETE restart/dropped/b'],
        'the expired lease deletes its keys once, and only its keys',
      );
      assert.equal(events[0]!.kv!.modRevision, events[1]!.kv!.modRevision, 'one revision for the expiry');
      assert.ok(
        deleteAtMs - restartedAtMs >= 1_500,
        `the lease expired ${deleteAtMs - restartedAtMs} ms after the restart`,
      );
      assert.deepEqual(await keysUnder(rc, 'restart/'), ['restart/kept/a', 'restart/kept/b']);
      assert.equal((await rc.unary(LeaseService.LeaseTimeToLive, { ID: dropped, keys: false }, CALL)).TTL, -1n);
      // The reloaded lease still owns its keys: revoking it deletes them.
      await rc.unary(LeaseService.LeaseRevoke, { ID: kept }, CALL);
      assert.deepEqual(await keysUnder(rc, 'restart/'), []);
    } finally {
      watch.close();
      keepAlive.close();
    }
  });
});
