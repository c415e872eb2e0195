import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  Backend,
  BackendErrorCode,
  BUCKET_NAMES,
  type BucketName,
  crc32c,
  MAX_KEY_BYTES,
  putConsistentIndex,
  readConsistentIndex,
} from '../../src/storage/backend/index.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-backend-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (): string => join(root, `b${dirs++}`);

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');
const EMPTY = new Uint8Array(0);

function dump(backend: Backend, bucket: BucketName): string[] {
  const { keys, values } = backend.range(bucket, EMPTY, null);
  return keys.map((k, i) => `${s(k)}=${s(values[i]!)}`);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

async function* replay(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

test('crc32c matches the Castagnoli check value and chains like Go crc32.Update', () => {
  const data = b('123456789');
  assert.equal(crc32c(data), 0xe3069283);
  assert.equal(crc32c(data.subarray(3), crc32c(data.subarray(0, 3))), 0xe3069283);
  assert.equal(crc32c(EMPTY), 0);
});

describe('reads see the pending batch', () => {
  test('get and range merge pending over in-flight over committed data', async () => {
    const be = Backend.open({ dir: newDir() });
    try {
      for (const k of ['a', 'c', 'e', 'g', 'i']) be.put('key', b(k), b(`old-${k}`));
      await be.forceCommit();
      // In flight: an overwrite, a delete, a new key.
      be.put('key', b('c'), b('mid-c'));
      be.delete('key', b('g'));
      be.put('key', b('f'), b('mid-f'));
      be.put('key', b('i'), b('mid-i'));
      const inflight = be.forceCommit();
      assert.deepEqual(be.stats(), { commits: 1, pendingOps: 0, inflightOps: 4 });
      // Pending, on top: overwrite the in-flight value, revive the in-flight delete, delete a committed key.
      be.put('key', b('b'), b('new-b'));
      be.put('key', b('c'), b('new-c'));
      be.put('key', b('g'), b('new-g'));
      be.delete('key', b('e'));
      be.delete('key', b('i'));
      be.put('key', b('h'), EMPTY);
      assert.equal(be.stats().pendingOps, 6);
      const expected = ['a=old-a', 'b=new-b', 'c=new-c', 'f=mid-f', 'g=new-g', 'h='];
      const check = (): void => {
        assert.equal(s(be.get('key', b('c'))!), 'new-c');
        assert.equal(s(be.get('key', b('f'))!), 'mid-f');
        assert.equal(be.get('key', b('e')), undefined);
        assert.equal(be.get('key', b('i')), undefined);
        assert.equal(s(be.get('key', b('a'))!), 'old-a');
        assert.equal(be.get('key', b('h'))?.length, 0);
        assert.deepEqual(dump(be, 'key'), expected);
        assert.deepEqual(be.range('key', b('b'), b('g')).keys.map(s), ['b', 'c', 'f']);
        assert.deepEqual(be.range('key', b('a'), null, 3).keys.map(s), ['a', 'b', 'c']);
        assert.deepEqual(be.range('key', b('c'), undefined).values.map(s), ['new-c']);
        assert.deepEqual(be.range('key', b('e'), undefined).keys, []);
        assert.deepEqual(be.range('key', b('g'), b('b')).keys, [], 'end before start is empty');
        assert.deepEqual(dump(be, 'meta'), [], 'buckets are separate');
      };
      check();
      await inflight;
      assert.deepEqual(be.stats(), { commits: 2, pendingOps: 6, inflightOps: 0 });
      check();
      await be.forceCommit();
      check();
    } finally {
      await be.close();
    }
  });

  test('keys written out of order are still ranged in key order', async () => {
    const be = Backend.open({ dir: newDir() });
    try {
      const keys = ['m', 'b', 'x', 'a', 'q', 'b', 'c'];
      for (const k of keys) be.put('lease', b(k), b(k));
      be.delete('lease', b('q'));
      assert.deepEqual(be.range('lease', b('a'), null).keys.map(s), ['a', 'b', 'c', 'm', 'x']);
      assert.deepEqual(be.range('lease', b('b'), b('n')).keys.map(s), ['b', 'c', 'm']);
    } finally {
      await be.close();
    }
  });
});

describe('batch commits', () => {
  test('synchronous writes share one commit; the size trigger waits for a microtask', async () => {
    const be = Backend.open({ dir: newDir(), batchLimit: 3, batchIntervalMs: 60_000 });
    try {
      for (let i = 0; i < 10; i++) be.put('key', b(`k${i}`), b(`${i}`));
      putConsistentIndex(be, 10, 2);
      assert.deepEqual(be.stats(), { commits: 0, pendingOps: 12, inflightOps: 0 });
      await Promise.resolve();
      assert.deepEqual(be.stats(), { commits: 0, pendingOps: 0, inflightOps: 12 }, 'one batch, started by a microtask');
      assert.equal(dump(be, 'key').length, 10, 'reads see the batch in flight');
      await be.forceCommit();
      assert.deepEqual(be.stats(), { commits: 1, pendingOps: 0, inflightOps: 0 });
      assert.equal(dump(be, 'key').length, 10);
      assert.deepEqual(readConsistentIndex(be), { index: 10, term: 2 });
    } finally {
      await be.close();
    }
  });

  test('the interval commits a batch that stays small; forceCommit commits at once', async () => {
    const be = Backend.open({ dir: newDir(), batchIntervalMs: 20 });
    try {
      be.put('meta', b('x'), b('1'));
      assert.equal(be.stats().commits, 0);
      const deadline = Date.now() + 5000;
      while (be.stats().commits === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(be.stats(), { commits: 1, pendingOps: 0, inflightOps: 0 });
      be.put('meta', b('y'), b('2'));
      const committed = be.forceCommit();
      assert.deepEqual(be.stats(), { commits: 1, pendingOps: 0, inflightOps: 1 });
      be.put('meta', b('z'), b('3'));
      const next = be.forceCommit();
      assert.deepEqual(be.stats(), { commits: 1, pendingOps: 1, inflightOps: 1 }, 'one batch in flight at a time');
      assert.deepEqual(dump(be, 'meta'), ['x=1', 'y=2', 'z=3']);
      await committed;
      await next;
      assert.deepEqual(be.stats(), { commits: 3, pendingOps: 0, inflightOps: 0 });
      await be.forceCommit();
      assert.equal(be.stats().commits, 3, 'an empty batch is not committed');
    } finally {
      await be.close();
    }
  });

  test('data survives close and reopen', async () => {
    const dir = newDir();
    let be = Backend.open({ dir });
    for (const name of BUCKET_NAMES) be.put(name, b(`k-${name}`), b(`v-${name}`));
    await be.close();
    be = Backend.open(dir);
    try {
      for (const name of BUCKET_NAMES) assert.deepEqual(dump(be, name), [`k-${name}=v-${name}`]);
      assert.equal(readFileSync(join(dir, 'CURRENT'), 'utf8').trim(), 'data-0.mdb');
    } finally {
      await be.close();
    }
  });
});

describe('bad input is refused and changes nothing', () => {
  test('keys, values, buckets and options', async () => {
    assert.throws(() => Backend.open({ dir: '' }), { code: BackendErrorCode.invalidOption });
    assert.throws(() => Backend.open({ dir: newDir(), batchLimit: 0 }), { code: BackendErrorCode.invalidOption });
    const be = Backend.open({ dir: newDir() });
    try {
      be.put('key', b('ok'), b('1'));
      const before = be.stats().pendingOps;
      assert.equal(before, 1);
      assert.throws(() => be.put('key', EMPTY, b('v')), { code: BackendErrorCode.invalidKey });
      assert.throws(() => be.put('key', new Uint8Array(MAX_KEY_BYTES + 1), b('v')), {
        code: BackendErrorCode.invalidKey,
      });
      assert.throws(() => be.put('key', 'str' as unknown as Uint8Array, b('v')), { code: BackendErrorCode.invalidKey });
      assert.throws(() => be.put('key', b('k'), 'v' as unknown as Uint8Array), {
        code: BackendErrorCode.invalidValue,
      });
      assert.throws(() => be.put('nope' as BucketName, b('k'), b('v')), { code: BackendErrorCode.unknownBucket });
      assert.throws(() => be.delete('key', EMPTY), { code: BackendErrorCode.invalidKey });
      assert.equal(be.stats().pendingOps, before);
      be.put('key', new Uint8Array(MAX_KEY_BYTES).fill(7), b('longest'));
      await be.forceCommit();
      assert.equal(s(be.get('key', new Uint8Array(MAX_KEY_BYTES).fill(7))!), 'longest');
      assert.deepEqual(dump(be, 'key').length, 2);
    } finally {
      await be.close();
    }
    assert.throws(() => be.get('key', b('ok')), { code: BackendErrorCode.closed });
    assert.throws(() => be.put('key', b('ok'), b('1')), { code: BackendErrorCode.closed });
    await be.close();
  });
});

describe('data directory', () => {
  test('files of an interrupted defragmentation are removed on open', async () => {
    const dir = newDir();
    let be = Backend.open(dir);
    be.put('key', b('a'), b('1'));
    await be.close();
    writeFileSync(join(dir, 'data-1.mdb'), 'half a copy');
    writeFileSync(join(dir, 'data-1.mdb-lock'), '');
    be = Backend.open(dir);
    try {
      assert.deepEqual(readdirSync(dir).sort(), ['CURRENT', 'data-0.mdb', 'data-0.mdb-lock']);
      assert.deepEqual(dump(be, 'key'), ['a=1']);
    } finally {
      await be.close();
    }
  });

  test('data files without CURRENT are refused', () => {
    const dir = mkdtempSync(join(root, 'orphan-'));
    writeFileSync(join(dir, 'data-3.mdb'), 'x');
    assert.throws(() => Backend.open(dir), { code: BackendErrorCode.corrupt });
    assert.ok(existsSync(join(dir, 'data-3.mdb')), 'nothing is deleted');
  });
});

describe('size', () => {
  test('grows with data; in-use is at most the file size', async () => {
    const be = Backend.open({ dir: newDir() });
    try {
      const empty = be.size();
      for (let i = 0; i < 2000; i++) be.put('key', b(`key-${i}`), new Uint8Array(200).fill(i & 0xff));
      await be.forceCommit();
      const full = be.size();
      assert.ok(full.sizeBytes > empty.sizeBytes + 2000 * 200, `${full.sizeBytes}`);
      assert.ok(full.sizeInUseBytes <= full.sizeBytes);
      assert.ok(full.sizeInUseBytes > 2000 * 200);
      for (let i = 0; i < 2000; i++) be.delete('key', b(`key-${i}`));
      await be.forceCommit();
      const freed = be.size();
      assert.ok(freed.sizeInUseBytes < full.sizeInUseBytes / 4, `${freed.sizeInUseBytes} vs ${full.sizeInUseBytes}`);
    } finally {
      await be.close();
    }
  });
});

describe('snapshot stream', () => {
  test('bounded chunks; restores to an identical backend; writes during the stream are not in it', async () => {
    const be = Backend.open({ dir: newDir() });
    try {
      for (let i = 0; i < 3000; i++) be.put('key', b(`k${String(i).padStart(5, '0')}`), new Uint8Array(100).fill(i));
      for (const name of BUCKET_NAMES) be.put(name, b('x'), b(name));
      be.put('meta', b('big'), new Uint8Array(200_000).fill(9));
      const chunkBytes = 8192;
      const chunks: Uint8Array[] = [];
      let wroteDuring = false;
      for await (const chunk of be.snapshotStream(chunkBytes)) {
        chunks.push(chunk);
        if (!wroteDuring) {
          be.put('key', b('during'), b('1'));
          be.delete('key', b('k00000'));
          await be.forceCommit();
          wroteDuring = true;
        }
      }
      assert.ok(chunks.length > 10);
      for (const c of chunks) assert.ok(c.length <= chunkBytes && c.length > 0);
      const restored = await Backend.restoreSnapshot({ dir: newDir() }, replay(chunks));
      try {
        assert.equal(restored.get('key', b('during')), undefined);
        assert.equal(restored.get('key', b('k00000'))![0], 0);
        for (const name of BUCKET_NAMES) {
          if (name === 'key') continue;
          assert.deepEqual(dump(restored, name), dump(be, name), name);
        }
        assert.equal(dump(restored, 'key').length, 3001);
        be.delete('key', b('during'));
        be.put('key', b('k00000'), new Uint8Array(100).fill(0));
        assert.equal(await restored.hash(), await be.hash());
      } finally {
        await restored.close();
      }
    } finally {
      await be.close();
    }
  });

  test('a corrupt or truncated stream restores nothing', async () => {
    const be = Backend.open({ dir: newDir() });
    let chunks: Uint8Array[];
    try {
      for (let i = 0; i < 500; i++) be.put('lease', b(`l${i}`), b(`v${i}`));
      chunks = await collect(be.snapshotStream(1024));
    } finally {
      await be.close();
    }
    const flipped = chunks.map((c) => c.slice());
    flipped[2]![100]! ^= 1;
    const dir1 = newDir();
    await assert.rejects(Backend.restoreSnapshot({ dir: dir1 }, replay(flipped)), { code: BackendErrorCode.corrupt });
    assert.deepEqual(readdirSync(dir1), []);
    const dir2 = newDir();
    await assert.rejects(Backend.restoreSnapshot({ dir: dir2 }, replay(chunks.slice(0, -1))), {
      code: BackendErrorCode.corrupt,
    });
    assert.deepEqual(readdirSync(dir2), []);
    const ok = await Backend.restoreSnapshot({ dir: dir2 }, replay(chunks));
    try {
      assert.equal(dump(ok, 'lease').length, 500);
      await assert.rejects(Backend.restoreSnapshot({ dir: dir2 }, replay(chunks)), {
        code: BackendErrorCode.notEmpty,
      });
    } finally {
      await ok.close();
    }
  });

  test('close ends an open stream and releases its read transaction', async () => {
    const be = Backend.open({ dir: newDir() });
    for (let i = 0; i < 2000; i++) be.put('key', b(`k${i}`), new Uint8Array(64));
    const it = be.snapshotStream(1024)[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    await be.close();
    const next = await it.next().catch((err: unknown) => err);
    assert.ok(next instanceof Error || (next as IteratorResult<Uint8Array>).done === true);
  });
});

describe('hash', () => {
  test('changes with content and honours the ignore function', async () => {
    const be = Backend.open({ dir: newDir() });
    try {
      be.put('key', b('a'), b('1'));
      const h1 = await be.hash();
      assert.equal(await be.hash(), h1);
      be.put('meta', b('consistent_index'), b('12345678'));
      const h2 = await be.hash();
      assert.notEqual(h2, h1);
      assert.equal(await be.hash((bucket, key) => bucket === 'meta' && s(key) === 'consistent_index'), h1);
    } finally {
      await be.close();
    }
  });
});

describe('defragment', () => {
  test('shrinks the file while reads and writes go on, and survives a reopen', async () => {
    const dir = newDir();
    const be = Backend.open({ dir, batchIntervalMs: 5 });
    const value = (i: number): Uint8Array => new Uint8Array(1000).fill(i % 251);
    const count = 12_000;
    for (let i = 0; i < count; i++) be.put('key', b(`k${String(i).padStart(6, '0')}`), value(i));
    await be.forceCommit();
    for (let i = 0; i < count; i++) if (i % 4 !== 0) be.delete('key', b(`k${String(i).padStart(6, '0')}`));
    await be.forceCommit();
    const before = be.size();
    let reads = 0;
    let writes = 0;
    let finished = false;
    const run = be.defragment().finally(() => {
      finished = true;
    });
    assert.equal(be.defragment(), be.defragment(), 'concurrent calls share one run');
    let seed = 1;
    while (!finished) {
      seed = (seed * 48271) % 2147483647;
      const i = (seed % (count / 4)) * 4;
      const got = be.get('key', b(`k${String(i).padStart(6, '0')}`));
      assert.ok(got !== undefined && Buffer.compare(got, value(i)) === 0, `k${i}`);
      reads++;
      be.put('members', b(`w${writes}`), b(String(writes)));
      writes++;
      if (reads % 50 === 0) await yieldToLoop();
    }
    const result = await run;
    assert.ok(reads > 0 && writes > 0, `${reads} reads during defragment`);
    assert.equal(result.sizeBeforeBytes, before.sizeBytes);
    assert.ok(result.sizeAfterBytes < result.sizeBeforeBytes / 2, `${result.sizeAfterBytes}`);
    assert.ok(result.commitsPausedMs <= result.durationMs && result.copyMs <= result.durationMs);
    const afterSize = be.size();
    assert.ok(afterSize.sizeBytes < before.sizeBytes / 2, `${afterSize.sizeBytes} vs ${before.sizeBytes}`);
    assert.equal(dump(be, 'key').length, count / 4);
    assert.equal(dump(be, 'members').length, writes);
    // The replaced file is deleted in the background while the backend stays open.
    for (let i = 0; i < 200 && existsSync(join(dir, 'data-0.mdb')); i++) await sleep(50);
    assert.ok(!existsSync(join(dir, 'data-0.mdb')), 'the old file is removed');
    assert.ok(!existsSync(join(dir, 'data-0.mdb-lock')), 'and its lock file');
    await be.close();
    assert.equal(readFileSync(join(dir, 'CURRENT'), 'utf8').trim(), 'data-1.mdb');
    const reopened = Backend.open(dir);
    try {
      assert.equal(dump(reopened, 'key').length, count / 4);
      assert.equal(dump(reopened, 'members').length, writes);
      assert.equal(Buffer.compare(reopened.get('key', b('k000004'))!, value(4)), 0);
    } finally {
      await reopened.close();
    }
  });

  test('a snapshot stream started before a defragment stays consistent', async () => {
    const be = Backend.open({ dir: newDir() });
    try {
      for (let i = 0; i < 3000; i++) be.put('auth', b(`u${String(i).padStart(5, '0')}`), new Uint8Array(300).fill(1));
      const it = be.snapshotStream(4096)[Symbol.asyncIterator]();
      const chunks = [(await it.next()).value as Uint8Array];
      be.put('auth', b('later'), b('x'));
      await be.defragment();
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        chunks.push(r.value);
      }
      const restored = await Backend.restoreSnapshot({ dir: newDir() }, replay(chunks));
      try {
        assert.equal(dump(restored, 'auth').length, 3000);
      } finally {
        await restored.close();
      }
      assert.equal(dump(be, 'auth').length, 3001);
    } finally {
      await be.close();
    }
  });
});
