// The ordered key index (etcd's treeIndex): every key ever written and not yet compacted away,
// in byte order, each with its KeyIndex.
//
// The structure is a sorted array of sorted chunks (a two-level B-tree): a lookup is a binary
// search over the chunks' first keys and then inside one chunk; an insert moves at most one
// chunk's elements and splits a chunk that grows past CHUNK_MAX. Keys are latin1 strings (one
// code unit per byte), which JavaScript compares in byte order without a call into C++. Each
// level keeps its keys in a plain string array next to the items, so a search step reads one
// string and not an object first. Point lookups (every put, every single-key read) go through
// a hash map beside the ordered structure instead: with a million keys a binary search is
// about 20 cache misses, a map lookup one or two. See bench/README.md for the numbers.

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
  /** The same KeyIndexes by key, for point lookups. */
  private readonly byKey: Map<string, KeyIndex>;

  constructor(byKey: Map<string, KeyIndex> = new Map()) {
    this.chunks = [];
    this.firsts = [];
    this.byKey = byKey;
  }

  /** Builds an index from KeyIndexes sorted by key, without duplicates. */
  static fromSorted(sorted: KeyIndex[]): TreeIndex {
    const byKey = new Map<string, KeyIndex>();
    for (const ki of sorted) byKey.set(ki.key, ki);
    if (byKey.size !== sorted.length) throw new Error('mvcc: duplicate keys in the index');
    return TreeIndex.build(byKey, sorted.map(keyOf));
  }

  /** Builds an index from KeyIndexes by key; takes ownership of the map. */
  static fromMap(byKey: Map<string, KeyIndex>): TreeIndex {
    const keys = Array.from(byKey.keys());
    // The default sort compares strings by UTF-16 code unit: byte order for latin1 keys.
    keys.sort();
    return TreeIndex.build(byKey, keys);
  }

  private static build(byKey: Map<string, KeyIndex>, keys: string[]): TreeIndex {
    const tree = new TreeIndex(byKey);
    for (let i = 0; i < keys.length; i += CHUNK_FILL) {
      const chunkKeys = keys.slice(i, i + CHUNK_FILL);
      if (i > 0 && !(keys[i - 1]! < chunkKeys[0]!)) throw new Error('mvcc: index keys not sorted');
      tree.chunks.push(
        new Chunk(
          chunkKeys,
          chunkKeys.map((k) => byKey.get(k)!),
        ),
      );
      tree.firsts.push(chunkKeys[0]!);
    }
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
    if (this.chunks.length === 0) {
      this.chunks.push(new Chunk([key], [ki]));
      this.firsts.push(key);
      return ki;
    }
    const c = Math.max(0, this.chunkFor(key));
    const chunk = this.chunks[c]!;
    const keys = chunk.keys;
    const i = lowerBound(keys, key);
    if (keys[i] === key) throw new Error(`mvcc: index map and order disagree on ${JSON.stringify(key)}`);
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
    return ki;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    if (!this.byKey.delete(key)) return false;
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
