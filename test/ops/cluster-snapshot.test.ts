/**
 * A snapshot of a 3-member etcd-ts cluster taken under write load with the real
 * `etcdctl snapshot save`, restored with `etcdctl-ts snapshot restore` into a new 3-member
 * cluster (new names, ports and token): the new cluster has its own identity, every member of
 * it serves the key space of every revision up to the snapshot's exactly as the old cluster
 * does, and it goes on from the snapshot's revision; `etcdctl-ts defrag --cluster` then
 * defragments every member.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Client } from '../../src/client/index.ts';
import { Client as EtcdClient } from '../../src/client/index.ts';
import { snapshotStatus } from '../../src/server/snapshot.ts';
import { allocatePorts, type Cluster, cli, dumpAt, startCluster, tempDir, waitFor } from './helpers.ts';

const WRITERS = 4;
const KEYS = 100;
/** Writes made before the snapshot starts, so that it is taken in the middle of the load. */
const WRITES_BEFORE_SNAPSHOT = 150;

const clusters: Cluster[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(clusters.map((c) => c.stop()));
});

test('snapshot of a 3-member cluster under load restores into a new 3-member cluster', {
  timeout: 120_000,
}, async () => {
  const old = await startCluster('etcd-ts', ['a', 'b', 'c']);
  clusters.push(old);
  const client = old.client();
  clients.push(client);

  let writes = 0;
  let failures = 0;
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const key = `load/${(i * 7 + w * 13) % KEYS}`;
      try {
        if (i % 10 === 9) await client.delete(key);
        else await client.put(key, `w${w}-${i}`);
        writes++;
      } catch {
        failures++;
      }
    }
  };
  const load = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  await waitFor('writes before the snapshot', 30_000, async () =>
    writes >= WRITES_BEFORE_SNAPSHOT ? true : undefined,
  );

  const dir = tempDir('cluster-snap');
  const file = `${dir}/cluster.db`;
  const saved = await cli('etcdctl', [`--endpoints=${old.nodes[1]!.endpoint}`, 'snapshot', 'save', file]);
  const writesAtSave = writes;
  await waitFor('writes after the snapshot', 30_000, async () => (writes >= writesAtSave + 50 ? true : undefined));
  stop = true;
  await load;
  assert.equal(saved.code, 0, saved.stderr);
  assert.equal(failures, 0, 'no write failed during the snapshot');

  const status = await snapshotStatus(file);
  const snapRev = status.revision;
  const oldRev = Number((await dumpAt(client, 0)).revision);
  // The snapshot holds at least the writes made before it and not those acknowledged after it
  // (on a slow host the load may not have landed a write between the two).
  assert.ok(snapRev >= WRITES_BEFORE_SNAPSHOT && snapRev < oldRev, `snapshot at ${snapRev}, cluster at ${oldRev}`);

  const names = ['x', 'y', 'z'];
  const ports = await allocatePorts(3);
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const dataDirs: string[] = [];
  for (let i = 0; i < 3; i++) {
    const dataDir = `${dir}/${names[i]}`;
    const r = await cli('etcdctl-ts', [
      'snapshot',
      'restore',
      file,
      `--data-dir=${dataDir}`,
      `--name=${names[i]}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-token=restored',
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports[i]!.peer}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    dataDirs.push(dataDir);
  }
  const restored = await startCluster('etcd-ts', names, { dataDirs, ports, token: 'restored' });
  clusters.push(restored);
  const restoredClient = restored.client();
  clients.push(restoredClient);

  // A new cluster: its own id and members.
  const oldId = (await client.memberList()).header.clusterId;
  const list = await restoredClient.memberList();
  assert.notEqual(list.header.clusterId, oldId);
  assert.deepEqual(list.members.map((m) => m.name).sort(), names);

  // Every revision, as the old cluster answers it.
  for (let rev = 1; rev <= snapRev; rev++) {
    assert.deepEqual((await dumpAt(restoredClient, rev)).kvs, (await dumpAt(client, rev)).kvs, `revision ${rev}`);
  }
  await assert.rejects(dumpAt(restoredClient, snapRev + 1), /future revision/);
  // Every member holds it.
  const want = (await dumpAt(client, snapRev)).kvs;
  for (const node of restored.nodes) {
    const one = new EtcdClient({ endpoints: [node.endpoint] });
    clients.push(one);
    const got = await dumpAt(one, 0);
    assert.equal(got.revision, BigInt(snapRev), `${node.name}'s revision`);
    assert.deepEqual(got.kvs, want, `${node.name}'s keys`);
  }
  const put = await restoredClient.put('after-restore', 'v');
  assert.equal(put.header.revision, BigInt(snapRev + 1));

  // `defrag --cluster` reaches every member through the member list.
  const defrag = await cli('etcdctl-ts', [`--endpoints=${restored.nodes[0]!.endpoint}`, 'defrag', '--cluster']);
  assert.equal(defrag.code, 0, defrag.stderr);
  const done = defrag.stdout.trim().split('\n').sort();
  assert.deepEqual(done, restored.nodes.map((n) => `Finished defragmenting etcd member[http://${n.endpoint}]`).sort());
  assert.equal((await dumpAt(restoredClient, snapRev)).kvs.length, want.length);
});
