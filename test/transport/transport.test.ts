// Transports on loopback: delivery and order, back-pressure and bounds, reconnection, and the
// refusals (cluster id, removed member, unknown sender).
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Message, MessageType } from '../../src/raft/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import {
  ErrInvalidOptions,
  ErrInvalidPeerUrl,
  ErrPeerExists,
  ErrPeerNotFound,
  ErrTransportClosed,
  PeerState,
  Transport,
  type TransportLogger,
} from '../../src/transport/index.ts';
import { readAnswer } from '../helpers/h2-answer.ts';
import {
  appMessage,
  CLUSTER_ID,
  collectGarbage,
  delay,
  FAST_TIMINGS,
  FreezableProxy,
  heartbeat,
  makePki,
  PeerServer,
  recordingLogger,
  startCluster,
  type TestMember,
  waitFor,
  withTempDir,
} from './helpers.ts';

const noop = (): void => {};

/** Sends `count` messages from `from` to each of `to`, `burst` per turn of the event loop (as a raft loop would). */
async function sendInBursts(
  from: TestMember,
  to: readonly bigint[],
  count: number,
  burst: number,
  size: (i: number) => number,
): Promise<void> {
  for (let start = 1; start <= count; start += burst) {
    const batch: Message[] = [];
    for (let i = start; i < Math.min(start + burst, count + 1); i++) {
      for (const peer of to) batch.push(appMessage(from.id, peer, i, size(i)));
    }
    from.transport.send(batch);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The indexes `member` received from `from`, in arrival order. */
function indexesFrom(member: TestMember, from: bigint): number[] {
  return member.received.filter((m) => m.from === from).map((m) => m.index);
}

function assertInOrder(member: TestMember, from: bigint, count: number): void {
  const got = indexesFrom(member, from);
  assert.equal(got.length, count, `member ${member.id} got ${got.length} of ${count} messages from ${from}`);
  for (let i = 0; i < count; i++) {
    if (got[i] !== i + 1)
      assert.fail(`member ${member.id}: message ${i} from ${from} has index ${got[i]}, want ${i + 1}`);
  }
}

function activeAll(members: readonly TestMember[]): boolean {
  return members.every((m) => members.every((p) => p === m || m.transport.activeSince(p.id) !== null));
}

describe('transport: delivery', () => {
  it('two members exchange thousands of messages both ways, in order, none lost', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    const before = Date.now();
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    const since = a.transport.activeSince(b.id)!;
    assert.ok(since.getTime() >= before - 1000 && since.getTime() <= Date.now());

    const count = 5000;
    // Mostly small messages, and every 500th carries 300 KiB: frames span many HTTP/2 DATA frames.
    const size = (i: number): number => (i % 500 === 0 ? 300 * 1024 : 16 + (i % 64));
    await Promise.all([sendInBursts(a, [b.id], count, 200, size), sendInBursts(b, [a.id], count, 200, size)]);
    await waitFor(() => a.received.length === count && b.received.length === count, 15000, 'all messages');
    assertInOrder(b, a.id, count);
    assertInOrder(a, b.id, count);
    // The payloads arrived intact.
    const big = b.received.find((m) => m.index === 500)!;
    assert.deepEqual(big.entries[0]!.data, appMessage(a.id, b.id, 500, 300 * 1024).entries[0]!.data);
    assert.deepEqual(a.unreachable, []);
    assert.deepEqual(b.unreachable, []);
    assert.equal(a.transport.activeSince(b.id), since, 'the stream stayed up');

    await waitFor(() => (a.transport.roundTripTime(b.id)?.count ?? 0) >= 2, 3000, 'round-trip samples');
    const rtt = a.transport.roundTripTime(b.id)!;
    assert.ok(rtt.minSeconds > 0 && rtt.maxSeconds < 1, `loopback round trip ${rtt.minSeconds}..${rtt.maxSeconds}s`);
    assert.equal(rtt.cumulativeCounts.at(-1)! <= rtt.count, true);
    assert.ok(a.log.some((l) => l.msg === 'peer became active' && l.fields['remote-peer-id'] === '2'));
  });

  it('three members: every pair keeps its order, none lost', async () => {
    const cluster = await startCluster(3);
    after(() => cluster.close());
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    const count = 3000;
    await Promise.all(
      cluster.members.map((m) =>
        sendInBursts(
          m,
          cluster.members.filter((p) => p !== m).map((p) => p.id),
          count,
          100,
          (i) => 8 + (i % 200),
        ),
      ),
    );
    await waitFor(() => cluster.members.every((m) => m.received.length === 2 * count), 15000, 'all messages');
    for (const m of cluster.members) {
      for (const p of cluster.members) if (p !== m) assertInOrder(m, p.id, count);
      assert.deepEqual(m.unreachable, []);
    }
  });

  it('messages sent before the stream is up are queued and delivered', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    // No waiting: the dial is still in progress.
    assert.equal(a.transport.peerStatus(b.id)!.state, PeerState.Connecting);
    a.transport.send([heartbeat(a.id, b.id, 1), heartbeat(a.id, b.id, 2), heartbeat(a.id, b.id, 3)]);
    await waitFor(() => b.received.length === 3, 5000, 'queued heartbeats');
    assert.deepEqual(
      b.received.map((m) => [m.type, m.commit]),
      [1, 2, 3].map((c) => [MessageType.MsgHeartbeat, c]),
    );
  });
});

describe('transport: bounds and failures', () => {
  it('a stalled receiver: the queue bound holds, memory stays bounded, the peer is reported unreachable', async () => {
    // A listener that accepts the stream and never reads it: HTTP/2 flow control stops the sender.
    const stalled = await PeerServer.start();
    const held: import('../../src/api/h2/index.ts').ServerStream[] = [];
    stalled.handler = (stream) => {
      stream.respond({ ':status': 200 });
      stream.pause();
      held.push(stream);
      return true;
    };
    const unreachable: bigint[] = [];
    const maxQueueMessages = 64;
    const transport = new Transport({
      memberId: 1n,
      clusterId: CLUSTER_ID,
      peers: new Map([[2n, [stalled.url]]]),
      snapshotDir: '/nonexistent',
      maxQueueMessages,
      onMessage: noop,
      onSnapshot: noop,
      onUnreachable: (id) => unreachable.push(id),
      onSnapshotStatus: noop,
    });
    after(async () => {
      await transport.close();
      await stalled.close();
    });
    await waitFor(() => transport.activeSince(2n) !== null, 5000, 'stream to the stalled peer');
    await collectGarbage();
    const baseline = process.memoryUsage().arrayBuffers;
    // 40 MiB of messages, far more than the flow-control windows (1 MiB stream, 16 MiB connection).
    const messageBytes = 4096;
    const total = 10_000;
    let maxQueued = 0;
    for (let i = 1; i <= total; i += 100) {
      const batch: Message[] = [];
      for (let j = i; j < i + 100; j++) batch.push(appMessage(1n, 2n, j, messageBytes));
      transport.send(batch);
      maxQueued = Math.max(maxQueued, transport.peerStatus(2n)!.queuedMessages);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await delay(50);
    await collectGarbage();
    const growth = process.memoryUsage().arrayBuffers - baseline;
    const status = transport.peerStatus(2n)!;
    assert.ok(maxQueued <= maxQueueMessages, `queued ${maxQueued} > ${maxQueueMessages}`);
    assert.ok(status.queuedBytes <= maxQueueMessages * (messageBytes + 64));
    assert.ok(status.droppedMessages > total / 2, `only ${status.droppedMessages} dropped`);
    assert.ok(unreachable.length > 0 && unreachable.every((id) => id === 2n), 'the stalled peer reported unreachable');
    // The queue (64 x 4 KiB), one write batch (256 KiB) and the 1 MiB stream window in flight: well under 8 MiB.
    assert.ok(growth < 8 * 1024 * 1024, `buffers grew by ${(growth / 1048576).toFixed(1)} MiB`);
    // Still connected: a stalled peer is not a dead one.
    assert.equal(status.state, PeerState.Active);
    assert.equal(held.length, 1);
  });

  it('reconnects after the receiver restarts, with a new stream and no stale delivery', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    a.transport.send(Array.from({ length: 100 }, (_, i) => appMessage(a.id, b.id, i + 1)));
    await waitFor(() => b.received.length === 100, 5000, 'first 100');
    const firstSince = a.transport.activeSince(b.id)!;

    // b crashes: its listener and its transport go away.
    const port = b.server.port;
    await b.transport.close();
    await b.server.close();
    await waitFor(() => a.transport.activeSince(b.id) === null, 5000, 'a sees b inactive');
    const unreachableBefore = a.unreachable.length;
    a.transport.send([appMessage(a.id, b.id, 101)]);
    await waitFor(() => a.unreachable.length > unreachableBefore, 2000, 'unreachable while b is down');
    assert.ok(a.log.some((l) => l.msg === 'peer became inactive (message send to peer failed)'));

    // b comes back on the same port with a fresh transport.
    await delay(100);
    b.server = await PeerServer.start({ port });
    cluster.restartTransport(b);
    b.received.length = 0;
    await waitFor(() => a.transport.activeSince(b.id) !== null, 5000, 'a reconnects');
    assert.ok(a.transport.activeSince(b.id)!.getTime() > firstSince.getTime());
    a.transport.send(Array.from({ length: 500 }, (_, i) => appMessage(a.id, b.id, i + 1)));
    await waitFor(() => b.received.length === 500, 5000, 'messages after the restart');
    assertInOrder(b, a.id, 500);
    // b's own stream to a works as well.
    await waitFor(() => b.transport.activeSince(a.id) !== null, 5000, 'b reconnects to a');
    b.transport.send([heartbeat(b.id, a.id, 7)]);
    await waitFor(() => a.received.some((m) => m.type === MessageType.MsgHeartbeat && m.commit === 7), 5000, 'b to a');
  });

  it('a peer going away gracefully (GOAWAY) is redialed at once', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    const since = a.transport.activeSince(b.id)!;
    b.server.goAway();
    await waitFor(() => (a.transport.activeSince(b.id)?.getTime() ?? 0) > since.getTime(), 2000, 'a new stream');
    a.transport.send([heartbeat(a.id, b.id, 5)]);
    await waitFor(() => b.received.some((m) => m.commit === 5), 2000, 'delivery on the new stream');
  });

  it('a frozen link: the PING times out, the peer is reported unreachable, the stream returns with the link', async () => {
    const cluster = await startCluster(2, { overrides: { pingTimeoutMs: 500 } });
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    const proxy = await FreezableProxy.start(b.server.port);
    after(() => proxy.close());
    a.transport.updatePeer(b.id, [proxy.url]);
    await waitFor(
      () => a.transport.peerStatus(b.id)!.url === proxy.url && a.transport.activeSince(b.id) !== null,
      5000,
      'via the proxy',
    );
    a.transport.send([heartbeat(a.id, b.id, 1)]);
    await waitFor(() => b.received.length === 1, 5000, 'delivery through the proxy');
    const unreachableBefore = a.unreachable.length;
    proxy.freeze();
    a.transport.send([heartbeat(a.id, b.id, 2)]);
    // A PING every 100 ms (FAST_TIMINGS), unanswered for 500 ms: the link is declared dead.
    await waitFor(() => a.transport.activeSince(b.id) === null, 8000, 'the stream dropped');
    assert.ok(a.log.some((l) => l.fields.reason === 'ping timed out'));
    assert.ok(a.unreachable.length > unreachableBefore);
    proxy.thaw();
    await waitFor(() => a.transport.activeSince(b.id) !== null, 8000, 'the stream back');
    a.transport.send([heartbeat(a.id, b.id, 3)]);
    await waitFor(() => b.received.some((m) => m.commit === 3), 5000, 'delivery after the partition');
  });

  it('gives up on a peer that accepts the connection and never answers, and retries', async () => {
    // A listener that takes TCP connections and says nothing (a hung process).
    const held: Socket[] = [];
    const silent = createNetServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const { logger, lines } = recordingLogger();
    const unreachable: bigint[] = [];
    const transport = new Transport({
      memberId: 1n,
      clusterId: CLUSTER_ID,
      peers: new Map([[2n, [`http://127.0.0.1:${port}`]]]),
      snapshotDir: '/nonexistent',
      logger,
      pingTimeoutMs: 150,
      backoffInitialMs: 20,
      onMessage: noop,
      onSnapshot: noop,
      onUnreachable: (id) => unreachable.push(id),
      onSnapshotStatus: noop,
    });
    after(async () => {
      await transport.close();
      for (const s of held) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    transport.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => unreachable.length > 0, 3000, 'unreachable after no answer');
    assert.ok(lines.some((l) => l.fields.reason === 'no answer to the stream request in 150 ms'));
    await waitFor(() => held.length >= 2, 3000, 'a second attempt');
    assert.equal(transport.activeSince(2n), null);
  });

  it('retries an unreachable peer with a capped exponential back-off', async () => {
    const server = await PeerServer.start();
    const port = server.port;
    await server.close();
    const failures: number[] = [];
    const unreachable: bigint[] = [];
    const transport = new Transport({
      memberId: 1n,
      clusterId: CLUSTER_ID,
      peers: new Map([[2n, [`http://127.0.0.1:${port}`]]]),
      snapshotDir: '/nonexistent',
      logger: {
        ...recordingLogger().logger,
        debug: (_fields, msg) => {
          if (msg === 'failed to reach peer') failures.push(performance.now());
        },
      },
      backoffInitialMs: 10,
      backoffMaxMs: 50,
      onMessage: noop,
      onSnapshot: noop,
      onUnreachable: (id) => unreachable.push(id),
      onSnapshotStatus: noop,
    });
    after(() => transport.close());
    // Capped, 10 attempts take 10 + 20 + 40 + 50 x 6 = 370 ms plus dials; uncapped, over 5 s.
    await waitFor(() => failures.length >= 10, 4000, '10 attempts');
    const gaps = failures.slice(1, 10).map((t, i) => t - failures[i]!);
    const planned = [10, 20, 40, 50, 50, 50, 50, 50, 50];
    for (const [i, gap] of gaps.entries()) {
      // Timers never fire early: each retry waited at least its back-off.
      assert.ok(gap >= planned[i]! - 1, `retry ${i + 1} after ${gap.toFixed(1)} ms, planned ${planned[i]} ms`);
    }
    assert.equal(transport.peerStatus(2n)!.state, PeerState.Inactive);
    transport.send([heartbeat(1n, 2n, 1)]);
    await delay(0);
    assert.deepEqual(unreachable, [2n], 'a message to a peer that is down is reported at once');
  });

  it('updatePeer moves the stream to the new URL', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    const second = await PeerServer.start();
    after(() => second.close());
    second.handler = b.transport.handler;
    a.transport.updatePeer(b.id, [second.url]);
    await waitFor(
      () => a.transport.peerStatus(b.id)!.url === second.url && a.transport.activeSince(b.id) !== null,
      5000,
      'stream on the new URL',
    );
    a.transport.send([heartbeat(a.id, b.id, 42)]);
    await waitFor(() => b.received.some((m) => m.commit === 42), 5000, 'delivery over the new URL');
  });
});

describe('transport: refusals', () => {
  it('refuses a stream from another cluster with 412, and the sender logs why', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    // b is replaced by a member of another cluster on the same listener.
    await b.transport.close();
    cluster.restartTransport(b, { clusterId: 0xbadn });
    b.received.length = 0;
    await waitFor(
      () => b.log.some((l) => l.msg === 'request cluster ID mismatch'),
      5000,
      'b refuses the stream from a',
    );
    const refusal = b.log.find((l) => l.msg === 'request cluster ID mismatch')!;
    assert.equal(refusal.level, 'warn');
    assert.equal(refusal.fields['local-member-cluster-id'], 'bad');
    assert.equal(refusal.fields['remote-peer-cluster-id'], CLUSTER_ID.toString(16));
    await waitFor(
      () => a.log.some((l) => l.msg === 'request sent was ignored by remote peer due to cluster ID mismatch'),
      5000,
      'a logs the mismatch',
    );
    a.transport.send([heartbeat(a.id, b.id, 1)]);
    await delay(100);
    assert.deepEqual(b.received, []);
    assert.equal(a.transport.activeSince(b.id), null);

    const answer = await rawRequest(b.server.url, '/raft/stream/message', {
      'x-etcd-cluster-id': CLUSTER_ID.toString(16),
      'x-server-from': '1',
      'x-raft-to': '2',
    });
    assert.deepEqual(answer, { status: 412, body: 'cluster ID mismatch\n' });
  });

  it('refuses a removed member with 410 Gone; the removed member is told', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    b.transport.removePeer(a.id);
    assert.deepEqual(b.transport.peerIds(), []);
    await waitFor(() => a.removedBy.includes(b.id), 5000, 'a learns it was removed');
    assert.ok(b.log.some((l) => l.msg === 'rejected stream from remote peer because it was removed'));
    const received = b.received.length;
    a.transport.send([heartbeat(a.id, b.id, 99)]);
    await delay(100);
    assert.equal(b.received.length, received);
    const answer = await rawRequest(b.server.url, '/raft/stream/message', {
      'x-etcd-cluster-id': CLUSTER_ID.toString(16),
      'x-server-from': '1',
      'x-raft-to': '2',
    });
    assert.deepEqual(answer, { status: 410, body: 'removed member\n' });
    // A removed member's snapshot is refused the same way.
    const snap = await rawRequest(b.server.url, '/raft/snapshot', {
      'x-etcd-cluster-id': CLUSTER_ID.toString(16),
      'x-server-from': '1',
      'x-raft-to': '2',
    });
    assert.equal(snap.status, 410);
  });

  it('answers unknown senders, wrong targets, wrong methods and other paths as etcd does', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const b = cluster.members[1]!;
    const cid = CLUSTER_ID.toString(16);
    const url = b.server.url;
    assert.deepEqual(
      await rawRequest(url, '/raft/stream/message', {
        'x-etcd-cluster-id': cid,
        'x-server-from': '9',
        'x-raft-to': '2',
      }),
      { status: 404, body: 'error sender not found\n' },
    );
    assert.deepEqual(
      await rawRequest(url, '/raft/stream/message', {
        'x-etcd-cluster-id': cid,
        'x-server-from': '1',
        'x-raft-to': '3',
      }),
      { status: 412, body: 'to field mismatch\n' },
    );
    assert.deepEqual(
      await rawRequest(url, '/raft/stream/message', {
        'x-etcd-cluster-id': cid,
        'x-server-from': 'zz',
        'x-raft-to': '2',
      }),
      { status: 400, body: 'invalid from\n' },
    );
    assert.deepEqual(await rawRequest(url, '/raft/stream/message', { 'x-server-from': '1', 'x-raft-to': '2' }), {
      status: 412,
      body: 'cluster ID mismatch\n',
    });
    assert.equal((await rawRequest(url, '/raft/stream/message', {}, 'GET')).status, 405);
    assert.equal((await rawRequest(url, '/raft/nothing', {})).status, 404);
    // Paths outside /raft are left to the listener.
    assert.equal((await rawRequest(url, '/version', {}, 'GET')).status, 404);
    assert.deepEqual(b.server.unhandled, ['/version']);
    await b.transport.close();
    assert.deepEqual(
      await rawRequest(url, '/raft/stream/message', {
        'x-etcd-cluster-id': cid,
        'x-server-from': '1',
        'x-raft-to': '2',
      }),
      { status: 503, body: 'transport is closing\n' },
    );
  });

  it('closes a stream that carries a message from another member', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await waitFor(() => activeAll(cluster.members), 5000, 'streams active');
    const since = a.transport.activeSince(b.id)!;
    a.transport.send([heartbeat(a.id, b.id, 1)]);
    await waitFor(() => b.received.length === 1, 5000, 'a good message');
    // A message that claims another sender on a's stream (a peer with a bug).
    const forged = { ...heartbeat(a.id, b.id, 2), from: 7n };
    a.transport.send([forged]);
    await waitFor(
      () => b.log.some((l) => l.msg === 'closed the stream from remote peer: protocol error'),
      5000,
      'b closes',
    );
    assert.equal(b.received.length, 1);
    // a redials and the next stream works.
    await waitFor(() => (a.transport.activeSince(b.id)?.getTime() ?? 0) > since.getTime(), 5000, 'a redials');
    a.transport.send([heartbeat(a.id, b.id, 3)]);
    await waitFor(() => b.received.length === 2, 5000, 'delivery on the new stream');
  });
});

describe('transport: https', () => {
  it('members with client certificates exchange messages over https; an untrusted certificate is refused', async () => {
    await withTempDir(async (dir) => {
      const pki = makePki(dir, 'cluster');
      const other = makePki(dir, 'other');
      const cluster = await startCluster(3, {
        tls: (id) => ({
          server: { cert: pki.cert, key: pki.key, ca: pki.ca, clientCertAuth: true },
          // Member 3 presents a certificate the others do not trust.
          client:
            id === 3n ? { ca: pki.ca, cert: other.cert, key: other.key } : { ca: pki.ca, cert: pki.cert, key: pki.key },
        }),
      });
      after(() => cluster.close());
      const [a, b, c] = cluster.members as [TestMember, TestMember, TestMember];
      assert.ok(a.server.url.startsWith('https://'));
      await waitFor(() => activeAll([a, b]), 5000, 'https streams between 1 and 2');
      await sendInBursts(a, [b.id], 1000, 100, (i) => 32 + (i % 100));
      await sendInBursts(b, [a.id], 1000, 100, (i) => 32 + (i % 100));
      await waitFor(() => a.received.length === 1000 && b.received.length === 1000, 10_000, 'messages over https');
      assertInOrder(b, a.id, 1000);
      assertInOrder(a, b.id, 1000);
      // 3's client certificate fails the handshake: its streams never come up, and it reports its peers unreachable.
      c.transport.send([heartbeat(c.id, a.id, 1)]);
      await waitFor(() => c.unreachable.includes(a.id), 5000, '3 reports 1 unreachable');
      assert.equal(c.transport.activeSince(a.id), null);
      assert.equal(c.transport.activeSince(b.id), null);
      assert.equal(a.received.filter((m) => m.from === c.id).length, 0);
      // 1 and 2 trust 3's listener (its server certificate is from the cluster CA): their streams to 3 work.
      await waitFor(() => a.transport.activeSince(c.id) !== null, 5000, '1 reaches 3');
      // A transport without the CA does not trust the listeners.
      const untrusting = new Transport({
        memberId: 9n,
        clusterId: CLUSTER_ID,
        peers: new Map([[1n, [a.server.url]]]),
        snapshotDir: dir,
        ...FAST_TIMINGS,
        onMessage: noop,
        onSnapshot: noop,
        onUnreachable: noop,
        onSnapshotStatus: noop,
      });
      after(() => untrusting.close());
      await delay(300);
      assert.equal(untrusting.activeSince(1n), null);
      assert.equal(untrusting.peerStatus(1n)!.state, PeerState.Inactive);
    });
  });
});

describe('transport: API', () => {
  const base = {
    memberId: 1n,
    clusterId: CLUSTER_ID,
    snapshotDir: '/tmp',
    onMessage: noop,
    onSnapshot: noop,
    onUnreachable: noop,
    onSnapshotStatus: noop,
  };

  it("takes the server's pino logger", () => {
    const logger: TransportLogger = createSilentLogger('m1');
    const t = new Transport({ ...base, peers: new Map(), logger });
    assert.deepEqual(t.peerIds(), []);
    return t.close();
  });

  it('rejects bad options with a clear error', () => {
    const peers = new Map([[2n, ['http://127.0.0.1:1']]]);
    assert.throws(() => new Transport({ ...base, memberId: 0n, peers }), ErrInvalidOptions);
    assert.throws(() => new Transport({ ...base, clusterId: 5 as unknown as bigint, peers }), ErrInvalidOptions);
    assert.throws(() => new Transport({ ...base, peers: new Map([[1n, ['http://127.0.0.1:1']]]) }), /must not include/);
    assert.throws(() => new Transport({ ...base, peers: new Map([[2n, ['unix:///x']]]) }), ErrInvalidPeerUrl);
    assert.throws(() => new Transport({ ...base, peers: new Map([[2n, ['http://127.0.0.1']]]) }), /no port/);
    assert.throws(() => new Transport({ ...base, peers: new Map([[2n, []]]) }), ErrInvalidPeerUrl);
    assert.throws(() => new Transport({ ...base, peers, maxQueueMessages: 0 }), /maxQueueMessages/);
    assert.throws(() => new Transport({ ...base, peers, snapshotDir: '' }), /snapshotDir/);
  });

  it('addPeer, removePeer and updatePeer refuse bad input and change nothing', async () => {
    const server = await PeerServer.start();
    after(() => server.close());
    const t = new Transport({ ...base, peers: new Map([[2n, [server.url]]]) });
    after(() => t.close());
    assert.throws(() => t.addPeer(2n, ['http://127.0.0.1:2']), ErrPeerExists);
    assert.throws(() => t.addPeer(3n, ['ftp://127.0.0.1:2']), ErrInvalidPeerUrl);
    assert.throws(() => t.addPeer(1n, ['http://127.0.0.1:2']), ErrInvalidOptions);
    assert.deepEqual(t.peerIds(), [2n]);
    assert.throws(() => t.removePeer(3n), ErrPeerNotFound);
    assert.throws(() => t.updatePeer(3n, ['http://127.0.0.1:2']), ErrPeerNotFound);
    assert.throws(() => t.updatePeer(2n, ['http://127.0.0.1:2/path']), ErrInvalidPeerUrl);
    assert.equal(t.peerStatus(2n)!.url, server.url);
    assert.throws(() => t.send([heartbeat(1n, 2n, 1), heartbeat(1n, 1n, 1)]), ErrInvalidOptions);
    assert.equal(t.peerStatus(2n)!.queuedMessages + t.peerStatus(2n)!.droppedMessages, 0, 'nothing was queued');
    t.addPeer(3n, ['http://127.0.0.1:3']);
    assert.deepEqual(t.peerIds(), [2n, 3n]);
    t.removePeer(3n);
    assert.deepEqual(t.peerIds(), [2n]);
    assert.equal(t.activeSince(3n), null);
    assert.equal(t.roundTripTime(3n), null);
    await t.close();
    assert.throws(() => t.addPeer(4n, ['http://127.0.0.1:4']), ErrTransportClosed);
    t.send([heartbeat(1n, 2n, 1)]); // after close: nothing, no throw
  });
});

/** One HTTP/2 request with a small body; the status and the whole answer. */
async function rawRequest(
  url: string,
  path: string,
  headers: Record<string, string>,
  method = 'POST',
): Promise<{ status: number; body: string }> {
  const session = connect(url);
  session.on('error', () => {});
  try {
    const stream = session.request({ ':method': method, ':path': path, ...headers }, { endStream: method === 'GET' });
    if (method !== 'GET') stream.end(Buffer.alloc(8));
    return await readAnswer(stream);
  } finally {
    session.destroy();
  }
}
