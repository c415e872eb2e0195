/**
 * The Lock (v3lockpb) and Election (v3electionpb) services of a member over gRPC, the same
 * calls against the real etcd and against etcd-ts (or a second real etcd with
 * COMPAT_TARGET=etcd): answers and errors (status code and message) must be equal once lease
 * ids (each server's own, also inside lock and election keys) and the header's identity fields
 * are replaced. Covered: errors (every one UNKNOWN, as etcd's services run on an internal
 * client), lock with lease 0 (a 60 s session lease), re-lock with the same lease, contention,
 * a waiter giving up, a holder's lease revoked, campaign / proclaim / leader / observe /
 * resign, and a re-campaign with another value.
 *
 * One behaviour is etcd 3.5's and is checked per server: a waiter whose lease is revoked while
 * it waits gets `session expired` from etcd-ts (3.5); etcd 3.4 hands it the lock anyway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcCallError, Status } from '../../src/client/channel.ts';
import {
  ElectionService,
  KVService,
  type LeaderKey,
  type LeaderRequest,
  type LeaderResponse,
  LeaseGrantRequest,
  LeaseService,
  LockService,
  RangeRequest,
} from '../../src/proto/index.ts';
import { GrpcStream } from '../compat/watch-client.ts';
import { compatTarget, Member, MemberKind } from '../helpers/member.ts';
import { plainResponse } from '../helpers/normalize.ts';

const SUITE_TIMEOUT_MS = 60_000;
const CALL = { timeoutMs: 5_000 };
/** How long a waiter is checked to stay blocked. */
const BLOCKED_MS = 500;

let reference: Member;
let target: Member;

const text = (s: string) => Buffer.from(s);

/** A transcript of one scenario on one server, with lease ids named in order of appearance. */
class Transcript {
  readonly entries: unknown[] = [];
  private readonly leases: bigint[] = [];

  lease(id: bigint): bigint {
    if (!this.leases.includes(id)) this.leases.push(id);
    return id;
  }

  /** Records a response (or the error of a call) after naming the leases in it. */
  async record(label: string, call: Promise<object>): Promise<unknown> {
    try {
      const resp = await call;
      this.entries.push([label, this.normalise(plainResponse(resp))]);
      return resp;
    } catch (err) {
      if (!(err instanceof GrpcCallError)) throw err;
      this.entries.push([label, { error: err.code, details: err.details }]);
      return undefined;
    }
  }

  add(label: string, value: object): void {
    this.entries.push([label, this.normalise(plainResponse(value))]);
  }

  private normalise(value: unknown): unknown {
    let json = JSON.stringify(value);
    // Lease ids in keys (`name/<hex>`); a lease the service granted itself is named here first.
    json = json.replace(/\/([0-9a-f]{12,16})\b/g, (_, hex: string) => `/<lease${this.nameOf(BigInt(`0x${hex}`))}>`);
    // Lease ids as numbers (`"<decimal>n"` in plain data), where they are known leases.
    json = json.replace(/"(\d+)n"/g, (all, digits: string) => {
      const i = this.leases.indexOf(BigInt(digits));
      return i < 0 ? all : `"<lease${i + 1}>"`;
    });
    return JSON.parse(json);
  }

  private nameOf(id: bigint): number {
    return this.leases.indexOf(this.lease(id)) + 1;
  }
}

/** Runs `scenario` on both servers at once; the transcripts must be equal. */
async function same(name: string, scenario: (m: Member, t: Transcript) => Promise<void>): Promise<unknown[]> {
  const ref = new Transcript();
  const tgt = new Transcript();
  await Promise.all([scenario(reference, ref), scenario(target, tgt)]);
  assert.deepEqual(tgt.entries, ref.entries, `${name}: ${target.kind} and etcd differ`);
  return ref.entries;
}

async function grant(m: Member, t: Transcript, ttlSec = 30n): Promise<bigint> {
  const resp = await m.channel.unary(LeaseService.LeaseGrant, LeaseGrantRequest.fromPartial({ TTL: ttlSec }), CALL);
  return t.lease(resp.ID);
}

/** A call that must still be pending after BLOCKED_MS. */
async function assertBlocked(call: Promise<unknown>, what: string): Promise<void> {
  const pending = Symbol('pending');
  const first = await Promise.race([
    call.then(
      () => 'answered',
      () => 'failed',
    ),
    sleep(BLOCKED_MS, pending),
  ]);
  assert.equal(first, pending, `${what} was not blocked`);
}

async function keysUnder(m: Member, prefix: string): Promise<string[]> {
  const resp = await m.channel.unary(
    KVService.Range,
    RangeRequest.fromPartial({ key: text(prefix), rangeEnd: text(`${prefix.slice(0, -1)}0`) }),
    CALL,
  );
  return resp.kvs.map((kv) => Buffer.from(kv.key).toString());
}

describe(`Lock and Election: ${MemberKind.ETCD} vs ${compatTarget()}`, { timeout: SUITE_TIMEOUT_MS }, () => {
  before(async () => {
    [reference, target] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'reference' }),
      Member.start({ kind: compatTarget(), name: 'target' }),
    ]);
  });

  after(async () => {
    await Promise.all([reference?.stop(), target?.stop()]);
  });

  test('errors: status UNKNOWN with etcd messages; resign and unlock of nothing succeed', async () => {
    const entries = await same('errors', async (m, t) => {
      const c = m.channel;
      const bogus: LeaderKey = { name: text('e0'), key: text('e0/1234'), rev: 5n, lease: 0x1234n };
      await t.record('leader of an empty election', c.unary(ElectionService.Leader, { name: text('e0') }, CALL));
      await t.record(
        'proclaim by a non-leader',
        c.unary(ElectionService.Proclaim, { leader: bogus, value: text('x') }, CALL),
      );
      await t.record(
        'proclaim without leader',
        c.unary(ElectionService.Proclaim, { leader: undefined, value: text('x') }, CALL),
      );
      await t.record('resign without leader', c.unary(ElectionService.Resign, { leader: undefined }, CALL));
      await t.record('resign by a non-leader', c.unary(ElectionService.Resign, { leader: bogus }, CALL));
      await t.record('lock on an unknown lease', c.unary(LockService.Lock, { name: text('l0'), lease: 0x1234n }, CALL));
      await t.record(
        'campaign on an unknown lease',
        c.unary(ElectionService.Campaign, { name: text('e0'), lease: 0x1234n, value: text('v') }, CALL),
      );
      await t.record('unlock of no key', c.unary(LockService.Unlock, { key: text('l0/none') }, CALL));
    });
    const errors = entries.filter((e) => (e as [string, { error?: number }])[1].error !== undefined);
    assert.equal(errors.length, 6);
    for (const e of errors) assert.equal((e as [string, { error: number }])[1].error, Status.UNKNOWN);
  });

  test('lock: lease 0 gets a 60 s session lease; the same lease locks again at once', async () => {
    await same('lock lease 0', async (m, t) => {
      const c = m.channel;
      const resp = (await t.record(
        'lock with lease 0',
        c.unary(LockService.Lock, { name: text('l1'), lease: 0n }, CALL),
      )) as {
        key: Uint8Array;
      };
      const hex = Buffer.from(resp.key).toString().slice('l1/'.length);
      const ttl = await c.unary(LeaseService.LeaseTimeToLive, { ID: BigInt(`0x${hex}`), keys: true }, CALL);
      t.add('its lease', { grantedTTL: ttl.grantedTTL, keys: ttl.keys });
      const lease = await grant(m, t);
      await t.record('lock', c.unary(LockService.Lock, { name: text('l2'), lease }, CALL));
      await t.record('lock again, same lease', c.unary(LockService.Lock, { name: text('l2'), lease }, CALL));
    });
  });

  test('lock: contention, a waiter giving up, a holder whose lease is revoked', async () => {
    await same('lock contention', async (m, t) => {
      const c = m.channel;
      const [a, b, w, d] = [await grant(m, t), await grant(m, t), await grant(m, t), await grant(m, t)];
      const held = (await t.record('A locks', c.unary(LockService.Lock, { name: text('l3'), lease: a }, CALL))) as {
        key: Uint8Array;
      };
      const bLock = c.unary(LockService.Lock, { name: text('l3'), lease: b }, CALL);
      await assertBlocked(bLock, 'B while A holds the lock');
      // A waiter that gives up (its deadline) leaves the queue.
      // etcd's handler answers UNKNOWN with the context's error; etcd-ts's gRPC layer answers the
      // deadline itself (DEADLINE_EXCEEDED): the message is compared, not the code.
      const gaveUp = await c
        .unary(LockService.Lock, { name: text('l3'), lease: w }, { timeoutMs: 300 })
        .catch((e) => e);
      assert.ok(gaveUp instanceof GrpcCallError, 'W got the lock while A held it');
      t.add('W gives up', { details: gaveUp.details });
      await sleep(300);
      t.add('queue after W gave up', { keys: (await keysUnder(m, 'l3/')).map((k) => k.replace(/[0-9a-f]+$/, '')) });
      await t.record('A unlocks', c.unary(LockService.Unlock, { key: held.key }, CALL));
      await t.record('B gets the lock', bLock);
      // D waits behind B; B's lease is revoked: D gets it.
      const dLock = c.unary(LockService.Lock, { name: text('l3'), lease: d }, CALL);
      await assertBlocked(dLock, 'D while B holds the lock');
      await t.record('B revoked', c.unary(LeaseService.LeaseRevoke, { ID: b }, CALL));
      await t.record('D gets the lock', dLock);
    });
  });

  test('lock: a waiter whose lease is revoked while it waits', async () => {
    for (const m of [reference, target]) {
      const t = new Transcript();
      const c = m.channel;
      const [holder, waiter] = [await grant(m, t), await grant(m, t)];
      const held = await c.unary(LockService.Lock, { name: text('l4'), lease: holder }, CALL);
      const waiting = c.unary(LockService.Lock, { name: text('l4'), lease: waiter }, CALL);
      await assertBlocked(waiting, 'the waiter');
      await c.unary(LeaseService.LeaseRevoke, { ID: waiter }, CALL);
      await c.unary(LockService.Unlock, { key: held.key }, CALL);
      if (m.kind === MemberKind.ETCD) {
        // etcd 3.4 hands out the lock without the key; 3.5 (and etcd-ts) refuse.
        const resp = await waiting;
        assert.equal((await keysUnder(m, 'l4/')).length, 0, `${m.kind}: a key appeared`);
        assert.ok(resp.key.length > 0);
      } else {
        await assert.rejects(waiting, (err: unknown) => {
          assert.ok(err instanceof GrpcCallError);
          assert.deepEqual([err.code, err.details], [Status.UNKNOWN, 'session expired']);
          return true;
        });
      }
    }
  });

  test('election: campaign, leader, proclaim, observe, a second campaigner, resign', async () => {
    await same('election', async (m, t) => {
      const c = m.channel;
      const [l1, l2] = [await grant(m, t), await grant(m, t)];
      const observe = new GrpcStream<LeaderRequest, LeaderResponse>(m.endpoint, ElectionService.Observe);
      try {
        const won = (await t.record(
          'first campaign',
          c.unary(ElectionService.Campaign, { name: text('e1'), lease: l1, value: text('v1') }, CALL),
        )) as { leader: LeaderKey };
        observe.write({ name: text('e1') });
        observe.end();
        await observe.until((r) => r.length >= 1, 'observe: the first leader');
        await t.record('leader', c.unary(ElectionService.Leader, { name: text('e1') }, CALL));
        const second = c.unary(ElectionService.Campaign, { name: text('e1'), lease: l2, value: text('v2') }, CALL);
        await assertBlocked(second, 'the second campaigner');
        await t.record('proclaim', c.unary(ElectionService.Proclaim, { leader: won.leader, value: text('v1b') }, CALL));
        await observe.until((r) => r.length >= 2, 'observe: the proclaimed value');
        await t.record(
          're-campaign with another value',
          c.unary(ElectionService.Campaign, { name: text('e1'), lease: l1, value: text('v1c') }, CALL),
        );
        await observe.until((r) => r.length >= 3, 'observe: the re-campaign value');
        await t.record('resign', c.unary(ElectionService.Resign, { leader: won.leader }, CALL));
        await t.record('second campaigner wins', second);
        await observe.until((r) => r.length >= 4, 'observe: the second leader');
        await sleep(200);
        await t.record('leader after resign', c.unary(ElectionService.Leader, { name: text('e1') }, CALL));
        for (const [i, r] of observe.received.entries()) t.add(`observed ${i}`, r);
      } finally {
        observe.close();
      }
    });
  });
});
