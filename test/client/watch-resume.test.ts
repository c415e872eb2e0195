/**
 * A watch survives the loss of the member it is connected to: while a writer keeps putting
 * distinct keys, the watched member is SIGKILLed (in a 3-member real etcd cluster), or the only
 * member is SIGKILLed and restarted on the same data dir. The events the watcher delivers must
 * be complete and duplicate-free: every acknowledged put exactly once, at its revision, in
 * revision order; a put whose outcome the writer could not know (it failed after it may have
 * reached the server) at most once; nothing else.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, type EtcdError } from '../../src/client/index.ts';
import { EtcdCluster } from './cluster.ts';

const PREFIX = 'resume/';
const PUT_TIMEOUT_MS = 2_000;
const CATCH_UP_TIMEOUT_MS = 15_000;

interface Attempt {
  key: string;
  value: string;
  /** The put's revision when it was acknowledged; undefined when its outcome is unknown. */
  revision: bigint | undefined;
}

interface Seen {
  key: string;
  value: string;
  revision: bigint;
}

const clusters: EtcdCluster[] = [];
after(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
});

/** Puts keys `from` to `from + count - 1` one after the other; `onPut(i)` runs before put i. */
async function writeKeys(
  writer: Client,
  from: number,
  count: number,
  onPut: (i: number) => Promise<void> = async () => {},
  timeoutMs = PUT_TIMEOUT_MS,
): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  for (let i = from; i < from + count; i++) {
    await onPut(i);
    const key = `${PREFIX}${String(i).padStart(5, '0')}`;
    const value = `v${i}`;
    try {
      const r = await writer.put(key, value, { timeoutMs });
      attempts.push({ key, value, revision: r.header.revision });
    } catch (err) {
      attempts.push({ key, value, revision: undefined });
      // Between failures the member may be down: do not spin.
      if ((err as EtcdError).code !== undefined) await new Promise((r) => setTimeout(r, 20));
    }
  }
  return attempts;
}

function checkHistory(attempts: readonly Attempt[], seen: readonly Seen[]): void {
  for (let i = 1; i < seen.length; i++) {
    assert.ok(
      seen[i]!.revision > seen[i - 1]!.revision,
      `revision ${seen[i]!.revision} after ${seen[i - 1]!.revision}`,
    );
  }
  const byKey = new Map(seen.map((s) => [s.key, s]));
  assert.equal(byKey.size, seen.length, 'a key was delivered twice');
  const attempted = new Map(attempts.map((a) => [a.key, a]));
  for (const s of seen) {
    const a = attempted.get(s.key);
    assert.ok(a !== undefined, `event for ${s.key}, which was never written`);
    assert.equal(s.value, a.value);
    if (a.revision !== undefined) assert.equal(s.revision, a.revision, `${s.key} delivered at another revision`);
  }
  for (const a of attempts) {
    if (a.revision !== undefined)
      assert.ok(byKey.has(a.key), `acknowledged put of ${a.key} (rev ${a.revision}) never delivered`);
  }
}

function collect(client: Client): { seen: Seen[]; creations: () => number; watcher: ReturnType<Client['watch']> } {
  const seen: Seen[] = [];
  let created = 0;
  const watcher = client.watch(PREFIX, { prefix: true }, (batch) => {
    for (const e of batch.events) {
      if (e.type === 'put')
        seen.push({ key: e.kv.key.toString(), value: e.kv.value.toString(), revision: e.kv.modRevision });
    }
  });
  watcher.on('created', () => created++);
  return { seen, creations: () => created, watcher };
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  const startMs = Date.now();
  while (!predicate()) {
    if (Date.now() - startMs > CATCH_UP_TIMEOUT_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('killing the watched member of a 3-member cluster loses and repeats no event', { timeout: 60_000 }, async () => {
  const cluster = await EtcdCluster.start(3);
  clusters.push(cluster);
  // Watch through a follower and write through the others, so writes go on without pause while
  // the watch notices the loss and moves to another member.
  const probe = new Client({ endpoints: cluster.endpoints });
  const status = await probe.status({ endpoint: cluster.endpoints[0]! });
  probe.close();
  const followerIndex = await followerOf(cluster, status.leader);
  const watched = cluster.nodes[followerIndex]!;
  const others = cluster.nodes.filter((n) => n !== watched).map((n) => n.endpoint);
  const watching = new Client({ endpoints: [watched.endpoint, ...others], dialTimeoutMs: 1_000 });
  const writer = new Client({ endpoints: others, dialTimeoutMs: 1_000 });
  try {
    const { seen, creations, watcher } = collect(watching);
    await watcher.ready();
    const attempts = await writeKeys(writer, 0, 300, async (i) => {
      // Not awaited: the writer goes on while the watch notices and moves to another member.
      if (i === 100) void watched.kill('SIGKILL');
    });
    const acked = attempts.filter((a) => a.revision !== undefined);
    assert.equal(acked.length, 300, 'writes through the surviving members failed');
    const last = acked[acked.length - 1]!.revision!;
    await waitFor(() => (seen[seen.length - 1]?.revision ?? 0n) >= last, 'the watcher to catch up');
    checkHistory(attempts, seen);
    assert.ok(creations() >= 2, 'the watch was never re-created: it was not on the killed member');
    await watcher.close();
  } finally {
    watching.close();
    writer.close();
  }
});

/** The index of a member that is not `leader`. */
async function followerOf(cluster: EtcdCluster, leader: bigint): Promise<number> {
  const client = new Client({ endpoints: cluster.endpoints });
  try {
    for (let i = 0; i < cluster.nodes.length; i++) {
      const s = await client.status({ endpoint: cluster.nodes[i]!.endpoint });
      if (s.header.memberId !== leader) return i;
    }
  } finally {
    client.close();
  }
  throw new Error('no follower');
}

test('restarting the only member on its data dir loses and repeats no event', { timeout: 60_000 }, async () => {
  const cluster = await EtcdCluster.start(1);
  clusters.push(cluster);
  const [n0] = cluster.nodes;
  const watching = new Client({ endpoints: cluster.endpoints, dialTimeoutMs: 1_000 });
  const writer = new Client({ endpoints: cluster.endpoints, dialTimeoutMs: 1_000 });
  try {
    const { seen, creations, watcher } = collect(watching);
    await watcher.ready();
    const before = await writeKeys(writer, 0, 80);
    await n0!.kill('SIGKILL');
    // Refused connections are retried until the deadline: keep it short while the member is down.
    const down = await writeKeys(writer, 80, 5, async () => {}, 200);
    await new Promise((r) => setTimeout(r, 500));
    n0!.start();
    await n0!.ready();
    // A burst as soon as the member is back, most likely before the watch is re-created: these
    // events exist only in the history the resumed watch must replay.
    const burst = (await Promise.all(Array.from({ length: 60 }, (_, i) => writeKeys(writer, 85 + i, 1)))).flat();
    const attempts = [...before, ...down, ...burst];
    assert.ok(
      down.every((a) => a.revision === undefined),
      'a put succeeded while the only member was down',
    );
    const acked = attempts.filter((a) => a.revision !== undefined);
    let last = 0n;
    for (const a of acked) if (a.revision! > last) last = a.revision!;
    await waitFor(() => (seen[seen.length - 1]?.revision ?? 0n) >= last, 'the watcher to catch up');
    checkHistory(attempts, seen);
    assert.ok(creations() >= 2, 'the watch was never re-created');
    await watcher.close();
  } finally {
    watching.close();
    writer.close();
  }
});
