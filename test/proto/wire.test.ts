// Known encodings of etcd messages, written out by hand from the field numbers and wire types
// of etcd's API, and the 64-bit cases that a lossy number mapping would break.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AuthRoleGrantPermissionRequest,
  Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  Event_EventType,
  LeaseGrantRequest,
  LeaseGrantResponse,
  Member,
  Permission_Type,
  PutRequest,
  RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeResponse,
  ResponseHeader,
  SnapshotResponse,
  StatusResponse,
  TxnRequest,
  WatchCreateRequest_FilterType,
  WatchRequest,
  WatchResponse,
} from '../../src/proto/index.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replaceAll(' ', ''), 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

const U64_MAX = 2n ** 64n - 1n;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

describe('known encodings', () => {
  test('PutRequest: key 1, value 2, lease 3, prev_kv 4', () => {
    const m = PutRequest.create({ key: utf8('foo'), value: utf8('bar'), lease: 1n, prevKv: true });
    assert.equal(hex(PutRequest.encode(m).finish()), '0a03666f6f' + '1203626172' + '1801' + '2001');
    assert.deepEqual(PutRequest.decode(unhex('0a03666f6f 1203626172 1801 2001')), m);
  });

  test('RangeRequest: all 13 fields, filters at 10..13', () => {
    const m = RangeRequest.create({
      key: utf8('a'),
      rangeEnd: utf8('b'),
      limit: 10n,
      revision: 5n,
      sortOrder: RangeRequest_SortOrder.DESCEND,
      sortTarget: RangeRequest_SortTarget.MOD,
      serializable: true,
      keysOnly: true,
      countOnly: true,
      minModRevision: 1n,
      maxModRevision: 2n,
      minCreateRevision: 3n,
      maxCreateRevision: 4n,
    });
    assert.equal(
      hex(RangeRequest.encode(m).finish()),
      '0a0161 120162 180a 2005 2802 3003 3801 4001 4801 5001 5802 6003 6804'.replaceAll(' ', ''),
    );
  });

  test('WatchRequest.create_request: progress_notify 4, packed filters 5, watch_id 7, fragment 8', () => {
    const m = WatchRequest.create({
      requestUnion: {
        $case: 'createRequest',
        value: {
          key: utf8('k'),
          startRevision: 3n,
          progressNotify: true,
          filters: [WatchCreateRequest_FilterType.NOPUT, WatchCreateRequest_FilterType.NODELETE],
          prevKv: true,
          watchId: 9n,
          fragment: true,
        },
      },
    });
    const inner = '0a016b 1803 2001 2a020001 3001 3809 4001'.replaceAll(' ', '');
    assert.equal(hex(WatchRequest.encode(m).finish()), '0a11' + inner);
    // Unpacked repeated enums (an older encoder's form) decode to the same message.
    const unpacked = unhex('0a11 0a016b 1803 2001 2800 2801 3001 3809 4001');
    assert.deepEqual(WatchRequest.decode(unpacked), m);
    // cancel_request is field 2, progress_request field 3 (an empty message).
    const cancel = WatchRequest.create({ requestUnion: { $case: 'cancelRequest', value: { watchId: 9n } } });
    assert.equal(hex(WatchRequest.encode(cancel).finish()), '12020809');
    const progress = WatchRequest.create({ requestUnion: { $case: 'progressRequest', value: {} } });
    assert.equal(hex(WatchRequest.encode(progress).finish()), '1a00');
  });

  test('WatchResponse: events at field 11', () => {
    const m = WatchResponse.create({
      watchId: 2n,
      events: [{ type: Event_EventType.DELETE, kv: { key: utf8('k'), modRevision: 7n } }],
    });
    assert.equal(hex(WatchResponse.encode(m).finish()), '1002' + '5a09' + '0801' + '1205' + '0a016b1807');
  });

  test('Compare: target_union lease 8, range_end 64 (two-byte tag)', () => {
    const m = Compare.create({
      result: Compare_CompareResult.NOT_EQUAL,
      target: Compare_CompareTarget.LEASE,
      key: utf8('k'),
      targetUnion: { $case: 'lease', value: 5n },
      rangeEnd: utf8('l'),
    });
    assert.equal(hex(Compare.encode(m).finish()), '0803' + '1004' + '1a016b' + '4005' + '8204016c');
    assert.deepEqual(Compare.decode(unhex('0803 1004 1a016b 4005 8204016c')), m);
  });

  test('TxnRequest: compare 1, success 2, failure 3 with RequestOp cases 1..4', () => {
    const m = TxnRequest.create({
      compare: [{ key: utf8('k'), targetUnion: { $case: 'version', value: 0n } }],
      success: [{ request: { $case: 'requestPut', value: { key: utf8('k') } } }],
      failure: [
        { request: { $case: 'requestRange', value: { key: utf8('k') } } },
        { request: { $case: 'requestDeleteRange', value: { key: utf8('k') } } },
        { request: { $case: 'requestTxn', value: TxnRequest.create() } },
      ],
    });
    // A oneof member set to its default value is still encoded (version = 0 -> 20 00).
    assert.equal(
      hex(TxnRequest.encode(m).finish()),
      ['0a05 1a016b 2000', '1205 1203 0a016b', '1a05 0a03 0a016b', '1a05 1a03 0a016b', '1a02 2200']
        .join('')
        .replaceAll(' ', ''),
    );
  });

  test('AuthRoleGrantPermissionRequest with authpb.Permission', () => {
    const m = AuthRoleGrantPermissionRequest.create({
      name: 'r',
      perm: { permType: Permission_Type.READWRITE, key: utf8('a'), rangeEnd: utf8('b') },
    });
    assert.equal(
      hex(AuthRoleGrantPermissionRequest.encode(m).finish()),
      '0a0172' + '1208' + '0802' + '120161' + '1a0162',
    );
  });

  test('StatusResponse: dbSizeInUse 9, isLearner 10; Member isLearner 5', () => {
    const s = StatusResponse.create({ dbSizeInUse: 4096n, isLearner: true, raftAppliedIndex: 3n, errors: ['x'] });
    assert.equal(hex(StatusResponse.encode(s).finish()), '3803' + '420178' + '488020' + '5001');
    const m = Member.create({ ID: 1n, name: 'n', peerURLs: ['p'], clientURLs: ['c'], isLearner: true });
    assert.equal(hex(Member.encode(m).finish()), '0801' + '12016e' + '1a0170' + '220163' + '2801');
  });

  test('unknown fields are skipped (newer etcd versions add fields)', () => {
    // PutRequest with an unknown varint field 15 and an unknown bytes field 16.
    assert.deepEqual(PutRequest.decode(unhex('0a016b 7805 820102abcd')), PutRequest.create({ key: utf8('k') }));
    // etcd 3.6 adds SnapshotResponse.version (4, string).
    const snap = SnapshotResponse.decode(unhex('1005 1a03010203 2205332e362e30'));
    assert.deepEqual(snap, SnapshotResponse.create({ remainingBytes: 5n, blob: new Uint8Array([1, 2, 3]) }));
  });
});

describe('64-bit values', () => {
  test('uint64 and int64 extremes encode to the canonical varints', () => {
    const h = ResponseHeader.create({ clusterId: U64_MAX, memberId: 2n ** 63n, revision: -1n, raftTerm: 1n });
    const bytes = ResponseHeader.encode(h).finish();
    assert.equal(
      hex(bytes),
      '08' + 'ff'.repeat(9) + '01' + '10' + '80'.repeat(9) + '01' + '18' + 'ff'.repeat(9) + '01' + '2001',
    );
    assert.deepEqual(ResponseHeader.decode(bytes), h);
    const lease = LeaseGrantRequest.create({ TTL: 60n, ID: I64_MAX });
    assert.equal(hex(LeaseGrantRequest.encode(lease).finish()), '083c' + '10' + 'ff'.repeat(8) + '7f');
  });

  test('ids round-trip exactly, including values above 2^53 and negative int64', () => {
    const ints = [I64_MAX, I64_MIN, -1n, 2n ** 53n + 1n, 0x694d7f3a2b1c0d0en, -(2n ** 53n) - 3n];
    for (const v of ints) {
      const m = LeaseGrantResponse.create({ ID: v, TTL: v });
      const back = LeaseGrantResponse.decode(LeaseGrantResponse.encode(m).finish());
      assert.equal(back.ID, v);
      assert.equal(back.TTL, v);
      assert.equal(typeof back.ID, 'bigint');
    }
    const uints = [U64_MAX, 2n ** 63n, 2n ** 53n + 1n, 0xcdf818194e3a8c32n, 1n];
    for (const v of uints) {
      const m = ResponseHeader.create({ clusterId: v, memberId: v, raftTerm: v });
      const back = ResponseHeader.decode(ResponseHeader.encode(m).finish());
      assert.deepEqual([back.clusterId, back.memberId, back.raftTerm], [v, v, v]);
      const member = Member.decode(Member.encode(Member.create({ ID: v })).finish());
      assert.equal(member.ID, v);
    }
  });

  test('values outside the field type are refused with a clear error', () => {
    assert.throws(() => PutRequest.encode(PutRequest.create({ lease: 2n ** 63n })), /lease of type int64 too large/);
    assert.throws(() => PutRequest.encode(PutRequest.create({ lease: I64_MIN - 1n })), /int64 too large/);
    assert.throws(
      () => ResponseHeader.encode(ResponseHeader.create({ clusterId: 2n ** 64n })),
      /clusterId of type uint64 too large/,
    );
    assert.throws(() => ResponseHeader.encode(ResponseHeader.create({ clusterId: -1n })), /uint64 too large/);
  });

  test('JSON (grpc-gateway form): proto field names, 64-bit as decimal strings, bytes as base64', () => {
    const res = RangeResponse.create({
      header: { clusterId: U64_MAX, memberId: 2n ** 63n, revision: 9n, raftTerm: 2n },
      kvs: [{ key: utf8('foo'), value: utf8('bar'), createRevision: 9n, modRevision: 9n, version: 1n, lease: I64_MAX }],
      count: 1n,
    });
    const json = RangeResponse.toJSON(res);
    assert.deepEqual(json, {
      header: {
        cluster_id: '18446744073709551615',
        member_id: '9223372036854775808',
        revision: '9',
        raft_term: '2',
      },
      kvs: [
        {
          key: 'Zm9v',
          create_revision: '9',
          mod_revision: '9',
          version: '1',
          value: 'YmFy',
          lease: '9223372036854775807',
        },
      ],
      count: '1',
    });
    assert.deepEqual(RangeResponse.fromJSON(JSON.parse(JSON.stringify(json))), res);
  });
});
