/**
 * Alarms as etcd has them, checked side by side with the real etcd: the same scenario runs on
 * both and what clients observe must be the same.
 *
 * - NOSPACE: fill a small --quota-backend-bytes; puts, transactions that put and lease grants
 *   are refused with etcd's error, deletes and compaction are not; `alarm list` prints the
 *   alarm (etcdctl-ts exactly as etcdctl); after compaction + defrag the alarm still holds
 *   writes back until `alarm disarm`; then writes work again.
 * - The Alarm RPC: ACTIVATE answers with the alarm (also when already active), GET filters by
 *   type, DEACTIVATE of an alarm that is not active answers with nothing; CORRUPT refuses
 *   writes with `etcdserver: corrupt cluster`.
 * - Downgrade (etcd-ts only: etcd 3.4 has no such RPC): etcd 3.5's answers for a 3.5 cluster.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Client } from '../../src/client/index.ts';
import {
  type AlarmMember,
  AlarmRequest_AlarmAction,
  AlarmType,
  DowngradeRequest_DowngradeAction,
  KVService,
  MaintenanceService,
  TxnRequest,
} from '../../src/proto/index.ts';
import { type Cluster, cli, type Kind, startCluster } from './helpers.ts';

/** etcd's file grows in 16 MiB steps: a quota above one step and below two. */
const QUOTA_BYTES = 24 * 1024 * 1024;
const VALUE_BYTES = 256 * 1024;
const FILL_PUTS_MAX = 400;

const clusters: Cluster[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(clusters.map((c) => c.stop()));
});

async function start(kind: Kind, extraArgs: string[] = []) {
  const cluster = await startCluster(kind, ['m'], { extraArgs });
  clusters.push(cluster);
  const client = cluster.client();
  clients.push(client);
  return { cluster, client, endpoint: cluster.endpoints[0]! };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function alarmCall(client: Client, action: number, memberID: bigint, alarm: number) {
  return client.call(MaintenanceService.Alarm, { action, memberID, alarm } as never, { idempotent: false });
}

function describeAlarms(alarms: readonly AlarmMember[], self: bigint): string[] {
  // etcd lists alarms in Go map order (it varies from call to call): compare them as sets.
  return alarms.map((a) => `${a.memberID === self ? 'self' : a.memberID}:${a.alarm}`).sort();
}

/** The NOSPACE scenario; returns what a client sees at each step. */
async function noSpaceScenario(kind: Kind): Promise<Record<string, unknown>> {
  const { client, endpoint } = await start(kind, [`--quota-backend-bytes=${QUOTA_BYTES}`]);
  const seen: Record<string, unknown> = {};
  const self = (await client.status()).header.memberId;
  let refused = '';
  let puts = 0;
  for (; puts < FILL_PUTS_MAX && refused === ''; puts++) {
    const r = await outcome(client.put(`big/${puts}`, Buffer.alloc(VALUE_BYTES, puts % 251)));
    if (r !== 'ok') refused = r;
  }
  assert.ok(puts > 1 && puts < FILL_PUTS_MAX, `${kind}: refused after ${puts} puts`);
  seen.refused = refused;
  seen.smallPut = await outcome(client.put('small', 'v'));
  seen.txnPut = await outcome(
    client.call(
      KVService.Txn,
      TxnRequest.fromPartial({
        success: [{ request: { $case: 'requestPut', value: { key: Buffer.from('t'), value: Buffer.from('v') } } }],
      }),
      { idempotent: false },
    ),
  );
  seen.txnDelete = await outcome(
    client.call(
      KVService.Txn,
      TxnRequest.fromPartial({
        success: [{ request: { $case: 'requestDeleteRange', value: { key: Buffer.from('big/0') } } }],
      }),
      { idempotent: false },
    ),
  );
  seen.leaseGrant = await outcome(client.grant(60));

  const listed = await cli('etcdctl', [`--endpoints=${endpoint}`, 'alarm', 'list']);
  const listedTs = await cli('etcdctl-ts', [`--endpoints=${endpoint}`, 'alarm', 'list']);
  assert.equal(listedTs.stdout, listed.stdout, `${kind}: etcdctl-ts alarm list prints as etcdctl`);
  seen.alarmList = listed.stdout.replace(String(self), 'SELF');
  const asJson = await cli('etcdctl-ts', [`--endpoints=${endpoint}`, 'alarm', 'list', '-w', 'json']);
  const asJsonReal = await cli('etcdctl', [`--endpoints=${endpoint}`, 'alarm', 'list', '-w', 'json']);
  assert.deepEqual(
    JSON.parse(asJson.stdout).alarms,
    JSON.parse(asJsonReal.stdout).alarms,
    `${kind}: alarm list -w json as etcdctl`,
  );
  const endpointStatus = await client.status();
  seen.statusErrors = endpointStatus.errors.map((e) => e.replace(String(self), 'SELF'));

  seen.deleteRange = await outcome(client.delete('big/', { prefix: true }));
  const rev = (await client.get('small')).header.revision;
  seen.compact = await outcome(client.compact(rev, { physical: true }));
  const before = (await client.status()).dbSize;
  const defrag = await cli('etcdctl-ts', [`--endpoints=${endpoint}`, 'defrag']);
  assert.equal(defrag.code, 0, defrag.stderr);
  seen.defrag = defrag.stdout.replace(endpoint, 'EP');
  const afterDefrag = (await client.status()).dbSize;
  assert.ok(afterDefrag < before / 2n, `${kind}: defrag shrank the file from ${before} to ${afterDefrag}`);
  seen.putAfterDefrag = await outcome(client.put('small', 'v'));

  const disarm = await cli('etcdctl-ts', [`--endpoints=${endpoint}`, 'alarm', 'disarm']);
  assert.equal(disarm.code, 0, disarm.stderr);
  assert.equal(disarm.stdout, `memberID:${self} alarm:NOSPACE \n`, `${kind}: disarm prints the alarms disarmed`);
  seen.putAfterDisarm = await outcome(client.put('small', 'v'));
  seen.leaseAfterDisarm = await outcome(client.grant(60));
  seen.alarmsAfter = (await client.alarms()).length;
  return seen;
}

/** The Alarm RPC's answers for a sequence of requests, and what a write meets under CORRUPT. */
async function alarmRpcScenario(kind: Kind): Promise<unknown[]> {
  const { client } = await start(kind);
  const self = (await client.status()).header.memberId;
  const A = AlarmRequest_AlarmAction;
  const other = 0x1234n;
  const out: unknown[] = [];
  const step = async (action: number, memberID: bigint, alarm: number) => {
    const r = await alarmCall(client, action, memberID, alarm);
    out.push([action, alarm, describeAlarms(r.alarms, self)]);
  };
  await step(A.ACTIVATE, other, AlarmType.NOSPACE);
  await step(A.ACTIVATE, other, AlarmType.NOSPACE);
  await step(A.ACTIVATE, self, AlarmType.CORRUPT);
  await step(A.GET, 0n, AlarmType.NONE);
  await step(A.GET, 0n, AlarmType.CORRUPT);
  out.push(['put under CORRUPT', await outcome(client.put('k', 'v'))]);
  out.push(['delete under CORRUPT', await outcome(client.delete('k'))]);
  out.push(['read under CORRUPT', await outcome(client.get('k'))]);
  await step(A.DEACTIVATE, 0x9999n, AlarmType.CORRUPT);
  await step(A.DEACTIVATE, self, AlarmType.CORRUPT);
  out.push(['put under NOSPACE of another member', await outcome(client.put('k', 'v'))]);
  await step(A.DEACTIVATE, other, AlarmType.NOSPACE);
  await step(A.GET, 0n, AlarmType.NONE);
  out.push(['put after', await outcome(client.put('k', 'v'))]);
  return out;
}

describe('alarms as etcd has them', { timeout: 150_000 }, () => {
  test('NOSPACE: refusal, what still works, recovery after compaction, defrag and disarm', async () => {
    const real = await noSpaceScenario('etcd');
    const ours = await noSpaceScenario('etcd-ts');
    assert.equal(real.refused, 'etcdserver: mvcc: database space exceeded');
    assert.deepEqual(ours, real);
  });

  test('the Alarm RPC: ACTIVATE, GET by type, DEACTIVATE; CORRUPT refuses writes', async () => {
    const real = await alarmRpcScenario('etcd');
    const ours = await alarmRpcScenario('etcd-ts');
    assert.ok(real.some((s) => JSON.stringify(s).includes('etcdserver: corrupt cluster')));
    assert.deepEqual(ours, real);
  });

  test('Downgrade answers as etcd 3.5 does for a single-version cluster', async () => {
    const { client } = await start('etcd-ts');
    const D = DowngradeRequest_DowngradeAction;
    const call = (action: number, version: string) =>
      client.call(MaintenanceService.Downgrade, { action, version } as never, { idempotent: false });
    assert.equal((await call(D.VALIDATE, '3.4')).version, '3.5.0');
    assert.equal((await call(D.VALIDATE, '3.4.2')).version, '3.5.0');
    await assert.rejects(call(D.VALIDATE, '3.3'), /etcdserver: invalid downgrade target version/);
    await assert.rejects(call(D.VALIDATE, '3.5'), /etcdserver: invalid downgrade target version/);
    await assert.rejects(call(D.VALIDATE, 'three'), /etcdserver: wrong downgrade target version format/);
    await assert.rejects(call(D.CANCEL, ''), /etcdserver: no inflight downgrade job/);
    assert.equal((await call(D.ENABLE, '3.4.0')).version, '3.5.0');
    await assert.rejects(call(D.VALIDATE, '3.4'), /etcdserver: cluster has a downgrade job in progress/);
    await assert.rejects(call(D.ENABLE, '3.4'), /etcdserver: cluster has a downgrade job in progress/);
    assert.equal((await call(D.CANCEL, '')).version, '3.5.0');
    assert.equal((await call(D.VALIDATE, '3.4')).version, '3.5.0');
  });
});
