/**
 * The `kvs` fields of Range responses as encoded, by revision: a key read again is copied from
 * here instead of being looked up in the backend and encoded once more.
 *
 * The KeyValue a revision names never changes: it is written once, when the revision is
 * applied, and a compaction only removes it, after which no read can ask for it. So an entry
 * stays right until it is evicted; only a store replaced as a whole (a snapshot installed)
 * needs a new cache. Memory is bounded: fields are appended to a ring of slabs, and when the
 * ring comes round the oldest slab is emptied and its entries forgotten. Fields read in key
 * order lie side by side, so a range read again is copied in a few long runs (see `FieldRun`).
 *
 * A field starts with its tag (one byte) and its length (a varint): its end is found from its
 * start, with nothing stored beside it.
 */

/** The default of --range-cache-bytes. */
export const DEFAULT_RANGE_CACHE_BYTES = 64 * 1024 * 1024;
/** Slab size in bytes: a power of two, so that a location splits into slab and offset with shifts. */
export const DEFAULT_SLAB_BYTES = 1 << 20;
/** Locations are small integers (slab index and offset in one 31-bit number). */
const MAX_LOCATIONS = 2 ** 31;
/** Sub revisions a cache key can carry (a transaction's changes beyond this are not cached). */
const SUB_SPAN = 4096;
/** Main revisions a cache key can carry (keys stay exact doubles). */
const MAIN_LIMIT = 2 ** 40;

/** Slots of a new RevisionTable (a power of two). */
const TABLE_INITIAL_SLOTS = 1024;
/** Fields of a cache, on average at least this large: the table holds no more than bytes / this. */
const MIN_MEAN_FIELD_BYTES = 64;

/**
 * Cache key -> location, open addressing with linear probing in typed arrays: no object per
 * entry for the garbage collector, no boxed number for keys beyond 31 bits. Keys are positive.
 */
class RevisionTable {
  private keys: Float64Array;
  private locs: Int32Array;
  private bits: number;
  size = 0;

  constructor() {
    this.keys = new Float64Array(TABLE_INITIAL_SLOTS);
    this.locs = new Int32Array(TABLE_INITIAL_SLOTS);
    this.bits = Math.log2(TABLE_INITIAL_SLOTS);
  }

  get(key: number): number {
    const mask = this.keys.length - 1;
    for (let i = this.home(key); ; i = (i + 1) & mask) {
      const k = this.keys[i]!;
      if (k === key) return this.locs[i]!;
      if (k === 0) return -1;
    }
  }

  /** Sets `key` (not in the table) to `loc`. */
  add(key: number, loc: number): void {
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    const mask = this.keys.length - 1;
    let i = this.home(key);
    while (this.keys[i] !== 0) i = (i + 1) & mask;
    this.keys[i] = key;
    this.locs[i] = loc;
    this.size++;
  }

  /** Removes `key` if it is there with location `loc`. */
  delete(key: number, loc: number): void {
    const keys = this.keys;
    const mask = keys.length - 1;
    let i = this.home(key);
    while (keys[i] !== key) {
      if (keys[i] === 0) return;
      i = (i + 1) & mask;
    }
    if (this.locs[i] !== loc) return;
    // Backward shift: each later key of the probe chain that may move into the hole does.
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const h = this.home(keys[j]!);
      const movable = i <= j ? h <= i || h > j : h <= i && h > j;
      if (movable) {
        keys[i] = keys[j]!;
        this.locs[i] = this.locs[j]!;
        i = j;
      }
    }
    keys[i] = 0;
    this.size--;
  }

  private home(key: number): number {
    const mixed = (key | 0) ^ Math.imul((key / 4294967296) | 0, 0x85ebca6b);
    return Math.imul(mixed, 0x9e3779b1) >>> (32 - this.bits);
  }

  private grow(): void {
    const keys = this.keys;
    const locs = this.locs;
    this.keys = new Float64Array(keys.length * 2);
    this.locs = new Int32Array(keys.length * 2);
    this.bits++;
    this.size = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) this.add(keys[i]!, locs[i]!);
  }
}

/** What a cache counts; a member keeps one across the caches it replaces (metrics read it). */
export interface RangeCacheCounters {
  /** Fields looked up and found. */
  hits: number;
  /** Fields looked up and not found (read from the store, then cached if there is room). */
  misses: number;
  /** Entries forgotten when their slab was reused. */
  evictions: number;
}

/** The counters, and what a cache holds. */
export interface RangeCacheStats extends RangeCacheCounters {
  entries: number;
  allocatedBytes: number;
  capacityBytes: number;
}

export function newRangeCacheCounters(): RangeCacheCounters {
  return { hits: 0, misses: 0, evictions: 0 };
}

export class KvFieldCache {
  readonly counters: RangeCacheCounters;
  private readonly shift: number;
  /** Offset bits of a location. */
  private readonly mask: number;
  private readonly slabCount: number;
  private readonly slabs: Buffer[] = [];
  /** The cache key and location of each entry of each slab, to forget them when the slab is reused. */
  private readonly slabEntries: number[][] = [];
  /** Cache key (main revision x SUB_SPAN + sub + 1) -> location of the field (slab << shift | offset). */
  private readonly where = new RevisionTable();
  private readonly maxEntries: number;
  private slot = 0;
  private at = 0;

  /**
   * A cache of at most `maxBytes` of fields (rounded down to whole slabs; less than one slab:
   * nothing is cached). `slabBytes` must be a power of two. Lookups and evictions are counted
   * in `counters`.
   */
  constructor(
    maxBytes: number,
    slabBytes = DEFAULT_SLAB_BYTES,
    counters: RangeCacheCounters = newRangeCacheCounters(),
  ) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`bad cache size ${maxBytes}`);
    if (!Number.isInteger(slabBytes) || slabBytes < 64 || (slabBytes & (slabBytes - 1)) !== 0) {
      throw new RangeError(`bad slab size ${slabBytes}`);
    }
    this.shift = Math.log2(slabBytes);
    this.mask = slabBytes - 1;
    this.slabCount = Math.floor(Math.min(maxBytes, MAX_LOCATIONS) / slabBytes);
    this.maxEntries = Math.max(1, (this.slabCount * slabBytes) / MIN_MEAN_FIELD_BYTES);
    this.counters = counters;
  }

  get enabled(): boolean {
    return this.slabCount > 0;
  }

  /** Bytes of fields the cache can hold. */
  get capacityBytes(): number {
    return this.slabCount * (this.mask + 1);
  }

  /** Bytes of slabs allocated. */
  get allocatedBytes(): number {
    return this.slabs.length * (this.mask + 1);
  }

  /** Entries held. */
  get size(): number {
    return this.where.size;
  }

  /** The location of the field of revision main_sub, or -1. */
  find(main: number, sub: number): number {
    const loc = sub >= SUB_SPAN || main >= MAIN_LIMIT ? -1 : this.where.get(main * SUB_SPAN + sub + 1);
    if (loc < 0) this.counters.misses++;
    else this.counters.hits++;
    return loc;
  }

  /** The location just past the field at `loc`. */
  fieldEnd(loc: number): number {
    const slab = this.slabs[loc >>> this.shift]!;
    const offset = loc & this.mask;
    let at = offset + 1;
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const b = slab[at++]!;
      length += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    return loc + (at - offset) + length;
  }

  /** True when `loc` is the first byte of a slab (a run of fields never goes past a slab's end). */
  startsSlab(loc: number): boolean {
    return (loc & this.mask) === 0;
  }

  /** The bytes at [loc, end), a range of one slab, for `copy(src, start, end)`. */
  copyTo(loc: number, end: number, copy: (src: Uint8Array, start: number, end: number) => void): void {
    const offset = loc & this.mask;
    copy(this.slabs[loc >>> this.shift]!, offset, offset + (end - loc));
  }

  /**
   * Keeps `src[start, end)`, the encoded field of revision main_sub, which is not cached (`find`
   * gave -1). A field larger than a slab is not kept.
   */
  add(main: number, sub: number, src: Uint8Array, start: number, end: number): void {
    const length = end - start;
    if (this.slabCount === 0 || length > this.mask + 1 || sub >= SUB_SPAN || main >= MAIN_LIMIT) return;
    const key = main * SUB_SPAN + sub + 1;
    // A slab full, or as many entries as the table may hold: the next slab, the oldest one
    // emptied once the ring is complete (or the entries are at their bound).
    if (this.slabs.length === 0 || this.at + length > this.mask + 1 || this.where.size >= this.maxEntries) {
      this.nextSlab();
    }
    const loc = (this.slot << this.shift) | this.at;
    this.slabs[this.slot]!.set(new Uint8Array(src.buffer, src.byteOffset + start, length), this.at);
    this.where.add(key, loc);
    this.slabEntries[this.slot]!.push(key, loc);
    this.at += length;
  }

  /**
   * Moves to the next slab of the ring, forgetting what it held. The ring grows a slab at its
   * end while it is shorter than its size and the entries are below their bound.
   */
  private nextSlab(): void {
    const atEnd = this.slabs.length === 0 || this.slot === this.slabs.length - 1;
    if (atEnd && this.slabs.length < this.slabCount && this.where.size < this.maxEntries) {
      this.slabs.push(Buffer.allocUnsafe(this.mask + 1));
      this.slabEntries.push([]);
      this.slot = this.slabs.length - 1;
    } else {
      this.slot = (this.slot + 1) % this.slabs.length;
      const entries = this.slabEntries[this.slot]!;
      const before = this.where.size;
      for (let i = 0; i < entries.length; i += 2) this.where.delete(entries[i]!, entries[i + 1]!);
      this.counters.evictions += before - this.where.size;
      entries.length = 0;
    }
    this.at = 0;
  }
}

/**
 * Consecutive cached fields gathered into one copy: `extend` adds the field at a location,
 * `flush` copies what was gathered (before anything else is written to the output).
 */
export class FieldRun {
  private start = -1;
  private end = -1;

  constructor(
    private readonly cache: KvFieldCache,
    private readonly copy: (src: Uint8Array, start: number, end: number) => void,
  ) {}

  /** Adds the field at `loc` (from `cache.find`). */
  extend(loc: number): void {
    const end = this.cache.fieldEnd(loc);
    if (loc === this.end && !this.cache.startsSlab(loc)) {
      this.end = end;
      return;
    }
    this.flush();
    this.start = loc;
    this.end = end;
  }

  flush(): void {
    if (this.start < 0) return;
    this.cache.copyTo(this.start, this.end, this.copy);
    this.start = -1;
    this.end = -1;
  }
}
