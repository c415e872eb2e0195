// Reads a bbolt database file page by page (no mmap: positioned reads through a small window),
// so memory stays bounded whatever the size of the file. Used to read etcd snapshots and to
// check them as bbolt's Tx.Check does.

import { type FileHandle, open } from 'node:fs/promises';
import { BboltCorruptError } from './errors.ts';
import {
  BRANCH_ELEMENT_BYTES,
  BUCKET_HEADER_BYTES,
  BUCKET_LEAF_FLAG,
  COUNT_MAX,
  decodeMetaPage,
  LEAF_ELEMENT_BYTES,
  META_PAGE_0,
  META_PAGE_1,
  type Meta,
  PAGE_HEADER_BYTES,
  PAGE_SIZE,
  PageFlag,
  type PageHeader,
  pageFlagName,
  readPageHeader,
  safeNumber,
} from './format.ts';

/** Bytes read at once; pages inside the window already read cost no system call. */
const READ_WINDOW_BYTES = 256 * 1024;
/** Deeper trees than this are taken as a cycle in a damaged file. */
const TREE_DEPTH_MAX = 64;

/** A top-level bucket: its name and where its tree is (a page, or inline in the root leaf). */
export interface BboltBucket {
  name: Buffer;
  /** Root page of the bucket's tree; 0 for an inline bucket. */
  root: number;
  sequence: bigint;
  /** The inline leaf page, when root is 0. */
  inline: Buffer | null;
}

/** The elements of one leaf page, in key order. */
export interface LeafEntries {
  keys: Buffer[];
  values: Buffer[];
  /** Element flags: BUCKET_LEAF_FLAG marks a nested bucket (its value is a bucket header). */
  flags: number[];
}

export interface BboltOpenOptions {
  /** Read only this many bytes of the file (an etcd snapshot carries 32 bytes of SHA-256 after the database). */
  sizeBytes?: number;
}

interface Page {
  header: PageHeader;
  buf: Buffer;
}

export class BboltReader {
  readonly path: string;
  readonly meta: Meta;
  /** Bytes of the database in the file. */
  readonly sizeBytes: number;
  private readonly fh: FileHandle;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  private constructor(path: string, fh: FileHandle, meta: Meta, sizeBytes: number) {
    this.path = path;
    this.fh = fh;
    this.meta = meta;
    this.sizeBytes = sizeBytes;
  }

  /** Opens `path` and picks its meta as bbolt does: the valid one with the higher transaction id. */
  static async open(path: string, options: BboltOpenOptions = {}): Promise<BboltReader> {
    const fh = await open(path, 'r');
    try {
      const fileBytes = (await fh.stat()).size;
      const sizeBytes = options.sizeBytes ?? fileBytes;
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > fileBytes) {
        throw new BboltCorruptError(`${path}: ${sizeBytes} bytes asked of a file of ${fileBytes}`);
      }
      const meta = await readMeta(fh, sizeBytes);
      if (meta.pgid * meta.pageSize > sizeBytes) {
        throw new BboltCorruptError(
          `${path}: file size ${sizeBytes} is smaller than the ${meta.pgid} pages of ${meta.pageSize} bytes the meta claims`,
        );
      }
      return new BboltReader(path, fh, meta, sizeBytes);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** bbolt's Tx.Size(): the pages in use, in bytes. */
  get dbBytes(): number {
    return this.meta.pgid * this.meta.pageSize;
  }

  /** The top-level buckets in name order. */
  async buckets(): Promise<BboltBucket[]> {
    const out: BboltBucket[] = [];
    for await (const leaf of this.leaves(this.meta.rootPgid, null)) {
      for (let i = 0; i < leaf.keys.length; i++) {
        if ((leaf.flags[i]! & BUCKET_LEAF_FLAG) === 0) {
          throw new BboltCorruptError(`the root bucket holds a plain key ${leaf.keys[i]!.toString('hex')}`);
        }
        out.push(decodeBucket(leaf.keys[i]!, leaf.values[i]!));
      }
    }
    return out;
  }

  /** The bucket called `name`, or undefined. */
  async bucket(name: string | Uint8Array): Promise<BboltBucket | undefined> {
    const want = Buffer.from(name);
    return (await this.buckets()).find((b) => b.name.equals(want));
  }

  /** The entries of `bucket`, leaf page by leaf page, in key order. */
  entries(bucket: BboltBucket): AsyncGenerator<LeafEntries> {
    return this.leaves(bucket.root, bucket.inline);
  }

  /**
   * bbolt's Tx.Check: every page below the high water mark is either reachable exactly once
   * (meta, freelist, the trees of every bucket) or free, and no reachable page is free; pages
   * are leaves or branches with their keys in order. Without a stored freelist every
   * unreachable page is free. Returns the problems found (none: empty).
   */
  async check(): Promise<string[]> {
    const errors: string[] = [];
    const seen = new Uint8Array(this.meta.pgid);
    const FREE = 2;
    seen[META_PAGE_0] = 1;
    seen[META_PAGE_1] = 1;
    if (this.meta.freelistPgid !== null) {
      const fl = await this.page(this.meta.freelistPgid);
      if (fl.header.flags !== PageFlag.freelist) {
        errors.push(`page ${this.meta.freelistPgid}: invalid type: ${pageFlagName(fl.header.flags)}`);
      } else {
        for (let p = 0; p <= fl.header.overflow; p++) seen[this.meta.freelistPgid + p] = 1;
        for (const id of freelistIds(fl)) {
          if (id >= this.meta.pgid) errors.push(`page ${id}: freed page out of bounds`);
          else if (seen[id] !== 0) errors.push(`page ${id}: already freed`);
          else seen[id] = FREE;
        }
      }
    }
    const visit = async (pgid: number, depth: number, lowest: Buffer | null): Promise<void> => {
      if (depth > TREE_DEPTH_MAX)
        throw new BboltCorruptError(`tree deeper than ${TREE_DEPTH_MAX} levels at page ${pgid}`);
      if (pgid < FIRST_TREE_PAGE || pgid >= this.meta.pgid) {
        errors.push(`page ${pgid}: out of bounds: ${this.meta.pgid}`);
        return;
      }
      const p = await this.page(pgid);
      for (let i = 0; i <= p.header.overflow; i++) {
        const id = pgid + i;
        if (id >= this.meta.pgid) errors.push(`page ${pgid}: out of bounds: ${this.meta.pgid}`);
        else if (seen[id] === 1) errors.push(`page ${id}: multiple references`);
        else if (seen[id] === FREE) errors.push(`page ${id}: reachable freed`);
        else seen[id] = 1;
      }
      if (p.header.flags === PageFlag.branch) {
        const elems = branchElements(p);
        checkOrder(elems.keys, pgid, lowest, errors);
        for (let i = 0; i < elems.keys.length; i++) await visit(elems.children[i]!, depth + 1, elems.keys[i]!);
      } else if (p.header.flags === PageFlag.leaf) {
        const leaf = leafElements(p.buf, p.header, pgid);
        checkOrder(leaf.keys, pgid, lowest, errors);
        for (let i = 0; i < leaf.keys.length; i++) {
          if ((leaf.flags[i]! & BUCKET_LEAF_FLAG) === 0) continue;
          const child = decodeBucket(leaf.keys[i]!, leaf.values[i]!);
          if (child.root !== 0) await visit(child.root, depth + 1, null);
        }
      } else {
        errors.push(`page ${pgid}: invalid type: ${pageFlagName(p.header.flags)}`);
      }
    };
    await visit(this.meta.rootPgid, 0, null);
    // Without a stored freelist (bbolt's NoFreelistSync, as etcd runs it) the free pages are
    // exactly the unreachable ones: bbolt rebuilds its freelist so.
    if (this.meta.freelistPgid !== null) {
      for (let id = 0; id < this.meta.pgid; id++) if (seen[id] === 0) errors.push(`page ${id}: unreachable unfreed`);
    }
    return errors;
  }

  private async *leaves(root: number, inline: Buffer | null, depth = 0): AsyncGenerator<LeafEntries> {
    if (inline !== null) {
      const header = readPageHeader(inline, 0);
      if (header.flags !== PageFlag.leaf) throw new BboltCorruptError('an inline bucket is not a leaf page');
      yield leafElements(inline, header, 0);
      return;
    }
    if (depth > TREE_DEPTH_MAX)
      throw new BboltCorruptError(`tree deeper than ${TREE_DEPTH_MAX} levels at page ${root}`);
    const p = await this.page(root);
    if (p.header.flags === PageFlag.leaf) {
      yield leafElements(p.buf, p.header, root);
    } else if (p.header.flags === PageFlag.branch) {
      const { children } = branchElements(p);
      for (const child of children) yield* this.leaves(child, null, depth + 1);
    } else {
      throw new BboltCorruptError(`page ${root}: invalid type: ${pageFlagName(p.header.flags)}`);
    }
  }

  /** Page `pgid` with its overflow pages; its header must name it. */
  private async page(pgid: number): Promise<Page> {
    const ps = this.meta.pageSize;
    if (pgid < 0 || pgid >= this.meta.pgid) {
      throw new BboltCorruptError(`page ${pgid} is beyond the high water mark ${this.meta.pgid}`);
    }
    const first = await this.read(pgid * ps, ps);
    const header = readPageHeader(first, 0);
    if (header.id !== pgid) throw new BboltCorruptError(`page ${pgid} has the id ${header.id}`);
    if (header.overflow === 0) return { header, buf: first };
    if (pgid + header.overflow >= this.meta.pgid) {
      throw new BboltCorruptError(`page ${pgid}: ${header.overflow} overflow pages run past the high water mark`);
    }
    return { header, buf: await this.read(pgid * ps, (header.overflow + 1) * ps) };
  }

  private async read(offset: number, length: number): Promise<Buffer> {
    const w = this.window;
    if (offset >= this.windowStart && offset + length <= this.windowStart + w.length) {
      return w.subarray(offset - this.windowStart, offset - this.windowStart + length);
    }
    if (offset + length > this.sizeBytes) throw new BboltCorruptError(`read past the end of the database`);
    const size = Math.min(Math.max(length, READ_WINDOW_BYTES), this.sizeBytes - offset);
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await this.fh.read(buf, done, size - done, offset + done);
      if (bytesRead === 0) throw new BboltCorruptError(`${this.path}: unexpected end of file`);
      done += bytesRead;
    }
    this.window = buf;
    this.windowStart = offset;
    return buf.subarray(0, length);
  }
}

/** Trees start after the meta pages. */
const FIRST_TREE_PAGE = 2;

/**
 * bbolt's choice of meta: the valid one with the larger txid; when neither is valid, meta 0's
 * error. As bbolt's Open: a file without a whole first page is `invalid database`, one without
 * two pages `file size too small`.
 */
async function readMeta(fh: FileHandle, sizeBytes: number): Promise<Meta> {
  if (sizeBytes < PAGE_SIZE) throw new BboltCorruptError('invalid database');
  const head = Buffer.alloc(PAGE_SIZE);
  await fh.read(head, 0, head.length, 0);
  const m0 = decodeMetaPage(head);
  // meta 1 sits one page further; its page size is meta 0's when meta 0 is valid.
  const ps = typeof m0 === 'string' ? PAGE_SIZE : m0.pageSize;
  if (sizeBytes < 2 * ps) throw new BboltCorruptError('file size too small');
  const second = Buffer.alloc(ps);
  await fh.read(second, 0, ps, ps);
  const m1 = decodeMetaPage(second);
  if (typeof m0 !== 'string' && typeof m1 !== 'string') return m1.txid > m0.txid ? m1 : m0;
  if (typeof m0 !== 'string') return m0;
  if (typeof m1 !== 'string') return m1;
  throw new BboltCorruptError(m0);
}

function decodeBucket(name: Buffer, value: Buffer): BboltBucket {
  if (value.length < BUCKET_HEADER_BYTES) {
    throw new BboltCorruptError(`bucket ${JSON.stringify(name.toString('latin1'))} has a short header`);
  }
  const root = safeNumber(value.readBigUInt64LE(0), 'bucket root');
  const sequence = value.readBigUInt64LE(8);
  if (root !== 0) return { name, root, sequence, inline: null };
  const inline = value.subarray(BUCKET_HEADER_BYTES);
  if (inline.length < PAGE_HEADER_BYTES) {
    throw new BboltCorruptError(`inline bucket ${JSON.stringify(name.toString('latin1'))} is truncated`);
  }
  return { name, root, sequence, inline };
}

function leafElements(buf: Buffer, header: PageHeader, pgid: number): LeafEntries {
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  const flags: number[] = [];
  const n = header.count;
  if (PAGE_HEADER_BYTES + n * LEAF_ELEMENT_BYTES > buf.length) {
    throw new BboltCorruptError(`page ${pgid}: ${n} elements do not fit in the page`);
  }
  for (let i = 0; i < n; i++) {
    const elem = PAGE_HEADER_BYTES + i * LEAF_ELEMENT_BYTES;
    const start = elem + buf.readUInt32LE(elem + 4);
    const ksize = buf.readUInt32LE(elem + 8);
    const vsize = buf.readUInt32LE(elem + 12);
    if (start + ksize + vsize > buf.length)
      throw new BboltCorruptError(`page ${pgid}: element ${i} runs past the page`);
    flags.push(buf.readUInt32LE(elem));
    keys.push(buf.subarray(start, start + ksize));
    values.push(buf.subarray(start + ksize, start + ksize + vsize));
  }
  return { keys, values, flags };
}

function branchElements(p: Page): { keys: Buffer[]; children: number[] } {
  const { buf, header } = p;
  const keys: Buffer[] = [];
  const children: number[] = [];
  const n = header.count;
  if (PAGE_HEADER_BYTES + n * BRANCH_ELEMENT_BYTES > buf.length || n === 0) {
    throw new BboltCorruptError(`branch page ${header.id}: ${n} elements`);
  }
  for (let i = 0; i < n; i++) {
    const elem = PAGE_HEADER_BYTES + i * BRANCH_ELEMENT_BYTES;
    const start = elem + buf.readUInt32LE(elem);
    const ksize = buf.readUInt32LE(elem + 4);
    if (start + ksize > buf.length) throw new BboltCorruptError(`page ${header.id}: element ${i} runs past the page`);
    keys.push(buf.subarray(start, start + ksize));
    children.push(safeNumber(buf.readBigUInt64LE(elem + 8), 'child page'));
  }
  return { keys, children };
}

function freelistIds(p: Page): number[] {
  let count = p.header.count;
  let off = PAGE_HEADER_BYTES;
  if (count === COUNT_MAX) {
    count = safeNumber(p.buf.readBigUInt64LE(off), 'freelist count');
    off += 8;
  }
  if (off + count * 8 > p.buf.length) throw new BboltCorruptError('the freelist runs past its pages');
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(safeNumber(p.buf.readBigUInt64LE(off + i * 8), 'free page'));
  return ids;
}

/** Keys of a page in strictly increasing order, none below the key its parent holds for it. */
function checkOrder(keys: readonly Buffer[], pgid: number, lowest: Buffer | null, errors: string[]): void {
  for (let i = 1; i < keys.length; i++) {
    if (Buffer.compare(keys[i - 1]!, keys[i]!) >= 0) {
      errors.push(`page ${pgid}: key ${i} (${keys[i]!.toString('hex')}) is not above the key before it`);
    }
  }
  const first = keys[0];
  if (lowest !== null && first !== undefined && Buffer.compare(first, lowest) < 0) {
    errors.push(`page ${pgid}: first key ${first.toString('hex')} is below its parent's key ${lowest.toString('hex')}`);
  }
}
