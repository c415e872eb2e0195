// The cache of encoded KeyValue fields by revision (src/server/kv-field-cache.ts): what it
// returns is what was added, its memory stays within its slabs, and runs of neighbouring
// fields are copied whole but never across the end of a slab; lookups and evictions are counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FieldRun, KvFieldCache, newRangeCacheCounters } from '../../src/server/kv-field-cache.ts';

/** A `kvs` field as range-wire.ts writes it: tag, length varint, `payload` bytes of `fill`. */
function field(payload: number, fill: number): Buffer {
  const length: number[] = [];
  let n = payload;
  while (n >= 0x80) {
    length.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  length.push(n);
  return Buffer.concat([Buffer.from([0x12, ...length]), Buffer.alloc(payload, fill)]);
}

/** The bytes the cache holds for main_sub (through a run of one field), or null. */
function read(cache: KvFieldCache, main: number, sub: number): Buffer | null {
  const loc = cache.find(main, sub);
  if (loc < 0) return null;
  const parts: Buffer[] = [];
  const run = new FieldRun(cache, (src, start, end) => parts.push(Buffer.from(src.subarray(start, end))));
  run.extend(loc);
  run.flush();
  return Buffer.concat(parts);
}

test('a field added is found with its exact bytes; others are not', () => {
  const cache = new KvFieldCache(1 << 20, 1 << 16);
  const small = field(10, 1);
  const long = field(300, 2); // a two-byte length
  cache.add(5, 0, small, 0, small.length);
  const framed = Buffer.concat([Buffer.from([9, 9]), long, Buffer.from([9])]);
  cache.add(5, 1, framed, 2, 2 + long.length);
  assert.deepEqual(read(cache, 5, 0), small);
  assert.deepEqual(read(cache, 5, 1), long);
  assert.equal(cache.find(5, 2), -1);
  assert.equal(cache.find(6, 0), -1);
  assert.equal(cache.size, 2);
  // Sub revisions and main revisions past what a key carries are not kept.
  cache.add(7, 4096, small, 0, small.length);
  cache.add(2 ** 40, 0, small, 0, small.length);
  assert.equal(cache.find(7, 4096), -1);
  assert.equal(cache.find(2 ** 40, 0), -1);
  // Nor a field larger than a slab.
  const huge = field(1 << 16, 3);
  cache.add(8, 0, huge, 0, huge.length);
  assert.equal(cache.find(8, 0), -1);
  assert.equal(cache.size, 2);
});

test('the ring forgets its oldest slab: memory bounded, never a stale field', () => {
  const slabBytes = 256;
  const cache = new KvFieldCache(4 * slabBytes, slabBytes);
  const sizes = [3, 40, 70, 125, 200];
  const added: { main: number; bytes: Buffer }[] = [];
  for (let main = 1; main <= 400; main++) {
    const bytes = field(sizes[main % sizes.length]!, main & 0xff);
    cache.add(main, 0, bytes, 0, bytes.length);
    added.push({ main, bytes });
    // What is held fits in the slabs; everything found is exactly what was added.
    let held = 0;
    for (const a of added) {
      const got = read(cache, a.main, 0);
      if (got === null) continue;
      assert.deepEqual(got, a.bytes, `revision ${a.main} after ${main}`);
      held += got.length;
    }
    assert.ok(held <= 4 * slabBytes, `${held} bytes held`);
    // No more entries than one per 64 bytes of cache (the table's bound).
    assert.ok(cache.size <= 16, `${cache.size} entries`);
    assert.equal(cache.size, added.filter((a) => cache.find(a.main, 0) >= 0).length);
    // The newest one is always there; one from 40 additions ago never is (it was in a slab reused since).
    assert.deepEqual(read(cache, main, 0), bytes);
    if (main > 40) assert.equal(cache.find(main - 40, 0), -1);
  }
});

test('tiny fields: the entries stay within their bound and so do the slabs allocated', () => {
  const slabBytes = 64;
  // 64 slabs of 64 bytes: at most 64 entries (one per 64 bytes).
  const cache = new KvFieldCache(64 * slabBytes, slabBytes);
  const tiny = field(1, 7);
  for (let main = 1; main <= 1000; main++) {
    cache.add(main, 0, tiny, 0, tiny.length);
    assert.ok(cache.size <= 64, `${cache.size} entries after ${main}`);
    assert.deepEqual(read(cache, main, 0), tiny);
  }
  // 64 fields of 3 bytes fill three slabs and part of a fourth: the ring stops growing there.
  assert.ok(cache.allocatedBytes <= 5 * slabBytes, `${cache.allocatedBytes} bytes of slabs`);
  assert.ok(cache.size > 32, `${cache.size} entries`);
});

test('neighbouring fields leave in runs that stop at the end of a slab', () => {
  const slabBytes = 64;
  const cache = new KvFieldCache(64 * slabBytes, slabBytes);
  // Fields of 16 bytes fill each slab exactly: the last of one slab ends where the next slab starts.
  const fields = Array.from({ length: 20 }, (_, i) => field(14, i + 1));
  for (const [i, f] of fields.entries()) cache.add(100 + i, 0, f, 0, f.length);
  const copies: Buffer[] = [];
  const run = new FieldRun(cache, (src, start, end) => copies.push(Buffer.from(src.subarray(start, end))));
  for (let i = 0; i < fields.length; i++) run.extend(cache.find(100 + i, 0));
  run.flush();
  assert.deepEqual(Buffer.concat(copies), Buffer.concat(fields));
  // One copy per slab: four fields each.
  assert.deepEqual(
    copies.map((c) => c.length),
    [64, 64, 64, 64, 64],
  );
  // Out of order: a new run at each jump, and at the end of a slab (3 is last of the first).
  copies.length = 0;
  const order = [5, 6, 1, 2, 3, 4, 9];
  for (const i of order) run.extend(cache.find(100 + i, 0));
  run.flush();
  assert.deepEqual(Buffer.concat(copies), Buffer.concat(order.map((i) => fields[i]!)));
  assert.deepEqual(
    copies.map((c) => c.length),
    [32, 48, 16, 16],
  );
});

test('a cache smaller than a slab holds nothing; bad sizes are refused', () => {
  const cache = new KvFieldCache(100, 128);
  assert.equal(cache.enabled, false);
  const f = field(4, 1);
  cache.add(1, 0, f, 0, f.length);
  assert.equal(cache.find(1, 0), -1);
  assert.equal(new KvFieldCache(0).enabled, false);
  assert.throws(() => new KvFieldCache(-1), /bad cache size -1/);
  assert.throws(() => new KvFieldCache(1024, 100), /bad slab size 100/);
});

test('lookups and evictions are counted, across the caches that share counters', () => {
  const slabBytes = 256;
  const counters = newRangeCacheCounters();
  const cache = new KvFieldCache(2 * slabBytes, slabBytes, counters);
  const bytes = field(100, 7); // two fit in a slab
  assert.equal(cache.find(1, 0), -1);
  cache.add(1, 0, bytes, 0, bytes.length);
  assert.ok(cache.find(1, 0) >= 0);
  assert.ok(cache.find(1, 0) >= 0);
  assert.equal(cache.find(1, 4096), -1); // not cacheable: a miss too
  assert.deepEqual(counters, { hits: 2, misses: 2, evictions: 0 });
  // Two slabs of two fields each; the fifth field reuses the first slab and drops its two.
  for (let main = 2; main <= 5; main++) cache.add(main, 0, bytes, 0, bytes.length);
  assert.equal(counters.evictions, 2);
  assert.equal(cache.size, 3);
  assert.equal(cache.find(1, 0), -1);
  // A cache made with the same counters (a store replaced) goes on counting there.
  const next = new KvFieldCache(2 * slabBytes, slabBytes, counters);
  assert.equal(next.find(5, 0), -1);
  assert.deepEqual(counters, { hits: 2, misses: 4, evictions: 2 });
});
