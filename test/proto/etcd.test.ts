// The codecs against the real etcd (the Debian etcd-server binary): requests we encode must mean
// to etcd what we meant (filters, sort, compare targets, lease ids...), responses etcd encodes must
// decode to the expected values, and re-encoding each decoded response must give back etcd's
// bytes exactly (same fields, numbers, wire types and order).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  type AnyMethod,
  AuthService,
  allMethods,
  ClusterService,
  Compare_CompareResult,
  Compare_CompareTarget,
  Event_EventType,
  KVService,
  LeaseService,
  MaintenanceService,
  type Method,
  Permission_Type,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeResponse,
  StatusRequest,
  WatchCreateRequest_FilterType,
  WatchService,
} from '../../src/proto/index.ts';
import { type EtcdProcess, GrpcError, GrpcStream, startEtcd, unary } from './etcd-process.ts';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// A lease id above 2^53: a number-based codec would corrupt it.
const LEASE_ID = 0x694d7f3a2b1c0d0en;

const etcdAvailable = spawnSync('etcd', ['--version'], { timeout: 5000 }).status === 0;

describe('wire compatibility with the real etcd', { timeout: 30_000 }, () => {
  let etcd: EtcdProcess;

  before(async () => {
    assert.ok(etcdAvailable, 'the etcd binary (Debian etcd-server) must be installed');
    etcd = await startEtcd((session) =>
      unary(session, MaintenanceService.Status.path, StatusRequest.encode(StatusRequest.create()).finish()),
    );
  });

  after(async () => {
    await etcd?.stop();
  });

  /** Calls a unary method and checks that re-encoding etcd's response reproduces its bytes. */
  async function call<Req, Res>(method: Method<Req, Res, false, false>, request: Req): Promise<Res> {
    const bytes = await unary(etcd.session, method.path, method.encodeRequest(request));
    const response = method.decodeResponse(bytes);
    assert.equal(hex(method.encodeResponse(response)), hex(bytes), `${method.path}: re-encoded response differs`);
    return response;
  }

  /** Reads the next message of a stream and checks it re-encodes to etcd's bytes. */
  async function nextOf<Res>(stream: GrpcStream, method: Method<unknown, Res>): Promise<Res> {
    const bytes = await stream.next();
    assert.ok(bytes !== undefined, `${method.path}: stream ended`);
    const response = method.decodeResponse(bytes);
    assert.equal(hex(method.encodeResponse(response)), hex(bytes), `${method.path}: re-encoded response differs`);
    return response;
  }

  test('Status and MemberList: 64-bit ids agree with etcdctl', async () => {
    const status = await call(MaintenanceService.Status, {});
    assert.match(status.version, /^3\.\d+\.\d+/);
    assert.ok(status.dbSize > 0n);
    assert.equal(status.leader, status.header!.memberId);
    assert.ok(status.raftTerm >= 1n && status.raftIndex >= 1n);

    const members = await call(ClusterService.MemberList, { linearizable: false });
    assert.equal(members.members.length, 1);
    const member = members.members[0]!;
    assert.equal(member.ID, status.header!.memberId);
    assert.equal(member.name, 'proto-test');
    assert.deepEqual(member.clientURLs, [etcd.clientUrl]);
    assert.equal(member.isLearner, false);
    assert.equal(members.header!.clusterId, status.header!.clusterId);

    // etcdctl prints the header ids as JSON numbers; compare the digits, not a float.
    const ctl = spawnSync('etcdctl', [`--endpoints=${etcd.clientUrl}`, 'endpoint', 'status', '-w', 'json'], {
      timeout: 10_000,
      encoding: 'utf8',
    });
    assert.equal(ctl.status, 0, ctl.stderr);
    assert.equal(/"cluster_id":(\d+)/.exec(ctl.stdout)?.[1], String(status.header!.clusterId));
    assert.equal(/"member_id":(\d+)/.exec(ctl.stdout)?.[1], String(status.header!.memberId));
  });

  test('leases: a 64-bit id chosen by the client round-trips through etcd', async () => {
    const grant = await call(LeaseService.LeaseGrant, { TTL: 60n, ID: LEASE_ID });
    assert.equal(grant.error, '');
    assert.equal(grant.ID, LEASE_ID);
    assert.equal(grant.TTL, 60n);

    await call(KVService.Put, {
      key: utf8('leased'),
      value: utf8('v'),
      lease: LEASE_ID,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    });
    const ttl = await call(LeaseService.LeaseTimeToLive, { ID: LEASE_ID, keys: true });
    assert.equal(ttl.ID, LEASE_ID);
    assert.equal(ttl.grantedTTL, 60n);
    assert.deepEqual(ttl.keys.map(text), ['leased']);
    const leases = await call(LeaseService.LeaseLeases, {});
    assert.deepEqual(
      leases.leases.map((l) => l.ID),
      [LEASE_ID],
    );

    const keepAlive = new GrpcStream(etcd.session, LeaseService.LeaseKeepAlive.path);
    try {
      keepAlive.send(LeaseService.LeaseKeepAlive.encodeRequest({ ID: LEASE_ID }));
      const renewed = await nextOf(keepAlive, LeaseService.LeaseKeepAlive);
      assert.equal(renewed.ID, LEASE_ID);
      assert.equal(renewed.TTL, 60n);
    } finally {
      keepAlive.close();
    }
  });

  test('Put and Range: prev_kv, ignore_lease, sort, limit and revision filters mean what etcd means', async () => {
    const value = new Uint8Array(256).map((_, i) => (i * 7) & 0xff);
    const first = await call(KVService.Put, {
      key: utf8('foo'),
      value,
      lease: LEASE_ID,
      prevKv: true,
      ignoreValue: false,
      ignoreLease: false,
    });
    assert.equal(first.prevKv, undefined);
    const second = await call(KVService.Put, {
      key: utf8('foo'),
      value: utf8('new'),
      lease: 0n,
      prevKv: true,
      ignoreValue: false,
      ignoreLease: true,
    });
    assert.deepEqual(second.prevKv?.value, value);
    assert.equal(second.prevKv?.lease, LEASE_ID);
    assert.equal(second.header!.revision, first.header!.revision + 1n);

    const foo = await call(KVService.Range, RangeReq({ key: utf8('foo') }));
    assert.equal(foo.kvs[0]?.lease, LEASE_ID, 'ignore_lease kept the lease');
    assert.equal(text(foo.kvs[0]?.value), 'new');
    assert.equal(foo.kvs[0]?.version, 2n);

    const revs: bigint[] = [];
    for (const k of ['p/a', 'p/b', 'p/c']) {
      const put = await call(KVService.Put, {
        key: utf8(k),
        value: utf8(k),
        lease: 0n,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
      });
      revs.push(put.header!.revision);
    }
    const prefix = { key: utf8('p/'), rangeEnd: utf8('p0') };
    const keys = (r: RangeResponse) => r.kvs.map((kv) => text(kv.key));

    const sorted = await call(
      KVService.Range,
      RangeReq({
        ...prefix,
        limit: 2n,
        sortOrder: RangeRequest_SortOrder.DESCEND,
        sortTarget: RangeRequest_SortTarget.KEY,
      }),
    );
    assert.deepEqual(keys(sorted), ['p/c', 'p/b']);
    assert.equal(sorted.more, true);
    assert.equal(sorted.count, 3n);

    assert.deepEqual(keys(await call(KVService.Range, RangeReq({ ...prefix, minModRevision: revs[1]! }))), [
      'p/b',
      'p/c',
    ]);
    assert.deepEqual(keys(await call(KVService.Range, RangeReq({ ...prefix, maxModRevision: revs[0]! }))), ['p/a']);
    assert.deepEqual(keys(await call(KVService.Range, RangeReq({ ...prefix, minCreateRevision: revs[2]! }))), ['p/c']);
    assert.deepEqual(keys(await call(KVService.Range, RangeReq({ ...prefix, maxCreateRevision: revs[1]! }))), [
      'p/a',
      'p/b',
    ]);
    assert.deepEqual(keys(await call(KVService.Range, RangeReq({ ...prefix, revision: revs[0]! }))), ['p/a']);

    const keysOnly = await call(KVService.Range, RangeReq({ ...prefix, keysOnly: true, serializable: true }));
    assert.deepEqual(keys(keysOnly), ['p/a', 'p/b', 'p/c']);
    assert.ok(keysOnly.kvs.every((kv) => kv.value.length === 0));
    const countOnly = await call(KVService.Range, RangeReq({ ...prefix, countOnly: true }));
    assert.deepEqual([countOnly.kvs.length, countOnly.count], [0, 3n]);

    const deleted = await call(KVService.DeleteRange, { ...prefix, prevKv: true });
    assert.equal(deleted.deleted, 3n);
    assert.deepEqual(
      deleted.prevKvs.map((kv) => text(kv.value)),
      ['p/a', 'p/b', 'p/c'],
    );
  });

  test('Txn: compare targets and oneof cases in both directions', async () => {
    const txn = await call(KVService.Txn, {
      compare: [
        {
          result: Compare_CompareResult.EQUAL,
          target: Compare_CompareTarget.LEASE,
          key: utf8('foo'),
          targetUnion: { $case: 'lease', value: LEASE_ID },
          rangeEnd: new Uint8Array(0),
        },
        {
          result: Compare_CompareResult.GREATER,
          target: Compare_CompareTarget.VERSION,
          key: utf8('foo'),
          targetUnion: { $case: 'version', value: 1n },
          rangeEnd: new Uint8Array(0),
        },
      ],
      success: [
        {
          request: {
            $case: 'requestPut',
            value: {
              key: utf8('t'),
              value: utf8('1'),
              lease: 0n,
              prevKv: false,
              ignoreValue: false,
              ignoreLease: false,
            },
          },
        },
        { request: { $case: 'requestRange', value: RangeReq({ key: utf8('foo') }) } },
      ],
      failure: [
        {
          request: {
            $case: 'requestDeleteRange',
            value: { key: utf8('foo'), rangeEnd: new Uint8Array(0), prevKv: false },
          },
        },
      ],
    });
    assert.equal(txn.succeeded, true);
    assert.deepEqual(
      txn.responses.map((r) => r.response?.$case),
      ['responsePut', 'responseRange'],
    );
    const range = txn.responses[1]?.response;
    assert.ok(range?.$case === 'responseRange');
    assert.equal(text(range.value.kvs[0]?.value), 'new');

    const failed = await call(KVService.Txn, {
      compare: [
        {
          result: Compare_CompareResult.NOT_EQUAL,
          target: Compare_CompareTarget.VALUE,
          key: utf8('foo'),
          targetUnion: { $case: 'value', value: utf8('new') },
          rangeEnd: new Uint8Array(0),
        },
      ],
      success: [],
      failure: [{ request: { $case: 'requestRange', value: RangeReq({ key: utf8('t'), countOnly: true }) } }],
    });
    assert.equal(failed.succeeded, false);
    const count = failed.responses[0]?.response;
    assert.ok(count?.$case === 'responseRange');
    assert.equal(count.value.count, 1n);
  });

  test('Watch: created, events with prev_kv, filters, progress and cancel', async () => {
    const watch = new GrpcStream(etcd.session, WatchService.Watch.path);
    const send = (request: Parameters<typeof WatchService.Watch.encodeRequest>[0]) =>
      watch.send(WatchService.Watch.encodeRequest(request));
    const create = (watchId: bigint, filters: WatchCreateRequest_FilterType[]) =>
      send({
        requestUnion: {
          $case: 'createRequest',
          value: {
            key: utf8('w'),
            rangeEnd: new Uint8Array(0),
            startRevision: 0n,
            progressNotify: true,
            filters,
            prevKv: true,
            watchId,
            fragment: false,
          },
        },
      });
    try {
      create(7n, []);
      const created = await nextOf(watch, WatchService.Watch);
      assert.deepEqual([created.created, created.watchId], [true, 7n]);
      create(8n, [WatchCreateRequest_FilterType.NOPUT]);
      assert.equal((await nextOf(watch, WatchService.Watch)).watchId, 8n);

      for (const v of ['1', '2']) {
        await call(KVService.Put, {
          key: utf8('w'),
          value: utf8(v),
          lease: 0n,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        });
      }
      await call(KVService.DeleteRange, { key: utf8('w'), rangeEnd: new Uint8Array(0), prevKv: false });

      // Events are ordered per watcher; the two watchers' responses may interleave.
      const seen = new Map<bigint, string[]>([
        [7n, []],
        [8n, []],
      ]);
      for (let count = 0; count < 4; ) {
        const res = await nextOf(watch, WatchService.Watch);
        for (const ev of res.events) {
          const type = ev.type === Event_EventType.PUT ? 'PUT' : 'DELETE';
          seen.get(res.watchId)?.push(`${type}:${text(ev.kv?.value)}:${text(ev.prevKv?.value)}`);
          count++;
        }
      }
      assert.deepEqual(seen.get(7n), ['PUT:1:', 'PUT:2:1', 'DELETE::2']);
      assert.deepEqual(seen.get(8n), ['DELETE::2']);

      send({ requestUnion: { $case: 'progressRequest', value: {} } });
      const progress = await nextOf(watch, WatchService.Watch);
      assert.equal(progress.events.length, 0);
      assert.ok(progress.header!.revision > 0n);

      send({ requestUnion: { $case: 'cancelRequest', value: { watchId: 7n } } });
      const canceled = await nextOf(watch, WatchService.Watch);
      assert.deepEqual([canceled.canceled, canceled.watchId], [true, 7n]);
    } finally {
      watch.close();
    }
  });

  test('Auth: users, roles and authpb.Permission', async () => {
    await call(AuthService.UserAdd, {
      name: 'ann',
      password: 'pw',
      options: { noPassword: false },
      hashedPassword: '',
    });
    await call(AuthService.RoleAdd, { name: 'reader' });
    await call(AuthService.RoleGrantPermission, {
      name: 'reader',
      perm: { permType: Permission_Type.READWRITE, key: utf8('a'), rangeEnd: utf8('b') },
    });
    await call(AuthService.UserGrantRole, { user: 'ann', role: 'reader' });
    assert.deepEqual((await call(AuthService.UserGet, { name: 'ann' })).roles, ['reader']);
    const role = await call(AuthService.RoleGet, { role: 'reader' });
    assert.deepEqual(role.perm, [{ permType: Permission_Type.READWRITE, key: utf8('a'), rangeEnd: utf8('b') }]);
    assert.deepEqual((await call(AuthService.UserList, {})).users, ['ann']);
  });

  test('Maintenance: HashKV and Alarm', async () => {
    const hash = await call(MaintenanceService.HashKV, { revision: 0n });
    assert.ok(hash.hash > 0);
    const alarms = await call(MaintenanceService.Alarm, { action: 0, memberID: 0n, alarm: 0 });
    assert.deepEqual(alarms.alarms, []);
  });

  test('JSON: toJSON gives what the grpc-gateway of etcd answers on /v3/kv/range', async () => {
    const request = RangeReq({ key: utf8('foo') });
    const viaGrpc = await call(KVService.Range, request);
    const res = await fetch(`${etcd.clientUrl}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('foo').toString('base64') }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), RangeResponse.toJSON(viaGrpc));
  });

  test('etcd serves every path of the table (methods added in v3.5 aside)', async () => {
    // A request that is not valid protobuf: etcd answers INTERNAL for a method it has and
    // UNIMPLEMENTED for a path it does not know. etcd 3.4 lacks AuthStatus and Downgrade.
    const since35 = new Set(['/etcdserverpb.Auth/AuthStatus', '/etcdserverpb.Maintenance/Downgrade']);
    const garbage = new Uint8Array([0x0f]);
    const version = (await call(MaintenanceService.Status, {})).version;
    const statusOf = async (method: AnyMethod): Promise<number | 'open'> => {
      const stream = new GrpcStream(etcd.session, method.path);
      try {
        if (method.requestStream) stream.send(garbage);
        else stream.end(garbage);
        await stream.next(method.requestStream ? 1000 : 5000);
        return 0;
      } catch (err) {
        if (err instanceof GrpcError) return err.status;
        if (method.requestStream && /no gRPC message/.test(String(err))) return 'open';
        throw err;
      } finally {
        stream.close();
      }
    };
    for (const method of allMethods) {
      const status = await statusOf(method);
      if (since35.has(method.path) && version.startsWith('3.4.')) {
        assert.equal(status, 12, method.path);
      } else if (method.requestStream) {
        assert.notEqual(status, 12, `${method.path} is unknown to etcd ${version}`);
      } else {
        assert.equal(status, 13, `${method.path}: expected INTERNAL (unmarshal error) from etcd ${version}`);
      }
    }
    assert.equal(await statusOf({ ...KVService.Range, path: '/etcdserverpb.KV/NoSuchMethod' }), 12);
  });
});

function RangeReq(init: Partial<Parameters<typeof KVService.Range.encodeRequest>[0]>) {
  return {
    key: new Uint8Array(0),
    rangeEnd: new Uint8Array(0),
    limit: 0n,
    revision: 0n,
    sortOrder: RangeRequest_SortOrder.NONE,
    sortTarget: RangeRequest_SortTarget.KEY,
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0n,
    maxModRevision: 0n,
    minCreateRevision: 0n,
    maxCreateRevision: 0n,
    ...init,
  };
}
