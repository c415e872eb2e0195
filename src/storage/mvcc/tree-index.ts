// The ordered key index (etcd's treeIndex): every key ever written and not yet compacted away,
// in byte order, each with its KeyIndex.
//
// Three parts:
// - a hash map from key to KeyIndex: every point lookup (each put, each single-key read);
// - a sorted array of sorted chunks (a two-level B-tree) for ordered walks: a seek is a binary
//   search over the chunks' first keys and then inside one chunk; each level keeps its keys in
//   a plain string array next to the items, so a search step reads one string, not an object;
// - the keys created since the last ordered operation, unsorted. They join the chunks when the
//   next seek needs them: a few at a time by binary search, many at once by sorting them and
//   merging them into the chunks in one pass.
//
// Keys are latin1 strings (one code unit per byte), which JavaScript compares in byte order.
// With a million keys a binary search is about 20 cache misses and a map lookup one or two,
// which is why creating a key does not search (see bench/README.md for the numbers).

import { KeyIndex } from './key-index.ts';

/** A chunk splits in two when it grows past this many keys. */
const CHUNK_MAX = 512;
/** Chunk size when building from a sorted list, leaving room to grow before splitting. */
const CHUNK_FILL = 256;
/** New keys are merged by rebuilding the chunks when they are more than 1/this of the index. */
const REBUILD_RATIO = 16;

class Chunk {
  keys: string[];
  items: KeyIndex[];

  constructor(keys: string[], items: KeyIndex[]) {
    this.keys = keys;
    this.items = items;
  }
}

/** A position in the index, reused across calls to avoid allocating. */
export class IndexCursor {
  chunk = 0;
  pos = 0;
}

export class TreeIndex {
  private chunks: Chunk[];
  /** firsts[i] is the first key of chunks[i]. */
  private firsts: string[];
  /** Every KeyIndex by key. */
  private readonly byKey: Map<string, KeyIndex>;
  /** Keys in byKey but not yet in the chunks. */
  private fresh: string[];

  constructor(byKey: Map<string, KeyIndex> = new Map()) {
    this.chunks = [];
    this.firsts = [];
    this.byKey = byKey;
    this.fresh = [];
  }

  /** Builds an index from KeyIndexes sorted by key, without duplicates. */
  static fromSorted(sorted: KeyIndex[]): TreeIndex {
    const byKey = new Map<string, KeyIndex>();
    for (const ki of sorted) byKey.set(ki.key, ki);
    if (byKey.size !== sorted.length) throw new Error('mvcc: duplicate keys in the index');
    const tree = new TreeIndex(byKey);
    tree.rebuild(sorted.map(keyOf), true);
    return tree;
  }

  /** Builds an index from KeyIndexes by key; takes ownership of the map. */
  static fromMap(byKey: Map<string, KeyIndex>): TreeIndex {
    const tree = new TreeIndex(byKey);
    tree.rebuild(sortedKeys(Array.from(byKey.keys())), false);
    return tree;
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): KeyIndex | undefined {
    return this.byKey.get(key);
  }

  /** The KeyIndex of `key`, created empty and inserted if missing. */
  getOrCreate(key: string): KeyIndex {
    const found = this.byKey.get(key);
    if (found !== undefined) return found;
    const ki = new KeyIndex(key);
    this.byKey.set(key, ki);
    this.fresh.push(key);
    return ki;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    if (!this.byKey.has(key)) return false;
    this.settle();
    this.byKey.delete(key);
    const c = this.chunkFor(key);
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk.keys, key);
    if (chunk.keys[i] !== key) throw new Error(`mvcc: index map and order disagree on ${JSON.stringify(key)}`);
    chunk.keys.splice(i, 1);
    chunk.items.splice(i, 1);
    if (chunk.keys.length === 0) {
      this.chunks.splice(c, 1);
      this.firsts.splice(c, 1);
    } else if (i === 0) this.firsts[c] = chunk.keys[0]!;
    return true;
  }

  /** Points `cur` at the first key >= `key` (or after `key` when `exclusive`). */
  seek(key: string, cur: IndexCursor, exclusive = false): void {
    this.settle();
    const c = Math.max(0, this.chunkFor(key));
    cur.chunk = c;
    const chunk = this.chunks[c];
    if (chunk === undefined) {
      cur.pos = 0;
      return;
    }
    let i = lowerBound(chunk.keys, key);
    if (exclusive && chunk.keys[i] === key) i++;
    cur.pos = i;
  }

  /**
   * The KeyIndex at `cur`, advancing it; undefined at the end. A cursor stays valid until the
   * index changes (a key created or deleted): seek again after that.
   */
  next(cur: IndexCursor): KeyIndex | undefined {
    const chunks = this.chunks;
    for (;;) {
      const chunk = chunks[cur.chunk];
      if (chunk === undefined) return undefined;
      if (cur.pos < chunk.items.length) return chunk.items[cur.pos++];
      cur.chunk++;
      cur.pos = 0;
    }
  }

  /** Moves the fresh keys into the chunks. */
  private settle(): void {
    const fresh = this.fresh;
    if (fresh.length === 0) return;
    this.fresh = [];
    if (fresh.length * REBUILD_RATIO > this.byKey.size) {
      this.rebuild(mergeSorted(this.chunks, sortedKeys(fresh)), false);
      return;
    }
    for (const key of fresh) this.insertSorted(key);
  }

  /** Replaces the chunks with `keys` (sorted, every one in byKey); `verify` checks the order. */
  private rebuild(keys: string[], verify: boolean): void {
    const byKey = this.byKey;
    const chunks: Chunk[] = [];
    const firsts: string[] = [];
    for (let i = 1; verify && i < keys.length; i++) {
      if (!(keys[i - 1]! < keys[i]!)) throw new Error('mvcc: index keys not sorted or not unique');
    }
    for (let i = 0; i < keys.length; i += CHUNK_FILL) {
      const chunkKeys = keys.slice(i, i + CHUNK_FILL);
      const items: KeyIndex[] = [];
      for (const k of chunkKeys) items.push(byKey.get(k)!);
      chunks.push(new Chunk(chunkKeys, items));
      firsts.push(chunkKeys[0]!);
    }
    this.chunks = chunks;
    this.firsts = firsts;
  }

  private insertSorted(key: string): void {
    const ki = this.byKey.get(key)!;
    if (this.chunks.length === 0) {
      this.chunks.push(new Chunk([key], [ki]));
      this.firsts.push(key);
      return;
    }
    const c = Math.max(0, this.chunkFor(key));
    const chunk = this.chunks[c]!;
    const keys = chunk.keys;
    const i = lowerBound(keys, key);
    if (keys[i] === key) throw new Error(`mvcc: key ${JSON.stringify(key)} is in the index twice`);
    if (i === keys.length) {
      keys.push(key);
      chunk.items.push(ki);
    } else {
      keys.splice(i, 0, key);
      chunk.items.splice(i, 0, ki);
      if (i === 0) this.firsts[c] = key;
    }
    if (keys.length > CHUNK_MAX) {
      const half = keys.length >>> 1;
      const upper = new Chunk(keys.splice(half), chunk.items.splice(half));
      this.chunks.splice(c + 1, 0, upper);
      this.firsts.splice(c + 1, 0, upper.keys[0]!);
    }
  }

  /** Index of the last chunk whose first key is <= key; -1 when key precedes every key (or the index is empty). */
  private chunkFor(key: string): number {
    const firsts = this.firsts;
    let lo = 0;
    let hi = firsts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (firsts[mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}

function keyOf(ki: KeyIndex): string {
  return ki.key;
}

/** The keys in byte order. The default sort compares UTF-16 code units: bytes, for latin1 keys. */
function sortedKeys(keys: string[]): string[] {
  keys.sort();
  return keys;
}

/** The chunks' keys merged with `fresh` (sorted, none of them in the chunks). */
function mergeSorted(chunks: Chunk[], fresh: string[]): string[] {
  const out: string[] = [];
  let f = 0;
  for (const chunk of chunks) {
    for (const key of chunk.keys) {
      while (f < fresh.length && fresh[f]! < key) out.push(fresh[f++]!);
      out.push(key);
    }
  }
  while (f < fresh.length) out.push(fresh[f++]!);
  return out;
}

function lowerBound(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
