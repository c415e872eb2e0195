// The pending batch: writes accepted by the backend and not yet committed to LMDB. Reads merge
// it over the committed data, so a write is visible the moment `put`/`delete` returns.

import { BUCKET_COUNT } from './buckets.ts';

export class PendingEntry {
  /** The key as a latin1 string (see bytes.ts): the map key and the sort key. */
  readonly id: string;
  readonly key: Uint8Array;
  /** null: the key is deleted. */
  value: Uint8Array | null;

  constructor(id: string, key: Uint8Array, value: Uint8Array | null) {
    this.id = id;
    this.key = key;
    this.value = value;
  }
}

/** The pending writes of one bucket: a map for point reads plus an ordered view for ranges. */
export class PendingBucket {
  readonly entries = new Map<string, PendingEntry>();
  /** Entries in key order while `orderValid`; otherwise rebuilt on the next ordered read. */
  private ordered: PendingEntry[] = [];
  private orderValid = true;

  get size(): number {
    return this.entries.size;
  }

  set(id: string, key: Uint8Array, value: Uint8Array | null): void {
    const entry = this.entries.get(id);
    if (entry !== undefined) {
      entry.value = value;
      return;
    }
    const created = new PendingEntry(id, key, value);
    this.entries.set(id, created);
    if (!this.orderValid) return;
    const n = this.ordered.length;
    // Revisions are written in increasing order, so the common case is an append.
    if (n === 0 || this.ordered[n - 1]!.id < id) this.ordered.push(created);
    else this.orderValid = false;
  }

  get(id: string): PendingEntry | undefined {
    return this.entries.get(id);
  }

  /** All entries (deletions included) in key order. */
  sorted(): PendingEntry[] {
    if (!this.orderValid) {
      this.ordered = Array.from(this.entries.values());
      this.ordered.sort(compareEntries);
      this.orderValid = true;
    }
    return this.ordered;
  }

  /** Index of the first entry of `sorted()` whose id is >= `id`. */
  lowerBound(id: string): number {
    const ordered = this.sorted();
    let lo = 0;
    let hi = ordered.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ordered[mid]!.id < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function compareEntries(a: PendingEntry, b: PendingEntry): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class PendingBatch {
  readonly buckets: PendingBucket[];
  /** put/delete calls since the batch started (the size trigger counts operations, as etcd does). */
  ops = 0;

  constructor() {
    this.buckets = [];
    for (let i = 0; i < BUCKET_COUNT; i++) this.buckets.push(new PendingBucket());
  }
}
