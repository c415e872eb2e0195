// Writes a bbolt database file from buckets whose keys arrive in order, in one pass, with memory
// bounded by one page per tree level (plus the output not yet taken). See README.md for the
// layout it produces.

import { BboltUsageError } from './errors.ts';
import {
  BRANCH_ELEMENT_BYTES,
  BUCKET_HEADER_BYTES,
  BUCKET_LEAF_FLAG,
  encodeFreelistPage,
  encodeMetaPage,
  INLINE_BUCKET_BYTES_MAX,
  KEY_BYTES_MAX,
  LEAF_ELEMENT_BYTES,
  META_PAGE_0,
  META_PAGE_1,
  type Meta,
  PAGE_HEADER_BYTES,
  PAGE_SIZE,
  PageFlag,
  VALUE_BYTES_MAX,
  writeBucketHeader,
  writePageHeader,
} from './format.ts';

/** The freelist page of files written here (it lists no page: nothing is free). */
export const FREELIST_PAGE = 2;
/** The first page of the buckets' trees. */
export const FIRST_BODY_PAGE = 3;
/** Pages are collected into output chunks of this size. */
const OUTPUT_CHUNK_BYTES = 1024 * 1024;
/**
 * bbolt's minKeysPerPage: a page is full only once it holds two elements (it then takes
 * overflow pages if need be). With one, keys larger than half a page would make every branch
 * page a chain of one child and the tree as deep as it has keys.
 */
const KEYS_PER_PAGE_MIN = 2;
/** meta 0 carries this transaction id, meta 1 one less (as bbolt's Tx.WriteTo writes them). */
const TXID_DEFAULT = 2n;

/** Encoded pages, in page order, collected into chunks the caller takes. */
class PageOutput {
  readonly ready: Buffer[] = [];
  readyBytes = 0;
  /** The next page id to hand out. */
  next: number;
  private chunk: Buffer;
  private pos = 0;

  constructor(firstPage: number) {
    this.next = firstPage;
    this.chunk = Buffer.alloc(OUTPUT_CHUNK_BYTES);
  }

  /** Zeroed room for `pages` consecutive pages; returns their first id and the bytes. */
  reserve(pages: number): { pgid: number; buf: Buffer } {
    const bytes = pages * PAGE_SIZE;
    const pgid = this.next;
    this.next += pages;
    if (bytes > OUTPUT_CHUNK_BYTES) {
      this.flush();
      const buf = Buffer.alloc(bytes);
      this.push(buf);
      return { pgid, buf };
    }
    if (this.pos + bytes > OUTPUT_CHUNK_BYTES) this.flush();
    const buf = this.chunk.subarray(this.pos, this.pos + bytes);
    this.pos += bytes;
    return { pgid, buf };
  }

  /** Hands out the partial chunk. */
  flush(): void {
    if (this.pos === 0) return;
    this.push(this.chunk.subarray(0, this.pos));
    this.chunk = Buffer.alloc(OUTPUT_CHUNK_BYTES);
    this.pos = 0;
  }

  private push(buf: Buffer): void {
    this.ready.push(buf);
    this.readyBytes += buf.length;
  }
}

/** The elements of the page being filled at one level of a tree. */
class Level {
  readonly keys: Uint8Array[] = [];
  /** Leaf levels: values and element flags; branch levels: child page ids. */
  readonly values: Uint8Array[] = [];
  readonly flags: number[] = [];
  readonly children: number[] = [];
  /** Bytes of the page as it stands: header, element headers, keys and values. */
  bytes = PAGE_HEADER_BYTES;
  /** Pages this level has written so far. */
  written = 0;

  clear(): void {
    this.keys.length = 0;
    this.values.length = 0;
    this.flags.length = 0;
    this.children.length = 0;
    this.bytes = PAGE_HEADER_BYTES;
  }
}

/**
 * Builds one B+tree bottom up from elements in key order: a page is written as soon as the next
 * element would not fit and it holds at least two (a page with more than a page's worth of
 * bytes gets overflow pages), and its first key and id go up into the level above. Branch keys are the first keys
 * of their children, as bbolt writes them.
 */
class TreeBuilder {
  private readonly out: PageOutput;
  private readonly levels: Level[] = [new Level()];

  constructor(out: PageOutput) {
    this.out = out;
  }

  addLeaf(flags: number, key: Uint8Array, value: Uint8Array): void {
    const leaf = this.levels[0]!;
    const size = LEAF_ELEMENT_BYTES + key.length + value.length;
    if (leaf.keys.length >= KEYS_PER_PAGE_MIN && leaf.bytes + size > PAGE_SIZE) this.writeLevel(0);
    leaf.keys.push(key);
    leaf.values.push(value);
    leaf.flags.push(flags);
    leaf.bytes += size;
  }

  /** Writes what is left, level by level; returns the root page. */
  finish(): number {
    for (let depth = 0; ; depth++) {
      const level = this.levels[depth]!;
      if (depth === this.levels.length - 1 && level.written === 0) return this.writePage(depth);
      this.writeLevel(depth);
    }
  }

  private addBranch(depth: number, key: Uint8Array, child: number): void {
    if (depth === this.levels.length) this.levels.push(new Level());
    const level = this.levels[depth]!;
    const size = BRANCH_ELEMENT_BYTES + key.length;
    if (level.keys.length >= KEYS_PER_PAGE_MIN && level.bytes + size > PAGE_SIZE) this.writeLevel(depth);
    level.keys.push(key);
    level.children.push(child);
    level.bytes += size;
  }

  private writeLevel(depth: number): void {
    const level = this.levels[depth]!;
    if (level.keys.length === 0) throw new Error('bbolt writer: a level above the leaves is never empty');
    const first = level.keys[0]!;
    const pgid = this.writePage(depth);
    this.addBranch(depth + 1, first, pgid);
  }

  private writePage(depth: number): number {
    const level = this.levels[depth]!;
    const pages = Math.ceil(level.bytes / PAGE_SIZE);
    const { pgid, buf } = this.out.reserve(pages);
    if (depth === 0) encodeLeaf(buf, level, pgid, pages - 1);
    else encodeBranch(buf, level, pgid, pages - 1);
    level.written++;
    level.clear();
    return pgid;
  }
}

function encodeLeaf(buf: Buffer, level: Level, pgid: number, overflow: number): void {
  const n = level.keys.length;
  writePageHeader(buf, 0, { id: pgid, flags: PageFlag.leaf, count: n, overflow });
  let data = PAGE_HEADER_BYTES + n * LEAF_ELEMENT_BYTES;
  for (let i = 0; i < n; i++) {
    const elem = PAGE_HEADER_BYTES + i * LEAF_ELEMENT_BYTES;
    const key = level.keys[i]!;
    const value = level.values[i]!;
    buf.writeUInt32LE(level.flags[i]!, elem);
    buf.writeUInt32LE(data - elem, elem + 4);
    buf.writeUInt32LE(key.length, elem + 8);
    buf.writeUInt32LE(value.length, elem + 12);
    buf.set(key, data);
    buf.set(value, data + key.length);
    data += key.length + value.length;
  }
  if (data !== level.bytes) throw new Error(`bbolt writer: leaf of ${level.bytes} bytes encoded as ${data}`);
}

function encodeBranch(buf: Buffer, level: Level, pgid: number, overflow: number): void {
  const n = level.keys.length;
  writePageHeader(buf, 0, { id: pgid, flags: PageFlag.branch, count: n, overflow });
  let data = PAGE_HEADER_BYTES + n * BRANCH_ELEMENT_BYTES;
  for (let i = 0; i < n; i++) {
    const elem = PAGE_HEADER_BYTES + i * BRANCH_ELEMENT_BYTES;
    const key = level.keys[i]!;
    buf.writeUInt32LE(data - elem, elem);
    buf.writeUInt32LE(key.length, elem + 4);
    buf.writeBigUInt64LE(BigInt(level.children[i]!), elem + 8);
    buf.set(key, data);
    data += key.length;
  }
  if (data !== level.bytes) throw new Error(`bbolt writer: branch of ${level.bytes} bytes encoded as ${data}`);
}

/** The bucket being written: its first entries wait in `inline` until they outgrow an inline bucket. */
class OpenBucket {
  readonly name: Uint8Array;
  readonly inline = new Level();
  tree: TreeBuilder | null = null;
  last: Uint8Array | null = null;
  entries = 0;

  constructor(name: Uint8Array) {
    this.name = name;
  }
}

export interface BboltWriterOptions {
  /** Transaction id of meta 0 (meta 1 gets one less); default 2. */
  txid?: bigint;
}

export interface BboltFileSummary {
  /** Pages in the file (bbolt's high water mark); the file is `pages * PAGE_SIZE` bytes. */
  pages: number;
  sizeBytes: number;
  /** Pages 0 to 2 (meta 0, meta 1, freelist), to be written at the start of the file. */
  head: Buffer;
  /** Entries written, over all buckets. */
  entries: number;
}

/**
 * Writes a bbolt file: top-level buckets one after the other (`bucket(name)`), each with its
 * keys in strictly increasing byte order (`put`). Pages from page 3 on collect in `ready` (take
 * them with `take()` and write them one after the other from offset 3 * PAGE_SIZE); `finish()`
 * returns the first three pages, which go at offset 0.
 *
 * A bucket whose entries fit in a quarter page is stored inline in the root bucket's leaf, as
 * bbolt stores small buckets; a larger one gets its own tree. Buckets may come in any order.
 */
export class BboltWriter {
  private readonly out = new PageOutput(FIRST_BODY_PAGE);
  private readonly txid: bigint;
  /** Bucket name (latin1) -> the value of its element in the root bucket. */
  private readonly rootEntries = new Map<string, { name: Uint8Array; value: Uint8Array }>();
  private open: OpenBucket | null = null;
  private entries = 0;
  private finished = false;

  constructor(options: BboltWriterOptions = {}) {
    this.txid = options.txid ?? TXID_DEFAULT;
    if (this.txid < 1n) throw new BboltUsageError('txid must be at least 1');
  }

  /** Bytes of pages waiting to be taken. */
  get readyBytes(): number {
    return this.out.readyBytes;
  }

  /** The pages written so far (from page 3 on, in order); the caller owns them. */
  take(): Buffer[] {
    const chunks = this.out.ready.splice(0);
    this.out.readyBytes = 0;
    return chunks;
  }

  /** Starts the bucket `name` (ending the one before). */
  bucket(name: Uint8Array): void {
    this.assertOpen();
    this.endBucket();
    checkKey(name, 'bucket name');
    const id = Buffer.from(name).toString('latin1');
    if (this.rootEntries.has(id)) throw new BboltUsageError(`bucket ${JSON.stringify(id)} written twice`);
    this.open = new OpenBucket(Buffer.from(name));
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const b = this.open;
    if (b === null) throw new BboltUsageError('put before any bucket');
    checkKey(key, 'key');
    if (value.length > VALUE_BYTES_MAX) throw new BboltUsageError(`value of ${value.length} bytes is too large`);
    if (b.last !== null && Buffer.compare(b.last, key) >= 0) {
      throw new BboltUsageError(`keys of bucket ${Buffer.from(b.name).toString()} are not in increasing order`);
    }
    b.last = key;
    b.entries++;
    this.entries++;
    if (b.tree !== null) {
      b.tree.addLeaf(0, key, value);
      return;
    }
    const inline = b.inline;
    inline.keys.push(key);
    inline.values.push(value);
    inline.flags.push(0);
    inline.bytes += LEAF_ELEMENT_BYTES + key.length + value.length;
    if (inline.bytes > INLINE_BUCKET_BYTES_MAX) {
      const tree = new TreeBuilder(this.out);
      for (let i = 0; i < inline.keys.length; i++) tree.addLeaf(0, inline.keys[i]!, inline.values[i]!);
      inline.clear();
      b.tree = tree;
    }
  }

  /** Ends the last bucket, writes the root bucket and returns the head pages and the file's size. */
  finish(): BboltFileSummary {
    this.assertOpen();
    this.endBucket();
    this.finished = true;
    const root = new TreeBuilder(this.out);
    const names = [...this.rootEntries.values()].sort((a, b) => Buffer.compare(a.name, b.name));
    for (const { name, value } of names) root.addLeaf(BUCKET_LEAF_FLAG, name, value);
    const rootPgid = root.finish();
    this.out.flush();
    const pages = this.out.next;
    const meta: Meta = {
      pageSize: PAGE_SIZE,
      flags: 0,
      rootPgid,
      rootSequence: 0n,
      freelistPgid: FREELIST_PAGE,
      pgid: pages,
      txid: this.txid,
    };
    const head = Buffer.concat([
      encodeMetaPage(META_PAGE_0, meta),
      encodeMetaPage(META_PAGE_1, { ...meta, txid: this.txid - 1n }),
      encodeFreelistPage(FREELIST_PAGE, [], PAGE_SIZE),
    ]);
    if (head.length !== FIRST_BODY_PAGE * PAGE_SIZE) throw new Error('bbolt writer: head is not three pages');
    return { pages, sizeBytes: pages * PAGE_SIZE, head, entries: this.entries };
  }

  private endBucket(): void {
    const b = this.open;
    if (b === null) return;
    this.open = null;
    let value: Buffer;
    if (b.tree === null) {
      // Inline: the bucket header with root 0, then the leaf page itself (page id 0).
      const leaf = b.inline;
      value = Buffer.alloc(BUCKET_HEADER_BYTES + leaf.bytes);
      writeBucketHeader(value, 0, 0, 0n);
      encodeLeaf(value.subarray(BUCKET_HEADER_BYTES), leaf, 0, 0);
    } else {
      value = Buffer.alloc(BUCKET_HEADER_BYTES);
      writeBucketHeader(value, 0, b.tree.finish(), 0n);
    }
    this.rootEntries.set(Buffer.from(b.name).toString('latin1'), { name: b.name, value });
  }

  private assertOpen(): void {
    if (this.finished) throw new BboltUsageError('the file is already finished');
  }
}

function checkKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array)) throw new BboltUsageError(`${what} is not bytes`);
  if (key.length === 0) throw new BboltUsageError(`${what} is empty`);
  if (key.length > KEY_BYTES_MAX) throw new BboltUsageError(`${what} of ${key.length} bytes is too large`);
}
