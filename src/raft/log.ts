// The Raft log as one member sees it: the persisted part (read through Storage) followed by an
// unstable tail of entries (and possibly a snapshot) the application has not persisted yet.
//
//   storage:   [firstIndex ... unstable.offset-1]      persisted by the application
//   unstable:  [unstable.offset ... lastIndex]         handed out in Ready.entries
//
// `committed` and `applied` are cursors into it: applied <= committed <= lastIndex.

import { ErrCompacted, ErrUnavailable, invariant, RaftInvariantError } from './errors.ts';
import type { Storage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';
import { limitSize, NO_LIMIT } from './util.ts';

/** Entries (and a snapshot) not yet persisted by the application. */
export class Unstable {
  /** A snapshot received from the leader, to be persisted. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries to be persisted; entries[i] has index offset + i. */
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** The first index if a snapshot is pending (the entry after the snapshot). */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length !== 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /** Entries up to (i, t) were persisted: drop them, unless the log changed in the meantime. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    // Only if the entry is still the one that was persisted (same term) and is an unstable
    // entry (not the snapshot's index).
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      // Directly after what we have: append.
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces all of the unstable entries (and some persisted ones, which the application
      // overwrites when it persists these).
      this.offset = after;
      this.entries = ents.slice();
    } else {
      // Truncate to `after`, then append.
      const kept = this.entries.slice(0, after - this.offset);
      for (const e of ents) kept.push(e);
      this.entries = kept;
    }
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(
      lo <= hi && this.offset <= lo && hi <= this.offset + this.entries.length,
      () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${this.offset + this.entries.length}]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** The highest index known to be committed on a quorum. */
  committed: number;
  /** The highest index the application has applied (reported through advance). */
  applied: number;
  /** Upper bound on the bytes of committed entries handed out in one Ready. */
  readonly maxNextEntsSize: number;
  /** Called after entries were appended (the first one's index is where the log was cut). */
  onAppend: ((ents: readonly Entry[]) => void) | undefined = undefined;

  constructor(storage: Storage, maxNextEntsSize: number = NO_LIMIT) {
    this.storage = storage;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    // Everything up to the last compaction was committed and applied.
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
    this.maxNextEntsSize = maxNextEntsSize;
  }

  /**
   * Appends `ents`, which follow the entry at (index, logTerm), if that entry matches ours.
   * Returns the index of the last new entry, or -1 if the entry at `index` does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new RaftInvariantError(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new RaftInvariantError(`after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    this.onAppend?.(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` that is not in the log with the same term (either
   * new, or conflicting with an existing entry), 0 if all are already there. Entries must have
   * consecutive indexes.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (fast back-off: a follower's answer to
   * a rejected append, or the leader's next probe from such an answer). Raft thesis 5.3.
   */
  findConflictByTerm(index: number, term: number): number {
    if (index > this.lastIndex()) return index;
    for (;;) {
      const t = this.termOrUndefined(index);
      if (t === undefined || t <= term) return index;
      index--;
    }
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet applied, at most maxNextEntsSize bytes (at least one entry). */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextEnts(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined && this.unstable.snapshot.metadata.index !== 0;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index known persisted and part of this log: everything before the unstable tail. */
  lastPersistedIndex(): number {
    return Math.min(this.unstable.offset - 1, this.lastIndex());
  }

  commitTo(toCommit: number): void {
    // Never decrease commit.
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw new RaftInvariantError(
          `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]; was the raft log corrupted, truncated, or lost?`,
        );
      }
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new RaftInvariantError(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      );
    }
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    const t = this.termOrUndefined(this.lastIndex());
    invariant(t !== undefined, 'unexpected error when getting the last term');
    return t;
  }

  /**
   * The term of entry i; 0 if i is outside [firstIndex-1, lastIndex]. Throws ErrCompacted or
   * ErrUnavailable if storage lost it in between (compaction racing with Raft).
   */
  term(i: number): number {
    // The valid range is [index of the dummy entry, last index].
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** term(i), with compaction and unavailability mapped to undefined. */
  termOrUndefined(i: number): number | undefined {
    try {
      return this.term(i);
    } catch (err) {
      if (err instanceof ErrCompacted || err instanceof ErrUnavailable) return undefined;
      throw err;
    }
  }

  /** Entries from i to the end, at most maxSize bytes (at least one). */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), NO_LIMIT);
      } catch (err) {
        // Compaction raced with the read: try again from the new first index.
        if (err instanceof ErrCompacted) continue;
        throw err;
      }
    }
  }

  /**
   * Whether a candidate whose last entry is (lasti, term) is at least as up to date as this log
   * (Raft paper 5.4.1: compare the terms of the last entries, then the lengths).
   */
  isUpToDate(lasti: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && lasti >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    const t = this.termOrUndefined(i);
    return t !== undefined && t === term;
  }

  /** Commits up to maxIndex if the entry there is of `term` (only current-term entries commit by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && (this.termOrUndefined(maxIndex) ?? 0) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi), at most maxSize bytes (at least one). Throws ErrCompacted if lo was compacted. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.checkOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      const storedHi = Math.min(hi, offset);
      const stored = this.storage.entries(lo, storedHi, maxSize);
      // Reached the size limit within storage.
      if (stored.length < storedHi - lo) return stored;
      ents = stored;
    }
    if (hi > offset) {
      const unstable = this.unstable.slice(Math.max(lo, offset), hi);
      ents = ents.length > 0 ? ents.concat(unstable) : unstable;
    }
    return limitSize(ents, maxSize);
  }

  private checkOutOfBounds(lo: number, hi: number): void {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new ErrCompacted();
    const li = this.lastIndex();
    if (hi > li + 1) throw new RaftInvariantError(`slice[${lo},${hi}) out of bound [${fi},${li}]`);
  }
}
