/**
 * Defragmentation while clients keep working: a member holding a good deal of free space (many
 * overwritten values, then compacted) is defragmented with `etcdctl-ts defrag` while readers,
 * writers and a watcher run. No request fails, the watcher sees every write once and in order,
 * the file shrinks, the data is unchanged, and the longest request stall is reported. Then the
 * offline form (`defrag --data-dir`): refused while the member runs, done once it is stopped.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Client } from '../../src/client/index.ts';
import { KVService, TxnRequest } from '../../src/proto/index.ts';
import { type Cluster, cli, dumpAt, startCluster } from './helpers.ts';

const KEYS = 2000;
const VALUE_BYTES = 2048;
const OVERWRITES = 4;
const PUTS_PER_TXN = 100;
const READERS = 3;
const WRITERS = 2;

const clusters: Cluster[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(clusters.map((c) => c.stop()));
});

test('defrag under concurrent reads, writes and a watch', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster('etcd-ts', ['d']);
  clusters.push(cluster);
  const client = cluster.client();
  clients.push(client);
  const endpoint = cluster.endpoints[0]!;

  // Several generations of every value, then a compaction: most pages become free.
  for (let round = 0; round < OVERWRITES; round++) {
    for (let start = 0; start < KEYS; start += PUTS_PER_TXN) {
      const success = [];
      for (let i = start; i < start + PUTS_PER_TXN; i++) {
        const value = Buffer.alloc(VALUE_BYTES, (round * 31 + i) % 251);
        success.push({ request: { $case: 'requestPut' as const, value: { key: Buffer.from(`fill/${i}`), value } } });
      }
      await client.call(KVService.Txn, TxnRequest.fromPartial({ success }), { idempotent: false });
    }
  }
  const filledRev = (await client.get('fill/0')).header.revision;
  await client.compact(filledRev, { physical: true });
  const before = await client.status();

  let stop = false;
  let failures = 0;
  let requests = 0;
  let longestMs = 0;
  const timed = async (fn: () => Promise<unknown>) => {
    const started = performance.now();
    try {
      await fn();
    } catch (err) {
      failures++;
      t.diagnostic(`request failed: ${String(err)}`);
    }
    longestMs = Math.max(longestMs, performance.now() - started);
    requests++;
  };
  const writes: bigint[] = [];
  const events: bigint[] = [];
  const watcher = client.watch('load/', { prefix: true, startRevision: filledRev + 1n }, (batch) => {
    for (const e of batch.events) events.push(e.kv.modRevision);
  });
  const reader = async (r: number) => {
    for (let i = 0; !stop; i++) await timed(() => client.get(`fill/${(i * 17 + r) % KEYS}`));
  };
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      await timed(async () => writes.push((await client.put(`load/${w}/${i}`, `v${i}`)).header.revision));
    }
  };
  const load = Promise.all([
    ...Array.from({ length: READERS }, (_, r) => reader(r)),
    ...Array.from({ length: WRITERS }, (_, w) => writer(w)),
  ]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const startedMs = performance.now();
  const defrag = await cli('etcdctl-ts', [`--endpoints=${endpoint}`, 'defrag']);
  const defragMs = performance.now() - startedMs;
  await new Promise((resolve) => setTimeout(resolve, 300));
  stop = true;
  await load;
  assert.equal(defrag.code, 0, defrag.stderr);
  assert.equal(defrag.stdout, `Finished defragmenting etcd member[${endpoint}]\n`);
  assert.equal(failures, 0, 'no request failed');
  assert.ok(requests > 50, `${requests} requests ran during the defrag`);

  const afterStatus = await client.status();
  assert.ok(
    afterStatus.dbSize < before.dbSize / 2n,
    `the file shrank from ${before.dbSize} to ${afterStatus.dbSize} bytes`,
  );
  // The data is unchanged: the last generation of every value, and every load write.
  const fill = (await dumpAt(client, Number(filledRev))).kvs.filter((kv) =>
    kv.key.startsWith(Buffer.from('fill/').toString('hex')),
  );
  assert.equal(fill.length, KEYS);
  for (const kv of fill) {
    const i = Number(Buffer.from(kv.key, 'hex').toString().slice('fill/'.length));
    assert.equal(kv.value, Buffer.alloc(VALUE_BYTES, ((OVERWRITES - 1) * 31 + i) % 251).toString('hex'));
  }
  // The watcher got every write exactly once, in revision order.
  const inOrder = [...writes].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const deadline = Date.now() + 10_000;
  while (events.length < writes.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await watcher.close();
  assert.equal(new Set(writes).size, writes.length, 'every write has its own revision');
  assert.deepEqual(events, inOrder);

  // Offline: refused while the member holds its data dir, done once it is stopped.
  const node = cluster.nodes[0]!;
  const busy = await cli('etcdctl-ts', ['defrag', `--data-dir=${node.spec.dataDir}`]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /^Failed to defragment etcd data\[.*\] \(data dir .* is in use/);
  const liveRev = (await dumpAt(client, 0)).revision;
  await node.kill('SIGTERM');
  const offline = await cli('etcdctl-ts', ['defrag', `--data-dir=${node.spec.dataDir}`]);
  assert.equal(offline.code, 0, offline.stderr);
  assert.equal(offline.stdout, '');
  node.launch();
  await node.waitReady();
  const reopened = await dumpAt(client, 0);
  assert.equal(reopened.revision, liveRev);
  assert.equal(reopened.kvs.length, KEYS + writes.length);

  t.diagnostic(
    `defrag of ${before.dbSize} -> ${afterStatus.dbSize} bytes took ${defragMs.toFixed(0)} ms (etcdctl-ts process included); ` +
      `${requests} requests meanwhile, longest ${longestMs.toFixed(1)} ms`,
  );
});
