/**
 * Three etcd-ts processes on loopback, driven by the real etcdctl: member list, endpoint status,
 * put/get through every member, move-leader, a lease used through followers, a graceful stop of
 * the leader (it hands leadership over first); the leader killed with SIGKILL (a new leader within 2 s, writes
 * go on), restarted (it catches up: same revision, same hash); a follower killed while a few
 * hundred keys are written catches up by snapshot (small --snapshot-count) and ends with the same
 * data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { Cluster, type ClusterMember, waitFor } from '../helpers/cluster.ts';
import { parseTable } from './table.ts';

/** etcd's defaults: a leader is elected within [1, 2) election timeouts of the last heartbeat. */
const NEW_LEADER_MS_MAX = 2_000;
const SNAPSHOT_COUNT = 50;
const CATCH_UP_ENTRIES = 10;
const KEYS_WHILE_DOWN = 300;

const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');

async function put(m: ClusterMember, key: string, value: string): Promise<bigint> {
  const resp = await m.channel.unary(
    KVService.Put,
    PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(value) }),
    { timeoutMs: 5_000 },
  );
  return resp.header?.revision ?? 0n;
}

async function serializableRange(m: ClusterMember, prefix: string) {
  const key = Buffer.from(prefix);
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  return m.channel.unary(KVService.Range, RangeRequest.fromPartial({ key, rangeEnd: end, serializable: true }), {
    timeoutMs: 5_000,
  });
}

describe('a 3-member etcd-ts cluster', { timeout: 90_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await Cluster.start({
      size: 3,
      args: [`--snapshot-count=${SNAPSHOT_COUNT}`, `--experimental-snapshot-catchup-entries=${CATCH_UP_ENTRIES}`],
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('etcdctl member list -w table names every member, started, with its URLs', async () => {
    const r = await cluster.etcdctl(['member', 'list', '-w', 'table']);
    assert.equal(r.code, 0, r.stderr);
    const rows = parseTable(r.stdout);
    assert.equal(rows.length, 3);
    for (const m of cluster.members) {
      const row = rows.find((x) => x.NAME === m.name);
      assert.ok(row !== undefined, `${m.name} missing from\n${r.stdout}`);
      assert.equal(row.ID, m.id.toString(16));
      assert.equal(row.STATUS, 'started');
      assert.equal(row['PEER ADDRS'], m.peerUrl);
      assert.equal(row['CLIENT ADDRS'], m.clientUrl);
      assert.equal(row['IS LEARNER'], 'false');
    }
  });

  test('etcdctl endpoint status: one leader that every member names, one term', async () => {
    const leader = await cluster.leader();
    const r = await cluster.etcdctl(['endpoint', 'status', '-w', 'table']);
    assert.equal(r.code, 0, r.stderr);
    const rows = parseTable(r.stdout);
    assert.equal(rows.length, 3);
    assert.deepEqual(
      rows.filter((row) => row['IS LEADER'] === 'true').map((row) => row.ID),
      [leader.id.toString(16)],
    );
    assert.equal(new Set(rows.map((row) => row['RAFT TERM'])).size, 1);
    for (const m of cluster.members) assert.equal((await m.status()).leader, leader.id);
  });

  test('etcdctl put and get through every member, followers included', async () => {
    for (const [i, m] of cluster.members.entries()) {
      const r = await cluster.etcdctl(['put', `via-${m.name}`, `value-${i}`], { members: [m] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'OK');
    }
    for (const reader of cluster.members) {
      const r = await cluster.etcdctl(['get', 'via-', '--prefix'], { members: [reader] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'via-m0\nvalue-0\nvia-m1\nvalue-1\nvia-m2\nvalue-2\n');
    }
  });

  test('etcdctl move-leader hands leadership to the member named', async () => {
    const leader = await cluster.leader();
    const target = cluster.members.find((m) => m !== leader)!;
    const r = await cluster.etcdctl(['move-leader', target.id.toString(16)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `Leadership transferred from ${leader.id.toString(16)} to ${target.id.toString(16)}`);
    assert.equal(await cluster.leader(), target);
  });

  test('a lease through followers: granted, keys attached, TTL and keep-alive from the leader, revoked everywhere', async () => {
    const leader = await cluster.leader();
    const [f1, f2] = cluster.members.filter((m) => m !== leader) as [ClusterMember, ClusterMember];
    const granted = await cluster.etcdctl(['lease', 'grant', '60'], { members: [f1] });
    assert.equal(granted.code, 0, granted.stderr);
    const id = /^lease ([0-9a-f]+) granted with TTL\(60s\)$/.exec(granted.stdout.trim())?.[1];
    assert.ok(id !== undefined, granted.stdout);
    const attached = await cluster.etcdctl(['put', 'leased', 'v', `--lease=${id}`], { members: [f2] });
    assert.equal(attached.code, 0, attached.stderr);
    const ttl = await cluster.etcdctl(['lease', 'timetolive', id, '--keys'], { members: [f2] });
    const remaining =
      /^lease [0-9a-f]+ granted with TTL\(60s\), remaining\((\d+)s\), attached keys\(\[leased\]\)$/.exec(
        ttl.stdout.trim(),
      );
    assert.ok(remaining !== null && Number(remaining[1]) > 50, ttl.stdout + ttl.stderr);
    const kept = await cluster.etcdctl(['lease', 'keep-alive', '--once', id], { members: [f1] });
    assert.equal(kept.stdout.trim(), `lease ${id} keepalived with TTL(60)`, kept.stderr);
    const revoked = await cluster.etcdctl(['lease', 'revoke', id], { members: [f2] });
    assert.equal(revoked.stdout.trim(), `lease ${id} revoked`, revoked.stderr);
    for (const m of cluster.members) {
      const r = await m.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('leased') }), {
        timeoutMs: 5_000,
      });
      assert.equal(r.kvs.length, 0, `leased still on ${m.name}`);
    }
  });

  test('SIGTERM on the leader: it hands leadership over before it exits, and comes back', async () => {
    const old = await cluster.leader();
    const survivors = cluster.members.filter((m) => m !== old);
    await old.kill('SIGTERM');
    assert.deepEqual(old.exitStatus, { code: 0, signal: null }, old.output().slice(-2000));
    // Without a handover the others would wait at least an election timeout (1 s) to elect one.
    const exitedAt = Date.now();
    const next = await cluster.leader({ among: survivors, notId: old.id, timeoutMs: 5_000 });
    assert.ok(Date.now() - exitedAt < 500, `a leader only ${Date.now() - exitedAt} ms after the old one exited`);
    assert.ok(survivors.includes(next));
    await put(next, 'after-handover', 'h');
    await old.restart();
    await cluster.waitConverged();
  });

  test('kill -9 of the leader: a new leader within 2 s, writes go on, the restarted member catches up', async () => {
    const old = await cluster.leader();
    await put(old, 'before-kill', 'x');
    const killedAt = Date.now();
    await old.kill('SIGKILL');
    const fresh = await cluster.leader({ notId: old.id, timeoutMs: 10_000 });
    const electionMs = Date.now() - killedAt;
    assert.ok(electionMs <= NEW_LEADER_MS_MAX, `new leader after ${electionMs} ms`);
    assert.notEqual(fresh, old);

    // Writes go on through both survivors, and through etcdctl given every endpoint (one refuses).
    for (const m of cluster.serving()) await put(m, `while-down-${m.name}`, 'y');
    const r = await cluster.etcdctl(['put', 'while-down-etcdctl', 'z'], { members: cluster.members });
    assert.equal(r.code, 0, r.stderr);

    await old.restart();
    const revision = await cluster.waitConverged();
    const statuses = await Promise.all(cluster.members.map((m) => m.status()));
    assert.ok(statuses.every((s) => s.header?.revision === revision));
    const back = await serializableRange(old, 'while-down-');
    assert.deepEqual(
      back.kvs.map((kv) => text(kv.key)),
      ['while-down-etcdctl', ...cluster.members.filter((m) => m !== old).map((m) => `while-down-${m.name}`)].sort(),
    );
    const hashes = await cluster.etcdctl(['endpoint', 'hashkv', '-w', 'table']);
    assert.equal(hashes.code, 0, hashes.stderr);
    const rows = parseTable(hashes.stdout);
    assert.equal(rows.length, 3);
    assert.equal(new Set(rows.map((row) => row.HASH)).size, 1, hashes.stdout);
  });

  test('a follower down while hundreds of keys are written catches up by snapshot, with the same data', async () => {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m !== leader)!;
    await follower.kill('SIGKILL');
    const outputBefore = follower.output().length;

    // The majority goes on without it; the log is compacted well past where the follower stopped.
    const BATCH = 20;
    for (let i = 0; i < KEYS_WHILE_DOWN; i += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, (_, j) => put(leader, `bulk/${String(i + j).padStart(4, '0')}`, `v${i + j}`)),
      );
    }
    const leaderStatus = await leader.status();
    assert.ok(leaderStatus.raftIndex > BigInt(KEYS_WHILE_DOWN));

    await follower.restart();
    const revision = await cluster.waitConverged(20_000);
    await waitFor('the snapshot install in the follower log', 5_000, () =>
      follower.output().slice(outputBefore).includes('installed a snapshot from the leader') ? true : undefined,
    );

    const [mine, theirs] = await Promise.all([
      serializableRange(follower, 'bulk/'),
      serializableRange(leader, 'bulk/'),
    ]);
    assert.equal(mine.kvs.length, KEYS_WHILE_DOWN);
    assert.equal(mine.header?.revision, revision);
    assert.deepEqual(
      mine.kvs.map((kv) => [text(kv.key), text(kv.value), kv.modRevision, kv.version]),
      theirs.kvs.map((kv) => [text(kv.key), text(kv.value), kv.modRevision, kv.version]),
    );
    // It serves linearizable reads and takes writes again.
    await put(follower, 'after-snapshot', 'w');
    const read = await follower.channel.unary(
      KVService.Range,
      RangeRequest.fromPartial({ key: Buffer.from('after-snapshot') }),
      { timeoutMs: 5_000 },
    );
    assert.equal(text(read.kvs[0]?.value), 'w');
  });
});
