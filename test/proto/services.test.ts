import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AnyMethod,
  AuthService,
  allMethods,
  ClusterService,
  ElectionService,
  HealthService,
  KVService,
  LeaseService,
  LockService,
  MaintenanceService,
  methodByPath,
  methodPaths,
  ProtoDecodeError,
  PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOf,
  type ResponseOf,
  services,
  WatchService,
} from '../../src/proto/index.ts';
import { loadRegistry } from './descriptors.ts';

// etcd v3.5's services and methods, in .proto order.
const ETCD_METHODS: Record<string, string[]> = {
  'etcdserverpb.KV': ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'],
  'etcdserverpb.Watch': ['Watch'],
  'etcdserverpb.Lease': ['LeaseGrant', 'LeaseRevoke', 'LeaseKeepAlive', 'LeaseTimeToLive', 'LeaseLeases'],
  'etcdserverpb.Cluster': ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberList', 'MemberPromote'],
  'etcdserverpb.Maintenance': [
    'Alarm',
    'Status',
    'Defragment',
    'Hash',
    'HashKV',
    'Snapshot',
    'MoveLeader',
    'Downgrade',
  ],
  'etcdserverpb.Auth': [
    'AuthEnable',
    'AuthDisable',
    'AuthStatus',
    'Authenticate',
    'UserAdd',
    'UserGet',
    'UserList',
    'UserDelete',
    'UserChangePassword',
    'UserGrantRole',
    'UserRevokeRole',
    'RoleAdd',
    'RoleGet',
    'RoleList',
    'RoleDelete',
    'RoleGrantPermission',
    'RoleRevokePermission',
  ],
  'v3lockpb.Lock': ['Lock', 'Unlock'],
  'v3electionpb.Election': ['Campaign', 'Proclaim', 'Leader', 'Observe', 'Resign'],
};

// [requestStream, responseStream] of the streaming methods; every other method is unary.
const STREAMING: Record<string, [boolean, boolean]> = {
  '/etcdserverpb.Watch/Watch': [true, true],
  '/etcdserverpb.Lease/LeaseKeepAlive': [true, true],
  '/etcdserverpb.Maintenance/Snapshot': [false, true],
  '/v3electionpb.Election/Observe': [false, true],
};

describe('service table', () => {
  test('etcdserverpb has 41 methods: KV 5, Watch 1, Lease 5, Cluster 5, Maintenance 8, Auth 17', () => {
    const counts = Object.fromEntries(Object.entries(services).map(([name, s]) => [name, Object.keys(s).length]));
    assert.deepEqual(counts, {
      'etcdserverpb.KV': 5,
      'etcdserverpb.Watch': 1,
      'etcdserverpb.Lease': 5,
      'etcdserverpb.Cluster': 5,
      'etcdserverpb.Maintenance': 8,
      'etcdserverpb.Auth': 17,
      'v3lockpb.Lock': 2,
      'v3electionpb.Election': 5,
    });
    assert.equal(allMethods.filter((m) => m.service.startsWith('etcdserverpb.')).length, 41);
    assert.equal(allMethods.length, 48);
  });

  test('method names and order are etcd v3.5', () => {
    for (const [service, names] of Object.entries(ETCD_METHODS)) {
      const table = services[service as keyof typeof services];
      assert.deepEqual(Object.keys(table), names, service);
      for (const name of names) {
        const method = (table as Record<string, AnyMethod>)[name]!;
        assert.equal(method.service, service);
        assert.equal(method.method, name);
        assert.equal(method.path, `/${service}/${name}`);
      }
    }
  });

  test('the table matches the services protoc reads from the .proto files', () => {
    const registry = loadRegistry();
    const fromProto: string[] = [];
    for (const file of registry.files) {
      for (const service of file.services) {
        for (const m of service.methods) {
          fromProto.push(`/${service.typeName}/${m.name} ${m.methodKind}`);
        }
      }
    }
    const kind = (m: AnyMethod) =>
      m.requestStream
        ? m.responseStream
          ? 'bidi_streaming'
          : 'client_streaming'
        : m.responseStream
          ? 'server_streaming'
          : 'unary';
    // allMethods is etcd's own API; gRPC's health service, served beside it, is the rest.
    const health = Object.values(HealthService) as AnyMethod[];
    assert.ok(health.every((m) => !allMethods.includes(m)));
    assert.deepEqual([...allMethods, ...health].map((m) => `${m.path} ${kind(m)}`).sort(), fromProto.sort());
  });

  test('streaming flags: Watch and LeaseKeepAlive bidi, Snapshot and Observe server-streaming', () => {
    for (const m of allMethods) {
      assert.deepEqual([m.requestStream, m.responseStream], STREAMING[m.path] ?? [false, false], m.path);
    }
    // The flags are literal types on the typed entries.
    const watchFlags: [true, true] = [WatchService.Watch.requestStream, WatchService.Watch.responseStream];
    const snapshotFlags: [false, true] = [
      MaintenanceService.Snapshot.requestStream,
      MaintenanceService.Snapshot.responseStream,
    ];
    assert.deepEqual(watchFlags, [true, true]);
    assert.deepEqual(snapshotFlags, [false, true]);
  });

  test('methodPaths lists every path once; methodByPath finds each method', () => {
    assert.equal(methodPaths.length, 48);
    assert.equal(new Set(methodPaths).size, 48);
    assert.ok(methodPaths.includes('/etcdserverpb.KV/Range'));
    assert.ok(methodPaths.includes('/etcdserverpb.Maintenance/Downgrade'));
    assert.ok(methodPaths.includes('/v3lockpb.Lock/Unlock'));
    for (const m of allMethods) assert.equal(methodByPath(m.path), m);
    assert.equal(methodByPath('/etcdserverpb.KV/Nope'), undefined);
    assert.equal(methodByPath('etcdserverpb.KV/Range'), undefined);
    assert.ok(Object.isFrozen(allMethods) && Object.isFrozen(methodPaths) && Object.isFrozen(KVService));
  });

  test('typed entries encode and decode their own messages', () => {
    const put = PutRequest.create({ key: new TextEncoder().encode('k'), value: new Uint8Array([1]), lease: 7n });
    const bytes = KVService.Put.encodeRequest(put);
    const back: PutRequest = KVService.Put.decodeRequest(bytes);
    assert.deepEqual(back, put);

    const res: RangeResponse = {
      header: { clusterId: 2n ** 64n - 1n, memberId: 1n, revision: 5n, raftTerm: 2n },
      kvs: [],
      more: true,
      count: 3n,
    };
    assert.deepEqual(KVService.Range.decodeResponse(KVService.Range.encodeResponse(res)), res);

    // Compile-time checks: the request and response types follow the method.
    const req: RequestOf<typeof KVService.Range> = KVService.Range.decodeRequest(new Uint8Array(0));
    const typed: RangeRequest = req;
    const putRes: ResponseOf<typeof KVService.Put> = KVService.Put.decodeResponse(new Uint8Array(0));
    const typedRes: PutResponse = putRes;
    assert.equal(typed.limit, 0n);
    assert.equal(typedRes.prevKv, undefined);
    // @ts-expect-error a RangeRequest is not a PutRequest
    const wrongRequest = () => KVService.Put.encodeRequest(typed);
    assert.equal(typeof wrongRequest, 'function');
    // @ts-expect-error KV has no Watch method
    assert.equal(KVService.Watch, undefined);
  });

  test('bytes that are not the message give a ProtoDecodeError naming the path', () => {
    const cases: [AnyMethod, Uint8Array][] = [
      [KVService.Range, new Uint8Array([0x0a, 0x05, 0x61])], // key of length 5, 1 byte present
      [LeaseService.LeaseGrant, new Uint8Array([0x08])], // varint tag with no value
      [ClusterService.MemberList, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
      [AuthService.Authenticate, new Uint8Array([0x0f])], // wire type 7 does not exist
    ];
    for (const [method, bytes] of cases) {
      assert.throws(
        () => method.decodeRequest(bytes),
        (err: unknown) => {
          assert.ok(err instanceof ProtoDecodeError, String(err));
          assert.equal(err.code, 'ERR_PROTO_DECODE');
          assert.equal(err.path, method.path);
          assert.equal(err.kind, 'request');
          assert.match(err.message, new RegExp(`^cannot decode request of ${method.path.replaceAll('.', '\\.')}: .+`));
          assert.ok(err.cause instanceof Error);
          return true;
        },
      );
    }
    assert.throws(
      () => LockService.Lock.decodeResponse(new Uint8Array([0x12, 0x02, 0x00])),
      (err: unknown) => {
        assert.ok(err instanceof ProtoDecodeError);
        assert.equal(err.kind, 'response');
        return true;
      },
    );
  });

  test('a nested transaction deeper than the decoder limit is rejected, not a stack overflow', () => {
    // RequestOp{request_txn: TxnRequest{success: [RequestOp{...}]}} nested 200 times.
    let bytes: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 200; i++) {
      const txn = frame(0x12, bytes); // TxnRequest.success (2)
      bytes = frame(0x22, txn); // RequestOp.request_txn (4)
    }
    const request = frame(0x12, bytes); // TxnRequest.success
    assert.throws(() => KVService.Txn.decodeRequest(request), ProtoDecodeError);
    assert.ok(ElectionService.Observe.responseStream);
  });
});

function frame(tag: number, body: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}
