// Storage with 1 million keys: load through MVCC write transactions, close, reopen (index
// rebuild), reads, compaction, online defragment, hashKV, and the ordered index alone.
// Not part of npm test:   node --import tsx bench/storage-1m.ts   (BENCH_KEYS to change the size)

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Backend } from '../src/storage/backend/index.ts';
import { MvccStore } from '../src/storage/mvcc/index.ts';
import { KeyIndex } from '../src/storage/mvcc/key-index.ts';
import { IndexCursor, TreeIndex } from '../src/storage/mvcc/tree-index.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const PUTS_PER_TXN = 1000;
const VALUE_BYTES = 128;
const EMPTY = new Uint8Array(0);
const FROM_KEY = new Uint8Array([0]);

// A full GC before memory readings, so that they show what is retained, not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const rows: [string, string][] = [];
function report(what: string, value: string): void {
  rows.push([what, value]);
  console.log(`${what}: ${value}`);
}

/** Process CPU time (all threads: main, lmdb's write thread, GC) in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
/** "wall (CPU)" since the given readings. */
function wallCpu(t0: number, c0: number): string {
  return `${sec(performance.now() - t0)} (CPU ${sec(cpuMs() - c0)})`;
}

const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MiB`;
const sec = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const rss = (): number => process.memoryUsage().rss;
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
function dirBytes(dir: string): { apparent: number; disk: number } {
  let apparent = 0;
  let disk = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name));
    apparent += st.size;
    disk += st.blocks * 512;
  }
  return { apparent, disk };
}

/** The i-th key of a fixed pseudo-random permutation, so keys arrive out of order. */
function keyAt(i: number): Uint8Array {
  const n = (i * 7_368_787) % KEYS;
  return new Uint8Array(Buffer.from(`key/${String(n).padStart(8, '0')}`, 'latin1'));
}

function valueFor(i: number, round: number): Uint8Array {
  const v = new Uint8Array(VALUE_BYTES);
  for (let j = 0; j < VALUE_BYTES; j++) v[j] = (i + j * 31 + round) & 0xff;
  return v;
}

/** Tracks the longest gap between 1 ms timer ticks: how long the event loop was held. */
function stallMeter(): { stop(): number } {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  return {
    stop(): number {
      clearInterval(timer);
      return worst;
    },
  };
}

let seed = 12345;
function rnd(n: number): number {
  seed = (seed * 48271) % 2147483647;
  return seed % n;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'etcd-ts-bench-storage-'));
  const dir = join(root, 'backend');
  try {
    report('keys', `${KEYS.toLocaleString('en')} (${VALUE_BYTES} B values, ${PUTS_PER_TXN} puts per write txn)`);
    report('RSS at start', mb(rss()));

    // Load.
    let backend = Backend.open(dir);
    let store = MvccStore.open(backend);
    let t = performance.now();
    let c = cpuMs();
    let meter = stallMeter();
    for (let i = 0; i < KEYS; i += PUTS_PER_TXN) {
      const w = store.write();
      for (let j = i; j < Math.min(KEYS, i + PUTS_PER_TXN); j++) w.put(keyAt(j), valueFor(j, 0));
      w.end();
      await yieldToLoop();
    }
    await backend.forceCommit();
    await backend.sync();
    const loadMs = performance.now() - t;
    const loadStall = meter.stop();
    report(
      'load: time (committed and fsynced)',
      `${wallCpu(t, c)}, ${Math.round(KEYS / (loadMs / 1000)).toLocaleString('en')} puts/s`,
    );
    report('load: longest event-loop stall', sec(loadStall));
    gc();
    report('load: RSS / heap used after GC', `${mb(rss())} / ${mb(process.memoryUsage().heapUsed)}`);
    const sizeLoaded = backend.size();
    report('backend size / in use', `${mb(sizeLoaded.sizeBytes)} / ${mb(sizeLoaded.sizeInUseBytes)}`);
    await store.close();
    await backend.close();
    gc();
    const files = dirBytes(dir);
    report('data dir after close (apparent / on disk)', `${mb(files.apparent)} / ${mb(files.disk)}`);

    // Reopen: rebuild the index from the key bucket.
    t = performance.now();
    backend = Backend.open(dir);
    const openBackendMs = performance.now() - t;
    t = performance.now();
    c = cpuMs();
    store = MvccStore.open(backend);
    const rebuild = wallCpu(t, c);
    report('reopen: Backend.open', sec(openBackendMs));
    report('reopen: MvccStore.open (index rebuild)', `${rebuild}, revision ${store.rev()}`);
    gc();
    report(
      'reopen: RSS / heap used after GC (RSS includes the pages of the mapped data file)',
      `${mb(rss())} / ${mb(process.memoryUsage().heapUsed)}`,
    );

    // Reads.
    const gets = 100_000;
    t = performance.now();
    for (let i = 0; i < gets; i++) {
      const r = store.range(keyAt(rnd(KEYS)), EMPTY);
      if (r.count !== 1) throw new Error('missing key');
    }
    report('range: single key', `${(((performance.now() - t) * 1000) / gets).toFixed(2)} µs/op`);
    t = performance.now();
    const all = store.range(FROM_KEY, FROM_KEY, { countOnly: true });
    if (all.count !== KEYS) throw new Error(`count ${all.count}`);
    report('range: count all keys (current revision)', sec(performance.now() - t));
    t = performance.now();
    for (let i = 0; i < 100; i++) store.range(keyAt(rnd(KEYS)), FROM_KEY, { limit: 1000 });
    report(
      'range: 1000 keys from a random key, limit 1000',
      `${((performance.now() - t) / 100).toFixed(2)} ms/op (the count walks to the last key)`,
    );
    t = performance.now();
    const prefix = store.range(new Uint8Array(Buffer.from('key/000')), new Uint8Array(Buffer.from('key/001')));
    report(`range: prefix of ${prefix.count.toLocaleString('en')} keys with values`, sec(performance.now() - t));
    t = performance.now();
    const hist = store.range(FROM_KEY, FROM_KEY, { rev: Math.floor(store.rev() / 2), countOnly: true });
    report(
      `range: count at revision ${Math.floor(store.rev() / 2)} (history)`,
      `${sec(performance.now() - t)}, ${hist.count.toLocaleString('en')} keys`,
    );

    // Small write transactions.
    const singles = 20_000;
    t = performance.now();
    for (let i = 0; i < singles; i++) {
      const w = store.write();
      w.put(keyAt(rnd(KEYS)), valueFor(i, 1));
      w.end();
      if (i % 100 === 0) await yieldToLoop();
    }
    await backend.forceCommit();
    report(
      `write txn with one put (${KEYS.toLocaleString('en')} keys in the index)`,
      `${(((performance.now() - t) * 1000) / singles).toFixed(1)} µs/txn`,
    );

    // Overwrite 10% of the keys, then compact everything before the current revision.
    for (let i = 0; i < KEYS / 10; i += PUTS_PER_TXN) {
      const w = store.write();
      for (let j = i; j < i + PUTS_PER_TXN; j++) w.put(keyAt(j), valueFor(j, 2));
      w.end();
      await yieldToLoop();
    }
    t = performance.now();
    c = cpuMs();
    meter = stallMeter();
    await store.compact(store.rev()).done;
    report(
      'compact (index then backend, 1000 revisions per batch)',
      `${wallCpu(t, c)}, longest stall ${sec(meter.stop())}`,
    );

    t = performance.now();
    c = cpuMs();
    const h = store.hashKV(0);
    report('hashKV (synchronous)', `${wallCpu(t, c)} (hash ${h.hash})`);
    t = performance.now();
    c = cpuMs();
    meter = stallMeter();
    const ha = await store.hashKVAsync(0);
    if (ha.hash !== h.hash) throw new Error('hashKVAsync differs');
    report('hashKVAsync (in slices)', `${wallCpu(t, c)}, longest stall ${sec(meter.stop())}`);

    // Online defragment with reads and writes going on.
    await backend.forceCommit();
    const before = backend.size();
    let reads = 0;
    let writes = 0;
    let finished = false;
    t = performance.now();
    meter = stallMeter();
    const run = backend.defragment().finally(() => {
      finished = true;
    });
    while (!finished) {
      for (let i = 0; i < 20; i++) {
        if (store.range(keyAt(rnd(KEYS)), EMPTY).count !== 1) throw new Error('read failed during defragment');
        reads++;
      }
      const w = store.write();
      w.put(keyAt(rnd(KEYS)), valueFor(writes, 3));
      w.end();
      writes++;
      await yieldToLoop();
    }
    const result = await run;
    const defragMs = performance.now() - t;
    const defragStall = meter.stop();
    const afterDefrag = backend.size();
    report(
      'defragment: time (copy / catch-up rounds / commits paused)',
      `${sec(defragMs)} (${sec(result.copyMs)} / ${result.catchUpRounds} / ${sec(result.commitsPausedMs)})`,
    );
    report('defragment: file before / after', `${mb(before.sizeBytes)} / ${mb(afterDefrag.sizeBytes)}`);
    report(
      'defragment: served meanwhile',
      `${reads.toLocaleString('en')} reads, ${writes.toLocaleString('en')} write txns`,
    );
    report('defragment: longest event-loop stall', sec(defragStall));

    await store.close();
    await backend.close();
    report('peak RSS (VmHWM)', mb(peakRss()));

    // The ordered index alone: chunked sorted array against a flat sorted array.
    const keys: string[] = [];
    for (let i = 0; i < KEYS; i++) keys.push(Buffer.from(keyAt(i)).toString('latin1'));
    const cur0 = new IndexCursor();
    const tree = new TreeIndex();
    t = performance.now();
    c = cpuMs();
    for (const k of keys) tree.getOrCreate(k);
    report('index: create all keys in random order (map + list of new keys)', wallCpu(t, c));
    t = performance.now();
    c = cpuMs();
    tree.seek('', cur0);
    report('index: first seek (sorts the new keys into the chunks)', wallCpu(t, c));
    t = performance.now();
    c = cpuMs();
    for (const k of keys) if (tree.get(k) === undefined) throw new Error('lost key');
    report('index: look up all keys (map)', wallCpu(t, c));
    t = performance.now();
    c = cpuMs();
    for (const k of keys) tree.seek(k, cur0);
    report('index: seek all keys (binary search over the chunks)', wallCpu(t, c));
    const mixed = new TreeIndex();
    t = performance.now();
    c = cpuMs();
    for (let i = 0; i < keys.length; i++) {
      mixed.getOrCreate(keys[i]!);
      if (i % 10 === 9) mixed.seek(keys[i]!, cur0);
    }
    report('index: create all keys with a seek after every 10 (one by one into the chunks)', wallCpu(t, c));
    t = performance.now();
    const cur = cur0;
    tree.seek('', cur);
    let walked = 0;
    while (tree.next(cur) !== undefined) walked++;
    report(`index: chunked, walk ${walked.toLocaleString('en')} keys in order`, sec(performance.now() - t));
    const flatCount = Math.min(KEYS, 200_000);
    const flat: KeyIndex[] = [];
    t = performance.now();
    c = cpuMs();
    for (let i = 0; i < flatCount; i++) {
      const k = keys[i]!;
      let lo = 0;
      let hi = flat.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (flat[mid]!.key < k) lo = mid + 1;
        else hi = mid;
      }
      flat.splice(lo, 0, new KeyIndex(k));
    }
    report(
      `index: one flat sorted array, insert ${flatCount.toLocaleString('en')} keys (cost grows with n²)`,
      wallCpu(t, c),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log('\n| measurement | result |\n|---|---|');
  for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
}

await main();
