// Revisions and their byte form, the keys of the backend's `key` bucket (etcd's format):
//
//   bytes 0..7   main revision, uint64 big endian
//   byte  8      '_'
//   bytes 9..16  sub revision, uint64 big endian
//   byte  17     't' when the entry is a tombstone (the key was deleted at this revision)
//
// Big endian makes the byte order of the keys the order of the revisions.

import { readUint64BE, writeUint64BE } from '../backend/bytes.ts';
import { MvccCorruptError } from './errors.ts';

export const REV_BYTES = 17;
export const TOMBSTONE_REV_BYTES = 18;
const SEPARATOR = 0x5f; // '_'
const TOMBSTONE_MARK = 0x74; // 't'

/** Writes (main, sub) into the first 17 bytes of `buf`. */
export function writeRevision(buf: Uint8Array, main: number, sub: number): void {
  writeUint64BE(buf, 0, main);
  buf[8] = SEPARATOR;
  writeUint64BE(buf, 9, sub);
}

/** A new bucket key for (main, sub), with the tombstone mark when `tombstone`. */
export function revisionKey(main: number, sub: number, tombstone: boolean): Uint8Array {
  const buf = new Uint8Array(tombstone ? TOMBSTONE_REV_BYTES : REV_BYTES);
  writeRevision(buf, main, sub);
  if (tombstone) buf[REV_BYTES] = TOMBSTONE_MARK;
  return buf;
}

/** Checks the shape of a bucket key read from the backend. */
export function checkRevisionKey(key: Uint8Array): void {
  const ok =
    (key.length === REV_BYTES || (key.length === TOMBSTONE_REV_BYTES && key[REV_BYTES] === TOMBSTONE_MARK)) &&
    key[8] === SEPARATOR;
  if (!ok) throw new MvccCorruptError(`bad revision key ${Buffer.from(key).toString('hex')}`);
}

export function revisionMain(key: Uint8Array): number {
  return readUint64BE(key, 0);
}

export function revisionSub(key: Uint8Array): number {
  return readUint64BE(key, 9);
}

export function isTombstoneKey(key: Uint8Array): boolean {
  return key.length === TOMBSTONE_REV_BYTES;
}

/** (a.main, a.sub) compared with (b.main, b.sub). */
export function compareRevisions(aMain: number, aSub: number, bMain: number, bSub: number): number {
  return aMain !== bMain ? aMain - bMain : aSub - bSub;
}

/**
 * A set of revisions: the revisions a compaction keeps. Sub revision 0 (one change per write
 * transaction) is by far the most common, so those go in a plain number set.
 */
export class RevisionSet {
  private readonly zero = new Set<number>();
  private readonly other = new Map<number, number[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(main: number, sub: number): void {
    if (sub === 0) {
      if (this.zero.has(main)) return;
      this.zero.add(main);
    } else {
      const subs = this.other.get(main);
      if (subs === undefined) this.other.set(main, [sub]);
      else if (subs.includes(sub)) return;
      else subs.push(sub);
    }
    this.count++;
  }

  has(main: number, sub: number): boolean {
    if (sub === 0) return this.zero.has(main);
    const subs = this.other.get(main);
    return subs?.includes(sub) === true;
  }

  delete(main: number, sub: number): void {
    if (sub === 0) {
      if (this.zero.delete(main)) this.count--;
      return;
    }
    const subs = this.other.get(main);
    if (subs === undefined) return;
    const i = subs.indexOf(sub);
    if (i < 0) return;
    subs.splice(i, 1);
    if (subs.length === 0) this.other.delete(main);
    this.count--;
  }
}
