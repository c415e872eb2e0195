// The Storage interface Raft reads its persisted log through, and MemoryStorage, an in-memory
// implementation (used by tests and as the log cache of a server that keeps its WAL elsewhere).
//
// Ownership: Raft only reads Storage. The application writes it, while handling a Ready:
// append the Ready's entries, set its hard state, apply its snapshot, and later compact.
// Raft does not copy what Storage returns and never mutates it; Storage must not mutate entries
// it has handed out either.

import {
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrUnavailable,
  invariant,
  RaftInvariantError,
  type StorageError,
} from './errors.ts';
import { type ConfState, EMPTY_BYTES, type Entry, EntryType, type HardState, NONE, type Snapshot } from './types.ts';
import { limitSize } from './util.ts';

export type { StorageError };

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

/**
 * Read access to the persisted log. Methods may throw only the StorageError set (ErrCompacted,
 * ErrUnavailable, ErrSnapshotTemporarilyUnavailable) as documented on each; anything else is
 * treated as fatal by Raft.
 */
export interface Storage {
  /** The persisted hard state and the membership of the latest snapshot. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at most `maxSizeBytes` in total but always at least one if any exist.
   * Throws ErrCompacted if lo <= the compaction point, ErrUnavailable if the range is past the end.
   */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[];
  /**
   * The term of entry i, for i in [firstIndex()-1, lastIndex()]; the term of firstIndex()-1 is
   * the term of the last compacted entry (or of the snapshot). Throws ErrCompacted below that,
   * ErrUnavailable above lastIndex().
   */
  term(i: number): number;
  /** The index of the first entry available through entries() (older ones were compacted into a snapshot). */
  firstIndex(): number;
  /** The index of the last entry in the log. */
  lastIndex(): number;
  /**
   * The latest snapshot. May throw ErrSnapshotTemporarilyUnavailable while one is being built;
   * Raft then retries later.
   */
  snapshot(): Snapshot;
}

/**
 * An in-memory Storage. `ents[0]` is a dummy entry holding the index and term of the last
 * compacted entry (the snapshot point); real entries follow it.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState;
  private snap: Snapshot;
  private ents: Entry[];

  /**
   * An empty log. `confState` is the initial membership of a member created from a known
   * configuration without a snapshot (tests, tools); a new cluster normally starts empty and
   * calls RawNode.bootstrap instead.
   */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.hardState = { term: 0, vote: NONE, commit: 0 };
    this.snap = { metadata: { index: 0, term: 0, confState: cloneConfState(confState) }, data: EMPTY_BYTES };
    this.ents = [dummyEntry(0, 0)];
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(st: HardState): void {
    this.hardState = { term: st.term, vote: st.vote, commit: st.commit };
  }

  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) {
      throw new RaftInvariantError(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    if (this.ents.length === 1) throw new ErrUnavailable();
    invariant(lo <= hi, () => `invalid range [${lo}, ${hi})`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSizeBytes);
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new ErrCompacted();
    const e = this.ents[i - offset];
    if (e === undefined) throw new ErrUnavailable();
    return e.term;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the log with a snapshot received from the leader. Throws ErrSnapOutOfDate (and
   * changes nothing) if the storage already holds a snapshot at or after it.
   */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new ErrSnapOutOfDate();
    this.snap = snap;
    this.ents = [dummyEntry(snap.metadata.index, snap.metadata.term)];
  }

  /**
   * Records a snapshot of the application's state at applied index i (which must be in the log)
   * and returns it; the log is not compacted (call compact). Throws ErrSnapOutOfDate if a
   * snapshot at or after i exists.
   */
  createSnapshot(i: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new ErrSnapOutOfDate();
    if (i > this.lastIndex()) {
      throw new RaftInvariantError(`snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    }
    const term = this.ents[i - this.offset()]!.term;
    this.snap = {
      metadata: {
        index: i,
        term,
        confState: confState === undefined ? this.snap.metadata.confState : cloneConfState(confState),
      },
      data,
    };
    return this.snap;
  }

  /**
   * Discards entries up to and including compactIndex. The caller must not compact past its
   * applied index. Throws ErrCompacted if compactIndex is already compacted.
   */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new ErrCompacted();
    if (compactIndex > this.lastIndex()) {
      throw new RaftInvariantError(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const kept = this.ents.slice(i);
    kept[0] = dummyEntry(this.ents[i]!.index, this.ents[i]!.term);
    this.ents = kept;
  }

  /**
   * Appends entries, which must be contiguous with the log or overlap it; entries at or after
   * the first new index are replaced (a follower's log conflict resolution). Entries below the
   * compaction point are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const head = entries[0]!;
    const last = head.index + entries.length - 1;
    if (last < first) return; // nothing new
    for (let k = 1; k < entries.length; k++) {
      invariant(entries[k]!.index === head.index + k, 'appended entries must have consecutive indexes');
    }
    const src = first > head.index ? entries.slice(first - head.index) : entries;
    const at = src[0]!.index - this.offset();
    if (at > this.ents.length) {
      throw new RaftInvariantError(`missing log entry [last: ${this.lastIndex()}, append at: ${src[0]!.index}]`);
    }
    if (at < this.ents.length) this.ents.length = at;
    for (const e of src) this.ents.push(e);
  }

  private offset(): number {
    return this.ents[0]!.index;
  }
}

function dummyEntry(index: number, term: number): Entry {
  return { term, index, type: EntryType.Normal, data: EMPTY_BYTES };
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
