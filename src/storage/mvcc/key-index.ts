// The history of one key, as etcd's keyIndex: a list of generations, each the life of the key
// from a creation to a deletion. Every generation but the last ends with a tombstone; the last
// one is empty right after a delete (or while the key has never been written).
//
// Revisions are stored flat, [main0, sub0, main1, sub1, ...], in number arrays. The current
// (last) generation lives in the KeyIndex itself, its latest revision in two fields and the ones
// before it (if any) in an array; older generations are in `older`. A key written once and never
// deleted, most keys of most stores, costs one object and its key string.

import type { RevisionSet } from './revision.ts';

/** Shared empty revision list of an empty generation; never mutated. */
const NO_REVS: number[] = Object.freeze([]) as unknown as number[];

/** A generation that ended with a tombstone (its last revision). */
export class Generation {
  ver: number;
  createdMain: number;
  createdSub: number;
  revs: number[];

  constructor(ver: number, createdMain: number, createdSub: number, revs: number[]) {
    this.ver = ver;
    this.createdMain = createdMain;
    this.createdSub = createdSub;
    this.revs = revs;
  }
}

/** What a lookup at a revision found: the revision visible then and its generation's creation and version. */
export class IndexHit {
  main = 0;
  sub = 0;
  createdMain = 0;
  createdSub = 0;
  ver = 0;
}

// doCompact's second result, read right after the call.
let foundRevIndex = -1;

export class KeyIndex {
  /** The key as a latin1 string (see backend/bytes.ts). */
  readonly key: string;
  /** The current generation: number of revisions written in it (tombstone included). */
  ver: number;
  createdMain: number;
  createdSub: number;
  /** The current generation's latest revision; lastMain is 0 while it is empty (revisions start at 1). */
  lastMain: number;
  lastSub: number;
  /** The current generation's revisions before the latest, flat; null when it has fewer than two. */
  private earlier: number[] | null;
  /** Finished generations, oldest first; null when there are none. */
  older: Generation[] | null;

  constructor(key: string) {
    this.key = key;
    this.ver = 0;
    this.createdMain = 0;
    this.createdSub = 0;
    this.lastMain = 0;
    this.lastSub = 0;
    this.earlier = null;
    this.older = null;
  }

  /** The current generation's revisions, flat, oldest first: a new array (or a shared empty one). */
  get revs(): number[] {
    if (this.lastMain === 0) return NO_REVS;
    if (this.earlier === null) return [this.lastMain, this.lastSub];
    return [...this.earlier, this.lastMain, this.lastSub];
  }

  /** Replaces the current generation's revisions (flat, oldest first). */
  set revs(flat: number[]) {
    const n = flat.length;
    if (n === 0) {
      this.lastMain = 0;
      this.lastSub = 0;
      this.earlier = null;
      return;
    }
    this.lastMain = flat[n - 2]!;
    this.lastSub = flat[n - 1]!;
    this.earlier = n > 2 ? flat.slice(0, n - 2) : null;
  }

  /** True when the key has no revision left (it leaves the index). */
  isEmpty(): boolean {
    return this.lastMain === 0 && (this.older === null || this.older.length === 0);
  }

  /** True when the key exists at the latest revision. */
  isLive(): boolean {
    return this.lastMain !== 0;
  }

  /** Records a put at (main, sub), which must be newer than every revision of the key. */
  put(main: number, sub: number): void {
    this.assertNewer(main, sub);
    if (this.lastMain === 0) {
      this.createdMain = main;
      this.createdSub = sub;
    } else if (this.earlier === null) {
      this.earlier = [this.lastMain, this.lastSub];
    } else {
      this.earlier.push(this.lastMain, this.lastSub);
    }
    this.lastMain = main;
    this.lastSub = sub;
    this.ver++;
  }

  /** Records a delete at (main, sub) and starts an empty generation. False if the key is not live. */
  tombstone(main: number, sub: number): boolean {
    if (this.lastMain === 0) return false;
    this.put(main, sub);
    const done = new Generation(this.ver, this.createdMain, this.createdSub, this.revs);
    if (this.older === null) this.older = [done];
    else this.older.push(done);
    this.ver = 0;
    this.createdMain = 0;
    this.createdSub = 0;
    this.lastMain = 0;
    this.lastSub = 0;
    this.earlier = null;
    return true;
  }

  /** Seeds an empty index with the first revision found in the backend (etcd's restore). */
  restore(createdMain: number, main: number, sub: number, ver: number): void {
    if (!this.isEmpty()) throw new Error(`mvcc: restore into a non-empty key index ${JSON.stringify(this.key)}`);
    if (main < 1) throw new Error(`mvcc: restore ${JSON.stringify(this.key)} at revision ${main}`);
    this.lastMain = main;
    this.lastSub = sub;
    this.createdMain = createdMain;
    this.createdSub = 0;
    this.ver = ver;
  }

  /** The revision of the key visible at `atRev`, into `hit`. False when the key did not exist then. */
  get(atRev: number, hit: IndexHit): boolean {
    const cg = this.findGeneration(atRev);
    if (cg < 0) return false;
    const g = this.generation(cg);
    if (g === this && this.lastMain <= atRev) {
      // The latest revision: no array to look through.
      hit.main = this.lastMain;
      hit.sub = this.lastSub;
      hit.createdMain = this.createdMain;
      hit.createdSub = this.createdSub;
      hit.ver = this.ver;
      return true;
    }
    const revs = g.revs;
    for (let i = revs.length - 2; i >= 0; i -= 2) {
      if (revs[i]! <= atRev) {
        hit.main = revs[i]!;
        hit.sub = revs[i + 1]!;
        hit.createdMain = g.createdMain;
        hit.createdSub = g.createdSub;
        hit.ver = g.ver - ((revs.length - i) / 2 - 1);
        return true;
      }
    }
    return false;
  }

  /**
   * Drops history older than `atRev`: keeps, per generation still alive at atRev, the last
   * revision <= atRev (added to `available`), and drops generations that ended before atRev and
   * a tombstone at atRev itself. As etcd's keyIndex.compact.
   */
  compact(atRev: number, available: RevisionSet): void {
    if (this.isEmpty()) throw new Error(`mvcc: compact an empty key index ${JSON.stringify(this.key)}`);
    let genIdx = this.doCompact(atRev, available);
    const revIndex = foundRevIndex;
    const last = this.older === null ? 0 : this.older.length;
    const g = this.generation(genIdx);
    if (revIndex > 0) g.revs = g.revs.slice(revIndex * 2);
    // A finished generation left with its tombstone alone goes too.
    if (genIdx !== last && g.revs.length === 2) {
      available.delete(g.revs[0]!, g.revs[1]!);
      genIdx++;
    }
    if (genIdx > 0) this.older = genIdx >= last ? null : this.older!.slice(genIdx);
  }

  /** Adds to `available` what compact(atRev) would keep, changing nothing (etcd's keyIndex.keep). */
  keep(atRev: number, available: RevisionSet): void {
    if (this.isEmpty()) return;
    const genIdx = this.doCompact(atRev, available);
    const revIndex = foundRevIndex;
    const last = this.older === null ? 0 : this.older.length;
    if (genIdx === last) return;
    const revs = this.generation(genIdx).revs;
    if (revs.length > 0 && revIndex === revs.length / 2 - 1) {
      available.delete(revs[revIndex * 2]!, revs[revIndex * 2 + 1]!);
    }
  }

  /** Number of generations, the current (possibly empty) one included. */
  get generationCount(): number {
    return (this.older === null ? 0 : this.older.length) + 1;
  }

  /** Generation `i`, oldest first; the last one is the current generation (this object). */
  generation(i: number): Generation | KeyIndex {
    const older = this.older;
    return older !== null && i < older.length ? older[i]! : this;
  }

  /**
   * The first generation alive at atRev or created after it (a generation whose tombstone is at
   * atRev counts, as in etcd); sets foundRevIndex to its last revision <= atRev (-1 if none)
   * and adds that revision to `available`.
   */
  private doCompact(atRev: number, available: RevisionSet): number {
    const last = this.older === null ? 0 : this.older.length;
    let genIdx = 0;
    let g = this.generation(0);
    while (genIdx < last) {
      const tomb = g.revs[g.revs.length - 2]!;
      if (tomb > atRev) break;
      if (tomb === atRev) {
        // etcd stops here. The next generation can also start at atRev when one transaction
        // deleted and re-created the key (etcd's API refuses such a transaction; this store
        // does not): then that generation holds the key's state at atRev.
        const next = this.generation(genIdx + 1).revs;
        if (next.length === 0 || next[0]! > atRev) break;
      }
      genIdx++;
      g = this.generation(genIdx);
    }
    foundRevIndex = -1;
    if (g === this && this.earlier === null) {
      // The current generation with at most one revision, without building its array.
      if (this.lastMain !== 0 && this.lastMain <= atRev) {
        available.add(this.lastMain, this.lastSub);
        foundRevIndex = 0;
      }
      return genIdx;
    }
    const revs = g.revs;
    for (let i = revs.length - 2; i >= 0; i -= 2) {
      if (revs[i]! <= atRev) {
        available.add(revs[i]!, revs[i + 1]!);
        foundRevIndex = i / 2;
        break;
      }
    }
    return genIdx;
  }

  /** Index of the generation holding the key at atRev, or -1 (etcd's findGeneration). */
  private findGeneration(atRev: number): number {
    const older = this.older;
    const last = older === null ? 0 : older.length;
    if (this.lastMain !== 0) {
      const first = this.earlier === null ? this.lastMain : this.earlier[0]!;
      if (first <= atRev) return last;
    }
    for (let cg = last - 1; cg >= 0; cg--) {
      const revs = older![cg]!.revs;
      const n = revs.length;
      if (n === 0) continue;
      if (revs[n - 2]! <= atRev) return -1;
      if (revs[0]! <= atRev) return cg;
    }
    return -1;
  }

  private assertNewer(main: number, sub: number): void {
    let lastMain = this.lastMain;
    let lastSub = this.lastSub;
    if (lastMain === 0 && this.older !== null && this.older.length > 0) {
      const revs = this.older[this.older.length - 1]!.revs;
      lastMain = revs[revs.length - 2]!;
      lastSub = revs[revs.length - 1]!;
    }
    if (main >= 1 && (main > lastMain || (main === lastMain && sub > lastSub))) return;
    throw new Error(`mvcc: revision ${main}_${sub} of ${JSON.stringify(this.key)} is not after ${lastMain}_${lastSub}`);
  }
}
