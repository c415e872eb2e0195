import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EMPTY_BYTES,
  type Entry,
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrUnavailable,
  MemoryStorage,
  RaftInvariantError,
} from '../../src/raft/index.ts';
import { RaftLog } from '../../src/raft/log.ts';

const ent = (index: number, term: number, data: Uint8Array = EMPTY_BYTES): Entry => ({ index, term, type: 0, data });

/** A storage whose log is compacted at (3, 3) and holds entries 4 and 5. */
function storage345(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({ metadata: { index: 3, term: 3, confState: { voters: [1n], learners: [] } }, data: EMPTY_BYTES });
  s.append([ent(4, 4), ent(5, 5)]);
  return s;
}

test('MemoryStorage.term: compacted, available, unavailable', () => {
  const s = storage345();
  assert.throws(() => s.term(2), ErrCompacted);
  assert.equal(s.term(3), 3);
  assert.equal(s.term(4), 4);
  assert.equal(s.term(5), 5);
  assert.throws(() => s.term(6), ErrUnavailable);
});

test('MemoryStorage.entries: bounds and size limit (always at least one entry)', () => {
  const s = storage345();
  s.append([ent(6, 6)]);
  assert.throws(() => s.entries(2, 6, Infinity), ErrCompacted);
  assert.throws(() => s.entries(3, 4, Infinity), ErrCompacted);
  assert.deepEqual(s.entries(4, 5, Infinity), [ent(4, 4)]);
  assert.deepEqual(s.entries(4, 7, Infinity), [ent(4, 4), ent(5, 5), ent(6, 6)]);
  assert.deepEqual(s.entries(4, 7, 0), [ent(4, 4)]); // at least one
  assert.deepEqual(s.entries(4, 7, 12), [ent(4, 4), ent(5, 5)]); // 6 bytes each
  assert.throws(() => s.entries(4, 8, Infinity), RaftInvariantError);
  assert.throws(() => new MemoryStorage().entries(1, 1, Infinity), ErrUnavailable);
});

test('MemoryStorage first and last index follow compaction', () => {
  const s = storage345();
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.lastIndex(), 5);
  s.compact(4);
  assert.equal(s.firstIndex(), 5);
  assert.equal(s.lastIndex(), 5);
  assert.equal(s.term(4), 4); // the compaction point keeps its term
  assert.throws(() => s.compact(4), ErrCompacted);
  assert.throws(() => s.compact(9), RaftInvariantError);
});

test('MemoryStorage.append: overlap, truncation of a conflicting tail, gaps refused', () => {
  const cases: { name: string; add: Entry[]; want: Entry[] }[] = [
    { name: 'same entries', add: [ent(4, 4), ent(5, 5)], want: [ent(4, 4), ent(5, 5)] },
    { name: 'conflict replaces the tail', add: [ent(4, 6), ent(5, 6)], want: [ent(4, 6), ent(5, 6)] },
    { name: 'extends', add: [ent(4, 4), ent(5, 5), ent(6, 5)], want: [ent(4, 4), ent(5, 5), ent(6, 5)] },
    { name: 'compacted part ignored', add: [ent(2, 3), ent(3, 3), ent(4, 5)], want: [ent(4, 5)] },
    { name: 'truncate at 5', add: [ent(5, 5)], want: [ent(4, 4), ent(5, 5)] },
    { name: 'direct append', add: [ent(6, 5)], want: [ent(4, 4), ent(5, 5), ent(6, 5)] },
  ];
  for (const c of cases) {
    const s = storage345();
    s.append(c.add);
    assert.deepEqual(s.entries(4, s.lastIndex() + 1, Infinity), c.want, c.name);
  }
  const s = storage345();
  assert.throws(() => s.append([ent(7, 5)]), RaftInvariantError); // gap at 6
  assert.deepEqual(s.entries(4, 6, Infinity), [ent(4, 4), ent(5, 5)], 'unchanged after refusal');
});

test('MemoryStorage snapshots: create, refuse older, apply', () => {
  const s = storage345();
  s.append([ent(6, 5)]);
  const cs = { voters: [1n, 2n], learners: [3n] };
  const snap = s.createSnapshot(5, cs, new Uint8Array([7]));
  assert.deepEqual(snap.metadata, { index: 5, term: 5, confState: cs });
  assert.throws(() => s.createSnapshot(4, cs, EMPTY_BYTES), ErrSnapOutOfDate);
  assert.throws(() => s.createSnapshot(7, cs, EMPTY_BYTES), RaftInvariantError);
  assert.deepEqual(s.initialState().confState, cs);
  assert.throws(() => s.applySnapshot(snap), ErrSnapOutOfDate);
  s.applySnapshot({ metadata: { index: 10, term: 7, confState: cs }, data: EMPTY_BYTES });
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 10);
  assert.equal(s.term(10), 7);
});

test('MemoryStorage hard state is copied in and out', () => {
  const s = new MemoryStorage();
  const hs = { term: 2, vote: 3n, commit: 1 };
  s.setHardState(hs);
  hs.term = 99;
  assert.deepEqual(s.initialState().hardState, { term: 2, vote: 3n, commit: 1 });
});

// ---- RaftLog: the stable + unstable view ----

function logWith(stored: Entry[], unstable: Entry[] = []): RaftLog {
  const s = new MemoryStorage();
  s.append(stored);
  const l = new RaftLog(s);
  if (unstable.length > 0) l.append(unstable);
  return l;
}

test('RaftLog.findConflict finds the first new or conflicting entry', () => {
  const l = logWith([ent(1, 1), ent(2, 2), ent(3, 3)]);
  assert.equal(l.findConflict([]), 0);
  assert.equal(l.findConflict([ent(1, 1), ent(2, 2)]), 0);
  assert.equal(l.findConflict([ent(2, 2), ent(3, 3), ent(4, 4)]), 4);
  assert.equal(l.findConflict([ent(2, 2), ent(3, 4)]), 3);
  assert.equal(l.findConflict([ent(1, 4), ent(2, 4)]), 1);
});

test('RaftLog.findConflictByTerm skips back to an entry with term <= the given term', () => {
  // terms by index: 1:1 2:1 3:2 4:2 5:4 6:4
  const l = logWith([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 4), ent(6, 4)]);
  assert.equal(l.findConflictByTerm(6, 5), 6);
  assert.equal(l.findConflictByTerm(6, 4), 6);
  assert.equal(l.findConflictByTerm(6, 3), 4);
  assert.equal(l.findConflictByTerm(6, 2), 4);
  assert.equal(l.findConflictByTerm(6, 1), 2);
  assert.equal(l.findConflictByTerm(6, 0), 0);
  assert.equal(l.findConflictByTerm(9, 1), 9); // beyond the log: unchanged
});

test('RaftLog.maybeAppend: log matching, truncation, commit', () => {
  const base = [ent(1, 1), ent(2, 2), ent(3, 3)];
  // Does not match at (index, logTerm): refused, nothing changes.
  let l = logWith(base);
  assert.equal(l.maybeAppend(3, 2, 3, [ent(4, 4)]), -1);
  assert.equal(l.lastIndex(), 3);
  assert.equal(l.committed, 0);
  assert.equal(l.maybeAppend(4, 3, 3, [ent(5, 4)]), -1);
  // Matches: appended, commit = min(leader commit, last new index).
  l = logWith(base);
  assert.equal(l.maybeAppend(3, 3, 5, [ent(4, 4), ent(5, 4)]), 5);
  assert.equal(l.committed, 5);
  l = logWith(base);
  assert.equal(l.maybeAppend(3, 3, 2, []), 3);
  assert.equal(l.committed, 2);
  // Conflict: truncated from the conflict on.
  l = logWith(base);
  assert.equal(l.maybeAppend(1, 1, 0, [ent(2, 4)]), 2);
  assert.equal(l.lastIndex(), 2);
  assert.equal(l.term(2), 4);
  // A conflict at or below the commit index is a broken invariant.
  l = logWith(base);
  l.commitTo(3);
  assert.throws(() => l.maybeAppend(1, 1, 3, [ent(2, 4)]), RaftInvariantError);
});

test('RaftLog.isUpToDate compares last term, then length (paper 5.4.1)', () => {
  const l = logWith([ent(1, 1), ent(2, 2), ent(3, 3)]);
  assert.equal(l.isUpToDate(2, 4), true, 'higher last term wins even if shorter');
  assert.equal(l.isUpToDate(3, 4), true);
  assert.equal(l.isUpToDate(9, 2), false, 'lower last term loses even if longer');
  assert.equal(l.isUpToDate(2, 3), false, 'same term, shorter');
  assert.equal(l.isUpToDate(3, 3), true, 'same term, same length');
  assert.equal(l.isUpToDate(4, 3), true, 'same term, longer');
});

test('RaftLog commit never decreases and never passes the last index', () => {
  const l = logWith([ent(1, 1), ent(2, 2)]);
  l.commitTo(2);
  l.commitTo(1);
  assert.equal(l.committed, 2);
  assert.throws(() => l.commitTo(3), RaftInvariantError);
  assert.throws(() => l.appliedTo(3), RaftInvariantError);
  l.appliedTo(2);
  assert.throws(() => l.appliedTo(1), RaftInvariantError);
});

test('RaftLog.maybeCommit commits only entries of the given term', () => {
  const l = logWith([ent(1, 1), ent(2, 2)]);
  assert.equal(l.maybeCommit(2, 1), false);
  assert.equal(l.committed, 0);
  assert.equal(l.maybeCommit(2, 2), true);
  assert.equal(l.committed, 2);
  assert.equal(l.maybeCommit(1, 1), false, 'never backwards');
});

test('RaftLog unstable entries become stable only if unchanged since the Ready', () => {
  const l = logWith([ent(1, 1)], [ent(2, 2), ent(3, 2)]);
  assert.deepEqual(l.unstableEntries(), [ent(2, 2), ent(3, 2)]);
  assert.equal(l.lastPersistedIndex(), 1);
  // Stale acknowledgement (term mismatch): ignored.
  l.stableTo(3, 1);
  assert.equal(l.unstableEntries().length, 2);
  l.stableTo(2, 2);
  assert.deepEqual(l.unstableEntries(), [ent(3, 2)]);
  assert.equal(l.lastPersistedIndex(), 2);
  // Truncation below the unstable offset replaces the tail.
  l.append([ent(2, 3)]);
  assert.deepEqual(l.unstableEntries(), [ent(2, 3)]);
  assert.equal(l.lastIndex(), 2);
  assert.equal(l.term(2), 3);
});

test('RaftLog.slice spans storage and unstable entries and honours the size limit', () => {
  const l = logWith([ent(1, 1), ent(2, 1)], [ent(3, 2), ent(4, 2)]);
  assert.deepEqual(l.slice(1, 5, Infinity), [ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
  assert.deepEqual(l.slice(2, 4, Infinity), [ent(2, 1), ent(3, 2)]);
  assert.deepEqual(l.slice(1, 5, 12), [ent(1, 1), ent(2, 1)]);
  assert.deepEqual(l.slice(3, 5, 1), [ent(3, 2)]);
  assert.throws(() => l.slice(1, 6, Infinity), RaftInvariantError);
});

test('RaftLog over a compacted storage starts committed and applied at the snapshot', () => {
  const s = storage345();
  const l = new RaftLog(s);
  assert.equal(l.firstIndex(), 4);
  assert.equal(l.committed, 3);
  assert.equal(l.applied, 3);
  assert.equal(l.term(3), 3);
  assert.equal(l.term(2), 0, 'below the dummy entry: unknown');
  assert.throws(() => l.slice(3, 5, Infinity), ErrCompacted);
  // Restore from a newer snapshot.
  const snap = { metadata: { index: 9, term: 8, confState: { voters: [1n], learners: [] } }, data: EMPTY_BYTES };
  l.restore(snap);
  assert.equal(l.committed, 9);
  assert.equal(l.firstIndex(), 10);
  assert.equal(l.lastIndex(), 9);
  assert.equal(l.term(9), 8);
  assert.equal(l.hasPendingSnapshot(), true);
  l.stableSnapTo(9);
  assert.equal(l.hasPendingSnapshot(), false);
});
