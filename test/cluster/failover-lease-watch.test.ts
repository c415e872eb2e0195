/**
 * Leases and watches across a leader kill in a 3-member etcd-ts cluster: a lease kept alive
 * (through a follower) survives the new leader, a lease nobody keeps alive expires exactly once,
 * and a watch on a surviving member sees every acknowledged write, in order, once, with the
 * expiry's delete among them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Event_EventType, KVService, LeaseService, PutRequest } from '../../src/proto/index.ts';
import { KeepAliveClient, WatchClient } from '../compat/watch-client.ts';
import { Cluster, type ClusterMember, sleep, waitFor } from '../helpers/cluster.ts';

const TTL_SEC = 4n;
const CALL = { timeoutMs: 5_000 };
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');

async function putWithRetry(
  members: readonly ClusterMember[],
  key: string,
  value: string,
  lease = 0n,
): Promise<bigint> {
  return waitFor(`put ${key}`, 15_000, async () => {
    for (const m of members) {
      try {
        const r = await m.channel.unary(
          KVService.Put,
          PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(value), lease }),
          CALL,
        );
        return r.header?.revision ?? 0n;
      } catch {
        // no leader yet, or this member is the one that died: try the next one
      }
    }
    return undefined;
  });
}

describe('leases and watches across a leader kill', { timeout: 120_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await Cluster.start({ size: 3 });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('a kept-alive lease survives, an abandoned one expires once, the watch misses nothing', async () => {
    const leader = await cluster.leader();
    const followers = cluster.members.filter((m) => m !== leader);
    const [watcherMember, keeperMember] = followers as [ClusterMember, ClusterMember];

    const kept = await leader.channel.unary(LeaseService.LeaseGrant, { TTL: TTL_SEC, ID: 0n }, CALL);
    const abandoned = await leader.channel.unary(LeaseService.LeaseGrant, { TTL: TTL_SEC, ID: 0n }, CALL);
    const startRev = await putWithRetry([leader], 'fo/kept', 'k', kept.ID);
    await putWithRetry([leader], 'fo/abandoned', 'a', abandoned.ID);

    const watch = new WatchClient(watcherMember.endpoint);
    const keeper = new KeepAliveClient(keeperMember.endpoint);
    let keeping = true;
    const keepAliveLoop = (async () => {
      let client = keeper;
      while (keeping) {
        try {
          await client.keepAlive(kept.ID, 3_000);
        } catch {
          // the stream broke while the leader changed: a new one, as a client would
          client.close();
          client = new KeepAliveClient(keeperMember.endpoint);
        }
        await sleep(500);
      }
      client.close();
    })();
    try {
      const watchId = await watch.create({
        key: Buffer.from('fo/'),
        rangeEnd: Buffer.from('fo0'),
        startRevision: startRev,
      });

      await leader.kill('SIGKILL');
      const acked: { key: string; rev: bigint }[] = [];
      for (let i = 0; i < 20; i++) {
        const key = `fo/w${String(i).padStart(2, '0')}`;
        acked.push({ key, rev: await putWithRetry(followers, key, `v${i}`) });
      }
      const newLeader = await cluster.leader({ among: followers });
      assert.notEqual(newLeader, leader);

      // Past the TTL counted from the new leader's election: the abandoned lease is gone.
      await waitFor('the abandoned lease to expire', 15_000, async () => {
        const ttl = await newLeader.channel.unary(
          LeaseService.LeaseTimeToLive,
          { ID: abandoned.ID, keys: false },
          CALL,
        );
        return ttl.TTL === -1n ? true : undefined;
      });
      await sleep(Number(TTL_SEC) * 1000);

      const keptTtl = await newLeader.channel.unary(LeaseService.LeaseTimeToLive, { ID: kept.ID, keys: true }, CALL);
      assert.ok(keptTtl.TTL > 0n, `the kept-alive lease expired (TTL ${keptTtl.TTL})`);
      assert.deepEqual(keptTtl.keys.map(text), ['fo/kept']);

      const events = watch.events(watchId);
      const revs = events.map((e) => e.kv!.modRevision);
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! >= revs[i - 1]!, `events out of order at ${i}`);
      const seen = new Set(events.map((e) => `${e.type}:${text(e.kv?.key)}@${e.kv?.modRevision}`));
      assert.equal(seen.size, events.length, 'an event was delivered twice');
      for (const a of acked) {
        assert.ok(
          events.some(
            (e) => e.type === Event_EventType.PUT && text(e.kv?.key) === a.key && e.kv?.modRevision === a.rev,
          ),
          `the watch missed ${a.key}@${a.rev}`,
        );
      }
      const deletes = events.filter((e) => e.type === Event_EventType.DELETE);
      assert.deepEqual(
        deletes.map((e) => text(e.kv?.key)),
        ['fo/abandoned'],
        'the abandoned lease expired exactly once and the kept one not at all',
      );

      // The killed leader comes back and catches up with everything.
      await leader.restart();
      await waitFor('the old leader to catch up', 20_000, async () => {
        const [a, b] = await Promise.all([leader.hashKV(), newLeader.hashKV()]);
        return a.header?.revision === b.header?.revision && a.hash === b.hash ? true : undefined;
      });
    } finally {
      keeping = false;
      await keepAliveLoop;
      watch.close();
    }
  });
});
