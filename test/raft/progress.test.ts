import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaftInvariantError } from '../../src/raft/index.ts';
import { Inflights, Progress, ProgressState, ProgressTracker, VoteResult } from '../../src/raft/progress.ts';

test('inflights: a ring buffer bounded by its size, freed by acknowledgement', () => {
  const f = new Inflights(10);
  for (let i = 0; i < 5; i++) f.add(i);
  assert.equal(f.length(), 5);
  assert.equal(f.full(), false);
  for (let i = 5; i < 10; i++) f.add(i);
  assert.equal(f.full(), true);
  assert.throws(() => f.add(10), RaftInvariantError);
  f.freeLE(4);
  assert.equal(f.length(), 5);
  // Wraps around the end of the buffer.
  for (let i = 10; i < 15; i++) f.add(i);
  assert.equal(f.full(), true);
  f.freeLE(8);
  assert.equal(f.length(), 6);
  f.freeLE(3); // already freed: nothing
  assert.equal(f.length(), 6);
  f.freeFirstOne();
  assert.equal(f.length(), 5);
  f.freeLE(14);
  assert.equal(f.length(), 0);
  f.freeFirstOne();
  assert.equal(f.length(), 0);
});

test('progress: probe sends one message at a time, replicate streams up to the window', () => {
  const p = new Progress(5, 2, false, false);
  assert.equal(p.state, ProgressState.Probe);
  assert.equal(p.isPaused(), false);
  p.probeSent = true;
  assert.equal(p.isPaused(), true);
  assert.equal(p.maybeUpdate(6), true);
  assert.equal(p.isPaused(), false, 'an acknowledgement resumes probing');
  p.becomeReplicate();
  assert.equal(p.next, 7);
  p.inflights.add(8);
  p.inflights.add(9);
  assert.equal(p.isPaused(), true, 'full window');
  p.inflights.freeLE(8);
  assert.equal(p.isPaused(), false);
  p.becomeSnapshot(20);
  assert.equal(p.isPaused(), true);
  assert.equal(p.inflights.length(), 0);
  p.becomeProbe();
  assert.equal(p.next, 21, 'after a snapshot, probe right after it');
});

test('progress: stale updates and rejections are ignored', () => {
  const p = new Progress(10, 8, false, false);
  assert.equal(p.maybeUpdate(5), true);
  assert.equal(p.maybeUpdate(4), false);
  assert.equal(p.match, 5);
  assert.equal(p.next, 10);
  // Probe: only a rejection of the probe at next-1 counts.
  assert.equal(p.maybeDecrTo(7, 7), false);
  assert.equal(p.maybeDecrTo(9, 6), true);
  assert.equal(p.next, 7, 'next = hint + 1');
  assert.equal(p.maybeDecrTo(6, 1), true);
  assert.equal(p.next, 6, 'never below match + 1');
  // Replicate: a rejection at or below match is stale.
  p.becomeReplicate();
  p.optimisticUpdate(12);
  assert.equal(p.maybeDecrTo(5, 0), false);
  assert.equal(p.maybeDecrTo(11, 0), true);
  assert.equal(p.next, 6);
});

test('tracker: commit index is the largest index on a majority of voters; learners do not count', () => {
  const t = new ProgressTracker(4);
  for (const [id, match] of [
    [1n, 10],
    [2n, 7],
    [3n, 3],
    [4n, 100],
  ] as const) {
    const p = new Progress(1, 4, id === 4n, false);
    p.match = match;
    t.progress.set(id, p);
    if (id === 4n) t.learners.add(id);
    else t.voters.add(id);
  }
  assert.equal(t.committed(), 7);
  t.voters.add(5n);
  t.progress.set(5n, new Progress(1, 4, false, false));
  assert.equal(t.committed(), 3, 'four voters: three must have it');
});

test('tracker: vote results', () => {
  const t = new ProgressTracker(4);
  for (const id of [1n, 2n, 3n, 4n, 5n]) t.voters.add(id);
  const votes = new Map<bigint, boolean>();
  assert.equal(t.voteResult(votes), VoteResult.Pending);
  votes.set(1n, true);
  votes.set(2n, true);
  assert.equal(t.voteResult(votes), VoteResult.Pending);
  votes.set(3n, false);
  votes.set(4n, false);
  assert.equal(t.voteResult(votes), VoteResult.Pending);
  votes.set(5n, false);
  assert.equal(t.voteResult(votes), VoteResult.Lost);
  votes.set(5n, true);
  assert.equal(t.voteResult(votes), VoteResult.Won);
  votes.set(9n, true); // a non-voter's vote does not count
  votes.set(5n, false);
  assert.equal(t.voteResult(votes), VoteResult.Lost);
});
