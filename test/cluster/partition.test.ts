/**
 * Network partitions between the members of a 3-member etcd-ts cluster: every member's peer URL
 * is a proxy that can swallow the connections of chosen members (test/helpers/cluster-proxy.ts).
 *
 * - The leader isolated: the majority elects a new leader; the old leader steps down by itself
 *   (check-quorum), refuses linearizable reads and writes, still answers serializable reads with
 *   what it had; after healing it follows the new leader and converges.
 * - One link cut between the leader and a follower: pre-vote keeps the cut-off follower from
 *   disturbing the others (same leader, same term); it catches up once healed.
 * - A follower isolated: the majority goes on; healed, it converges.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GrpcCallError } from '../../src/client/channel.ts';
import { KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { Cluster, type ClusterMember, waitFor } from '../helpers/cluster.ts';

const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');
/** Default --election-timeout: the old leader must have stepped down well within a few of these. */
const ELECTION_MS = 1_000;

function put(m: ClusterMember, key: string, value: string, timeoutMs = 5_000) {
  return m.channel.unary(KVService.Put, PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(value) }), {
    timeoutMs,
  });
}

function get(m: ClusterMember, key: string, serializable: boolean, timeoutMs = 5_000) {
  return m.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from(key), serializable }), {
    timeoutMs,
  });
}

describe('partitions of a 3-member etcd-ts cluster', { timeout: 120_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await Cluster.start({ size: 3, proxied: true });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('the proxies see every member dial every other one', async () => {
    for (const m of cluster.members) {
      const others = cluster.members
        .filter((o) => o !== m)
        .map((o) => o.name)
        .join(',');
      await waitFor(`${others} dialing ${m.name}`, 5_000, () => {
        const from = new Set(m.proxy!.connections().map((c) => c.from));
        return [...from].sort().join(',') === others ? true : undefined;
      });
    }
  });

  test('an isolated leader steps down and serves only serializable reads; the majority goes on', async () => {
    const old = await cluster.leader();
    const majority = cluster.members.filter((m) => m !== old);
    await put(old, 'p/before', '1');
    await waitFor('p/before everywhere', 5_000, async () => {
      const reads = await Promise.all(cluster.members.map((m) => get(m, 'p/before', true)));
      return reads.every((r) => text(r.kvs[0]?.value) === '1') ? true : undefined;
    });
    const oldTerm = (await old.status()).raftTerm;

    cluster.isolate(old);
    const cutAt = Date.now();
    const fresh = await cluster.leader({ among: majority, notId: old.id, timeoutMs: 10_000 });
    assert.ok(majority.includes(fresh));
    assert.ok((await fresh.status()).raftTerm > oldTerm);
    await put(fresh, 'p/during', '2');

    // Check-quorum: with no answer from a quorum for an election timeout, the old leader gives up.
    await waitFor('the isolated leader to step down', 4 * ELECTION_MS, async () => {
      const st = await old.status();
      return st.leader !== old.id ? st : undefined;
    });
    const steppedDownMs = Date.now() - cutAt;
    assert.ok(steppedDownMs < 4 * ELECTION_MS, `stepped down after ${steppedDownMs} ms`);

    await assert.rejects(get(old, 'p/before', false, 3_000), GrpcCallError);
    await assert.rejects(put(old, 'p/lost', 'x', 3_000), GrpcCallError);
    const stale = await get(old, 'p/before', true);
    assert.equal(text(stale.kvs[0]?.value), '1');
    assert.equal((await get(old, 'p/during', true)).kvs.length, 0);
    assert.equal(text((await get(fresh, 'p/during', false)).kvs[0]?.value), '2');
    // The write refused by the old leader happened nowhere.
    assert.equal((await get(fresh, 'p/lost', false)).kvs.length, 0);

    cluster.heal();
    const leader = await cluster.leader({ timeoutMs: 15_000 });
    assert.notEqual(leader, old);
    await cluster.waitConverged();
    assert.equal(text((await get(old, 'p/during', false)).kvs[0]?.value), '2');
    assert.equal((await get(old, 'p/lost', false)).kvs.length, 0);
  });

  test('a follower cut off from the leader alone does not disturb it (pre-vote) and catches up', async () => {
    const leader = await cluster.leader();
    const [cutOff, other] = cluster.members.filter((m) => m !== leader) as [ClusterMember, ClusterMember];
    const term = (await leader.status()).raftTerm;

    cluster.cut(leader, cutOff);
    await waitFor('the cut-off follower to lose its leader', 6 * ELECTION_MS, async () =>
      (await cutOff.status()).leader === 0n ? true : undefined,
    );
    for (let i = 0; i < 10; i++) await put(other, `q/${i}`, String(i));
    await assert.rejects(get(cutOff, 'q/0', false, 3_000), GrpcCallError);
    for (const m of [leader, other]) {
      const st = await m.status();
      assert.equal(st.leader, leader.id, `${m.name} follows another leader`);
      assert.equal(st.raftTerm, term, `${m.name} moved to another term`);
    }

    cluster.heal();
    await cluster.waitConverged();
    assert.equal(text((await get(cutOff, 'q/9', false)).kvs[0]?.value), '9');
  });

  test('an isolated follower does not stop the majority and converges once healed', async () => {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m !== leader)!;
    cluster.isolate(follower);
    const writes = [];
    for (let i = 0; i < 20; i++) writes.push(put(leader, `r/${i}`, String(i)));
    const done = await Promise.all(writes);
    assert.ok(done.every((r) => (r.header?.revision ?? 0n) > 0n));
    assert.equal((await get(follower, 'r/19', true)).kvs.length, 0);

    cluster.heal();
    await cluster.waitConverged();
    const read = await get(follower, 'r/19', true);
    assert.equal(text(read.kvs[0]?.value), '19');
  });
});
