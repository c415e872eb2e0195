/**
 * Snapshots move between etcd and etcd-ts in both directions, checked with the real tools:
 *
 * - etcd-ts -> etcd: the real `etcdctl snapshot save` against etcd-ts, `etcdctl snapshot status`
 *   reads the file (same hash, revision, keys and size as etcd-ts's own reading),
 *   `etcdctl snapshot restore`, and the real etcd started on the restored data dir answers every
 *   revision of the key space exactly as etcd-ts did (values, create/mod revisions, versions,
 *   leases), refuses the compacted ones, and keeps the leases;
 * - etcd -> etcd-ts: the same from a real etcd, restored with `etcdctl-ts snapshot restore` and
 *   served by etcd-ts; `etcdctl-ts snapshot status` prints what `etcdctl snapshot status` prints
 *   in every output format.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Client } from '../../src/client/index.ts';
import { KVService, TxnRequest } from '../../src/proto/index.ts';
import { snapshotStatus } from '../../src/server/snapshot.ts';
import { allocatePorts, type Cluster, cli, dumpAt, type Kind, startCluster, tempDir } from './helpers.ts';

const BULK_TXNS = 8;
const BULK_PUTS_PER_TXN = 100;

/** A history with updates, deletes, a lease, a value over a page, bulk transactions and a compaction. */
async function writeHistory(client: Client): Promise<{ compactRev: number; lastRev: number; lease: bigint }> {
  await client.put('a', '1');
  await client.put('b', '2');
  await client.put('a', '3');
  await client.delete('b');
  const lease = (await client.grant(3600)).id;
  await client.put('leased', 'v', { lease });
  await client.put('big', Buffer.alloc(20_000, 0x62));
  for (let t = 0; t < BULK_TXNS; t++) {
    const success = [];
    for (let i = 0; i < BULK_PUTS_PER_TXN; i++) {
      const key = Buffer.from(`bulk/${String(i).padStart(4, '0')}`);
      success.push({ request: { $case: 'requestPut' as const, value: { key, value: Buffer.from(`v${t}-${i}`) } } });
    }
    await client.call(KVService.Txn, TxnRequest.fromPartial({ success }), { idempotent: false });
  }
  const compactRev = Number((await client.put('a', '4')).header.revision);
  await client.compact(compactRev, { physical: true });
  await client.put('after-compaction', 'x');
  await client.delete('bulk/0001');
  const lastRev = Number((await client.put('a', '5')).header.revision);
  return { compactRev, lastRev, lease };
}

/** Every revision from the compacted one to `lastRev`, read from both clients, must be equal. */
async function assertSameHistory(from: Client, to: Client, compactRev: number, lastRev: number): Promise<void> {
  for (let rev = compactRev; rev <= lastRev; rev++) {
    const want = await dumpAt(from, rev);
    const got = await dumpAt(to, rev);
    assert.deepEqual(got.kvs, want.kvs, `revision ${rev}`);
  }
  assert.equal((await dumpAt(to, 0)).revision, BigInt(lastRev), 'current revision');
  await assert.rejects(dumpAt(to, compactRev - 1), /required revision has been compacted/);
}

async function restoredPeer(): Promise<{ peerUrl: string; ports: { client: number; peer: number } }> {
  const [ports] = await allocatePorts(1);
  return { peerUrl: `http://127.0.0.1:${ports!.peer}`, ports: ports! };
}

const clusters: Cluster[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(clusters.map((c) => c.stop()));
});

async function start(kind: Kind, names: string[], dataDirs?: string[], ports?: { client: number; peer: number }[]) {
  const cluster = await startCluster(kind, names, { dataDirs, ports });
  clusters.push(cluster);
  const client = cluster.client();
  clients.push(client);
  return { cluster, client };
}

describe('snapshot migration', { timeout: 120_000 }, () => {
  test('etcd-ts -> etcd: etcdctl snapshot save, status and restore; etcd serves every revision', async () => {
    const source = await start('etcd-ts', ['src']);
    const { compactRev, lastRev, lease } = await writeHistory(source.client);
    const dir = tempDir('mig-ts');
    const file = `${dir}/from-ts.db`;

    const saved = await cli('etcdctl', [`--endpoints=${source.cluster.endpoints[0]}`, 'snapshot', 'save', file]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /Snapshot saved at/);

    const status = await cli('etcdctl', ['snapshot', 'status', file, '-w', 'json']);
    assert.equal(status.code, 0, status.stderr);
    const real = JSON.parse(status.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
    assert.equal(real.revision, lastRev);
    const ours = await snapshotStatus(file);
    assert.deepEqual(real, {
      hash: ours.hash,
      revision: ours.revision,
      totalKey: ours.totalKey,
      totalSize: ours.totalSize,
    });

    const { peerUrl, ports } = await restoredPeer();
    const restoredDir = `${dir}/restored`;
    const restored = await cli('etcdctl', [
      'snapshot',
      'restore',
      file,
      `--data-dir=${restoredDir}`,
      '--name=dst',
      `--initial-cluster=dst=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
    ]);
    assert.equal(restored.code, 0, restored.stderr);

    const target = await start('etcd', ['dst'], [restoredDir], [ports]);
    await assertSameHistory(source.client, target.client, compactRev, lastRev);
    assert.deepEqual(await target.client.leases(), [lease]);
    // The restored etcd takes writes after the restored revision.
    assert.equal((await target.client.put('new', 'n')).header.revision, BigInt(lastRev + 1));
  });

  test('etcd -> etcd-ts: etcdctl-ts snapshot status and restore of a real etcd snapshot', async () => {
    const source = await start('etcd', ['src']);
    const { compactRev, lastRev, lease } = await writeHistory(source.client);
    const dir = tempDir('mig-etcd');
    const file = `${dir}/from-etcd.db`;

    const saved = await cli('etcdctl', [`--endpoints=${source.cluster.endpoints[0]}`, 'snapshot', 'save', file]);
    assert.equal(saved.code, 0, saved.stderr);
    for (const format of ['simple', 'json', 'table', 'fields', 'protobuf']) {
      const want = await cli('etcdctl', ['snapshot', 'status', file, '-w', format]);
      const got = await cli('etcdctl-ts', ['snapshot', 'status', file, '-w', format]);
      assert.equal(got.stdout, want.stdout, `-w ${format}`);
      assert.equal(got.code, want.code, `-w ${format}: ${got.stderr}`);
    }

    // etcdctl-ts saves from the real etcd too: the same database (only the lease's TTL may tick).
    const ownSave = `${dir}/saved-by-ts.db`;
    const tsSaved = await cli('etcdctl-ts', [
      `--endpoints=${source.cluster.endpoints[0]}`,
      'snapshot',
      'save',
      ownSave,
    ]);
    assert.equal(tsSaved.code, 0, tsSaved.stderr);
    assert.equal((await snapshotStatus(ownSave)).revision, lastRev);

    const { peerUrl, ports } = await restoredPeer();
    const restoredDir = `${dir}/restored`;
    const restoreArgs = [
      'snapshot',
      'restore',
      file,
      `--data-dir=${restoredDir}`,
      '--name=dst',
      `--initial-cluster=dst=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
    ];
    const restored = await cli('etcdctl-ts', restoreArgs);
    assert.equal(restored.code, 0, restored.stderr);
    // A second restore into the same directory is refused and changes nothing.
    const again = await cli('etcdctl-ts', restoreArgs);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /data-dir ".*restored" exists/);

    const target = await start('etcd-ts', ['dst'], [restoredDir], [ports]);
    await assertSameHistory(source.client, target.client, compactRev, lastRev);
    assert.deepEqual(await target.client.leases(), [lease]);
    const members = await target.client.memberList();
    assert.deepEqual(
      members.members.map((m) => [m.name, m.peerUrls]),
      [['dst', [peerUrl]]],
    );
    assert.equal((await target.client.put('new', 'n')).header.revision, BigInt(lastRev + 1));
  });
});
