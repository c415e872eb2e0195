/**
 * The leader's side of the corruption check, rule by rule, against members that answer
 * `/members/hashkv` from local HTTP servers: a member ahead of the leader's revision or
 * compaction, or compacted like the leader with another hash, gets a CORRUPT alarm; a member
 * that agrees, or that cannot answer for the revision, does not; the leader's own hash changing
 * under an unchanged revision names the leader.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { AlarmType } from '../../src/proto/index.ts';
import {
  type CorruptionCheckTarget,
  CorruptionMonitor,
  PEER_HASHKV_PATH,
  peerHashBody,
} from '../../src/server/corruption.ts';
import type { Member } from '../../src/server/membership.ts';

const CLUSTER = 0xc1n;
const LEADER = 1n;
const PEERS = [2, 3, 4, 5];
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** A peer's answer to `/members/hashkv` (a status with a message: it cannot answer). */
type Answer = { hash: number; currentRevision: number; compactRevision: number } | { status: number; text: string };

describe('corruption check rules', () => {
  const answers = new Map<number, Answer>();
  const asked: { body: string; cluster: string | undefined }[] = [];
  const servers = new Map<number, { server: Server; port: number }>();

  before(async () => {
    for (const id of PEERS) {
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          asked.push({ body, cluster: req.headers['x-etcd-cluster-id'] as string | undefined });
          const a = answers.get(id);
          if (req.url !== PEER_HASHKV_PATH || a === undefined) res.writeHead(404).end();
          else if ('status' in a) res.writeHead(a.status).end(a.text);
          else res.writeHead(200, { 'content-type': 'application/json' }).end(peerHashBody(BigInt(id), CLUSTER, a));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.set(id, { server, port: (server.address() as AddressInfo).port });
    }
  });
  after(async () => {
    for (const { server } of servers.values()) await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function target(
    leaderHashes: { hash: number; revision: number; compactRevision: number }[],
    peers: number[],
    alarms: bigint[],
  ): CorruptionCheckTarget {
    const members: Member[] = [
      { id: LEADER, name: 'leader', peerUrls: ['http://127.0.0.1:1'], clientUrls: [], isLearner: false },
      ...peers.map((id) => ({
        id: BigInt(id),
        name: `m${id}`,
        peerUrls: [`http://127.0.0.1:${servers.get(id)!.port}`],
        clientUrls: [],
        isLearner: false,
      })),
    ];
    let call = 0;
    return {
      memberId: LEADER,
      clusterId: CLUSTER,
      leader: () => LEADER,
      members: () => members,
      hashKVAt: () => leaderHashes[Math.min(call++, leaderHashes.length - 1)]!,
      linearizableReadNotify: async () => {},
      proposeAlarm: async (activate, alarm, memberId) => {
        assert.equal(activate, true);
        assert.equal(alarm, AlarmType.CORRUPT);
        alarms.push(memberId);
      },
    };
  }

  test('agreeing, lagging and compacted-past members raise nothing', async () => {
    answers.clear();
    asked.length = 0;
    answers.set(2, { hash: 111, currentRevision: 50, compactRevision: 10 });
    answers.set(3, { status: 400, text: 'mvcc: required revision is a future revision' });
    answers.set(4, { hash: 999, currentRevision: 48, compactRevision: 5 });
    const alarms: bigint[] = [];
    const leader = [{ hash: 111, revision: 50, compactRevision: 10 }];
    const outcome = await new CorruptionMonitor(target(leader, [2, 3, 4], alarms), 1000, quiet).check();
    assert.deepEqual(alarms, []);
    assert.deepEqual(outcome.answered.sort(), [2n, 4n]);
    assert.equal(asked.length, 3);
    for (const a of asked) {
      assert.equal(a.cluster, CLUSTER.toString(16));
      assert.deepEqual(JSON.parse(a.body), { revision: 50 });
    }
  });

  test('same compaction with another hash; a revision or a compaction ahead of the leader', async () => {
    answers.clear();
    answers.set(2, { hash: 112, currentRevision: 50, compactRevision: 10 });
    answers.set(3, { hash: 111, currentRevision: 51, compactRevision: 10 });
    answers.set(4, { hash: 111, currentRevision: 50, compactRevision: 12 });
    answers.set(5, { hash: 111, currentRevision: 50, compactRevision: 10 });
    const alarms: bigint[] = [];
    const leader = [{ hash: 111, revision: 50, compactRevision: 10 }];
    const outcome = await new CorruptionMonitor(target(leader, [2, 3, 4, 5], alarms), 1000, quiet).check();
    assert.deepEqual(alarms.sort(), [2n, 3n, 4n]);
    assert.deepEqual(outcome.corrupt.sort(), [2n, 3n, 4n]);
  });

  test("the leader's own hash changing at the same revision names the leader", async () => {
    answers.clear();
    const alarms: bigint[] = [];
    const changed = [
      { hash: 1, revision: 7, compactRevision: -1 },
      { hash: 2, revision: 7, compactRevision: -1 },
    ];
    await new CorruptionMonitor(target(changed, [], alarms), 1000, quiet).check();
    assert.deepEqual(alarms, [LEADER]);
    // A hash that changed because a write came in between is not corruption.
    const moved = [
      { hash: 1, revision: 7, compactRevision: -1 },
      { hash: 2, revision: 8, compactRevision: -1 },
    ];
    const none: bigint[] = [];
    await new CorruptionMonitor(target(moved, [], none), 1000, quiet).check();
    assert.deepEqual(none, []);
  });
});
