/**
 * Membership changes of a running etcd-ts cluster through the real etcdctl, as an operator does
 * them: `member add` then start the new member with `--initial-cluster-state existing`;
 * `member remove`; a learner added, started, refusing all but Status and serializable reads,
 * and promoted; `member update` of a member's peer URLs (the others then reach it at the new
 * URL only); etcd's refusals, with etcd's own words (checked against a real etcd cluster); and
 * a one-member cluster grown to two.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GrpcCallError, Status } from '../../src/client/channel.ts';
import { KVService, PutRequest, RangeRequest, WatchRequest, WatchService } from '../../src/proto/index.ts';
import { Cluster, type ClusterMember, MemberKind, sleep, waitFor } from '../helpers/cluster.ts';
import { ANY_SOURCE, PeerProxy } from '../helpers/cluster-proxy.ts';
import { parseTable, type TableRow } from './table.ts';

/** Both refuse reconfiguration until the members have been connected for 5 s (etcd's HealthInterval). */
const HEALTH_INTERVAL_MS = 5_500;

const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');

function put(m: ClusterMember, key: string, value: string) {
  return m.channel.unary(KVService.Put, PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(value) }), {
    timeoutMs: 5_000,
  });
}

function get(m: ClusterMember, key: string, serializable: boolean) {
  return m.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from(key), serializable }), {
    timeoutMs: 5_000,
  });
}

async function memberTable(cluster: Cluster, members?: readonly ClusterMember[]): Promise<TableRow[]> {
  const r = await cluster.etcdctl(['member', 'list', '-w', 'table'], members === undefined ? {} : { members });
  assert.equal(r.code, 0, r.stderr);
  return parseTable(r.stdout);
}

/** `member add` through etcdctl; returns the ETCD_INITIAL_CLUSTER it prints for the new member. */
async function memberAdd(cluster: Cluster, m: ClusterMember, learner = false): Promise<string> {
  const r = await cluster.etcdctl([
    'member',
    'add',
    m.name,
    `--peer-urls=${m.peerUrl}`,
    ...(learner ? ['--learner'] : []),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Member +[0-9a-f]+ added to cluster +[0-9a-f]+\n/);
  assert.match(r.stdout, new RegExp(`ETCD_NAME="${m.name}"\n`));
  assert.match(r.stdout, /ETCD_INITIAL_CLUSTER_STATE="existing"/);
  const initial = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(r.stdout)?.[1] ?? '';
  assert.ok(initial.split(',').includes(`${m.name}=${m.peerUrl}`), r.stdout);
  return initial;
}

/** etcdctl's error line for a refused request: the last line of stderr. */
function errorLine(stderr: string): string {
  return stderr.trim().split('\n').at(-1) ?? '';
}

describe('membership changes of a 3-member etcd-ts cluster', { timeout: 120_000 }, () => {
  let cluster: Cluster;
  let etcd: Cluster;
  let startedAt = 0;

  before(async () => {
    [cluster, etcd] = await Promise.all([
      Cluster.start({ size: 3, proxied: true }),
      Cluster.start({ size: 3, kind: MemberKind.ETCD }),
    ]);
    startedAt = Date.now();
  });

  after(async () => {
    await Promise.all([cluster?.stop(), etcd?.stop()]);
  });

  test("etcd's refusals, in etcd's words: existing peer URL, promoting a voter, unknown members", async () => {
    await sleep(Math.max(0, startedAt + HEALTH_INTERVAL_MS - Date.now()));
    const cases = (c: Cluster): string[][] => {
      const [, m1, m2] = c.members as [ClusterMember, ClusterMember, ClusterMember];
      return [
        ['member', 'add', 'dup', `--peer-urls=${m1.peerUrl}`],
        ['member', 'update', m1.id.toString(16), `--peer-urls=${m2.peerUrl}`],
        ['member', 'promote', m1.id.toString(16)],
        ['member', 'remove', '1234abcd'],
        ['member', 'update', '1234abcd', '--peer-urls=http://127.0.0.1:1'],
        ['member', 'promote', '1234abcd'],
      ];
    };
    const expected = [
      'Error: etcdserver: Peer URLs already exists',
      'Error: etcdserver: Peer URLs already exists',
      'Error: etcdserver: can only promote a learner member',
      'Error: etcdserver: member not found',
      'Error: etcdserver: member not found',
      'Error: etcdserver: member not found',
    ];
    for (const [name, c] of [
      ['etcd', etcd],
      ['etcd-ts', cluster],
    ] as const) {
      const results = [];
      for (const args of cases(c)) results.push(await c.etcdctl(args));
      assert.deepEqual(
        results.map((r) => [r.code, errorLine(r.stderr)]),
        expected.map((line) => [1, line]),
        name,
      );
    }
    // Nothing changed.
    const rows = await memberTable(cluster);
    assert.deepEqual(rows.map((r) => r.NAME).sort(), ['m0', 'm1', 'm2']);
    assert.deepEqual(rows.map((r) => r['PEER ADDRS']).sort(), cluster.members.map((m) => m.peerUrl).sort());
  });

  test('member add, then the new member started with --initial-cluster-state existing joins and serves', async () => {
    await put(cluster.members[0]!, 'before-add', '1');
    const m3 = await cluster.prepareMember('m3');
    const initial = await memberAdd(cluster, m3);
    const pending = (await memberTable(cluster)).find((r) => r['PEER ADDRS'] === m3.peerUrl);
    assert.equal(pending?.STATUS, 'unstarted');
    assert.equal(pending?.NAME, '');

    await cluster.startJoining(m3, initial);
    await waitFor('m3 to publish its name and client URL', 10_000, async () => {
      const row = (await memberTable(cluster)).find((r) => r.NAME === 'm3');
      return row?.STATUS === 'started' && row['CLIENT ADDRS'] === m3.clientUrl ? row : undefined;
    });
    const leader = await cluster.leader();
    assert.equal((await m3.status()).leader, leader.id);
    await put(m3, 'after-add', '2');
    assert.equal(text((await get(m3, 'before-add', false)).kvs[0]?.value), '1');
    assert.equal(text((await get(cluster.members[0]!, 'after-add', false)).kvs[0]?.value), '2');
    // Every member, the new one included, lists four.
    for (const m of cluster.members) assert.equal((await memberTable(cluster, [m])).length, 4);
  });

  test('member remove: the member leaves the list and is cut off, the others go on without it', async () => {
    const m3 = cluster.member('m3');
    const others = cluster.members.filter((m) => m !== m3);
    const r = await cluster.etcdctl(['member', 'remove', m3.id.toString(16)], { members: others });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Member +${m3.id.toString(16)} removed from cluster +[0-9a-f]+\n$`));
    // The removed member hears from no one any more: it loses its leader and refuses linearizable reads.
    await waitFor('the removed member to lose its leader', 10_000, async () =>
      (await m3.status()).leader === 0n ? true : undefined,
    );
    await assert.rejects(
      m3.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('before-add') }), {
        timeoutMs: 3_000,
      }),
    );
    await cluster.forget(m3);
    const rows = await memberTable(cluster);
    assert.deepEqual(rows.map((row) => row.NAME).sort(), ['m0', 'm1', 'm2']);
    await put(cluster.members[1]!, 'after-remove', '3');
    await cluster.waitConverged();
  });

  test('a learner: added, started, listed and reported as a learner, serves serializable reads only, promoted', async () => {
    const m4 = await cluster.prepareMember('m4');
    const initial = await memberAdd(cluster, m4, true);
    await cluster.startJoining(m4, initial);
    const row = await waitFor('the learner to start', 10_000, async () => {
      const r = (await memberTable(cluster)).find((x) => x.NAME === 'm4');
      return r?.STATUS === 'started' ? r : undefined;
    });
    assert.equal(row['IS LEARNER'], 'true');
    // The learner says so itself once it has the log entry that added it.
    await waitFor('the learner to report itself as one', 5_000, async () => {
      const status = await cluster.etcdctl(['endpoint', 'status', '-w', 'table'], { members: [m4] });
      assert.equal(status.code, 0, status.stderr);
      return parseTable(status.stdout)[0]?.['IS LEARNER'] === 'true' ? true : undefined;
    });
    await waitFor('the learner to replicate after-remove', 10_000, async () =>
      text((await get(m4, 'after-remove', true)).kvs[0]?.value) === '3' ? true : undefined,
    );

    // Anything else is refused, as etcd refuses it, and changes nothing.
    const refused = (err: unknown) =>
      err instanceof GrpcCallError &&
      err.code === Status.UNAVAILABLE &&
      err.details === 'etcdserver: rpc not supported for learner';
    await assert.rejects(put(m4, 'to-learner', 'x'), refused);
    await assert.rejects(get(m4, 'after-remove', false), refused);
    const watchClosed = await new Promise<GrpcCallError | undefined>((resolve) => {
      const call = m4.channel.stream(
        WatchService.Watch,
        { timeoutMs: 5_000 },
        {
          onMessage: () => {},
          onClose: resolve,
        },
      );
      call.write(
        WatchRequest.fromPartial({
          requestUnion: { $case: 'createRequest', value: { key: Buffer.from('after-remove') } },
        }),
      );
    });
    assert.ok(refused(watchClosed), String(watchClosed));
    const viaCtl = await cluster.etcdctl(['put', 'to-learner', 'y'], { members: [m4] });
    assert.equal(errorLine(viaCtl.stderr), 'Error: etcdserver: rpc not supported for learner');
    assert.equal((await get(cluster.members[0]!, 'to-learner', false)).kvs.length, 0);

    // A second learner is refused while one is there.
    // (etcd's health check refuses any add until every voter has been connected for 5 s: on a
    // slow host that window may still be open after the changes above, and a refusal changes
    // nothing, so the add is asked again.)
    // (Asked of the voters: the learner refuses it, as it refuses every change.)
    const voters = cluster.members.filter((m) => m !== m4);
    const extra = await waitFor('an add past the health check', 20_000, async () => {
      const r = await cluster.etcdctl(['member', 'add', 'm5', '--peer-urls=http://127.0.0.1:9', '--learner'], {
        members: voters,
      });
      return errorLine(r.stderr) === 'Error: etcdserver: unhealthy cluster' ? undefined : r;
    });
    assert.equal(errorLine(extra.stderr), 'Error: etcdserver: too many learner members in cluster');

    const promoted = await waitFor('the promotion to be accepted', 15_000, async () => {
      const r = await cluster.etcdctl(['member', 'promote', m4.id.toString(16)], { members: voters });
      if (r.code === 0) return r;
      assert.equal(
        errorLine(r.stderr),
        'Error: etcdserver: can only promote a learner member which is in sync with leader',
      );
      return undefined;
    });
    assert.match(promoted.stdout, new RegExp(`^Member +${m4.id.toString(16)} promoted in cluster +[0-9a-f]+\n$`));
    // Every member lists m4 as a voter once it has applied the promotion, m4 itself included.
    for (const m of cluster.members) {
      await waitFor(`${m.name} to list m4 as a voter`, 5_000, async () => {
        const row = (await memberTable(cluster, [m])).find((x) => x.NAME === 'm4');
        return row?.['IS LEARNER'] === 'false' ? true : undefined;
      });
    }
    const st = await cluster.etcdctl(['endpoint', 'status', '-w', 'table'], { members: [m4] });
    assert.equal(parseTable(st.stdout)[0]?.['IS LEARNER'], 'false');
    await put(m4, 'from-promoted', '4');
    assert.equal(text((await get(m4, 'from-promoted', false)).kvs[0]?.value), '4');
  });

  test('member update of peer URLs: the others reach the member at its new URL', async () => {
    const leader = await cluster.leader();
    const target = cluster.members.find((m) => m !== leader)!;
    const moved = await PeerProxy.listen(target.listenPeerPort, () => cluster.pidNames());
    try {
      const r = await cluster.etcdctl(['member', 'update', target.id.toString(16), `--peer-urls=${moved.url}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Member +${target.id.toString(16)} updated in cluster +[0-9a-f]+\n$`));
      // Member lists are served locally: each member shows the change once it has applied it.
      for (const m of cluster.members) {
        await waitFor(`${m.name} to list the new peer URL`, 5_000, async () => {
          const row = (await memberTable(cluster, [m])).find((x) => x.NAME === target.name);
          return row?.['PEER ADDRS'] === moved.url ? true : undefined;
        });
      }

      // The old address is cut for everyone: what reaches the member now goes through the new one.
      target.proxy!.block(ANY_SOURCE);
      await put(leader, 'after-update', '5');
      await waitFor(`${target.name} to get after-update through its new URL`, 10_000, async () =>
        text((await get(target, 'after-update', true)).kvs[0]?.value) === '5' ? true : undefined,
      );
      assert.ok(moved.connections().some((c) => c.from === leader.name));
      await cluster.waitConverged();
    } finally {
      target.proxy!.unblockAll();
      await moved.close();
    }
  });

  test('with a voter down: member add is refused (unhealthy cluster), the down member can go, a live one then cannot', async () => {
    const leader = await cluster.leader();
    const [down, live, third] = cluster.members.filter((m) => m !== leader) as [
      ClusterMember,
      ClusterMember,
      ClusterMember,
    ];
    await down.kill('SIGKILL');
    // Time for the leader to see the peer's streams end, even on a busy host.
    await sleep(2_000);
    const spare = await cluster.prepareMember('m6');
    const add = await cluster.etcdctl(['member', 'add', 'm6', `--peer-urls=${spare.peerUrl}`], { members: [leader] });
    assert.equal(errorLine(add.stderr), 'Error: etcdserver: unhealthy cluster');
    await cluster.forget(spare);
    assert.equal((await memberTable(cluster, [leader])).length, 4);

    const removed = await cluster.etcdctl(['member', 'remove', down.id.toString(16)], { members: [leader] });
    assert.equal(removed.code, 0, removed.stderr);
    await cluster.forget(down);

    // Three voters; with one of them down, removing a live one would leave one live member of two.
    await third.kill('SIGKILL');
    await sleep(2_000);
    const refused = await cluster.etcdctl(['member', 'remove', live.id.toString(16)], { members: [leader] });
    assert.equal(errorLine(refused.stderr), 'Error: etcdserver: unhealthy cluster');
    await third.restart();
    await cluster.waitReady();
    assert.deepEqual(
      (await memberTable(cluster)).map((r) => r.NAME).sort(),
      [leader, live, third].map((m) => m.name).sort(),
    );
    await put(live, 'after-unhealthy', '6');
  });
});

describe('a one-member etcd-ts cluster grown to two', { timeout: 60_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await Cluster.start({ size: 1 });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('member add answers at once, and the new member joins', async () => {
    const [m0] = cluster.members as [ClusterMember];
    await put(m0, 'solo', 'yes');
    const m1 = await cluster.prepareMember('m1');
    const startedMs = Date.now();
    const initial = await memberAdd(cluster, m1);
    assert.ok(Date.now() - startedMs < 2_000, `member add took ${Date.now() - startedMs} ms`);
    await cluster.startJoining(m1, initial);
    const leader = await cluster.leader({ timeoutMs: 15_000 });
    assert.ok(cluster.members.includes(leader));
    assert.equal(text((await get(m1, 'solo', false)).kvs[0]?.value), 'yes');
    await put(m1, 'duo', 'yes');
    assert.equal(text((await get(m0, 'duo', false)).kvs[0]?.value), 'yes');
    assert.equal((await memberTable(cluster)).length, 2);
  });
});
