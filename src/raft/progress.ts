// What the leader knows about each member's log (Progress), the flow control that bounds what
// is in flight to it (Inflights), and the membership with its quorum rules (ProgressTracker).
// Membership changes one member at a time, so a single majority decides everything.

import { invariant } from './errors.ts';
import type { ConfState } from './types.ts';

export const ProgressState = {
  /** The leader does not know where the follower's log ends: send one append and wait for the answer. */
  Probe: 0,
  /** Known match: stream appends optimistically, up to maxInflightMsgs unacknowledged. */
  Replicate: 1,
  /** The follower needs a snapshot; nothing else is sent until it reports back. */
  Snapshot: 2,
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

const progressStateNames = ['StateProbe', 'StateReplicate', 'StateSnapshot'] as const;
export function progressStateName(s: ProgressState): string {
  return progressStateNames[s];
}

/**
 * A ring buffer of the last index of each MsgApp sent but not yet acknowledged. Full means
 * the leader stops sending appends to this follower until acknowledgements free slots.
 */
export class Inflights {
  private start = 0;
  private count = 0;
  private readonly buffer: number[];

  constructor(readonly size: number) {
    invariant(Number.isInteger(size) && size > 0, 'inflights size must be a positive integer');
    this.buffer = new Array<number>(size).fill(0);
  }

  /** Records a MsgApp whose last entry has index `inflight`; indexes must increase. */
  add(inflight: number): void {
    invariant(!this.full(), 'cannot add into a full inflights');
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    this.buffer[next] = inflight;
    this.count++;
  }

  /** Frees every inflight with an index <= `to`. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]!) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]!) break;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = this.count === 0 ? 0 : idx;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.buffer[this.start]!);
  }

  full(): boolean {
    return this.count === this.size;
  }

  length(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

export class Progress {
  /** The highest index known to be replicated on the member. */
  match: number;
  /** The index of the next entry to send. Invariant: match < next. */
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout (for check-quorum). */
  recentActive: boolean;
  /** In Probe state: an append was sent and its answer (or a heartbeat answer) is awaited. */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean, recentActive: boolean) {
    this.match = 0;
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
    this.recentActive = recentActive;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, resume right after it (or after match, if further).
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The member acknowledged entries up to n. Returns false if that was old news. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Appends up to n were sent (Replicate state streams without waiting). */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * The member rejected an append at index `rejected`; `matchHint` is where the logs may agree.
   * Returns false if the rejection is stale (out of order) and was ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale if we already know a match at or past the rejected index.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe, only the answer to the probe we sent (at next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending appends to this member is paused by flow control. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}

export const VoteResult = {
  Pending: 0,
  Lost: 1,
  Won: 2,
} as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** The membership and per-member progress, as seen by this member. */
export class ProgressTracker {
  readonly voters = new Set<bigint>();
  readonly learners = new Set<bigint>();
  progress = new Map<bigint, Progress>();
  /** Votes received in the current election (true = granted). */
  readonly votes = new Map<bigint, boolean>();
  /** committed()'s working array. */
  private readonly matchScratch: number[] = [];

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return { voters: sortedIds(this.voters), learners: sortedIds(this.learners) };
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /**
   * The largest index replicated on a majority of voters (by their match). 0 with no voters.
   */
  committed(): number {
    const n = this.voters.size;
    if (n === 0) return 0;
    // Sorted largest first by insertion (a handful of voters), into an array kept for the next
    // call: the leader asks on every acknowledgement.
    const matches = this.matchScratch;
    matches.length = 0;
    for (const id of this.voters) {
      const match = this.progress.get(id)?.match ?? 0;
      let i = matches.length;
      matches.push(match);
      while (i > 0 && matches[i - 1]! < match) {
        matches[i] = matches[i - 1]!;
        i--;
      }
      matches[i] = match;
    }
    return matches[this.quorum() - 1]!;
  }

  voteResult(votes: ReadonlyMap<bigint, boolean>): VoteResult {
    if (this.voters.size === 0) return VoteResult.Won;
    let granted = 0;
    let missing = 0;
    for (const id of this.voters) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) granted++;
    }
    const q = this.quorum();
    if (granted >= q) return VoteResult.Won;
    if (granted + missing >= q) return VoteResult.Pending;
    return VoteResult.Lost;
  }

  /** Whether a quorum of voters was recently active (check-quorum). */
  quorumActive(): boolean {
    const active = new Map<bigint, boolean>();
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (pr !== undefined) active.set(id, pr.recentActive);
    }
    return this.voteResult(active) === VoteResult.Won;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: bigint, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: this.voteResult(this.votes) };
  }

  /** Voter ids in ascending order (a deterministic order for sending). */
  voterIds(): bigint[] {
    return sortedIds(this.voters);
  }
}

export function sortedIds(ids: Iterable<bigint>): bigint[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
