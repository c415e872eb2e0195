/**
 * The periodic corruption check: a 3-member etcd-ts cluster with
 * --experimental-corrupt-check-time agrees on Hash and HashKV; one follower is stopped, bytes of
 * a value are flipped in its backend file, and it is started again. The leader notices at its
 * next check: the CORRUPT alarm names that member, and every member refuses writes with
 * `etcdserver: corrupt cluster` while reads go on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client } from '../../src/client/index.ts';
import { MaintenanceService } from '../../src/proto/index.ts';
import { type Cluster, startCluster, waitFor } from './helpers.ts';

const clusters: Cluster[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(clusters.map((c) => c.stop()));
});

function clientOf(endpoint: string): Client {
  const c = new Client({ endpoints: [endpoint], callTimeoutMs: 5000 });
  clients.push(c);
  return c;
}

test('flipped bytes in a follower backend raise CORRUPT and stop writes', { timeout: 90_000 }, async () => {
  const cluster = await startCluster('etcd-ts', ['a', 'b', 'c'], {
    extraArgs: ['--experimental-corrupt-check-time=500ms'],
  });
  clusters.push(cluster);
  const client = cluster.client();
  clients.push(client);
  const canary = `corruption-canary-${randomBytes(8).toString('hex')}`;
  for (let i = 0; i < 20; i++) await client.put(`key/${i}`, `value-${i}`);
  const put = await client.put('canary', canary);
  const rev = put.header.revision;

  // Every member has applied it and hashes the same.
  const perMember = cluster.nodes.map((n) => clientOf(n.endpoint));
  await waitFor('every member at the canary revision', 10_000, async () => {
    for (const c of perMember)
      if ((await c.get('canary', { serializable: true })).header.revision < rev) return undefined;
    return true;
  });
  const hashKVs = await Promise.all(perMember.map((c) => c.hashKV({ revision: rev })));
  assert.equal(new Set(hashKVs.map((h) => h.hash)).size, 1, 'HashKV agrees');
  const hashes = await Promise.all(
    perMember.map((c) => c.call(MaintenanceService.Hash, {}, { idempotent: true }).then((r) => r.hash)),
  );
  assert.equal(new Set(hashes).size, 1, `Hash agrees: ${hashes.join(', ')}`);

  const leaderId = (await client.status()).leader;
  const statuses = await Promise.all(perMember.map((c) => c.status()));
  const victimIndex = statuses.findIndex((s) => s.header.memberId !== leaderId);
  const victim = cluster.nodes[victimIndex]!;
  const victimId = statuses[victimIndex]!.header.memberId;
  await victim.kill('SIGTERM');

  const dbDir = join(victim.spec.dataDir, 'member', 'snap', 'db');
  const file = join(dbDir, readFileSync(join(dbDir, 'CURRENT'), 'utf8').trim());
  const bytes = readFileSync(file);
  const needle = Buffer.from(canary);
  let flipped = 0;
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) {
    const last = at + needle.length - 1;
    bytes[last] = bytes[last]! ^ 0x01;
    flipped++;
  }
  assert.ok(flipped > 0, 'the canary value is in the backend file');
  writeFileSync(file, bytes);

  victim.launch();
  await victim.waitReady();
  const victimClient = clientOf(victim.endpoint);
  const seen = (await victimClient.get('canary', { serializable: true })).kvs[0]?.value.toString();
  assert.notEqual(seen, canary, 'the restarted member reads the damaged value');

  const alarms = await waitFor('the CORRUPT alarm', 20_000, async () => {
    const list = await client.alarms();
    return list.some((a) => a.alarm === 'CORRUPT') ? list : undefined;
  });
  assert.deepEqual(alarms, [{ memberId: victimId, alarm: 'CORRUPT' }]);
  for (const node of cluster.nodes) {
    const c = clientOf(node.endpoint);
    await assert.rejects(c.put('after', 'x'), /etcdserver: corrupt cluster/, `${node.name} refuses writes`);
    assert.equal((await c.get('key/1')).kvs[0]?.value.toString(), 'value-1', `${node.name} serves reads`);
  }
});
