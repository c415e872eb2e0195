/**
 * Named KV cases, each sent to the real etcd and to the server under test (etcd-ts, or a second
 * real etcd with COMPAT_TARGET=etcd): every answer must be the same, as in the random
 * differential test, and the real etcd's answer to each case is also checked against what the
 * case is about, so a case cannot pass by not testing anything. These are the corners of etcd's
 * request checking and txn semantics that the random sequences reach only now and then: the
 * order in which etcd runs its checks, how it decides that a txn writes a key twice, when the
 * compares of a nested txn are evaluated, and what the headers of nested responses carry.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { GrpcCallError } from '../../src/client/channel.ts';
import {
  CompactionRequest,
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  DeleteRangeRequest,
  HashKVRequest,
  MaintenanceService,
  PutRequest,
  RangeRequest,
  RangeRequest_SortTarget,
  type RequestOp,
  TxnRequest,
} from '../../src/proto/index.ts';
import { bytes, describeOp, type KvOp, type Outcome, send } from '../helpers/kv-ops.ts';
import { compatTarget, Member, MemberKind } from '../helpers/member.ts';
import { type Plain, plainResponse } from '../helpers/normalize.ts';

const MAX_TXN_OPS = 8;
const CALL_TIMEOUT_MS = 10_000;
const SUITE_TIMEOUT_MS = 60_000;
const MISSING_LEASE_ID = 0x6d697373n;

let reference: Member | undefined;
let target: Member | undefined;
/** Set when the two servers answered differently: their states may differ from then on. */
let diverged = false;
let caseNumber = 0;

async function stopPair(): Promise<void> {
  await Promise.all([reference?.stop(), target?.stop()]);
  reference = undefined;
  target = undefined;
}

/** Starts a fresh pair of servers unless the current one still holds the same data. */
async function ensurePair(): Promise<{ reference: Member; target: Member }> {
  if (diverged) await stopPair();
  diverged = false;
  if (reference === undefined || target === undefined) {
    const extraArgs = [`--max-txn-ops=${MAX_TXN_OPS}`];
    const started = await Promise.allSettled([
      Member.start({ kind: MemberKind.ETCD, name: 'reference', extraArgs }),
      Member.start({ kind: compatTarget(), name: 'target', extraArgs }),
    ]);
    for (const s of started) {
      if (s.status === 'fulfilled') s.value.name === 'reference' ? (reference = s.value) : (target = s.value);
    }
    const failure = started.find((s) => s.status === 'rejected');
    if (failure !== undefined) {
      await stopPair();
      throw failure.reason;
    }
  }
  return { reference: reference!, target: target! };
}

/** Builders of requests under one case's key prefix. */
class CaseKeys {
  readonly prefix: string;
  /** The real etcd's revision when the case starts. */
  readonly revision: bigint;

  constructor(prefix: string, revision: bigint) {
    this.prefix = prefix;
    this.revision = revision;
  }

  key(suffix: string): Buffer {
    return bytes(this.prefix + suffix);
  }

  put(suffix: string, fields: Partial<PutRequest> = {}): KvOp {
    return { kind: 'put', request: PutRequest.fromPartial({ key: this.key(suffix), value: bytes('v'), ...fields }) };
  }

  range(suffix: string, fields: Partial<RangeRequest> = {}): KvOp {
    return { kind: 'range', request: RangeRequest.fromPartial({ key: this.key(suffix), ...fields }) };
  }

  txn(compare: Compare[], success: KvOp[], failure: KvOp[] = []): KvOp {
    return {
      kind: 'txn',
      request: TxnRequest.fromPartial({ compare, success: success.map(requestOp), failure: failure.map(requestOp) }),
    };
  }

  /** A delete of one key, or of [key, end) when `end` is given (`\x00`: to the end of the keyspace). */
  del(suffix: string, end?: string): KvOp {
    const rangeEnd = end === undefined ? new Uint8Array() : end === '\x00' ? bytes(end) : this.key(end);
    return { kind: 'delete', request: DeleteRangeRequest.fromPartial({ key: this.key(suffix), rangeEnd }) };
  }

  versionIs(suffix: string, version: bigint): Compare {
    return {
      key: this.key(suffix),
      rangeEnd: new Uint8Array(),
      target: Compare_CompareTarget.VERSION,
      result: Compare_CompareResult.EQUAL,
      targetUnion: { $case: 'version', value: version },
    };
  }
}

function requestOp(op: KvOp): RequestOp {
  switch (op.kind) {
    case 'put':
      return { request: { $case: 'requestPut', value: op.request } };
    case 'range':
      return { request: { $case: 'requestRange', value: op.request } };
    case 'delete':
      return { request: { $case: 'requestDeleteRange', value: op.request } };
    case 'txn':
      return { request: { $case: 'requestTxn', value: op.request } };
    case 'compact':
      throw new Error('a compaction cannot be part of a txn');
  }
}

/** The value at a path of plain data (object fields and array indexes). */
function at(value: Plain | undefined, ...path: (string | number)[]): Plain | undefined {
  let current = value;
  for (const step of path) {
    if (current === null || current === undefined || typeof current !== 'object') return undefined;
    current = Array.isArray(current) ? current[step as number] : current[step as string];
  }
  return current;
}

function errorOf(outcome: Outcome | undefined): string | undefined {
  return outcome !== undefined && 'error' in outcome ? outcome.error.details : undefined;
}

function okOf(outcome: Outcome | undefined): Plain | undefined {
  assert.ok(outcome !== undefined && 'ok' in outcome, `expected a response, got ${JSON.stringify(outcome)}`);
  return outcome.ok;
}

async function revisionNow(): Promise<bigint> {
  const { reference } = await ensurePair();
  const answer = await send(
    reference.channel,
    { kind: 'range', request: RangeRequest.fromPartial({ key: bytes('-') }) },
    CALL_TIMEOUT_MS,
  );
  assert.ok(answer.revision !== undefined, 'the real etcd answers a range with a revision');
  return answer.revision;
}

/**
 * HashKV at each revision on both servers: equal answers (responses or errors), the real etcd's
 * returned. hash_revision is etcd 3.5's (the revision hashed): a 3.4 reference leaves it 0, and
 * then the target's is only checked to be 0 or that revision.
 */
async function sameHashes(revisions: readonly bigint[]): Promise<Plain[]> {
  const { reference, target } = await ensurePair();
  const newest = await revisionNow();
  const expected: Plain[] = [];
  for (const revision of revisions) {
    const [want, got] = await Promise.all(
      [reference, target].map(async (m): Promise<{ [field: string]: Plain }> => {
        try {
          const request = HashKVRequest.fromPartial({ revision });
          const response = plainResponse(
            await m.channel.unary(MaintenanceService.HashKV, request, { timeoutMs: CALL_TIMEOUT_MS }),
          );
          return response as { [field: string]: Plain };
        } catch (err) {
          if (!(err instanceof GrpcCallError)) throw err;
          return { code: err.code, details: err.details };
        }
      }),
    );
    if (want!.hashRevision === '0n' && got!.hashRevision !== undefined) {
      const hashed = revision === 0n ? newest : revision;
      assert.ok(['0n', `${hashed}n`].includes(String(got!.hashRevision)), `hash_revision at ${revision}`);
      delete want!.hashRevision;
      delete got!.hashRevision;
    }
    if (!isDeepStrictEqual(got, want)) diverged = true;
    assert.deepEqual(got, want, `HashKV at revision ${revision}`);
    expected.push(want!);
  }
  return expected;
}

/**
 * Sends the case's ops to both servers one after the other, asserts equal answers, and returns
 * the real etcd's answers for the case's own checks.
 */
async function sameAnswers(build: (keys: CaseKeys) => KvOp[]): Promise<Outcome[]> {
  const keys = new CaseKeys(`case${String(caseNumber++).padStart(2, '0')}/`, await revisionNow());
  const { reference, target } = await ensurePair();
  const ops = build(keys);
  const expected: Outcome[] = [];
  for (const [index, op] of ops.entries()) {
    const [want, got] = await Promise.all([
      send(reference.channel, op, CALL_TIMEOUT_MS),
      send(target.channel, op, CALL_TIMEOUT_MS),
    ]);
    if (!isDeepStrictEqual(got.outcome, want.outcome)) {
      diverged = true;
      assert.deepEqual(
        got.outcome,
        want.outcome,
        `${target.kind} answers ${describeOp(index, op)} differently from etcd`,
      );
    }
    expected.push(want.outcome);
  }
  return expected;
}

describe(`KV cases: real etcd vs ${compatTarget()}`, { timeout: SUITE_TIMEOUT_MS }, () => {
  after(stopPair);

  // First, on servers that never compacted: etcd's compacted revision is then -1.
  test('txn: a range at a negative revision below the compacted revision is "compacted"', async () => {
    const answers = await sameAnswers((k) => [
      k.put('a'),
      k.txn([], [k.range('a', { revision: -3n })]),
      k.txn([], [k.range('a', { revision: -1n })]),
      k.range('a', { revision: -3n }),
    ]);
    assert.equal(errorOf(answers[1]), 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(at(okOf(answers[2]), 'succeeded'), true);
    assert.equal(at(okOf(answers[3]), 'count'), '1n', 'outside a txn a negative revision reads the newest');
  });

  test('put: the lease is looked up before ignore_value needs the key', async () => {
    const answers = await sameAnswers((k) => [
      k.put('missing', { value: bytes(''), ignoreValue: true, lease: MISSING_LEASE_ID }),
    ]);
    assert.equal(errorOf(answers[0]), 'etcdserver: requested lease not found');
  });

  test('txn: ignore_value needs the key before the lease is looked up', async () => {
    const answers = await sameAnswers((k) => [
      k.txn([], [k.put('missing', { value: bytes(''), ignoreValue: true, lease: MISSING_LEASE_ID })]),
    ]);
    assert.equal(errorOf(answers[0]), 'etcdserver: key not found');
  });

  test('txn: every put of the taken branch is checked before any range', async () => {
    const answers = await sameAnswers((k) => [
      k.txn([], [k.range('a', { revision: k.revision + 100n }), k.put('b', { lease: MISSING_LEASE_ID })]),
      k.txn([], [k.range('a', { revision: k.revision + 100n }), k.put('c', { value: bytes(''), ignoreValue: true })]),
      // Only the branch taken is checked.
      k.txn([k.versionIs('a', 1n)], [k.range('a')], [k.put('d', { lease: MISSING_LEASE_ID })]),
    ]);
    assert.equal(errorOf(answers[0]), 'etcdserver: requested lease not found');
    assert.equal(errorOf(answers[1]), 'etcdserver: key not found');
    assert.equal(errorOf(answers[2]), 'etcdserver: requested lease not found');
  });

  test('txn: a delete with range_end "\\0" does not count as overlapping a put', async () => {
    const answers = await sameAnswers((k) => [
      k.put('a'),
      k.txn([], [k.put('b'), k.del('a', '\x00')]),
      k.txn([], [k.del('a', '\x00'), k.put('c')]),
      k.range('', { rangeEnd: bytes('\x00') }),
    ]);
    assert.equal(at(okOf(answers[1]), 'succeeded'), true);
    assert.equal(at(okOf(answers[2]), 'succeeded'), true);
  });

  test('txn: a delete and a put of the same key in one branch are a duplicate', async () => {
    const answers = await sameAnswers((k) => [
      k.txn([], [k.put('a'), k.del('a')]),
      k.txn([], [k.del('a', 'b'), k.put('a')]),
    ]);
    assert.equal(errorOf(answers[0]), 'etcdserver: duplicate key given in txn request');
    assert.equal(errorOf(answers[1]), 'etcdserver: duplicate key given in txn request');
  });

  test('txn: deletes of an earlier nested txn conflict with puts of a later one, not the other way', async () => {
    const answers = await sameAnswers((k) => [
      k.txn([], [k.txn([], [], [k.del('a')]), k.txn([], [], [k.put('a')])]),
      k.txn([], [k.txn([], [], [k.put('a')]), k.txn([], [], [k.del('a')])]),
      // Then and else of one nested txn may put the same key: only one of them runs.
      k.txn([], [k.txn([k.versionIs('x', 0n)], [k.put('x')], [k.put('x')])]),
    ]);
    assert.equal(errorOf(answers[0]), 'etcdserver: duplicate key given in txn request');
    assert.equal(at(okOf(answers[1]), 'succeeded'), true);
    assert.equal(at(okOf(answers[2]), 'responses', 0, 'response', 'value', 'succeeded'), true);
  });

  test('txn: size, empty key and provided value/lease checks come before duplicate checks', async () => {
    const nested = (k: CaseKeys) =>
      k.txn(
        [],
        Array.from({ length: MAX_TXN_OPS - 1 }, (_, i) => k.range(String(i))),
      );
    const twice = (k: CaseKeys) => k.txn([], [k.put('a'), k.put('a')]);
    const answers = await sameAnswers((k) => [
      // The nested txn may hold MAX - (ops of the outer branch) ops: 7 > 8 - 2.
      k.txn([], [k.put('a'), nested(k)], [k.put('b'), k.put('b')]),
      k.txn([], [k.put('a'), k.put('a'), k.put('c', { key: Buffer.alloc(0) })]),
      k.txn([], [k.put('a'), k.put('a'), k.put('c', { ignoreLease: true, lease: MISSING_LEASE_ID })]),
      k.txn([], [k.put('a'), k.put('a'), k.put('c', { ignoreValue: true })]),
      // The same with the duplicate inside an earlier nested txn.
      k.txn([], [twice(k), nested(k)]),
      k.txn([], [twice(k), k.put('c', { key: Buffer.alloc(0) })]),
      k.txn([], [twice(k), k.put('c', { ignoreLease: true, lease: MISSING_LEASE_ID })]),
      k.txn([], [twice(k)], [k.range('c', { key: Buffer.alloc(0) })]),
    ]);
    assert.equal(errorOf(answers[0]), 'etcdserver: too many operations in txn request');
    assert.equal(errorOf(answers[1]), 'etcdserver: key is not provided');
    assert.equal(errorOf(answers[2]), 'etcdserver: lease is provided');
    assert.equal(errorOf(answers[3]), 'etcdserver: value is provided');
    assert.equal(errorOf(answers[4]), 'etcdserver: too many operations in txn request');
    assert.equal(errorOf(answers[5]), 'etcdserver: key is not provided');
    assert.equal(errorOf(answers[6]), 'etcdserver: lease is provided');
    assert.equal(errorOf(answers[7]), 'etcdserver: key is not provided');
  });

  test('txn: nested compares see the store as it was before the outer txn', async () => {
    const answers = await sameAnswers((k) => [
      k.txn([], [k.put('new'), k.txn([k.versionIs('new', 0n)], [k.range('new')], [k.range('other')])]),
      k.range('new'),
    ]);
    assert.equal(at(okOf(answers[0]), 'responses', 1, 'response', 'value', 'succeeded'), true);
    assert.equal(at(okOf(answers[1]), 'count'), '1n');
  });

  test('txn: the headers of nested txn responses carry revision 0', async () => {
    const answers = await sameAnswers((k) => [
      k.txn([], [k.txn([], [k.range('a')])]),
      k.txn([], [k.txn([], [k.put('a')]), k.range('a')]),
    ]);
    for (const answer of answers) {
      assert.equal(at(okOf(answer), 'responses', 0, 'response', 'value', 'header', 'revision'), '0n');
    }
  });

  test('range: count is taken before the revision filters; NONE with a non-key target sorts ascending', async () => {
    const answers = await sameAnswers((k) => [
      k.put('a', { value: bytes('3') }),
      k.put('b', { value: bytes('1') }),
      k.put('c', { value: bytes('2') }),
      k.range('', { rangeEnd: k.key('z'), minModRevision: k.revision + 2n }),
      k.range('', { rangeEnd: k.key('z'), sortTarget: RangeRequest_SortTarget.VALUE }),
      k.range('', { rangeEnd: k.key('z'), limit: 1n, minCreateRevision: k.revision + 3n }),
    ]);
    const filtered = okOf(answers[3]);
    assert.equal(at(filtered, 'count'), '3n');
    assert.equal((at(filtered, 'kvs') as Plain[]).length, 2);
    assert.deepEqual(
      (at(okOf(answers[4]), 'kvs') as Plain[]).map((kv) => at(kv, 'value')),
      ['b"1"', 'b"2"', 'b"3"'],
    );
  });

  test('txn after a compaction: a range at a negative revision is "compacted", outside a txn the newest', async () => {
    const answers = await sameAnswers((k) => [
      k.put('a'),
      { kind: 'compact', request: CompactionRequest.fromPartial({ revision: k.revision + 1n, physical: true }) },
      k.txn([], [k.range('a', { revision: -1n })]),
      k.range('a', { revision: -1n }),
      k.txn([], [k.range('a', { revision: k.revision })]),
    ]);
    assert.equal(errorOf(answers[2]), 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(at(okOf(answers[3]), 'count'), '1n');
    assert.equal(errorOf(answers[4]), 'etcdserver: mvcc: required revision has been compacted');
  });

  // At the compacted revision itself etcd 3.4 (and 3.5 before 3.5.5) answers "compacted" and later
  // releases hash it: the versions disagree, so that one revision is not compared.
  test('HashKV below the compacted revision is "compacted", above it the future is', async () => {
    await sameAnswers((k) => [k.put('a'), k.put('a')]);
    const compacted = await revisionNow();
    await sameAnswers(() => [
      { kind: 'compact', request: CompactionRequest.fromPartial({ revision: compacted, physical: true }) },
    ]);
    const answers = await sameHashes([compacted - 1n, 1n, compacted + 1n]);
    assert.equal(at(answers[0], 'details'), 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(at(answers[1], 'details'), 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(at(answers[2], 'details'), 'etcdserver: mvcc: required revision is a future revision');
  });

  test('HashKV: the same hash after the same writes, now and at past revisions', async () => {
    const start = await revisionNow();
    await sameAnswers((k) => [
      k.put('a'),
      k.put('b', { value: bytes('') }),
      k.del('a'),
      k.put('b', { value: bytes('2'), lease: 0n }),
    ]);
    const answers = await sameHashes([0n, start + 1n, start + 3n, start + 4n]);
    assert.deepEqual(answers[0], answers[3], 'revision 0 hashes the newest revision');
    assert.notEqual(at(answers[1], 'hash'), at(answers[2], 'hash'));
  });
});
