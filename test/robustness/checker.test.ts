import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkOperations } from './checker.ts';
import { type KvInput, type KvOperation, type KvOutput, kvModel } from './kv-model.ts';

const INF = Number.POSITIVE_INFINITY;
const K = 'k';

function op(clientId: number, call: number, ret: number, input: KvInput, output: KvOutput): KvOperation {
  return { clientId, call, return: ret, input, output };
}
const put = (c: number, call: number, ret: number, value: string, key = K) =>
  op(c, call, ret, { kind: 'put', key, value }, ret === INF ? { kind: 'unknown' } : { kind: 'put' });
const get = (c: number, call: number, ret: number, value: string | null, key = K) =>
  op(c, call, ret, { kind: 'get', key }, { kind: 'get', value });
const del = (c: number, call: number, ret: number, deleted: number, key = K) =>
  op(c, call, ret, { kind: 'delete', key }, { kind: 'delete', deleted });
const cas = (c: number, call: number, ret: number, expected: string | null, value: string, succeeded: boolean) =>
  op(c, call, ret, { kind: 'cas', key: K, expected, value }, { kind: 'cas', succeeded });

function verdict(ops: KvOperation[]): string {
  return checkOperations(kvModel, ops).result;
}

describe('the linearizability checker on hand-made histories', () => {
  test('sequential histories: what was written is read, a delete empties the key', () => {
    assert.equal(verdict([put(0, 0, 1, 'a'), get(0, 2, 3, 'a'), del(0, 4, 5, 1), get(0, 6, 7, null)]), 'ok');
    assert.equal(verdict([put(0, 0, 1, 'a'), get(1, 2, 3, null)]), 'illegal'); // an acknowledged write lost
    assert.equal(verdict([put(0, 0, 1, 'a'), get(1, 2, 3, 'b')]), 'illegal'); // a value never written
    assert.equal(verdict([del(0, 0, 1, 1)]), 'illegal'); // deleted a key that did not exist
    assert.equal(verdict([put(0, 0, 1, 'a'), del(0, 2, 3, 0)]), 'illegal');
  });

  test('a read concurrent with a write may see either value; once one reader saw the new one, later ones must', () => {
    assert.equal(verdict([put(0, 0, 100, 'x'), get(1, 10, 30, 'x'), get(2, 25, 90, null)]), 'ok');
    assert.equal(verdict([put(0, 0, 100, 'x'), get(1, 10, 30, 'x'), get(2, 40, 90, null)]), 'illegal');
    assert.equal(verdict([put(0, 0, 100, 'x'), get(1, 10, 30, null), get(2, 40, 90, 'x')]), 'ok');
  });

  test('two writes done: every later read sees the same last one', () => {
    const writes = [put(0, 0, 10, 'x'), put(1, 0, 10, 'y')];
    assert.equal(verdict([...writes, get(2, 11, 12, 'y'), get(2, 13, 14, 'y')]), 'ok');
    assert.equal(verdict([...writes, get(2, 11, 12, 'y'), get(2, 13, 14, 'x')]), 'illegal');
    assert.equal(verdict([...writes, get(2, 11, 12, 'x'), get(3, 11, 12, 'y')]), 'illegal');
  });

  test('a write of unknown outcome may take effect at any time after its invocation, or never, but only once', () => {
    const maybe = put(0, 5, INF, 'm');
    assert.equal(verdict([put(1, 0, 1, 'a'), maybe, get(2, 10, 11, 'a'), get(2, 20, 21, 'm')]), 'ok');
    assert.equal(verdict([put(1, 0, 1, 'a'), maybe, get(2, 10, 11, 'a'), get(2, 20, 21, 'a')]), 'ok');
    assert.equal(verdict([put(1, 0, 1, 'a'), maybe, get(2, 10, 11, 'm'), get(2, 20, 21, 'a')]), 'illegal');
    // Not before it was invoked.
    assert.equal(verdict([put(1, 0, 1, 'a'), get(2, 2, 3, 'm'), maybe]), 'illegal');
    // A maybe-delete and a maybe-CAS follow the same rules.
    const maybeDelete = op(0, 5, INF, { kind: 'delete', key: K }, { kind: 'unknown' });
    assert.equal(verdict([put(1, 0, 1, 'a'), maybeDelete, get(2, 10, 11, null), get(2, 20, 21, null)]), 'ok');
    assert.equal(verdict([put(1, 0, 1, 'a'), maybeDelete, get(2, 10, 11, null), get(2, 20, 21, 'a')]), 'illegal');
    const maybeCas = op(0, 5, INF, { kind: 'cas', key: K, expected: 'zzz', value: 'c' }, { kind: 'unknown' });
    assert.equal(verdict([put(1, 0, 1, 'a'), maybeCas, get(2, 10, 11, 'c')]), 'illegal'); // it cannot match
  });

  test('compare-and-swap: two concurrent swaps from the same value cannot both succeed', () => {
    assert.equal(verdict([cas(0, 0, 10, null, 'a', true), cas(1, 0, 10, null, 'b', false), get(2, 11, 12, 'a')]), 'ok');
    assert.equal(verdict([cas(0, 0, 10, null, 'a', true), cas(1, 0, 10, null, 'b', true)]), 'illegal');
    assert.equal(verdict([cas(0, 0, 10, null, 'a', true), cas(1, 0, 10, 'a', 'b', true), get(2, 11, 12, 'b')]), 'ok');
    assert.equal(verdict([put(0, 0, 1, 'a'), cas(1, 2, 3, 'x', 'b', true)]), 'illegal'); // swapped from the wrong value
    assert.equal(verdict([put(0, 0, 1, 'a'), cas(1, 2, 3, 'a', 'b', false)]), 'illegal'); // should have matched
  });

  test('keys are checked apart; the report names the failing key and the stuck operations', () => {
    const result = checkOperations(kvModel, [
      put(0, 0, 1, 'a', 'k1'),
      put(0, 0, 1, 'b', 'k2'),
      get(1, 2, 3, 'a', 'k1'),
      get(1, 4, 5, 'a', 'k2'),
    ]);
    assert.equal(result.result, 'illegal');
    assert.equal(result.partitions, 2);
    assert.equal(result.operations, 4);
    if (result.result !== 'illegal') return;
    assert.ok(result.partition.every((o) => o.input.key === 'k2'));
    assert.deepEqual(
      result.longestPrefix.map((o) => o.input.kind),
      ['put'],
    );
    assert.deepEqual(
      result.stuckAt.map((o) => o.input.kind),
      ['get'],
    );
  });

  test('an operation completing before its invocation is refused', () => {
    assert.throws(() => checkOperations(kvModel, [put(0, 5, 4, 'a')]), RangeError);
  });
});

/** xorshift32, seeded: the same histories every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * A history of `clients` concurrent clients against a real register: each operation takes effect
 * at a random point inside its interval, so the history is linearizable by construction. Some
 * writes are recorded with an unknown outcome (whether or not they took effect).
 */
function linearizableHistory(seed: number, clients: number, opsPerClient: number, keys: number): KvOperation[] {
  const random = rng(seed);
  const planned: { op: KvOperation; point: number; applied: boolean }[] = [];
  for (let c = 0; c < clients; c++) {
    let t = random() * 5;
    for (let i = 0; i < opsPerClient; i++) {
      const call = t + random() * 2;
      const ret = call + 0.1 + random() * 10;
      const key = `k${Math.floor(random() * keys)}`;
      const r = random();
      const input: KvInput =
        r < 0.4
          ? { kind: 'get', key }
          : r < 0.7
            ? { kind: 'put', key, value: `${c}-${i}` }
            : r < 0.8
              ? { kind: 'delete', key }
              : {
                  kind: 'cas',
                  key,
                  expected: random() < 0.3 ? null : `${Math.floor(random() * clients)}-${i - 1}`,
                  value: `${c}-${i}`,
                };
      const unknown = input.kind !== 'get' && random() < 0.05;
      // An unknown write took effect inside its interval, or never.
      const applied = !unknown || random() < 0.5;
      planned.push({
        op: { clientId: c, call, return: unknown ? INF : ret, input, output: { kind: 'unknown' } },
        point: call + random() * (ret - call),
        applied,
      });
      t = ret;
    }
  }
  const state = new Map<string, string | null>();
  for (const p of [...planned].sort((a, b) => a.point - b.point)) {
    if (!p.applied) continue;
    const input = p.op.input;
    const current = state.get(input.key) ?? null;
    let output: KvOutput;
    switch (input.kind) {
      case 'put':
        state.set(input.key, input.value);
        output = { kind: 'put' };
        break;
      case 'get':
        output = { kind: 'get', value: current };
        break;
      case 'delete':
        state.set(input.key, null);
        output = { kind: 'delete', deleted: current === null ? 0 : 1 };
        break;
      case 'cas':
        if (current === input.expected) state.set(input.key, input.value);
        output = { kind: 'cas', succeeded: current === input.expected };
        break;
    }
    if (p.op.return !== INF) p.op.output = output;
  }
  return planned.map((p) => p.op);
}

describe('the linearizability checker on generated histories', () => {
  test('concurrent histories linearizable by construction pass, in reasonable time', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const ops = linearizableHistory(seed, 8, 250, 4);
      const startedMs = Date.now();
      const result = checkOperations(kvModel, ops, { timeoutMs: 20_000 });
      assert.equal(result.result, 'ok', `seed ${seed}`);
      assert.equal(result.operations, 2000);
      assert.ok(Date.now() - startedMs < 10_000, `seed ${seed} took ${Date.now() - startedMs} ms`);
    }
  });

  test('the same histories with one read changed to a value never written fail', () => {
    // Proving a history illegal means exhausting the search: these are smaller.
    for (const seed of [1, 2, 3]) {
      const ops = linearizableHistory(seed, 8, 60, 4);
      const reads = ops.filter((o) => o.input.kind === 'get');
      const victim = reads[Math.floor(reads.length / 2)]!;
      victim.output = { kind: 'get', value: 'never-written' };
      const result = checkOperations(kvModel, ops, { timeoutMs: 20_000 });
      assert.equal(result.result, 'illegal', `seed ${seed}`);
      if (result.result === 'illegal') assert.ok(result.partition.includes(victim));
    }
  });

  test('a stale read, one that misses a write completed before it started, fails', () => {
    // A sequence where each read follows a completed write on one key, then one read goes stale.
    const ops: KvOperation[] = [];
    let t = 0;
    for (let i = 0; i < 200; i++) {
      ops.push(put(0, t, t + 1, `v${i}`));
      ops.push(get(1, t + 0.5, t + 3, i % 2 === 0 ? `v${i}` : i === 0 ? null : `v${i - 1}`));
      t += 4;
    }
    assert.equal(verdict(ops), 'ok');
    ops.push(put(0, t, t + 1, 'last'));
    ops.push(get(1, t + 2, t + 3, 'v199'));
    assert.equal(verdict(ops), 'illegal');
  });
});
