import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  EMPTY_BYTES,
  type Entry,
  EntryType,
  ErrDecode,
  ErrInvalidMessage,
  encodeConfChange,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  type Message,
  MessageType,
  newMessage,
  type Snapshot,
} from '../../src/raft/index.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

// Golden bytes produced by `protoc --encode=raftpb.Message` with etcd's raft.proto field numbers.
test('encodeMessage writes the bytes protoc writes for raftpb.Message', () => {
  const app = newMessage({
    type: MessageType.MsgApp,
    to: 2n,
    from: 1n,
    term: 5,
    logTerm: 4,
    index: 10,
    entries: [
      { term: 5, index: 11, type: EntryType.Normal, data: bytes('hello') },
      { term: 5, index: 12, type: EntryType.ConfChange, data: new Uint8Array([8, 1]) },
    ],
    commit: 9,
    context: bytes('ctx'),
  });
  const appHex = '08031002180120052804300a3a0d08001005180b220568656c6c6f3a0a08011005180c220208014009500058006203637478';
  assert.equal(hex(encodeMessage(app)), appHex);
  assert.deepEqual(decodeMessage(fromHex(appHex)), app);

  const snap = newMessage({
    type: MessageType.MsgSnap,
    to: 0xffff_ffff_ffff_ffffn,
    from: 300n,
    term: 7,
    snapshot: {
      metadata: { index: 100, term: 6, confState: { voters: [1n, 2n], learners: [3n] } },
      data: bytes('state'),
    },
  });
  const snapHex =
    '080710ffffffffffffffffff0118ac0220072800300040004a150a057374617465120c0a060801080210031064180650005800';
  assert.equal(hex(encodeMessage(snap)), snapHex);
  assert.deepEqual(decodeMessage(fromHex(snapHex)), snap);

  const resp = newMessage({
    type: MessageType.MsgAppResp,
    to: 1n,
    from: 3n,
    term: Number.MAX_SAFE_INTEGER,
    logTerm: 3,
    index: 200,
    reject: true,
    rejectHint: 150,
  });
  const respHex = '08041001180320ffffffffffffff0f280330c80140005001589601';
  assert.equal(hex(encodeMessage(resp)), respHex);
  assert.deepEqual(decodeMessage(fromHex(respHex)), resp);
});

test('hard state and conf change match protoc', () => {
  assert.equal(hex(encodeHardState({ term: 3, vote: 2n, commit: 17 })), '080310021811');
  assert.deepEqual(decodeHardState(fromHex('080310021811')), { term: 3, vote: 2n, commit: 17 });
  const cc: ConfChange = { id: 42n, type: ConfChangeType.AddLearnerNode, nodeId: 4n, context: bytes('peer') };
  assert.equal(hex(encodeConfChange(cc)), '082a10031804220470656572');
  assert.deepEqual(decodeConfChange(fromHex('082a10031804220470656572')), cc);
});

const id = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const num = fc.oneof(fc.nat(300), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const data = fc.oneof(fc.constant(EMPTY_BYTES), fc.uint8Array({ minLength: 1, maxLength: 300 }));
const entry: fc.Arbitrary<Entry> = fc.record(
  {
    term: num,
    index: num,
    type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
    data,
  },
  { noNullPrototype: true },
);
const snapshot: fc.Arbitrary<Snapshot> = fc.record(
  {
    metadata: fc.record(
      {
        index: num,
        term: num,
        confState: fc.record(
          { voters: fc.array(id, { maxLength: 7 }), learners: fc.array(id, { maxLength: 3 }) },
          { noNullPrototype: true },
        ),
      },
      { noNullPrototype: true },
    ),
    data,
  },
  { noNullPrototype: true },
);
const message: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.integer({ min: 0, max: 18 }) as fc.Arbitrary<Message['type']>,
    to: id,
    from: id,
    term: num,
    logTerm: num,
    index: num,
    entries: fc.array(entry, { maxLength: 5 }),
    commit: num,
    snapshot: fc.option(snapshot, { nil: undefined }),
    reject: fc.boolean(),
    rejectHint: num,
    context: data,
  },
  { noNullPrototype: true },
);

test('every message round-trips exactly', () => {
  fc.assert(
    fc.property(message, (m) => {
      assert.deepEqual(decodeMessage(encodeMessage(m)), m);
    }),
    { numRuns: 2000, seed: 42 },
  );
});

test('entries, snapshots, conf states and conf changes round-trip exactly', () => {
  fc.assert(
    fc.property(entry, snapshot, (e, s) => {
      assert.deepEqual(decodeEntry(encodeEntry(e)), e);
      assert.deepEqual(decodeSnapshot(encodeSnapshot(s)), s);
      assert.deepEqual(decodeConfState(encodeConfState(s.metadata.confState)), s.metadata.confState);
    }),
    { numRuns: 1000, seed: 7 },
  );
  fc.assert(
    fc.property(id, id, fc.constantFrom(0, 1, 2, 3), data, (ccId, nodeId, type, context) => {
      const cc = { id: ccId, nodeId, type: type as ConfChange['type'], context };
      assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
    }),
    { numRuns: 500, seed: 9 },
  );
});

test('member ids at the edges of the number paths round-trip with the bytes protobuf gives them', () => {
  const edges = [
    2n ** 49n - 1n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    2n ** 56n,
    2n ** 63n,
    0x8000_0000_0000_0001n,
    0xffff_ffff_ffff_fffen,
    0xffff_ffff_ffff_ffffn,
  ];
  for (const to of edges) {
    const m = newMessage({ type: MessageType.MsgHeartbeat, to, from: to - 1n, term: 1 });
    const encoded = encodeMessage(m);
    // The field's varint, written out by hand: 7 bits at a time, low first.
    const groups: number[] = [];
    for (let v = to; ; v >>= 7n) {
      if (v < 0x80n) {
        groups.push(Number(v));
        break;
      }
      groups.push(Number(v & 0x7fn) | 0x80);
    }
    assert.equal(hex(encoded).slice(4, 6 + 2 * groups.length), `10${hex(new Uint8Array(groups))}`);
    assert.deepEqual(decodeMessage(encoded), m);
  }
});

test('decoding accepts packed ids and skips unknown fields', () => {
  // ConfState with voters packed (field 1, wire type 2): [1, 300], learners unpacked: 5,
  // then an unknown field 15 (varint) and an unknown field 14 (bytes).
  const cs = fromHex('0a03' + '01ac02' + '1005' + '7801' + '72026869');
  assert.deepEqual(decodeConfState(cs), { voters: [1n, 300n], learners: [5n] });
  // etcd 3.4 always writes an empty snapshot and auto_leave=false: both are accepted.
  const m = decodeMessage(fromHex('0804' + '1001' + '1802' + '4a06' + '1204' + '0a022800'));
  assert.equal(m.type, MessageType.MsgAppResp);
  assert.deepEqual(m.snapshot?.metadata.confState, { voters: [], learners: [] });
});

test('malformed bytes throw ErrDecode', () => {
  const good = encodeMessage(
    newMessage({
      type: MessageType.MsgApp,
      to: 1n,
      from: 2n,
      entries: [{ term: 1, index: 1, type: 0, data: bytes('x') }],
    }),
  );
  // A strict prefix either ends at a field boundary (and decodes: the missing fields take their
  // defaults) or fails with ErrDecode, never with anything else.
  let failures = 0;
  for (let i = 1; i < good.length; i++) {
    try {
      decodeMessage(good.subarray(0, i));
    } catch (err) {
      assert.ok(err instanceof ErrDecode, `prefix ${i}: ${err}`);
      failures++;
    }
  }
  assert.ok(failures > good.length / 2, `only ${failures} prefixes failed`);
  const cases: [string, string][] = [
    ['', 'missing message type'],
    ['0813', 'unknown message type'], // type 19
    ['080118', 'truncated varint'],
    ['0801' + '20' + 'ffffffffffffffff7f', 'larger than 2^53-1'], // term 2^63-1
    ['0801' + '10' + 'ffffffffffffffffff7f', 'larger than 2^64-1'], // to: 2^70-ish
    ['0801' + '10' + 'ffffffffffffffffff02', 'larger than 2^64-1'], // to: 2^64 + ... (10th byte 2)
    ['0801' + '3a05' + '0800', 'runs past the end'],
    ['0801' + '5002', 'bool out of range'],
    ['0801' + '2205' + '6869', 'wire type'], // term sent as bytes
    ['0801' + '4a04' + '120a0a00', 'runs past the end'],
    ['0801' + '4a06' + '1204' + '0a021801', 'joint configurations are not supported'],
    ['0801' + '3a02' + '0805', 'unsupported entry type'],
    ['0801' + '7f', 'unsupported wire type'],
  ];
  for (const [h, want] of cases) {
    assert.throws(
      () => decodeMessage(fromHex(h)),
      (err: unknown) => err instanceof ErrDecode && err.message.includes(want),
      `${h} should fail with ${want}`,
    );
  }
  assert.throws(() => decodeConfChange(fromHex('1009')), ErrDecode);
  assert.throws(() => decodeHardState(fromHex('08')), ErrDecode);
});

test('encoding refuses ill-formed values instead of writing garbage', () => {
  const base = newMessage({ type: MessageType.MsgApp, to: 1n, from: 2n });
  assert.throws(() => encodeMessage({ ...base, term: -1 }), ErrInvalidMessage);
  assert.throws(() => encodeMessage({ ...base, index: 1.5 }), ErrInvalidMessage);
  assert.throws(() => encodeMessage({ ...base, to: 1n << 64n }), ErrInvalidMessage);
  assert.throws(() => encodeMessage({ ...base, type: 42 as Message['type'] }), ErrInvalidMessage);
  assert.throws(() => encodeMessage({ ...base, entries: [{ term: 1, index: 1, type: 7 as 0, data: EMPTY_BYTES }] }));
  assert.throws(() => encodeConfChange({ id: 0n, type: 9 as 0, nodeId: 1n, context: EMPTY_BYTES }), ErrInvalidMessage);
  assert.throws(() => encodeHardState({ term: 1, vote: -1n, commit: 0 }), ErrInvalidMessage);
});

test('decoded bytes do not alias the input buffer', () => {
  const buf = encodeMessage(
    newMessage({
      type: MessageType.MsgApp,
      to: 1n,
      from: 2n,
      entries: [{ term: 1, index: 1, type: 0, data: bytes('abc') }],
    }),
  );
  const m = decodeMessage(buf);
  buf.fill(0);
  assert.deepEqual(m.entries[0]!.data, bytes('abc'));
});

test('encoding a batch of appends is fast (no JSON, one buffer per message)', () => {
  const entries: Entry[] = [];
  for (let i = 0; i < 64; i++) entries.push({ term: 9, index: 1000 + i, type: 0, data: new Uint8Array(128) });
  const m = newMessage({
    type: MessageType.MsgApp,
    to: 2n,
    from: 1n,
    term: 9,
    index: 999,
    logTerm: 9,
    entries,
    commit: 990,
  });
  let n = 0;
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) n += decodeMessage(encodeMessage(m)).entries.length;
  const ms = performance.now() - t0;
  assert.equal(n, 2000 * 64);
  // 128k entries each way: generous bound that still catches an accidental quadratic path.
  assert.ok(ms < 5000, `took ${ms}ms`);
});
