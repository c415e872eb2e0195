import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Backend, MetaKey } from '../../src/storage/backend/index.ts';
import { decodeKeyValue, encodeKeyValue, KvView } from '../../src/storage/mvcc/codec.ts';
import { etcdKeyValueBytes } from '../../src/storage/mvcc/etcd-format.ts';
import {
  CompactedError,
  FutureRevisionError,
  type KeyValue,
  MvccErrorCode,
  MvccStore,
  type RangeResult,
} from '../../src/storage/mvcc/index.ts';
import { IndexHit, KeyIndex } from '../../src/storage/mvcc/key-index.ts';
import {
  isTombstoneKey,
  RevisionSet,
  revisionKey,
  revisionMain,
  revisionSub,
} from '../../src/storage/mvcc/revision.ts';
import { IndexCursor, TreeIndex } from '../../src/storage/mvcc/tree-index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-mvcc-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (): string => join(root, `m${dirs++}`);

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');
const EMPTY = new Uint8Array(0);
const FROM = new Uint8Array([0]);

/** key=value@create/mod/version for compact assertions. */
function show(r: RangeResult | KeyValue[]): string[] {
  const kvs = Array.isArray(r) ? r : r.kvs;
  return kvs.map(
    (kv) =>
      `${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/${kv.version}${kv.lease ? `~${kv.lease}` : ''}`,
  );
}

async function withStore(fn: (store: MvccStore, backend: Backend, dir: string) => Promise<void> | void): Promise<void> {
  const dir = newDir();
  const backend = Backend.open(dir);
  const store = MvccStore.open(backend);
  try {
    await fn(store, backend, dir);
  } finally {
    await store.close();
    await backend.close();
  }
}

function put(store: MvccStore, key: string, value: string, lease = 0n): number {
  const w = store.write();
  w.put(b(key), b(value), lease);
  return w.end().rev;
}

function del(store: MvccStore, key: string, end = ''): number {
  const w = store.write();
  w.deleteRange(b(key), b(end));
  return w.end().rev;
}

function backendRevisions(backend: Backend): string[] {
  return backend
    .range('key', EMPTY, null)
    .keys.map((k) => `${revisionMain(k)}.${revisionSub(k)}${isTombstoneKey(k) ? 't' : ''}`);
}

describe('encoding', () => {
  test('revision keys are 17 bytes big endian, tombstones carry a trailing t, byte order is revision order', () => {
    assert.equal(Buffer.from(revisionKey(1, 2, false)).toString('hex'), '00000000000000015f0000000000000002');
    const t = revisionKey(2 ** 40 + 5, 7, true);
    assert.equal(t.length, 18);
    assert.equal(t[17], 0x74);
    assert.ok(isTombstoneKey(t));
    assert.equal(revisionMain(t), 2 ** 40 + 5);
    assert.equal(revisionSub(t), 7);
    const revs: [number, number][] = [];
    let seed = 3;
    for (let i = 0; i < 300; i++) {
      seed = (seed * 48271) % 2147483647;
      revs.push([seed % 1000, seed % 7]);
      revs.push([seed * 4096, seed % 3]);
    }
    const byNumber = [...revs].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    const byBytes = [...revs].sort((x, y) =>
      Buffer.compare(revisionKey(x[0], x[1], false), revisionKey(y[0], y[1], false)),
    );
    assert.deepEqual(byBytes, byNumber);
  });

  test('key-values round-trip through the codec; corrupt bytes are refused', () => {
    const cases: [string, number, number, bigint, Uint8Array][] = [
      ['k', 2, 1, 0n, b('v')],
      ['a/longer/key', 2 ** 45 + 3, 300, 7587861231231n, new Uint8Array(1000).fill(3)],
      ['\x00\xff', 1, 2 ** 31, -5n, EMPTY],
      ['max', 9, 9, 2n ** 63n - 1n, b('x')],
    ];
    for (const [key, create, version, lease, value] of cases) {
      const enc = encodeKeyValue(b(key), create, version, lease, value);
      const kv = decodeKeyValue(enc, 42);
      assert.equal(s(kv.key), key);
      assert.equal(kv.createRevision, create);
      assert.equal(kv.modRevision, 42);
      assert.equal(kv.version, version);
      assert.equal(kv.lease, lease);
      assert.equal(Buffer.compare(kv.value, value), 0);
      assert.equal(new KvView().parse(enc).keyString(enc), key);
    }
    const good = encodeKeyValue(b('key'), 5, 1, 9n, b('value'));
    assert.throws(() => decodeKeyValue(good.subarray(0, 6), 1), { code: MvccErrorCode.corrupt });
    assert.throws(() => decodeKeyValue(Uint8Array.of(0x02, 1, 0x61, 1, 1), 1), { code: MvccErrorCode.corrupt });
    assert.throws(() => decodeKeyValue(Uint8Array.of(0x01, 0x7f, 0x61, 1, 1), 1), { code: MvccErrorCode.corrupt });
  });
});

test("etcd's encoding of a key bucket value is mvccpb.KeyValue as gogoproto writes it", () => {
  const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
  const put = encodeKeyValue(b('foo'), 2, 2, 7n, b('bar'));
  // key=1 "foo", create_revision=2 2, mod_revision=3 3, version=4 2, value=5 "bar", lease=6 7
  assert.equal(hex(etcdKeyValueBytes(revisionKey(3, 0, false), put)), '0a03666f6f1002180320022a036261723007');
  const tomb = encodeKeyValue(b('foo'), 0, 0, 0n, EMPTY);
  assert.equal(hex(etcdKeyValueBytes(revisionKey(4, 1, true), tomb)), '0a03666f6f', 'a tombstone holds only the key');
  const negative = encodeKeyValue(b('k'), 5, 1, -1n, EMPTY);
  assert.equal(
    hex(etcdKeyValueBytes(revisionKey(2 ** 33, 0, false), negative)),
    `0a016b1005188080808020200130ffffffffffffffffff01`,
    'empty value left out; negative lease as a 10-byte varint; large revisions',
  );
});

describe('key index (etcd keyIndex)', () => {
  // key "foo": puts at 2, 4, tombstone 6, puts 8, 10, tombstone 12, puts 14, 16 (etcd's newTestKeyIndex)
  function testKeyIndex(): KeyIndex {
    const ki = new KeyIndex('foo');
    ki.put(2, 0);
    ki.put(4, 0);
    assert.ok(ki.tombstone(6, 0));
    ki.put(8, 0);
    ki.put(10, 0);
    assert.ok(ki.tombstone(12, 0));
    ki.put(14, 0);
    ki.put(16, 0);
    return ki;
  }

  function generations(ki: KeyIndex): string[] {
    const out: string[] = [];
    for (let i = 0; i < ki.generationCount; i++) {
      const g = ki.generation(i);
      const revs: number[] = [];
      for (let j = 0; j < g.revs.length; j += 2) revs.push(g.revs[j]!);
      out.push(`${g.createdMain}v${g.ver}:${revs.join(',')}`);
    }
    return out;
  }

  function available(set: RevisionSet, upTo = 20): number[] {
    const out: number[] = [];
    for (let r = 0; r <= upTo; r++) if (set.has(r, 0)) out.push(r);
    return out;
  }

  test('get walks generations like etcd (after compact at 4)', () => {
    const ki = testKeyIndex();
    ki.compact(4, new RevisionSet());
    const hit = new IndexHit();
    const expect: [number, number, number, number][] = [
      // atRev, mod, created, version; mod 0 = not found
      [17, 16, 14, 2],
      [16, 16, 14, 2],
      [15, 14, 14, 1],
      [14, 14, 14, 1],
      [13, 0, 0, 0],
      [12, 0, 0, 0],
      [11, 10, 8, 2],
      [10, 10, 8, 2],
      [9, 8, 8, 1],
      [8, 8, 8, 1],
      [7, 0, 0, 0],
      [6, 0, 0, 0],
      [5, 4, 2, 2],
      [4, 4, 2, 2],
      [3, 0, 0, 0],
      [2, 0, 0, 0],
      [1, 0, 0, 0],
    ];
    for (const [atRev, mod, created, ver] of expect) {
      const found = ki.get(atRev, hit);
      assert.equal(found, mod !== 0, `found at ${atRev}`);
      if (found) assert.deepEqual([hit.main, hit.createdMain, hit.ver], [mod, created, ver], `at ${atRev}`);
    }
  });

  test('compact keeps the last revision at or below each revision and drops finished generations', () => {
    const expect: [number, number[], string[]][] = [
      [1, [], ['2v3:2,4,6', '8v3:8,10,12', '14v2:14,16']],
      [2, [2], ['2v3:2,4,6', '8v3:8,10,12', '14v2:14,16']],
      [4, [4], ['2v3:4,6', '8v3:8,10,12', '14v2:14,16']],
      [5, [4], ['2v3:4,6', '8v3:8,10,12', '14v2:14,16']],
      [6, [], ['8v3:8,10,12', '14v2:14,16']],
      [7, [], ['8v3:8,10,12', '14v2:14,16']],
      [8, [8], ['8v3:8,10,12', '14v2:14,16']],
      [10, [10], ['8v3:10,12', '14v2:14,16']],
      [12, [], ['14v2:14,16']],
      [13, [], ['14v2:14,16']],
      [14, [14], ['14v2:14,16']],
      [16, [16], ['14v2:16']],
      [17, [16], ['14v2:16']],
    ];
    for (const [atRev, keep, gens] of expect) {
      const ki = testKeyIndex();
      const kept = new RevisionSet();
      testKeyIndex().keep(atRev, kept);
      const avail = new RevisionSet();
      ki.compact(atRev, avail);
      assert.deepEqual(available(avail), keep, `available after compact(${atRev})`);
      assert.deepEqual(available(kept), keep, `keep(${atRev}) agrees with compact`);
      assert.deepEqual(generations(ki), gens, `generations after compact(${atRev})`);
    }
    // One transaction (main revision 6) deleted and re-created the key: its state at 6 is 6.4.
    const recreated = new KeyIndex('r');
    recreated.put(6, 1);
    recreated.tombstone(6, 3);
    recreated.put(6, 4);
    recreated.tombstone(8, 2);
    const kept = new RevisionSet();
    recreated.compact(6, kept);
    assert.ok(kept.has(6, 4) && kept.size === 1, 'the re-created generation keeps its revision');
    assert.deepEqual(generations(recreated), ['6v2:6,8', '0v0:']);
    const gone = new KeyIndex('x');
    gone.put(2, 0);
    gone.tombstone(3, 0);
    gone.compact(5, new RevisionSet());
    assert.ok(gone.isEmpty(), 'a key deleted before the compaction disappears');
  });

  test('tombstone of a key that is not live is refused; revisions must increase', () => {
    const ki = new KeyIndex('k');
    ki.put(5, 0);
    assert.throws(() => ki.put(5, 0), /not after/);
    assert.throws(() => ki.put(4, 9), /not after/);
    ki.put(5, 1);
    assert.ok(ki.tombstone(6, 0));
    assert.equal(ki.tombstone(7, 0), false);
    ki.put(7, 0);
    assert.equal(ki.ver, 1);
    assert.equal(ki.createdMain, 7);
    assert.throws(() => new KeyIndex('z').put(0, 0), /not after/);
  });

  test('the current generation reads the same with one revision and with many, through compactions', () => {
    const ki = new KeyIndex('c');
    const hit = new IndexHit();
    ki.put(3, 1);
    assert.deepEqual([ki.revs, ki.lastMain, ki.lastSub], [[3, 1], 3, 1]);
    assert.ok(ki.get(3, hit));
    assert.deepEqual([hit.main, hit.sub, hit.ver], [3, 1, 1]);
    assert.equal(ki.get(2, hit), false);
    ki.put(5, 0);
    ki.put(9, 2);
    assert.deepEqual(ki.revs, [3, 1, 5, 0, 9, 2]);
    const seen = ki.revs;
    seen.push(99, 0);
    assert.deepEqual(ki.revs, [3, 1, 5, 0, 9, 2], 'revs is a copy');
    for (const [atRev, main, ver] of [
      [4, 3, 1],
      [5, 5, 2],
      [8, 5, 2],
      [9, 9, 3],
      [100, 9, 3],
    ] as const) {
      assert.ok(ki.get(atRev, hit), `found at ${atRev}`);
      assert.deepEqual([hit.main, hit.ver, hit.createdMain, hit.createdSub], [main, ver, 3, 1], `at ${atRev}`);
    }
    // Compacting at 6 keeps 5 and 9; at 9 only 9, which then is both first and latest.
    const kept6 = new RevisionSet();
    ki.compact(6, kept6);
    assert.ok(kept6.has(5, 0) && kept6.size === 1);
    assert.deepEqual(ki.revs, [5, 0, 9, 2]);
    ki.compact(9, new RevisionSet());
    assert.deepEqual(ki.revs, [9, 2]);
    assert.equal(ki.get(8, hit), false, 'history before the compaction is gone');
    assert.ok(ki.get(9, hit));
    assert.deepEqual([hit.main, hit.ver, hit.createdMain], [9, 3, 3]);
    // A one-revision generation compacts to itself, keeps its revision, and grows again.
    const kept = new RevisionSet();
    ki.keep(20, kept);
    ki.compact(20, new RevisionSet());
    assert.ok(kept.has(9, 2) && kept.size === 1);
    assert.deepEqual(ki.revs, [9, 2]);
    ki.put(21, 0);
    assert.ok(ki.tombstone(22, 0));
    assert.deepEqual(generations(ki), ['3v5:9,21,22', '0v0:']);
    assert.equal(ki.isLive(), false);
    assert.deepEqual([ki.lastMain, ki.revs], [0, []]);
    assert.ok(ki.get(21, hit));
    assert.deepEqual([hit.main, hit.ver], [21, 4]);
    assert.equal(ki.get(22, hit), false);
    // restore seeds the latest revision only, as etcd does from the backend.
    const restored = new KeyIndex('r');
    restored.restore(4, 11, 3, 7);
    assert.ok(restored.get(11, hit));
    assert.deepEqual([hit.main, hit.sub, hit.ver, hit.createdMain], [11, 3, 7, 4]);
    assert.throws(() => restored.restore(4, 12, 0, 1), /non-empty/);
  });
});

describe('tree index', () => {
  test('agrees with a sorted set through bursts of inserts, deletes and seeks', () => {
    const tree = new TreeIndex();
    const model = new Set<string>();
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const cur = new IndexCursor();
    const walk = (): string[] => {
      tree.seek('', cur);
      const out: string[] = [];
      for (let ki = tree.next(cur); ki !== undefined; ki = tree.next(cur)) out.push(ki.key);
      return out;
    };
    const probe = (sorted: string[]): void => {
      const key = `k${rnd(6000).toString(36)}`;
      const lo = sorted.findIndex((k) => k >= key);
      tree.seek(key, cur);
      assert.equal(tree.next(cur)?.key, lo < 0 ? undefined : sorted[lo], `seek ${key}`);
      const gt = sorted.findIndex((k) => k > key);
      tree.seek(key, cur, true);
      assert.equal(tree.next(cur)?.key, gt < 0 ? undefined : sorted[gt], `seek after ${key}`);
    };
    for (let round = 0; round < 60; round++) {
      // Bursts of every size: a few new keys (inserted one by one at the next seek) or many
      // (merged by rebuilding the chunks).
      const burst = rnd(3) === 0 ? 1 + rnd(3000) : 1 + rnd(20);
      for (let i = 0; i < burst; i++) {
        const key = `k${rnd(6000).toString(36)}${i % 3 === 0 ? '\x00' : ''}`;
        if (rnd(6) === 0) assert.equal(tree.delete(key), model.delete(key));
        else {
          assert.equal(tree.getOrCreate(key).key, key);
          model.add(key);
        }
        assert.equal(tree.get(key) !== undefined, model.has(key));
      }
      const sorted = [...model].sort();
      assert.equal(tree.size, sorted.length);
      if (round % 10 === 0) assert.deepEqual(walk(), sorted);
      for (let i = 0; i < 5; i++) probe(sorted);
    }
    const sorted = [...model].sort();
    assert.deepEqual(walk(), sorted);
    const rebuilt = TreeIndex.fromSorted(sorted.map((k) => new KeyIndex(k)));
    rebuilt.seek('', cur);
    const again: string[] = [];
    for (let ki = rebuilt.next(cur); ki !== undefined; ki = rebuilt.next(cur)) again.push(ki.key);
    assert.deepEqual(again, sorted);
    assert.throws(() => TreeIndex.fromSorted([new KeyIndex('b'), new KeyIndex('a')]), /not sorted/);
  });
});

describe('store: revisions and versions', () => {
  test('an empty store is at revision 1; each changing write transaction adds one', () =>
    withStore((store, backend) => {
      assert.equal(store.rev(), 1);
      assert.equal(store.compactRev(), -1);
      assert.equal(put(store, 'foo', 'bar'), 2);
      assert.equal(put(store, 'foo', 'baz'), 3);
      const w = store.write();
      assert.deepEqual(w.range(b('foo'), EMPTY).rev, 3);
      const r = w.end();
      assert.deepEqual(r, { rev: 3, events: [] }, 'no change, no new revision');
      assert.equal(del(store, 'nothing'), 3, 'deleting nothing changes nothing');
      assert.deepEqual(show(store.range(b('foo'), EMPTY)), ['foo=baz@2/3/2']);
      assert.deepEqual(backendRevisions(backend), ['2.0', '3.0']);
    }));

  test('changes of one transaction share a main revision with sub revisions 0, 1, 2...', () =>
    withStore((store, backend) => {
      put(store, 'x', '0');
      const w = store.write();
      w.put(b('a'), b('1'));
      w.put(b('b'), b('1'), 77n);
      w.put(b('a'), b('2'));
      assert.equal(w.rev(), 3);
      assert.deepEqual(show(w.range(b('a'), b('c'))), ['a=2@3/3/2', 'b=1@3/3/1~77'], 'sees its own writes');
      assert.deepEqual(show(store.range(b('a'), b('c'))), [], 'others do not until end()');
      const d = w.deleteRange(b('x'), EMPTY);
      assert.deepEqual(show(d.prevKvs), ['x=0@2/2/1']);
      const { rev, events } = w.end();
      assert.equal(rev, 3);
      assert.deepEqual(
        events.map((e) => `${e.type} ${show([e.kv])[0]}`),
        ['put a=1@3/3/1', 'put b=1@3/3/1~77', 'put a=2@3/3/2', 'delete x=@0/3/0'],
      );
      assert.deepEqual(backendRevisions(backend), ['2.0', '3.0', '3.1', '3.2', '3.3t']);
    }));

  test('version counts from 1 and restarts after a delete with a new create revision', () =>
    withStore((store) => {
      put(store, 'k', 'a'); // 2
      put(store, 'k', 'b'); // 3
      del(store, 'k'); // 4
      put(store, 'k', 'c'); // 5
      put(store, 'k', 'd'); // 6
      assert.deepEqual(show(store.range(b('k'), EMPTY)), ['k=d@5/6/2']);
      assert.deepEqual(show(store.range(b('k'), EMPTY, { rev: 3 })), ['k=b@2/3/2']);
      assert.deepEqual(show(store.range(b('k'), EMPTY, { rev: 4 })), []);
      assert.deepEqual(show(store.range(b('k'), EMPTY, { rev: 5 })), ['k=c@5/5/1']);
      assert.deepEqual(show(store.range(b('k'), EMPTY, { rev: 1 })), []);
    }));

  test('write transactions do not nest and cannot be used after end()', () =>
    withStore((store) => {
      const w = store.write();
      assert.throws(() => store.write(), { code: MvccErrorCode.txnInProgress });
      assert.throws(() => store.compact(1), { code: MvccErrorCode.txnInProgress });
      w.end();
      assert.throws(() => w.put(b('a'), b('b')), { code: MvccErrorCode.txnEnded });
      assert.throws(() => w.end(), { code: MvccErrorCode.txnEnded });
      store.write().end();
    }));

  test('bad arguments are refused and change nothing', () =>
    withStore((store, backend) => {
      put(store, 'a', '1');
      const w = store.write();
      assert.throws(() => w.put(EMPTY, b('v')), { code: MvccErrorCode.invalidArgument });
      assert.throws(() => w.put('a' as unknown as Uint8Array, b('v')), { code: MvccErrorCode.invalidArgument });
      assert.throws(() => w.put(b('a'), null as unknown as Uint8Array), { code: MvccErrorCode.invalidArgument });
      assert.throws(() => w.put(b('a'), b('v'), 2n ** 63n), { code: MvccErrorCode.invalidArgument });
      assert.throws(() => w.put(b('a'), b('v'), 5 as unknown as bigint), { code: MvccErrorCode.invalidArgument });
      assert.throws(() => w.deleteRange(b('a'), 'z' as unknown as Uint8Array), {
        code: MvccErrorCode.invalidArgument,
      });
      assert.deepEqual(w.end(), { rev: 2, events: [] });
      assert.throws(() => store.range(b('a'), EMPTY, { rev: 1.5 }), { code: MvccErrorCode.invalidArgument });
      assert.throws(() => store.compact(Number.NaN), { code: MvccErrorCode.invalidArgument });
      assert.deepEqual(backendRevisions(backend), ['2.0']);
    }));
});

describe('store: range', () => {
  function seed(store: MvccStore): void {
    const w = store.write();
    for (const k of ['a', 'ab', 'b', 'c', 'd', '\x00', '\xff']) w.put(b(k), b(`v${k}`));
    w.end();
  }
  const keys = (r: RangeResult): string[] => r.kvs.map((kv) => s(kv.key));

  test('range end rules: empty = one key, [0x00] = from key, otherwise [key, end)', () =>
    withStore((store) => {
      seed(store);
      assert.deepEqual(keys(store.range(b('ab'), EMPTY)), ['ab']);
      assert.deepEqual(keys(store.range(b('zz'), EMPTY)), []);
      assert.deepEqual(keys(store.range(b('b'), FROM)), ['b', 'c', 'd', '\xff']);
      assert.deepEqual(keys(store.range(FROM, FROM)), ['\x00', 'a', 'ab', 'b', 'c', 'd', '\xff']);
      assert.deepEqual(keys(store.range(EMPTY, FROM)).length, 7);
      assert.deepEqual(keys(store.range(b('a'), b('c'))), ['a', 'ab', 'b']);
      assert.deepEqual(keys(store.range(b('a'), b('b'))), ['a', 'ab'], 'prefix a');
      assert.deepEqual(keys(store.range(b('c'), b('a'))), [], 'end before key');
      assert.deepEqual(keys(store.range(b('c'), b('c'))), [], 'end equal to key');
    }));

  test('limit bounds kvs, count counts all, countOnly and keysOnly', () =>
    withStore((store) => {
      seed(store);
      const r = store.range(b('a'), FROM, { limit: 2 });
      assert.deepEqual([keys(r), r.count, r.rev], [['a', 'ab'], 6, 2]);
      const c = store.range(b('a'), FROM, { countOnly: true, limit: 1 });
      assert.deepEqual([c.kvs, c.count], [[], 6]);
      const k = store.range(b('c'), b('e'), { keysOnly: true });
      assert.deepEqual(
        [keys(k), k.kvs.map((kv) => kv.value.length)],
        [
          ['c', 'd'],
          [0, 0],
        ],
      );
      assert.deepEqual(store.range(b('a'), EMPTY, { countOnly: true }).count, 1);
      assert.deepEqual(keys(store.range(b('a'), FROM, { limit: -1 })).length, 6);
    }));

  test('history, future and compacted revisions (etcd: reading the compacted revision itself works)', async () =>
    withStore(async (store) => {
      put(store, 'a', '1'); // 2
      put(store, 'a', '2'); // 3
      put(store, 'b', '1'); // 4
      del(store, 'a'); // 5
      put(store, 'a', '3'); // 6
      assert.throws(() => store.range(b('a'), EMPTY, { rev: 7 }), FutureRevisionError);
      await store.compact(4).done;
      assert.deepEqual(show(store.range(b('a'), FROM, { rev: 4 })), ['a=2@2/3/2', 'b=1@4/4/1']);
      assert.deepEqual(show(store.range(b('a'), FROM, { rev: 5 })), ['b=1@4/4/1']);
      assert.throws(() => store.range(b('a'), FROM, { rev: 3 }), CompactedError);
      assert.throws(() => store.range(b('a'), FROM, { rev: 3 }), {
        message: 'mvcc: required revision has been compacted',
      });
      assert.throws(() => store.range(b('a'), FROM, { rev: 9 }), {
        message: 'mvcc: required revision is a future revision',
      });
      const w = store.write();
      w.put(b('c'), b('1'));
      assert.equal(w.range(b('c'), EMPTY, { rev: 7 }).count, 1, 'a transaction reads its own next revision');
      w.end();
    }));
});

describe('store: compaction', () => {
  test('keeps the latest revision of each key at or below the compaction, removes the rest', async () =>
    withStore(async (store, backend) => {
      put(store, 'a', '1'); // 2
      put(store, 'a', '2'); // 3
      put(store, 'b', '1'); // 4
      del(store, 'b'); // 5
      put(store, 'c', '1'); // 6
      del(store, 'c'); // 7
      put(store, 'a', '3'); // 8
      assert.throws(() => store.compact(9), { code: MvccErrorCode.futureRevision });
      const { done } = store.compact(7);
      assert.equal(store.compactRev(), 7, 'reads below 7 fail at once');
      assert.throws(() => store.compact(7), { code: MvccErrorCode.compacted });
      assert.throws(() => store.compact(6), { code: MvccErrorCode.compacted });
      await done;
      // a@3 is kept (latest at 7); b's and c's generations ended at or before 7: gone with their tombstones.
      assert.deepEqual(backendRevisions(backend), ['3.0', '8.0']);
      assert.deepEqual(show(store.range(b('a'), FROM, { rev: 7 })), ['a=2@2/3/2']);
      assert.deepEqual(show(store.range(b('a'), FROM)), ['a=3@2/8/3']);
      assert.equal(revisionMain(backend.get('meta', MetaKey.finishedCompactRev)!), 7);
      assert.equal(revisionMain(backend.get('meta', MetaKey.scheduledCompactRev)!), 7);
      await store.compact(8).done;
      assert.deepEqual(backendRevisions(backend), ['8.0']);
    }));

  test('a compaction interrupted by close resumes on the next open', async () => {
    const dir = newDir();
    let backend = Backend.open(dir);
    let store = MvccStore.open(backend, { compactionBatchLimit: 2, compactionSleepIntervalMs: 30 });
    for (let i = 0; i < 20; i++) put(store, 'k', String(i));
    const { done } = store.compact(19);
    await new Promise((r) => setTimeout(r, 40));
    await store.close();
    await assert.rejects(done, { code: MvccErrorCode.closed });
    await backend.close();
    backend = Backend.open(dir);
    const before = backendRevisions(backend).length;
    assert.ok(before > 2 && before < 20, `${before} revisions left by the interrupted compaction`);
    assert.equal(backend.get('meta', MetaKey.finishedCompactRev), undefined);
    store = MvccStore.open(backend);
    try {
      assert.equal(store.compactRev(), 19);
      await store.waitCompactions();
      // puts at revisions 2..21: 19 is the latest at or below the compaction, 20 and 21 are newer
      assert.deepEqual(backendRevisions(backend), ['19.0', '20.0', '21.0']);
      assert.equal(revisionMain(backend.get('meta', MetaKey.finishedCompactRev)!), 19);
      assert.deepEqual(show(store.range(b('k'), EMPTY)), ['k=19@2/21/20']);
      assert.deepEqual(show(store.range(b('k'), EMPTY, { rev: 19 })), ['k=17@2/19/18']);
    } finally {
      await store.close();
      await backend.close();
    }
  });

  test('the revision does not go back when the newest revisions were compacted away', async () => {
    const dir = newDir();
    let backend = Backend.open(dir);
    let store = MvccStore.open(backend);
    put(store, 'a', '1'); // 2
    del(store, 'a'); // 3
    await store.compact(3).done;
    assert.deepEqual(backendRevisions(backend), []);
    await store.close();
    await backend.close();
    backend = Backend.open(dir);
    store = MvccStore.open(backend);
    try {
      assert.equal(store.rev(), 3);
      assert.equal(put(store, 'a', '2'), 4);
      assert.deepEqual(show(store.range(b('a'), EMPTY)), ['a=2@4/4/1']);
    } finally {
      await store.close();
      await backend.close();
    }
  });
});

describe('store: restart and hashes', () => {
  test('reopening rebuilds the same index: every revision reads the same, leases are reported', async () => {
    const dir = newDir();
    let backend = Backend.open(dir);
    let store = MvccStore.open(backend);
    const ops: (() => void)[] = [
      () => put(store, 'a', '1', 5n),
      () => put(store, 'b', '1'),
      () => put(store, 'a', '2', 6n),
      () => del(store, 'b'),
      () => put(store, 'c', '1', 5n),
      () => del(store, 'a', 'b'),
      () => put(store, 'b', '2'),
    ];
    for (const op of ops) op();
    await store.compact(3).done;
    const snapshot = (st: MvccStore): string[][] => {
      const out: string[][] = [];
      for (let rev = 3; rev <= st.rev(); rev++) out.push(show(st.range(FROM, FROM, { rev })));
      return out;
    };
    const before = snapshot(store);
    const hashBefore = store.hashKV(0);
    const fullBefore = await store.hash();
    await store.close();
    await backend.close();
    backend = Backend.open(dir);
    const leases: string[] = [];
    store = MvccStore.open(backend, { onRestoreLease: (key, lease) => leases.push(`${s(key)}~${lease}`) });
    try {
      assert.equal(store.rev(), 8);
      assert.equal(store.compactRev(), 3);
      assert.deepEqual(snapshot(store), before);
      assert.deepEqual(leases, ['c~5']);
      assert.deepEqual(store.hashKV(0), hashBefore);
      assert.deepEqual(await store.hash(), fullBefore);
      assert.equal(put(store, 'a', '3'), 9);
      assert.deepEqual(show(store.range(b('a'), EMPTY)), ['a=3@9/9/1']);
    } finally {
      await store.close();
      await backend.close();
    }
  });

  test('hashKV does not depend on whether the compaction has finished', async () =>
    withStore(async (store) => {
      for (let i = 0; i < 30; i++) {
        put(store, `k${i % 7}`, String(i));
        if (i % 5 === 4) del(store, `k${i % 3}`);
      }
      const rev = store.rev();
      const { done } = store.compact(rev - 10);
      const early = store.hashKV(rev - 2);
      await done;
      const late = store.hashKV(rev - 2);
      assert.deepEqual(late, early);
      assert.deepEqual(await store.hashKVAsync(rev - 2), early);
      assert.equal(late.compactRevision, rev - 10);
      assert.throws(() => store.hashKV(rev - 11), { code: MvccErrorCode.compacted });
      assert.throws(() => store.hashKV(rev + 1), { code: MvccErrorCode.futureRevision });
      put(store, 'k1', 'changed');
      assert.deepEqual(store.hashKV(rev - 2).hash, late.hash, 'newer revisions do not change an older hash');
      assert.notEqual(store.hashKV(0).hash, store.hashKV(rev).hash);
    }));

  test('hashKV agrees before and after compaction even when no key is alive (etcd does not)', async () =>
    withStore(async (store) => {
      put(store, 'a', '1'); // 2
      put(store, 'a', '2'); // 3
      put(store, 'b', '1'); // 4
      del(store, 'a', 'c'); // 5
      const { done } = store.compact(4);
      const early = store.hashKV(5);
      await done;
      assert.deepEqual(store.hashKV(5), early);
    }));

  test('hashKVAsync works in slices while writes and compactions go on, and equals hashKV', async () =>
    withStore(async (store) => {
      for (let i = 0; i < 25_000; i += 500) {
        const w = store.write();
        for (let j = i; j < i + 500; j++) w.put(b(`key-${(j * 7919) % 25_000}`), b(String(j)));
        w.end();
      }
      for (let i = 0; i < 30; i++) del(store, `key-${i * 11}`);
      const rev = store.rev();
      const expected = store.hashKV(rev);
      let writes = 0;
      let finished = false;
      const pending = store.hashKVAsync(rev).finally(() => {
        finished = true;
      });
      const compaction = store.compact(rev - 10).done;
      while (!finished) {
        put(store, `new-${writes}`, 'x');
        put(store, `key-${writes}`, 'changed');
        writes++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(await pending, expected);
      assert.ok(writes > 2, `${writes} writes interleaved`);
      await compaction;
      const compacted = store.hashKV(rev);
      assert.equal(compacted.compactRevision, rev - 10, 'a hash is relative to the compacted revision');
      assert.deepEqual(await store.hashKVAsync(rev), compacted);
      await assert.rejects(store.hashKVAsync(rev - 11), { code: MvccErrorCode.compacted });
    }));

  test('two stores with the same history agree on hashKV; different data disagrees', async () => {
    const build = async (last: string): Promise<number> => {
      let hash = 0;
      await withStore((store) => {
        put(store, 'x', '1');
        put(store, 'y', '2');
        del(store, 'x');
        put(store, 'z', last);
        hash = store.hashKV(0).hash;
      });
      return hash;
    };
    assert.equal(await build('3'), await build('3'));
    assert.notEqual(await build('3'), await build('4'));
  });

  test('a closed store refuses work', async () => {
    const backend = Backend.open(newDir());
    const store = MvccStore.open(backend);
    await store.close();
    assert.throws(() => store.range(b('a'), EMPTY), { code: MvccErrorCode.closed, message: 'mvcc: closed' });
    assert.throws(() => store.write(), { code: MvccErrorCode.closed });
    await backend.close();
  });
});
