// Snapshot transfer between transports on loopback: a large snapshot streamed with bounded
// memory and intact on arrival, and every way a transfer can fail.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encodeMessage, type Message, MessageType, newMessage } from '../../src/raft/index.ts';
import { encodeFrame } from '../../src/transport/framing.ts';
import { snapshotFileName } from '../../src/transport/index.ts';
import { readAnswer } from '../helpers/h2-answer.ts';
import { CLUSTER_ID, collectGarbage, delay, startCluster, type TestMember, waitFor } from './helpers.ts';

const MiB = 1024 * 1024;

function snapMessage(from: bigint, to: bigint, index: number): Message {
  return newMessage({
    type: MessageType.MsgSnap,
    from,
    to,
    term: 4,
    snapshot: {
      metadata: { index, term: 4, confState: { voters: [1n, 2n, 3n], learners: [] } },
      data: new TextEncoder().encode('{"members":3}'),
    },
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Bytes of the snapshot being received in `dir` (its temporary file), 0 if none. */
function partialBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) if (name.endsWith('.part')) total += statSync(join(dir, name)).size;
  return total;
}

function filesIn(dir: string): string[] {
  return readdirSync(dir).sort();
}

describe('transport: snapshots', () => {
  it('streams a 50 MiB snapshot with bounded memory; the file arrives whole with the same checksum', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    const totalBytes = 50 * MiB;
    const chunkBytes = 64 * 1024;
    const sent = createHash('sha256');
    let produced = 0;
    let inFlightMax = 0;
    await collectGarbage();
    const rssBefore = process.memoryUsage().rss;
    const buffersBefore = process.memoryUsage().arrayBuffers;
    let rssMax = rssBefore;
    let buffersGrowthMax = 0;
    async function* backend(): AsyncGenerator<Uint8Array> {
      let nextCheck = 10 * MiB;
      while (produced < totalBytes) {
        // Everything produced and not yet on the receiver's disk is in memory somewhere
        // (sender buffers, the HTTP/2 windows, the receiver's write batch).
        inFlightMax = Math.max(inFlightMax, produced - partialBytes(b.snapshotDir));
        rssMax = Math.max(rssMax, process.memoryUsage().rss);
        if (produced >= nextCheck) {
          // Live buffers of both ends, garbage excluded, every 10 MiB of the transfer: a side that
          // kept the data (instead of streaming it to disk) would show 10, 20, 30... MiB here.
          await collectGarbage();
          buffersGrowthMax = Math.max(buffersGrowthMax, process.memoryUsage().arrayBuffers - buffersBefore);
          nextCheck += 10 * MiB;
        }
        const chunk = randomBytes(Math.min(chunkBytes, totalBytes - produced));
        sent.update(chunk);
        produced += chunk.byteLength;
        yield chunk;
      }
    }
    const started = performance.now();
    a.transport.sendSnapshot(snapMessage(a.id, b.id, 0x1234), backend());
    await waitFor(() => a.snapshotStatus.length === 1, 30_000, 'snapshot status');
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual(a.snapshotStatus, [{ peer: b.id, ok: true }]);
    assert.equal(b.snapshots.length, 1);
    const { message, snapshot } = b.snapshots[0]!;
    assert.equal(snapshot.sizeBytes, totalBytes);
    assert.equal(snapshot.path, join(b.snapshotDir, snapshotFileName(0x1234)));
    assert.equal(snapshotFileName(0x1234), '0000000000001234.snap.db');
    assert.equal(statSync(snapshot.path).size, totalBytes);
    assert.equal(await sha256File(snapshot.path), sent.digest('hex'));
    assert.deepEqual(message, snapMessage(a.id, b.id, 0x1234));
    assert.deepEqual(filesIn(b.snapshotDir), ['0000000000001234.snap.db'], 'no temporary file left');
    assert.ok(inFlightMax < 8 * MiB, `${(inFlightMax / MiB).toFixed(1)} MiB in flight at most`);
    assert.ok(buffersGrowthMax < 8 * MiB, `live buffers grew by ${(buffersGrowthMax / MiB).toFixed(1)} MiB`);
    // RSS also counts garbage not yet collected; it is reported, the live measures above are asserted.
    const rssGrowth = rssMax - rssBefore;
    console.log(
      `# snapshot: 50 MiB in ${seconds.toFixed(2)} s, at most ${(inFlightMax / MiB).toFixed(2)} MiB in flight, live buffers +${(buffersGrowthMax / MiB).toFixed(2)} MiB, RSS +${(rssGrowth / MiB).toFixed(1)} MiB`,
    );
  });

  it('a MsgSnap given to send() goes as a snapshot with no backend data', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    a.transport.send([snapMessage(a.id, b.id, 7)]);
    await waitFor(() => a.snapshotStatus.length === 1, 5000, 'snapshot status');
    assert.deepEqual(a.snapshotStatus, [{ peer: b.id, ok: true }]);
    assert.equal(b.snapshots[0]!.snapshot.sizeBytes, 0);
    assert.deepEqual(b.snapshots[0]!.message.snapshot!.data, new TextEncoder().encode('{"members":3}'));
    assert.deepEqual(b.received, [], 'not on the message stream');
  });

  it('a snapshot the application refuses fails on the sender and leaves no file', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    b.onSnapshot = () => {
      throw new Error('raft is stopping');
    };
    a.transport.sendSnapshot(snapMessage(a.id, b.id, 9), chunks(3 * MiB));
    await waitFor(() => a.snapshotStatus.length === 1, 5000, 'snapshot status');
    assert.deepEqual(a.snapshotStatus, [{ peer: b.id, ok: false }]);
    assert.deepEqual(filesIn(b.snapshotDir), []);
    assert.ok(b.log.some((l) => l.msg === 'failed to receive database snapshot' && l.fields.status === 500));
  });

  it('a backend that fails midway fails the transfer; the receiver removes its partial file', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* chunks(4 * MiB);
      throw new Error('backend read error');
    }
    a.transport.sendSnapshot(snapMessage(a.id, b.id, 10), failing());
    await waitFor(() => a.snapshotStatus.length === 1, 5000, 'snapshot status');
    assert.deepEqual(a.snapshotStatus, [{ peer: b.id, ok: false }]);
    assert.ok(
      a.log.some((l) => l.msg === 'failed to send database snapshot' && l.fields.error === 'backend read error'),
    );
    await waitFor(() => filesIn(b.snapshotDir).length === 0, 5000, 'partial file removed');
    assert.deepEqual(b.snapshots, []);
  });

  it('one snapshot per peer at a time: a second one fails at once, the first completes', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    let secondClosed = false;
    async function* second(): AsyncGenerator<Uint8Array> {
      try {
        yield new Uint8Array(10);
      } finally {
        secondClosed = true;
      }
    }
    a.transport.sendSnapshot(snapMessage(a.id, b.id, 11), chunks(8 * MiB));
    const iterable = second();
    a.transport.sendSnapshot(snapMessage(a.id, b.id, 12), iterable);
    await waitFor(() => a.snapshotStatus.length === 2, 10_000, 'both statuses');
    assert.deepEqual(a.snapshotStatus, [
      { peer: b.id, ok: false },
      { peer: b.id, ok: true },
    ]);
    assert.deepEqual(
      b.snapshots.map((s) => s.message.snapshot!.metadata.index),
      [11],
    );
    // The refused iterable was never read: it is closed so that it can release what it holds.
    assert.deepEqual(await iterable.next(), { done: true, value: undefined });
    assert.equal(secondClosed, false, 'a generator that never started runs no finally');
  });

  it('a snapshot to a peer of another cluster, or to an unknown peer, fails', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const [a, b] = cluster.members as [TestMember, TestMember];
    await b.transport.close();
    cluster.restartTransport(b, { clusterId: 0xbadn });
    a.transport.sendSnapshot(snapMessage(a.id, b.id, 13), chunks(MiB));
    a.transport.sendSnapshot(snapMessage(a.id, 9n, 13), chunks(MiB));
    await waitFor(() => a.snapshotStatus.length === 2, 5000, 'snapshot statuses');
    assert.deepEqual(
      a.snapshotStatus.map((s) => s.ok),
      [false, false],
    );
    assert.deepEqual(a.snapshotStatus.map((s) => s.peer).sort(), [b.id, 9n].sort());
    assert.deepEqual(filesIn(b.snapshotDir), []);
    assert.throws(() => a.transport.sendSnapshot(newMessage({ type: MessageType.MsgApp, to: b.id }), chunks(1)));
  });

  it('refuses a corrupted or truncated snapshot stream and keeps no file', async () => {
    const cluster = await startCluster(2);
    after(() => cluster.close());
    const b = cluster.members[1]!;
    const data = randomBytes(300_000);
    const digest = createHash('sha256').update(data).digest();
    const message = encodeFrame(encodeMessage(snapMessage(1n, 2n, 20)));
    const end = encodeFrame(new Uint8Array(0));
    const flipped = Buffer.from(data);
    flipped[1000]! ^= 1;

    const corrupt = await postSnapshot(b.server.url, [message, encodeFrame(flipped), end, encodeFrame(digest)]);
    assert.deepEqual(corrupt, { status: 400, body: 'snapshot checksum mismatch\n' });
    const truncated = await postSnapshot(b.server.url, [message, encodeFrame(data)]);
    assert.deepEqual(truncated, { status: 400, body: 'snapshot stream ended early\n' });
    const notSnap = await postSnapshot(b.server.url, [
      encodeFrame(encodeMessage(newMessage({ type: MessageType.MsgApp, from: 1n, to: 2n }))),
    ]);
    assert.deepEqual(notSnap, { status: 400, body: 'the snapshot stream does not start with a MsgSnap\n' });
    const good = await postSnapshot(b.server.url, [message, encodeFrame(data), end, encodeFrame(digest)]);
    assert.equal(good.status, 204);
    await delay(10);
    assert.deepEqual(filesIn(b.snapshotDir), [snapshotFileName(20)]);
    assert.equal(b.snapshots.length, 1);
  });
});

/** `total` bytes of snapshot data in 1 MiB chunks. */
async function* chunks(total: number): AsyncGenerator<Uint8Array> {
  for (let sent = 0; sent < total; sent += MiB) yield new Uint8Array(Math.min(MiB, total - sent)).fill(7);
}

/** A raw snapshot request from member 1 to member 2. */
async function postSnapshot(url: string, body: Uint8Array[]): Promise<{ status: number; body: string }> {
  const session = connect(url);
  session.on('error', () => {});
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/raft/snapshot',
      'x-etcd-cluster-id': CLUSTER_ID.toString(16),
      'x-server-from': '1',
      'x-raft-to': '2',
    });
    for (const b of body) stream.write(b);
    stream.end();
    return await readAnswer(stream);
  } finally {
    session.destroy();
  }
}
