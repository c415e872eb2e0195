// The hand-written codecs of src/proto/fast/ against ts-proto's generated ones: the same bytes
// for every random message, the same decoded values for every encoding, and the same result
// (value or error) for malformed input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import * as fast from '../../src/proto/fast/index.ts';
import {
  type Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  type Event,
  type KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  type RequestOp,
  ResponseHeader,
  type ResponseOp,
  TxnRequest,
  TxnResponse,
  WatchResponse,
} from '../../src/proto/index.ts';

const RUNS = 300;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Mostly small values (the common case), with zero, negatives and the extremes. */
const int64 = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: 1n << 53n }),
  fc.bigInt({ min: -1000n, max: -1n }),
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.constantFrom(INT64_MIN, INT64_MAX, (1n << 53n) - 1n, 1n << 53n, -(1n << 53n)),
);
const uint64 = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: UINT64_MAX }),
  fc.constantFrom(UINT64_MAX, 1n << 63n, (1n << 53n) + 1n),
);
const bytes = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ minLength: 120, maxLength: 300 }),
);
const enumValue = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -3, max: 5 }),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);

const header = fc.record({ clusterId: uint64, memberId: uint64, revision: int64, raftTerm: uint64 });
const keyValue: fc.Arbitrary<KeyValue> = fc.record({
  key: bytes,
  createRevision: int64,
  modRevision: int64,
  version: int64,
  value: bytes,
  lease: int64,
});
const putRequest = fc.record({
  key: bytes,
  value: bytes,
  lease: int64,
  prevKv: fc.boolean(),
  ignoreValue: fc.boolean(),
  ignoreLease: fc.boolean(),
});
const rangeRequest = fc.record({
  key: bytes,
  rangeEnd: bytes,
  limit: int64,
  revision: int64,
  sortOrder: enumValue,
  sortTarget: enumValue,
  serializable: fc.boolean(),
  keysOnly: fc.boolean(),
  countOnly: fc.boolean(),
  minModRevision: int64,
  maxModRevision: int64,
  minCreateRevision: int64,
  maxCreateRevision: int64,
}) as fc.Arbitrary<RangeRequest>;
const deleteRangeRequest = fc.record({ key: bytes, rangeEnd: bytes, prevKv: fc.boolean() });
const compare = fc.record({
  result: enumValue,
  target: enumValue,
  key: bytes,
  targetUnion: fc.oneof(
    fc.constant(undefined),
    fc.record({ $case: fc.constantFrom('version', 'createRevision', 'modRevision', 'lease'), value: int64 }),
    fc.record({ $case: fc.constant('value'), value: bytes }),
  ),
  rangeEnd: bytes,
}) as fc.Arbitrary<Compare>;

const { txnRequest } = fc.letrec<{ txnRequest: TxnRequest; requestOp: RequestOp }>((tie) => ({
  txnRequest: fc.record({
    compare: fc.array(compare, { maxLength: 3 }),
    success: fc.array(tie('requestOp'), { maxLength: 3 }),
    failure: fc.array(tie('requestOp'), { maxLength: 2 }),
  }),
  requestOp: fc.record({
    request: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(undefined),
      fc.record({ $case: fc.constant('requestRange' as const), value: rangeRequest }),
      fc.record({ $case: fc.constant('requestPut' as const), value: putRequest }),
      fc.record({ $case: fc.constant('requestDeleteRange' as const), value: deleteRangeRequest }),
      fc.record({ $case: fc.constant('requestTxn' as const), value: tie('txnRequest') as fc.Arbitrary<TxnRequest> }),
    ),
  }),
}));

const rangeResponse = fc.record({
  header: fc.option(header, { nil: undefined }),
  kvs: fc.array(keyValue, { maxLength: 5 }),
  more: fc.boolean(),
  count: int64,
});
const putResponse = fc.record({
  header: fc.option(header, { nil: undefined }),
  prevKv: fc.option(keyValue, { nil: undefined }),
});
const deleteRangeResponse = fc.record({
  header: fc.option(header, { nil: undefined }),
  deleted: int64,
  prevKvs: fc.array(keyValue, { maxLength: 4 }),
});
const { txnResponse } = fc.letrec<{ txnResponse: TxnResponse; responseOp: ResponseOp }>((tie) => ({
  txnResponse: fc.record({
    header: fc.option(header, { nil: undefined }),
    succeeded: fc.boolean(),
    responses: fc.array(tie('responseOp'), { maxLength: 3 }),
  }),
  responseOp: fc.record({
    response: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(undefined),
      fc.record({ $case: fc.constant('responseRange' as const), value: rangeResponse }),
      fc.record({ $case: fc.constant('responsePut' as const), value: putResponse }),
      fc.record({ $case: fc.constant('responseDeleteRange' as const), value: deleteRangeResponse }),
      fc.record({
        $case: fc.constant('responseTxn' as const),
        value: tie('txnResponse') as fc.Arbitrary<TxnResponse>,
      }),
    ),
  }),
}));
const event = fc.record({
  type: enumValue,
  kv: fc.option(keyValue, { nil: undefined }),
  prevKv: fc.option(keyValue, { nil: undefined }),
}) as fc.Arbitrary<Event>;
const watchResponse = fc.record({
  header: fc.option(header, { nil: undefined }),
  watchId: int64,
  created: fc.boolean(),
  canceled: fc.boolean(),
  compactRevision: int64,
  cancelReason: fc.oneof(fc.constant(''), fc.string(), fc.string({ unit: 'binary' }), fc.constant('a\ud800b\udc00')),
  fragment: fc.boolean(),
  events: fc.array(event, { maxLength: 4 }),
}) as fc.Arbitrary<WatchResponse>;

interface Generated<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function checkEncode<T>(arb: fc.Arbitrary<T>, gen: Generated<T>, enc: (m: T, headroom?: number) => Buffer): void {
  fc.assert(
    fc.property(arb, fc.integer({ min: 0, max: 8 }), (m, headroom) => {
      const expected = gen.encode(m).finish();
      assert.equal(hex(enc(m)), hex(expected));
      const framed = enc(m, headroom);
      assert.equal(framed.length, headroom + expected.length);
      assert.equal(hex(framed.subarray(headroom)), hex(expected));
    }),
    { numRuns: RUNS },
  );
}

/** Both decoders give the same value, or both throw the same error. */
function sameDecode<T>(gen: Generated<T>, dec: (b: Uint8Array) => T, input: Uint8Array): void {
  let expected: { value: T } | { error: string };
  try {
    expected = { value: gen.decode(input) };
  } catch (err) {
    expected = { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
  let actual: { value: T } | { error: string };
  try {
    actual = { value: dec(input) };
  } catch (err) {
    actual = { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
  assert.deepEqual(actual, expected, `input ${hex(input)}`);
}

function checkDecode<T>(arb: fc.Arbitrary<T>, gen: Generated<T>, dec: (b: Uint8Array) => T): void {
  fc.assert(
    fc.property(arb, (m) => {
      const wire = gen.encode(m).finish();
      sameDecode(gen, dec, wire);
      // A Buffer input gives Buffer views in both.
      sameDecode(gen, dec, Buffer.from(wire));
      // A view into a larger buffer (as a gRPC frame inside an HTTP/2 chunk).
      const padded = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(wire), Buffer.from([4])]);
      sameDecode(gen, dec, padded.subarray(3, 3 + wire.length));
    }),
    { numRuns: RUNS },
  );
}

/** Truncated, bit-flipped and spliced encodings, and random bytes. */
function checkMalformed<T>(arb: fc.Arbitrary<T>, gen: Generated<T>, dec: (b: Uint8Array) => T): void {
  fc.assert(
    fc.property(arb, fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 12 }), (m, cut, flip, noise) => {
      const wire = gen.encode(m).finish();
      if (wire.length > 0) {
        sameDecode(gen, dec, wire.subarray(0, cut % wire.length));
        const flipped = new Uint8Array(wire);
        flipped[flip % wire.length]! ^= 1 << (flip % 8);
        sameDecode(gen, dec, flipped);
        const spliced = new Uint8Array([...wire.subarray(0, cut % wire.length), ...noise]);
        sameDecode(gen, dec, spliced);
      }
      sameDecode(gen, dec, noise);
    }),
    { numRuns: RUNS },
  );
}

describe('fast codecs encode what the generated codecs encode', () => {
  test('ResponseHeader', () => checkEncode(header, ResponseHeader, fast.encodeResponseHeader));
  test('PutRequest', () => checkEncode(putRequest, PutRequest, fast.encodePutRequest));
  test('RangeRequest', () => checkEncode(rangeRequest, RangeRequest, fast.encodeRangeRequest));
  test('DeleteRangeRequest', () => checkEncode(deleteRangeRequest, DeleteRangeRequest, fast.encodeDeleteRangeRequest));
  test('TxnRequest (nested transactions, every compare target)', () =>
    checkEncode(txnRequest, TxnRequest, fast.encodeTxnRequest));
  test('PutResponse', () => checkEncode(putResponse, PutResponse, fast.encodePutResponse));
  test('RangeResponse', () => checkEncode(rangeResponse, RangeResponse, fast.encodeRangeResponse));
  test('DeleteRangeResponse', () =>
    checkEncode(deleteRangeResponse, DeleteRangeResponse, fast.encodeDeleteRangeResponse));
  test('TxnResponse', () => checkEncode(txnResponse, TxnResponse, fast.encodeTxnResponse));
  test('WatchResponse (UTF-8 and lone surrogates in cancel_reason)', () =>
    checkEncode(watchResponse, WatchResponse, fast.encodeWatchResponse));

  test('a response of many KeyValues (lengths past one varint byte, the length stack grows)', () => {
    const kvs = Array.from({ length: 600 }, (_, i) => ({
      key: Buffer.from(`key/${i}`),
      createRevision: BigInt(i + 1),
      modRevision: BigInt(i + 2),
      version: 1n,
      value: Buffer.alloc(300 + i, i),
      lease: i % 2 === 0 ? 0n : 0x694d7f3a2b1c0d0en,
    }));
    const m = { header: { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n }, kvs, more: true, count: 600n };
    assert.equal(hex(fast.encodeRangeResponse(m)), hex(RangeResponse.encode(m).finish()));
  });

  test('out-of-range 64-bit values are refused with the generated codec’s error', () => {
    const bad = [
      { m: { clusterId: -1n, memberId: 0n, revision: 0n, raftTerm: 0n }, field: 'clusterId' },
      { m: { clusterId: 0n, memberId: 1n << 64n, revision: 0n, raftTerm: 0n }, field: 'memberId' },
      { m: { clusterId: 0n, memberId: 0n, revision: 1n << 63n, raftTerm: 0n }, field: 'revision' },
    ];
    for (const { m, field } of bad) {
      assert.throws(() => ResponseHeader.encode(m), new RegExp(`field message.${field} of type`));
      assert.throws(() => fast.encodeResponseHeader(m), new RegExp(`field message.${field} of type`));
    }
    const put = {
      key: new Uint8Array(1),
      value: new Uint8Array(0),
      lease: 1n << 63n,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    };
    assert.throws(() => PutRequest.encode(put), /message.lease of type int64 too large/);
    assert.throws(() => fast.encodePutRequest(put), /message.lease of type int64 too large/);
    const range = { ...RangeRequest.create(), sortOrder: 1.5 as never };
    assert.throws(() => RangeRequest.encode(range), /invalid int32: 1.5/);
    assert.throws(() => fast.encodeRangeRequest(range), /invalid int32: 1.5/);
  });
});

describe('fast decoders decode what the generated decoders decode', () => {
  test('PutRequest', () => checkDecode(putRequest, PutRequest, fast.decodePutRequest));
  test('RangeRequest', () => checkDecode(rangeRequest, RangeRequest, fast.decodeRangeRequest));
  test('DeleteRangeRequest', () => checkDecode(deleteRangeRequest, DeleteRangeRequest, fast.decodeDeleteRangeRequest));
  test('TxnRequest', () => checkDecode(txnRequest, TxnRequest, fast.decodeTxnRequest));
  test('ResponseHeader', () => checkDecode(header, ResponseHeader, fast.decodeResponseHeader));

  test('the same values or the same errors on malformed input', () => {
    checkMalformed(putRequest, PutRequest, fast.decodePutRequest);
    checkMalformed(rangeRequest, RangeRequest, fast.decodeRangeRequest);
    checkMalformed(deleteRangeRequest, DeleteRangeRequest, fast.decodeDeleteRangeRequest);
    checkMalformed(txnRequest, TxnRequest, fast.decodeTxnRequest);
  });

  test('unknown fields of every wire type are skipped; groups, end-group and zero tags as generated', () => {
    const put = PutRequest.encode({ ...PutRequest.create(), key: Buffer.from('k'), lease: 7n }).finish();
    const cases = [
      [0x98, 0x01, 0x05], // field 19 varint
      [0x99, 0x01, 1, 2, 3, 4, 5, 6, 7, 8], // field 19 fixed64
      [0x9d, 0x01, 1, 2, 3, 4], // field 19 fixed32
      [0x9a, 0x01, 0x02, 0xaa, 0xbb], // field 19 bytes
      [0x9b, 0x01, 0xa0, 0x01, 0x01, 0x9c, 0x01], // group 19 holding a varint, then its end
      [0x9b, 0x01, 0xa4, 0x01], // group 19 ended by field 20's end-group: "invalid end group tag"? (no: top level)
      [0x9b, 0x01, 0xa3, 0x01, 0xa4, 0x01, 0x9c, 0x01], // nested groups
      [0x9b, 0x01, 0xa3, 0x01, 0x9c, 0x01], // nested group closed by the outer field number
      [0x0c], // end-group tag at the top: the message ends
      [0x00, 0x08, 0x01], // zero tag: the message ends, the rest is ignored
      [0x1e], // wire type 6
      [0x1f], // wire type 7
      [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 10-byte varint
      [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 11 bytes: invalid varint
      [0x20, 0x80, 0x80, 0x01], // a bool of three bytes
      [0x0a, 0x05, 0x61], // bytes past the end
      [0xff, 0xff, 0xff, 0xff, 0x7f], // a tag past 2^32
    ];
    for (const extra of cases) {
      sameDecode(PutRequest, fast.decodePutRequest, new Uint8Array([...put, ...extra]));
      sameDecode(PutRequest, fast.decodePutRequest, new Uint8Array([...extra, ...put]));
    }
  });

  test('nested transactions decode up to the generated codec’s depth limit, and fail beyond it alike', () => {
    const nest = (levels: number): TxnRequest => {
      let txn: TxnRequest = {
        compare: [],
        success: [{ request: { $case: 'requestPut', value: PutRequest.create() } }],
        failure: [],
      };
      for (let i = 0; i < levels; i++)
        txn = { compare: [], success: [{ request: { $case: 'requestTxn', value: txn } }], failure: [] };
      return txn;
    };
    for (const levels of [10, 48, 49, 50, 60]) {
      sameDecode(TxnRequest, fast.decodeTxnRequest, TxnRequest.encode(nest(levels)).finish());
    }
    assert.throws(() => fast.decodeTxnRequest(TxnRequest.encode(nest(60)).finish()), /recursion limit/);
    assert.doesNotThrow(() => fast.decodeTxnRequest(TxnRequest.encode(nest(48)).finish()));
  });

  test('decoded bytes are views of the input, absent ones empty', () => {
    const wire = Buffer.from(PutRequest.encode({ ...PutRequest.create(), key: Buffer.from('abc') }).finish());
    const m = fast.decodePutRequest(wire);
    assert.ok(Buffer.isBuffer(m.key));
    assert.equal(m.key.buffer, wire.buffer);
    assert.equal(m.value.length, 0);
    assert.throws(() => fast.decodePutRequest('not bytes' as never), TypeError);
  });
});
