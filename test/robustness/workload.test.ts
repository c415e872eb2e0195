import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KvInput, KvOutput } from './kv-model.ts';
import { checkFinalReads, checkRevisions, type RecordedOperation, seededRandom } from './workload.ts';

const INF = Number.POSITIVE_INFINITY;

function rec(
  call: number,
  ret: number,
  input: KvInput,
  output: KvOutput,
  revision: number | undefined,
  extra: Partial<RecordedOperation> = {},
): RecordedOperation {
  return {
    clientId: 0,
    call,
    return: ret,
    input,
    output,
    member: 'm0',
    revision: revision === undefined ? undefined : BigInt(revision),
    modRevision: undefined,
    final: false,
    ...extra,
  };
}
const put = (call: number, ret: number, value: string, revision: number, key = 'k') =>
  rec(call, ret, { kind: 'put', key, value }, { kind: 'put' }, revision);
const get = (call: number, ret: number, value: string | null, revision: number, modRevision?: number, final = false) =>
  rec(call, ret, { kind: 'get', key: 'k' }, { kind: 'get', value }, revision, {
    modRevision: modRevision === undefined ? undefined : BigInt(modRevision),
    final,
  });

describe('the revision checks', () => {
  test('a consistent history passes', () => {
    assert.deepEqual(
      checkRevisions([put(0, 1, 'a', 2), get(2, 3, 'a', 2, 2), put(4, 5, 'b', 3), get(6, 7, 'b', 3, 3)]),
      [],
    );
  });

  test('two acknowledged writes at one revision', () => {
    const problems = checkRevisions([put(0, 1, 'a', 2), put(0, 1, 'b', 2, 'other')]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /two writes at revision 2/);
  });

  test('a value read at a mod revision other than its write, or at two mod revisions', () => {
    assert.match(
      checkRevisions([put(0, 1, 'a', 2), get(2, 3, 'a', 5, 4)])[0] ?? '',
      /mod revision 4, the write was at 2/,
    );
    const unknownWrite = rec(0, INF, { kind: 'put', key: 'k', value: 'u' }, { kind: 'unknown' }, undefined);
    assert.match(
      checkRevisions([unknownWrite, get(2, 3, 'u', 5, 5), get(4, 5, 'u', 6, 6)])[0] ?? '',
      /value u read at mod revisions 5 and 6/,
    );
  });

  test('a revision going back in real time', () => {
    assert.match(checkRevisions([put(0, 1, 'a', 7), get(2, 3, null, 6)])[0] ?? '', /saw revision 6 after/);
    // Overlapping operations may see either order.
    assert.deepEqual(checkRevisions([put(0, 3, 'a', 7), get(1, 4, null, 6)]), []);
  });
});

describe('the final reads', () => {
  test('members agreeing on the last acknowledged write pass', () => {
    assert.deepEqual(checkFinalReads([put(0, 1, 'a', 2), get(5, 6, 'a', 2, 2, true), get(5, 6, 'a', 2, 2, true)]), []);
  });

  test('members that disagree', () => {
    const problems = checkFinalReads([
      put(0, 1, 'a', 2),
      get(5, 6, 'a', 3, 2, true),
      get(5, 6, null, 3, undefined, true),
    ]);
    assert.match(problems[0] ?? '', /members disagree on k/);
  });

  test('an acknowledged write older than the final value is lost; a key gone without any delete is lost', () => {
    assert.match(
      checkFinalReads([put(0, 1, 'a', 2), put(2, 3, 'b', 4), get(5, 6, 'a', 4, 2, true)])[0] ?? '',
      /older than/,
    );
    assert.match(checkFinalReads([put(0, 1, 'a', 2), get(5, 6, null, 2, undefined, true)])[0] ?? '', /never deleted/);
    const maybeDelete = rec(2, INF, { kind: 'delete', key: 'k' }, { kind: 'unknown' }, undefined);
    assert.deepEqual(checkFinalReads([put(0, 1, 'a', 2), maybeDelete, get(5, 6, null, 3, undefined, true)]), []);
  });
});

test('seededRandom repeats itself for a seed and stays in [0, 1)', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, seededRandom(8)));
});
