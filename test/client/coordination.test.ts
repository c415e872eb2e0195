/**
 * Leases, locks and elections against the real etcd: lease ids exact as bigints, kept-alive
 * leases that outlive their TTL and expire after close(), loss detection, locks that exclude
 * each other (with fencing, tryLock, abort and `await using`), elections with campaign,
 * proclaim, resign and observe.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CancelledError,
  Client,
  compare,
  ElectionNotLeaderError,
  type KeyValue,
  LeaseLostError,
  LeaseNotFoundError,
  op,
} from '../../src/client/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';

let member: Member;
let client: Client;
const extra: Client[] = [];

function another(): Client {
  const c = new Client({ endpoints: [member.endpoint] });
  extra.push(c);
  return c;
}

async function waitUntil(predicate: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const startMs = Date.now();
  while (!(await predicate())) {
    if (Date.now() - startMs > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('client leases, locks, elections', { timeout: 90_000 }, () => {
  before(async () => {
    member = await Member.start({ kind: MemberKind.ETCD, name: 'coordination' });
    client = new Client({ endpoints: [member.endpoint] });
  });
  after(async () => {
    for (const c of extra) c.close();
    client?.close();
    await member?.stop();
  });

  test('grant, timeToLive, leases, keepAliveOnce, revoke: 64-bit ids stay exact', async () => {
    const granted = await client.grant(60);
    assert.equal(granted.ttl, 60);
    // etcd's lease ids use all 63 bits: a number would lose the low ones.
    assert.ok(granted.id > BigInt(Number.MAX_SAFE_INTEGER), `id ${granted.id} fits a number`);
    await client.put('leased', 'v', { lease: granted.id });
    assert.equal((await client.getOne('leased'))?.lease, granted.id);
    const info = await client.timeToLive(granted.id, { keys: true });
    assert.equal(info.id, granted.id);
    assert.equal(info.grantedTtl, 60);
    assert.deepEqual(
      info.keys.map((k) => k.toString()),
      ['leased'],
    );
    assert.ok((await client.leases()).includes(granted.id));
    assert.equal((await client.keepAliveOnce(granted.id)).ttl, 60);
    await client.revoke(granted.id);
    assert.equal(await client.getString('leased'), undefined);
    assert.equal((await client.timeToLive(granted.id)).ttl, -1);
    await assert.rejects(client.revoke(granted.id), LeaseNotFoundError);
    await assert.rejects(client.put('k', 'v', { lease: granted.id }), LeaseNotFoundError);
    const chosen = await client.grant(30, { id: 0x1234n });
    assert.equal(chosen.id, 0x1234n);
    await client.revoke(chosen.id);
  });

  test('a kept-alive lease outlives its TTL; after close() its keys expire', async () => {
    const lease = await client.lease(2);
    let renewals = 0;
    lease.on('keepalive', () => renewals++);
    await client.put('kept', 'v', { lease });
    await new Promise((r) => setTimeout(r, 3_500));
    assert.equal(await client.getString('kept'), 'v', 'the key expired although its lease was kept alive');
    assert.ok(renewals >= 3, `only ${renewals} renewals in 3.5 s`);
    assert.equal(lease.lost, false);
    lease.close();
    await waitUntil(async () => (await client.getString('kept')) === undefined, 5_000, 'the key to expire');
  });

  test('a lease revoked elsewhere is reported lost', async () => {
    const lease = await client.lease(3);
    const lost = lease.whenLost();
    await another().revoke(lease.id);
    const error = await lost;
    assert.ok(error instanceof LeaseLostError);
    assert.equal(error.leaseId, lease.id);
    assert.equal(lease.lost, true);
  });

  test('locks exclude each other; fencing through isOwner()', async () => {
    const clients = [client, another(), another()];
    let inside = 0;
    let overlaps = 0;
    await client.put('locked-counter', '0');
    await Promise.all(
      clients.flatMap((c) =>
        Array.from({ length: 3 }, async () => {
          const lock = await c.lock('L/counter', { ttl: 10 });
          try {
            if (++inside > 1) overlaps++;
            const n = Number(await c.getString('locked-counter'));
            await new Promise((r) => setTimeout(r, 5));
            const fenced = await c
              .txn()
              .if(lock.isOwner())
              .then(op.put('locked-counter', String(n + 1)))
              .commit();
            assert.equal(fenced.succeeded, true);
            inside--;
          } finally {
            await lock.release();
          }
        }),
      ),
    );
    assert.equal(overlaps, 0);
    assert.equal(await client.getString('locked-counter'), '9');
  });

  test('tryLock, aborting a wait, await using, and a lock whose lease is lost', async () => {
    const other = another();
    {
      await using held = await client.lock('L/try');
      assert.equal(await other.tryLock('L/try'), undefined);
      const aborter = new AbortController();
      const waiting = other.lock('L/try', { signal: aborter.signal });
      await new Promise((r) => setTimeout(r, 200));
      aborter.abort();
      await assert.rejects(waiting, CancelledError);
      const keys = await client.get('L/try/', { prefix: true, keysOnly: true });
      assert.deepEqual(
        keys.kvs.map((kv) => kv.key.toString()),
        [held.key.toString()],
      );
      assert.match(held.key.toString(), /^L\/try\/[0-9a-f]+$/);
    }
    const taken = await other.tryLock('L/try');
    assert.ok(taken !== undefined);
    const stale = taken.isOwner();
    await taken.release();
    assert.equal((await client.txn().if(stale).commit()).succeeded, false);
    const doomed = await client.lock('L/lost', { ttl: 5 });
    const lost = doomed.whenLost();
    await other.revoke(doomed.lease.id);
    assert.ok((await lost) instanceof LeaseLostError);
  });

  test('elections: campaign, observe, proclaim, resign, hand-over', async () => {
    const a = client.election('E/main');
    const b = another().election('E/main');
    assert.equal(await a.leader(), undefined);
    await a.campaign('alpha');
    assert.equal(a.isLeader, true);
    assert.equal((await a.leader())?.value.toString(), 'alpha');
    const observed: string[] = [];
    const stop = new AbortController();
    const observer = (async () => {
      for await (const kv of client.election('E/main').observe({ signal: stop.signal })) {
        observed.push((kv as KeyValue).value.toString());
      }
    })();
    await waitUntil(() => observed.includes('alpha'), 5_000, 'the observer to see alpha');
    let bLeads = false;
    const bCampaign = b.campaign('beta').then(() => {
      bLeads = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bLeads, false, 'two leaders at once');
    await a.proclaim('alpha-2');
    await waitUntil(() => observed.includes('alpha-2'), 5_000, 'the proclaimed value');
    await assert.rejects(b.proclaim('x'), ElectionNotLeaderError);
    await a.resign();
    await bCampaign;
    assert.equal(bLeads, true);
    await waitUntil(() => observed.includes('beta'), 5_000, 'the new leader');
    assert.deepEqual(observed, ['alpha', 'alpha-2', 'beta']);
    const fenced = await client
      .txn()
      .if(compare.createRevision(b.key!, '=', b.revision))
      .commit();
    assert.equal(fenced.succeeded, true);
    stop.abort();
    await observer;
    await b.close();
    await a.close();
    assert.equal(await a.leader(), undefined);
  });
});
