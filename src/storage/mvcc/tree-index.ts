// The ordered key index (etcd's treeIndex): every key ever written and not yet compacted away,
// in byte order, each with its KeyIndex.
//
// The structure is a sorted array of sorted chunks (a two-level B-tree): a lookup is a binary
// search over the chunks' first keys and then inside one chunk; an insert moves at most one
// chunk's elements and splits a chunk that grows past CHUNK_MAX. Keys are latin1 strings (one
// code unit per byte), which JavaScript compares in byte order without a call into C++. Each
// level keeps its keys in a plain string array next to the items, so a search step reads one
// string and not an object first: with a million keys that halves the cache misses of a
// lookup. See bench/README.md for the numbers.

import { KeyIndex } from './key-index.ts';

/** A chunk splits in two when it grows past this many keys. */
const CHUNK_MAX = 512;
/** Chunk size when building from a sorted list, leaving room to grow before splitting. */
const CHUNK_FILL = 256;

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
  private count: number;

  constructor() {
    this.chunks = [];
    this.firsts = [];
    this.count = 0;
  }

  /** Builds an index from KeyIndexes sorted by key, without duplicates. */
  static fromSorted(sorted: KeyIndex[]): TreeIndex {
    const tree = new TreeIndex();
    for (let i = 0; i < sorted.length; i += CHUNK_FILL) {
      const items = sorted.slice(i, i + CHUNK_FILL);
      const keys = items.map(keyOf);
      if (i > 0 && !(sorted[i - 1]!.key < keys[0]!)) throw new Error('mvcc: index keys not sorted');
      tree.chunks.push(new Chunk(keys, items));
      tree.firsts.push(keys[0]!);
    }
    tree.count = sorted.length;
    return tree;
  }

  get size(): number {
    return this.count;
  }

  get(key: string): KeyIndex | undefined {
    const c = this.chunkFor(key);
    if (c < 0) return undefined;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk.keys, key);
    return chunk.keys[i] === key ? chunk.items[i] : undefined;
  }

  /** The KeyIndex of `key`, created empty and inserted if missing. */
  getOrCreate(key: string): KeyIndex {
    if (this.chunks.length === 0) {
      const ki = new KeyIndex(key);
      this.chunks.push(new Chunk([key], [ki]));
      this.firsts.push(key);
      this.count = 1;
      return ki;
    }
    const c = Math.max(0, this.chunkFor(key));
    const chunk = this.chunks[c]!;
    const keys = chunk.keys;
    const i = lowerBound(keys, key);
    if (keys[i] === key) return chunk.items[i]!;
    const ki = new KeyIndex(key);
    if (i === keys.length) {
      keys.push(key);
      chunk.items.push(ki);
    } else {
      keys.splice(i, 0, key);
      chunk.items.splice(i, 0, ki);
      if (i === 0) this.firsts[c] = key;
    }
    this.count++;
    if (keys.length > CHUNK_MAX) {
      const half = keys.length >>> 1;
      const upper = new Chunk(keys.splice(half), chunk.items.splice(half));
      this.chunks.splice(c + 1, 0, upper);
      this.firsts.splice(c + 1, 0, upper.keys[0]!);
    }
    return ki;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const c = this.chunkFor(key);
    if (c < 0) return false;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk.keys, key);
    if (chunk.keys[i] !== key) return false;
    chunk.keys.splice(i, 1);
    chunk.items.splice(i, 1);
    if (chunk.keys.length === 0) {
      this.chunks.splice(c, 1);
      this.firsts.splice(c, 1);
    } else if (i === 0) this.firsts[c] = chunk.keys[0]!;
    this.count--;
    return true;
  }

  /** Points `cur` at the first key >= `key` (or after `key` when `exclusive`). */
  seek(key: string, cur: IndexCursor, exclusive = false): void {
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

  /** The KeyIndex at `cur`, advancing it; undefined at the end. */
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
