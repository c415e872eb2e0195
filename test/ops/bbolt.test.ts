/**
 * The bbolt writer and reader: files of every shape (empty and inline buckets, trees of three
 * levels, values on overflow pages, keys larger than half a page) read back entry for entry and
 * pass the reader's Tx.Check and bbolt's; the real `etcdctl snapshot status` (bbolt's own code, with its Tx.Check) reads a
 * three-level file with the same hash, key count and size; damaged files are refused or
 * reported with the page at fault; the writer refuses what bbolt would not store.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { describe, test } from 'node:test';
import { snapshotStatus } from '../../src/server/snapshot.ts';
import { crc32c } from '../../src/storage/backend/crc32c.ts';
import {
  BboltCorruptError,
  BboltReader,
  BboltUsageError,
  BboltWriter,
  PAGE_SIZE,
} from '../../src/storage/bbolt/index.ts';
import { cli, tempDir } from './helpers.ts';

type Buckets = [name: string, entries: [Buffer, Buffer][]][];

/** Writes `buckets` with the writer as a file; returns its path. */
function writeFile(path: string, buckets: Buckets): void {
  const w = new BboltWriter();
  const fd = openSync(path, 'w');
  let pos = 3 * PAGE_SIZE;
  const drain = () => {
    for (const c of w.take()) {
      writeSync(fd, c, 0, c.length, pos);
      pos += c.length;
    }
  };
  for (const [name, entries] of buckets) {
    w.bucket(Buffer.from(name));
    for (const [k, v] of entries) {
      w.put(k, v);
      if (w.readyBytes > 1 << 20) drain();
    }
  }
  const summary = w.finish();
  drain();
  writeSync(fd, summary.head, 0, summary.head.length, 0);
  closeSync(fd);
  assert.equal(pos, summary.sizeBytes);
}

async function readAll(path: string): Promise<Buckets> {
  const r = await BboltReader.open(path);
  try {
    assert.deepEqual(await r.check(), []);
    const out: Buckets = [];
    for (const b of await r.buckets()) {
      const entries: [Buffer, Buffer][] = [];
      for await (const leaf of r.entries(b)) {
        for (let i = 0; i < leaf.keys.length; i++)
          entries.push([Buffer.from(leaf.keys[i]!), Buffer.from(leaf.values[i]!)]);
      }
      out.push([b.name.toString('latin1'), entries]);
    }
    return out;
  } finally {
    await r.close();
  }
}

/** Deterministic pseudo-random bytes. */
function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function revKey(main: number): Buffer {
  const k = Buffer.alloc(17);
  k.writeBigUInt64BE(BigInt(main), 0);
  k[8] = 0x5f;
  return k;
}

describe('bbolt files', () => {
  test('every shape reads back entry for entry and passes the check', async () => {
    const dir = tempDir('bbolt');
    const big: [Buffer, Buffer][] = [];
    for (let i = 0; i < 5000; i++) big.push([revKey(i + 1), bytes(i, i % 97)]);
    const overflow: [Buffer, Buffer][] = [
      [Buffer.from('a'), bytes(1, 3 * PAGE_SIZE + 17)],
      [Buffer.from('b'), Buffer.alloc(0)],
      [Buffer.from('c'), bytes(2, 200_000)],
      [Buffer.from('d'), bytes(3, 10)],
    ];
    const largeKeys: [Buffer, Buffer][] = [];
    for (let i = 0; i < 40; i++) largeKeys.push([Buffer.concat([Buffer.from([i]), bytes(i, 5000)]), bytes(i, 7)]);
    const buckets: Buckets = [
      ['empty', []],
      ['inline', [[Buffer.from('k'), Buffer.from('v')]]],
      ['many', big],
      ['overflow', overflow],
      ['large-keys', largeKeys],
      // Written out of name order: the root bucket sorts them.
      ['aaa-last-written', [[Buffer.from('x'), Buffer.from('y')]]],
    ];
    const path = `${dir}/shapes.db`;
    writeFile(path, buckets);
    const sorted = [...buckets].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
    assert.deepEqual(await readAll(path), sorted);
    // bbolt itself (etcdctl runs Tx.Check before reading) agrees.
    const real = await cli('etcdctl', ['snapshot', 'status', path, '-w', 'json']);
    assert.equal(real.code, 0, real.stderr);
    assert.deepEqual(JSON.parse(real.stdout), await snapshotStatus(path));
  });

  test('etcdctl snapshot status reads a three-level file as the reader does', async () => {
    const dir = tempDir('bbolt-etcdctl');
    const path = `${dir}/deep.db`;
    const keys: [Buffer, Buffer][] = [];
    for (let i = 0; i < 60_000; i++) keys.push([revKey(i + 2), bytes(i, 40)]);
    writeFile(path, [
      ['key', keys],
      ['meta', [[Buffer.from('consistent_index'), Buffer.alloc(8)]]],
    ]);
    const ours = await snapshotStatus(path);
    // Independently: CRC-32C over bucket name, then keys and values, in bbolt order.
    let crc = crc32c(Buffer.from('key'));
    for (const [k, v] of keys) crc = crc32c(v, crc32c(k, crc));
    crc = crc32c(Buffer.from('consistent_index'), crc32c(Buffer.from('meta'), crc));
    crc = crc32c(Buffer.alloc(8), crc);
    assert.equal(ours.hash, crc);
    assert.equal(ours.revision, 60_001);
    assert.equal(ours.totalKey, 60_001);
    const real = await cli('etcdctl', ['snapshot', 'status', path, '-w', 'json']);
    assert.equal(real.code, 0, real.stderr);
    assert.deepEqual(JSON.parse(real.stdout), ours);
  });

  test('damaged files: one bad meta falls back to the other, two are refused, a bad page is reported', async () => {
    const dir = tempDir('bbolt-damage');
    const path = `${dir}/ok.db`;
    const entries: [Buffer, Buffer][] = [];
    for (let i = 0; i < 500; i++) entries.push([revKey(i + 1), bytes(i, 50)]);
    writeFile(path, [['key', entries]]);
    const good = readFileSync(path);

    const meta0Bad = Buffer.from(good);
    meta0Bad[16 + 40]! ^= 0xff; // meta 0's high water mark: its checksum no longer matches
    writeFileSync(`${dir}/meta0.db`, meta0Bad);
    const r = await BboltReader.open(`${dir}/meta0.db`);
    assert.equal(r.meta.txid, 1n, 'meta 1 (txid 1) is used when meta 0 fails its checksum');
    await r.close();
    assert.deepEqual(await readAll(`${dir}/meta0.db`), [['key', entries]]);

    const bothBad = Buffer.from(meta0Bad);
    bothBad.writeUInt32LE(0x12345678, PAGE_SIZE + 16); // meta 1's magic
    writeFileSync(`${dir}/both.db`, bothBad);
    await assert.rejects(BboltReader.open(`${dir}/both.db`), BboltCorruptError);

    const pageIdBad = Buffer.from(good);
    pageIdBad.writeBigUInt64LE(999n, 4 * PAGE_SIZE); // page 4 claims another id
    writeFileSync(`${dir}/pageid.db`, pageIdBad);
    const r2 = await BboltReader.open(`${dir}/pageid.db`);
    await assert.rejects(r2.check(), /page 4 has the id 999/);
    await r2.close();

    const truncated = good.subarray(0, good.length - PAGE_SIZE);
    writeFileSync(`${dir}/short.db`, truncated);
    await assert.rejects(BboltReader.open(`${dir}/short.db`), /smaller than the/);

    const notBolt = Buffer.alloc(3 * PAGE_SIZE, 7);
    writeFileSync(`${dir}/junk.db`, notBolt);
    await assert.rejects(BboltReader.open(`${dir}/junk.db`), /^BboltCorruptError: invalid database$/);
    writeFileSync(`${dir}/tiny.db`, Buffer.alloc(100));
    await assert.rejects(BboltReader.open(`${dir}/tiny.db`), /^BboltCorruptError: invalid database$/);
    writeFileSync(`${dir}/one-page.db`, good.subarray(0, PAGE_SIZE + 100));
    await assert.rejects(BboltReader.open(`${dir}/one-page.db`), /^BboltCorruptError: file size too small$/);
  });

  test('the writer refuses keys out of order, empty keys, a bucket twice and use after finish', () => {
    const w = new BboltWriter();
    assert.throws(() => w.put(Buffer.from('k'), Buffer.from('v')), BboltUsageError);
    w.bucket(Buffer.from('b'));
    w.put(Buffer.from('b'), Buffer.from('1'));
    assert.throws(() => w.put(Buffer.from('a'), Buffer.from('2')), /increasing order/);
    assert.throws(() => w.put(Buffer.from('b'), Buffer.from('2')), /increasing order/);
    assert.throws(() => w.put(Buffer.alloc(0), Buffer.from('2')), /empty/);
    assert.throws(() => w.put(Buffer.alloc(40_000, 1), Buffer.from('2')), /too large/);
    assert.throws(() => w.bucket(Buffer.from('b')), /written twice/);
    w.finish();
    assert.throws(() => w.bucket(Buffer.from('c')), /already finished/);
  });
});
