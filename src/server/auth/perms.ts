/**
 * The key ranges one user may read and write, merged from the permissions of all their roles
 * (etcd's unifiedRangePermissions). Keys are compared as bytes; here they are latin1 strings,
 * whose order is the byte order.
 *
 * A permission is a point (`range_end` empty: the single key, i.e. [key, key + "\0")), a range
 * [key, range_end), or open-ended (`range_end` = "\0": every key from `key` on). A request's
 * range is allowed when one merged interval covers all of it, so two adjacent permissions
 * [a, b) and [b, c) together allow [a, c), as in etcd's interval tree.
 */
import { type Permission, Permission_Type, type Role } from '../../proto/index.ts';

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** `range_end` of `\0`: every key from `key` on. */
export function isOpenEnded(end: Uint8Array): boolean {
  return end.length === 1 && end[0] === 0;
}

interface Interval {
  start: string;
  /** null: unbounded. */
  end: string | null;
}

/** Sorted, disjoint, non-adjacent intervals. */
export class IntervalSet {
  private readonly starts: string[];
  private readonly ends: (string | null)[];

  private constructor(starts: string[], ends: (string | null)[]) {
    this.starts = starts;
    this.ends = ends;
  }

  static of(intervals: Interval[]): IntervalSet {
    const sorted = intervals
      .filter((iv) => iv.end === null || iv.end > iv.start)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const starts: string[] = [];
    const ends: (string | null)[] = [];
    for (const iv of sorted) {
      const last = ends.length - 1;
      // Overlapping or touching the previous interval: extend it.
      if (last >= 0 && (ends[last] === null || iv.start <= ends[last]!)) {
        const prevEnd = ends[last]!;
        if (prevEnd !== null && (iv.end === null || iv.end > prevEnd)) ends[last] = iv.end;
        continue;
      }
      starts.push(iv.start);
      ends.push(iv.end);
    }
    return new IntervalSet(starts, ends);
  }

  get size(): number {
    return this.starts.length;
  }

  /** The index of the last interval starting at or before `key`, or -1. */
  private floor(key: string): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= key) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  containsKey(key: string): boolean {
    const i = this.floor(key);
    if (i < 0) return false;
    const end = this.ends[i]!;
    return end === null || key < end;
  }

  /** True when one interval covers all of [start, end) (`end` null: unbounded); an empty range is never covered. */
  containsRange(start: string, end: string | null): boolean {
    if (end !== null && end <= start) return false;
    const i = this.floor(start);
    if (i < 0) return false;
    const have = this.ends[i]!;
    if (have === null) return true;
    return end !== null && end <= have;
  }
}

export class RangePermissions {
  readonly read: IntervalSet;
  readonly write: IntervalSet;

  constructor(read: IntervalSet, write: IntervalSet) {
    this.read = read;
    this.write = write;
  }

  /** The permissions of `roleNames` (roles that do not exist are skipped, as etcd does). */
  static of(roleNames: readonly string[], roleOf: (name: string) => Role | undefined): RangePermissions {
    const read: Interval[] = [];
    const write: Interval[] = [];
    for (const name of roleNames) {
      const role = roleOf(name);
      if (role === undefined) continue;
      for (const perm of role.keyPermission) {
        const iv = permissionInterval(perm);
        if (perm.permType === Permission_Type.READ || perm.permType === Permission_Type.READWRITE) read.push(iv);
        if (perm.permType === Permission_Type.WRITE || perm.permType === Permission_Type.READWRITE) write.push(iv);
      }
    }
    return new RangePermissions(IntervalSet.of(read), IntervalSet.of(write));
  }

  /** `key` alone when `end` is empty, [key, end) otherwise (`end` = "\0": every key from `key`). */
  allows(type: 'read' | 'write', key: Uint8Array, end: Uint8Array): boolean {
    const set = type === 'read' ? this.read : this.write;
    if (end.length === 0) return set.containsKey(latin1(key));
    return set.containsRange(latin1(key), isOpenEnded(end) ? null : latin1(end));
  }
}

function permissionInterval(perm: Permission): Interval {
  const start = latin1(perm.key);
  if (perm.rangeEnd.length === 0) return { start, end: `${start}\u0000` };
  if (isOpenEnded(perm.rangeEnd)) return { start, end: null };
  return { start, end: latin1(perm.rangeEnd) };
}
