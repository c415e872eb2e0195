// bbolt's on-disk layout (go.etcd.io/bbolt, file format version 2), as far as a writer and a
// reader of etcd snapshots need it. All integers are little endian (bbolt writes its structs
// in the machine's byte order; every platform etcd ships for is little endian). README.md in
// this folder describes the layout in full.

import { BboltCorruptError } from './errors.ts';

/** The page size of the files this module writes (bbolt's default on Linux). */
export const PAGE_SIZE = 4096;
/** Page sizes a reader accepts (bbolt writes the OS page size: 4 KiB to 64 KiB). */
export const PAGE_SIZE_MIN = 1024;
export const PAGE_SIZE_MAX = 64 * 1024;

export const MAGIC = 0xed0cdaed;
export const FORMAT_VERSION = 2;

/** Page header: id u64, flags u16, count u16, overflow u32. */
export const PAGE_HEADER_BYTES = 16;
/** Leaf element: flags u32, pos u32, ksize u32, vsize u32. */
export const LEAF_ELEMENT_BYTES = 16;
/** Branch element: pos u32, ksize u32, pgid u64. */
export const BRANCH_ELEMENT_BYTES = 16;
/** Bucket header: root pgid u64 (0 for an inline bucket), sequence u64. */
export const BUCKET_HEADER_BYTES = 16;
/** Meta: magic, version, page size, flags (u32 each), root bucket header, freelist, pgid, txid, checksum (u64). */
export const META_BYTES = 64;
/** The checksum covers the meta up to the checksum field. */
export const META_CHECKSUMMED_BYTES = 56;

export const PageFlag = { branch: 0x01, leaf: 0x02, meta: 0x04, freelist: 0x10 } as const;
export type PageFlag = (typeof PageFlag)[keyof typeof PageFlag];

/** A leaf element whose value is a bucket (header, then an inline page when root is 0). */
export const BUCKET_LEAF_FLAG = 0x01;
/** bbolt inlines a bucket whose single leaf takes at most a quarter page. */
export const INLINE_BUCKET_BYTES_MAX = PAGE_SIZE / 4;
/** bbolt's MaxKeySize and MaxValueSize. */
export const KEY_BYTES_MAX = 32768;
export const VALUE_BYTES_MAX = 2 ** 31 - 2;
/** A page header's count is a u16; a freelist with more ids stores the count in its first u64. */
export const COUNT_MAX = 0xffff;
/** meta.freelist when no freelist is stored (bbolt's NoFreelistSync, which etcd uses). */
export const PGID_NO_FREELIST = 0xffff_ffff_ffff_ffffn;

/** The first pages of every file: two meta pages, then (in files written here) the freelist. */
export const META_PAGE_0 = 0;
export const META_PAGE_1 = 1;

export interface Meta {
  pageSize: number;
  flags: number;
  /** The root bucket: its root page (never inline) and sequence. */
  rootPgid: number;
  rootSequence: bigint;
  /** The freelist page, or null when none is stored. */
  freelistPgid: number | null;
  /** The high water mark: pages [0, pgid) are in use or free; the file holds at least that many. */
  pgid: number;
  txid: bigint;
}

export interface PageHeader {
  id: number;
  flags: number;
  count: number;
  overflow: number;
}

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const U64_MASK = 0xffff_ffff_ffff_ffffn;

/** FNV-1a, 64 bits (Go's hash/fnv New64a), as bbolt checksums a meta page. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV64_OFFSET;
  for (let i = 0; i < bytes.length; i++) {
    h ^= BigInt(bytes[i]!);
    h = (h * FNV64_PRIME) & U64_MASK;
  }
  return h;
}

export function writePageHeader(buf: Buffer, off: number, h: PageHeader): void {
  buf.writeBigUInt64LE(BigInt(h.id), off);
  buf.writeUInt16LE(h.flags, off + 8);
  buf.writeUInt16LE(h.count, off + 10);
  buf.writeUInt32LE(h.overflow, off + 12);
}

export function readPageHeader(buf: Buffer, off: number): PageHeader {
  return {
    id: safeNumber(buf.readBigUInt64LE(off), 'page id'),
    flags: buf.readUInt16LE(off + 8),
    count: buf.readUInt16LE(off + 10),
    overflow: buf.readUInt32LE(off + 12),
  };
}

/** A whole meta page: header (flags meta) and the meta with its checksum. */
export function encodeMetaPage(id: number, meta: Meta): Buffer {
  const page = Buffer.alloc(meta.pageSize);
  writePageHeader(page, 0, { id, flags: PageFlag.meta, count: 0, overflow: 0 });
  const m = PAGE_HEADER_BYTES;
  page.writeUInt32LE(MAGIC, m);
  page.writeUInt32LE(FORMAT_VERSION, m + 4);
  page.writeUInt32LE(meta.pageSize, m + 8);
  page.writeUInt32LE(meta.flags, m + 12);
  page.writeBigUInt64LE(BigInt(meta.rootPgid), m + 16);
  page.writeBigUInt64LE(meta.rootSequence, m + 24);
  page.writeBigUInt64LE(meta.freelistPgid === null ? PGID_NO_FREELIST : BigInt(meta.freelistPgid), m + 32);
  page.writeBigUInt64LE(BigInt(meta.pgid), m + 40);
  page.writeBigUInt64LE(meta.txid, m + 48);
  page.writeBigUInt64LE(fnv1a64(page.subarray(m, m + META_CHECKSUMMED_BYTES)), m + 56);
  return page;
}

/**
 * The meta of a meta page, or a reason it is not valid (bbolt's meta.validate: magic, version,
 * checksum). `buf` starts at the page.
 */
export function decodeMetaPage(buf: Buffer): Meta | string {
  if (buf.length < PAGE_HEADER_BYTES + META_BYTES) return 'file size too small';
  const m = PAGE_HEADER_BYTES;
  if (buf.readUInt32LE(m) !== MAGIC) return 'invalid database';
  if (buf.readUInt32LE(m + 4) !== FORMAT_VERSION) return 'version mismatch';
  const sum = fnv1a64(buf.subarray(m, m + META_CHECKSUMMED_BYTES));
  if (sum !== buf.readBigUInt64LE(m + 56)) return 'checksum error';
  const pageSize = buf.readUInt32LE(m + 8);
  if (pageSize < PAGE_SIZE_MIN || pageSize > PAGE_SIZE_MAX || (pageSize & (pageSize - 1)) !== 0) {
    return `page size ${pageSize} is not supported`;
  }
  const freelist = buf.readBigUInt64LE(m + 32);
  const rootPgid = buf.readBigUInt64LE(m + 16);
  const pgid = buf.readBigUInt64LE(m + 40);
  if (pgid > BigInt(Number.MAX_SAFE_INTEGER) || rootPgid >= pgid) return 'root page beyond the high water mark';
  if (freelist !== PGID_NO_FREELIST && freelist >= pgid) return 'freelist page beyond the high water mark';
  return {
    pageSize,
    flags: buf.readUInt32LE(m + 12),
    rootPgid: Number(rootPgid),
    rootSequence: buf.readBigUInt64LE(m + 24),
    freelistPgid: freelist === PGID_NO_FREELIST ? null : Number(freelist),
    pgid: Number(pgid),
    txid: buf.readBigUInt64LE(m + 48),
  };
}

/** A freelist page listing `ids` (sorted), with bbolt's overflow count for more than 0xFFFF ids. */
export function encodeFreelistPage(id: number, ids: readonly number[], pageSize: number): Buffer {
  const extra = ids.length >= COUNT_MAX ? 1 : 0;
  const bytes = PAGE_HEADER_BYTES + (ids.length + extra) * 8;
  const pages = Math.ceil(bytes / pageSize);
  const page = Buffer.alloc(pages * pageSize);
  const count = extra === 1 ? COUNT_MAX : ids.length;
  writePageHeader(page, 0, { id, flags: PageFlag.freelist, count, overflow: pages - 1 });
  let off = PAGE_HEADER_BYTES;
  if (extra === 1) {
    page.writeBigUInt64LE(BigInt(ids.length), off);
    off += 8;
  }
  for (const pgid of ids) {
    page.writeBigUInt64LE(BigInt(pgid), off);
    off += 8;
  }
  return page;
}

/** Encodes a bucket header (root page, sequence) into `buf` at `off`. */
export function writeBucketHeader(buf: Buffer, off: number, rootPgid: number, sequence: bigint): void {
  buf.writeBigUInt64LE(BigInt(rootPgid), off);
  buf.writeBigUInt64LE(sequence, off + 8);
}

export function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BboltCorruptError(`${what} ${v} is out of range`);
  return Number(v);
}

export function pageFlagName(flags: number): string {
  switch (flags) {
    case PageFlag.branch:
      return 'branch';
    case PageFlag.leaf:
      return 'leaf';
    case PageFlag.meta:
      return 'meta';
    case PageFlag.freelist:
      return 'freelist';
    default:
      return `unknown<${flags.toString(16).padStart(2, '0')}>`;
  }
}
