// The ordered key index (etcd's treeIndex): every key ever written and not yet compacted away,
// in byte order, each with its KeyIndex.
//
// The structure is a sorted array of sorted chunks (a two-level B-tree): a lookup is a binary
// search over the chunks' first keys and then inside one chunk; an insert moves at most one
// chunk's elements and splits a chunk that grows past CHUNK_MAX. Keys are latin1 strings (one
// code unit per byte), which JavaScript compares in byte order without a call into C++. With
// a million keys a lookup is about 20 string comparisons; see bench/README.md for numbers.

import { KeyIndex } from './key-index.ts';

/** A chunk splits in two when it grows past this many keys. */
const CHUNK_MAX = 512;
/** Chunk size when building from a sorted list, leaving room to grow before splitting. */
const CHUNK_FILL = 256;

/** A position in the index, reused across calls to avoid allocating. */
export class IndexCursor {
  chunk = 0;
  pos = 0;
}

export class TreeIndex {
  private chunks: KeyIndex[][];
  private count: number;

  constructor() {
    this.chunks = [];
    this.count = 0;
  }

  /** Builds an index from KeyIndexes sorted by key, without duplicates. */
  static fromSorted(sorted: KeyIndex[]): TreeIndex {
    const tree = new TreeIndex();
    for (let i = 0; i < sorted.length; i += CHUNK_FILL) {
      const chunk = sorted.slice(i, i + CHUNK_FILL);
      if (i > 0 && !(sorted[i - 1]!.key < chunk[0]!.key)) throw new Error('mvcc: index keys not sorted');
      tree.chunks.push(chunk);
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
    const i = lowerBound(chunk, key);
    const ki = chunk[i];
    return ki !== undefined && ki.key === key ? ki : undefined;
  }

  /** The KeyIndex of `key`, created empty and inserted if missing. */
  getOrCreate(key: string): KeyIndex {
    const chunks = this.chunks;
    if (chunks.length === 0) {
      const ki = new KeyIndex(key);
      chunks.push([ki]);
      this.count = 1;
      return ki;
    }
    const c = Math.max(0, this.chunkFor(key));
    const chunk = chunks[c]!;
    const i = lowerBound(chunk, key);
    const found = chunk[i];
    if (found !== undefined && found.key === key) return found;
    const ki = new KeyIndex(key);
    if (i === chunk.length) chunk.push(ki);
    else chunk.splice(i, 0, ki);
    this.count++;
    if (chunk.length > CHUNK_MAX) chunks.splice(c + 1, 0, chunk.splice(chunk.length >>> 1));
    return ki;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const c = this.chunkFor(key);
    if (c < 0) return false;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, key);
    if (chunk[i]?.key !== key) return false;
    chunk.splice(i, 1);
    if (chunk.length === 0) this.chunks.splice(c, 1);
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
    let i = lowerBound(chunk, key);
    if (exclusive && chunk[i]?.key === key) i++;
    cur.pos = i;
  }

  /** The KeyIndex at `cur`, advancing it; undefined at the end. */
  next(cur: IndexCursor): KeyIndex | undefined {
    const chunks = this.chunks;
    for (;;) {
      const chunk = chunks[cur.chunk];
      if (chunk === undefined) return undefined;
      if (cur.pos < chunk.length) return chunk[cur.pos++];
      cur.chunk++;
      cur.pos = 0;
    }
  }

  /** Index of the last chunk whose first key is <= key; -1 when key precedes every key (or the index is empty). */
  private chunkFor(key: string): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid]![0]!.key <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}

function lowerBound(chunk: KeyIndex[], key: string): number {
  let lo = 0;
  let hi = chunk.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (chunk[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
