// The Raft state machine of one member (Ongaro & Ousterhout, "In Search of an Understandable
// Consensus Algorithm", and Ongaro's thesis "Consensus: Bridging Theory and Practice").
//
// Pure: time comes in as tick(), messages as step(), randomness through config.random; what
// must be persisted, sent and applied goes out through RawNode's Ready. Role-specific
// behaviour lives in stepLeader / stepCandidate / stepFollower and tickElection /
// tickHeartbeat, chosen when the role changes.
//
// One deliberate difference from etcd's raft (before its asynchronous-storage rework): the
// leader counts its own log towards a quorum only for entries it has persisted, i.e. after
// advance() reports them stable. Its MsgApp may go out before its own write (Ready.earlyMessages),
// so a leader that crashes before its fsync never counts entries it then loses. And membership
// changes take effect when appended, as in the thesis, not when applied (see membership.ts).

import { decodeConfChange } from './codec.ts';
import { type Config, type RaftLogger, resolveConfig } from './config.ts';
import {
  ErrCompacted,
  ErrDecode,
  ErrInvalidConfChange,
  ErrInvalidConfig,
  ErrProposalDropped,
  ErrSnapshotTemporarilyUnavailable,
  ErrUnavailable,
  invariant,
  RaftInvariantError,
} from './errors.ts';
import { RaftLog } from './log.ts';
import { applyChange, ConfigHistory, type Configuration, configurationFromState, confStateOf } from './membership.ts';
import { Progress, ProgressState, ProgressTracker, VoteResult } from './progress.ts';
import { READ_INDEX_PENDING_MAX, ReadOnly } from './read_only.ts';
import type { Storage } from './storage.ts';
import {
  type ConfChange,
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  EntryType,
  type HardState,
  isEmptyHardState,
  isEmptySnap,
  type Message,
  MessageType,
  messageTypeName,
  NONE,
  newMessage,
  payloadSize,
  ReadOnlyOption,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
  stateTypeName,
  voteRespMsgType,
} from './types.ts';

const CampaignType = {
  PreElection: 'CampaignPreElection',
  Election: 'CampaignElection',
  Transfer: 'CampaignTransfer',
} as const;
type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

/** The context of vote requests sent on a leader transfer: they override the leader lease. */
const CAMPAIGN_TRANSFER_CTX = new TextEncoder().encode(CampaignType.Transfer);

/** The most proposals and read requests a leader without a current-term commit holds back. */
export const PENDING_READ_INDEX_MESSAGES_MAX = 4096;

type StepFn = (r: Raft, m: Message) => void;
type TickFn = (r: Raft) => void;

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Raft {
  readonly id: bigint;
  term = 0;
  vote: bigint = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  prs: ProgressTracker;
  state: StateType = StateType.Follower;
  /** Whether this member is a learner in its current configuration. */
  isLearner = false;
  /** Messages to send, collected until the next Ready. */
  msgs: Message[] = [];
  lead: bigint = NONE;
  /** The member leadership is being transferred to, NONE if no transfer is in progress. */
  leadTransferee: bigint = NONE;
  /** The configurations of the log; the latest one is in force (membership.ts). */
  readonly configs: ConfigHistory;
  /**
   * The configuration as of the application's applied index: what applyConfChange builds on.
   * (The one in force, configs.latest(), may be ahead: appended, not yet applied.)
   */
  appliedConfig: Configuration;
  /** Bytes of payload appended by this leader and not yet committed. */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** The leader appended proposals and will broadcast them once, when the Ready is taken. */
  pendingBroadcast = false;
  /** Read requests held back until this leader commits an entry of its term. */
  pendingReadIndexMessages: Message[] = [];

  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  readonly disableProposalForwarding: boolean;
  readonly random: () => number;
  readonly logger: RaftLogger;

  private tickFn: TickFn = tickElection;
  private stepFn: StepFn = stepFollower;

  constructor(config: Config, storage: Storage) {
    const c = resolveConfig(config);
    this.id = c.id;
    this.raftLog = new RaftLog(storage, c.maxCommittedSizePerReady);
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize;
    this.prs = new ProgressTracker(c.maxInflightMsgs);
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.random = c.random;
    this.logger = c.logger;
    this.readOnly = new ReadOnly(c.readOnlyOption);

    const { hardState, confState } = storage.initialState();
    // The configuration: the snapshot's, then every conf change in the log after it.
    const snapIndex = storage.snapshot().metadata.index;
    invariant(snapIndex >= storage.firstIndex() - 1, 'storage compacted past its snapshot: conf changes are lost');
    this.configs = new ConfigHistory(configurationFromState(snapIndex, confState));
    if (storage.lastIndex() > snapIndex) {
      this.configs.append(storage.entries(snapIndex + 1, storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER));
    }
    this.raftLog.onAppend = (ents) => this.onLogAppend(ents);
    this.switchToConfig();
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied > this.raftLog.lastIndex()) {
      throw new ErrInvalidConfig(`applied ${c.applied} is beyond the last log index ${this.raftLog.lastIndex()}`);
    }
    // The state machine starts from the snapshot, so entries it covers are applied. And only
    // committed entries are applied: an applied index past the persisted commit index (a commit
    // written without sync and lost, the state machine synced) is committed.
    const applied = Math.max(c.applied, snapIndex);
    if (applied > 0) {
      this.raftLog.commitTo(applied);
      this.raftLog.appliedTo(applied);
    }
    this.appliedConfig = this.configs.at(this.raftLog.applied);
    this.becomeFollower(this.term, NONE);
  }

  // ------------------------------------------------------------------------------------------
  // State reported to the application

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  private loadState(st: HardState): void {
    if (st.commit > this.raftLog.lastIndex()) {
      throw new RaftInvariantError(
        `state.commit ${st.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    // A commit index below the snapshot (a hard state written without sync, lost in a crash
    // after the snapshot was saved) is harmless: the snapshot's index is committed.
    this.raftLog.committed = Math.max(st.commit, this.raftLog.committed);
    this.term = st.term;
    this.vote = st.vote;
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  /** Queues a message, stamping `from` and (except for votes, proposals and read requests) `term`. */
  send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === MessageType.MsgVote ||
      m.type === MessageType.MsgVoteResp ||
      m.type === MessageType.MsgPreVote ||
      m.type === MessageType.MsgPreVoteResp
    ) {
      // Vote messages carry the term of the election they are about, not necessarily ours.
      invariant(m.term !== 0, () => `term should be set when sending ${messageTypeName(m.type)}`);
    } else {
      invariant(m.term === 0, () => `term should not be set when sending ${messageTypeName(m.type)} (was ${m.term})`);
      // Proposals and read requests are forwarded to the leader like local messages: no term.
      if (m.type !== MessageType.MsgProp && m.type !== MessageType.MsgReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends an append (or a snapshot) to `to` if flow control allows and there is something to send. */
  sendAppend(to: bigint): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends entries from pr.next, or a snapshot if they were compacted. With sendIfEmpty false,
   * nothing is sent when there are no new entries. Returns whether a message was sent.
   */
  maybeSendAppend(to: bigint, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;

    const prevIndex = pr.next - 1;
    let term: number | undefined;
    let ents: Entry[] | undefined;
    try {
      term = this.raftLog.term(prevIndex);
    } catch (err) {
      if (!(err instanceof ErrCompacted || err instanceof ErrUnavailable)) throw err;
    }
    try {
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    } catch (err) {
      if (!(err instanceof ErrCompacted)) throw err;
    }
    if (ents !== undefined && ents.length === 0 && !sendIfEmpty) return false;

    if (term === undefined || ents === undefined) {
      // The entries were compacted: the follower needs a snapshot.
      if (!pr.recentActive) return false;
      let snap: Snapshot;
      try {
        snap = this.raftLog.snapshot();
      } catch (err) {
        if (err instanceof ErrSnapshotTemporarilyUnavailable) return false;
        throw err;
      }
      invariant(!isEmptySnap(snap), 'need non-empty snapshot');
      pr.becomeSnapshot(snap.metadata.index);
      this.send(newMessage({ type: MessageType.MsgSnap, to, snapshot: snap }));
      return true;
    }

    const n = ents.length;
    if (n !== 0) {
      const last = ents[n - 1]!.index;
      switch (pr.state) {
        case ProgressState.Replicate:
          // Stream: assume delivery and move on; the inflights window bounds the optimism.
          pr.optimisticUpdate(last);
          pr.inflights.add(last);
          break;
        case ProgressState.Probe:
          pr.probeSent = true;
          break;
        default:
          invariant(false, () => `sending append in unhandled state ${pr.state}`);
      }
    }
    this.send(
      newMessage({
        type: MessageType.MsgApp,
        to,
        index: prevIndex,
        logTerm: term,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    return true;
  }

  sendHeartbeat(to: bigint, ctx: Uint8Array): void {
    const pr = this.prs.progress.get(to);
    if (pr === undefined) return;
    // A follower's commit may only move to what it is known to have: never past its match,
    // or it would be asked to commit entries it may not hold.
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(newMessage({ type: MessageType.MsgHeartbeat, to, commit, context: ctx }));
  }

  bcastAppend(): void {
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendAppend(id);
    }
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES);
  }

  bcastHeartbeatWithCtx(ctx: Uint8Array): void {
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    }
  }

  /**
   * Sends the appends of the proposals batched since the last Ready: as many messages per
   * follower as flow control allows, none to a follower that already has everything.
   */
  flushBroadcast(): void {
    if (!this.pendingBroadcast) return;
    this.pendingBroadcast = false;
    if (this.state !== StateType.Leader) return;
    for (const id of this.prs.progress.keys()) {
      if (id === this.id) continue;
      while (this.maybeSendAppend(id, false)) {
        // keep sending
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Persistence feedback

  /**
   * The application persisted and applied a Ready: move the stable and applied cursors, and (on a
   * leader) count the newly persisted entries towards the quorum.
   */
  advance(rd: { entries: Entry[]; committedEntries: Entry[]; snapshot?: Snapshot | undefined }): void {
    this.reduceUncommittedSize(rd.committedEntries);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) this.raftLog.appliedTo(lastCommitted.index);
    else if (rd.snapshot !== undefined && rd.snapshot.metadata.index > 0) {
      this.raftLog.appliedTo(rd.snapshot.metadata.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      this.raftLog.stableTo(lastEntry.index, lastEntry.term);
      if (this.state === StateType.Leader && this.raftLog.matchTerm(lastEntry.index, lastEntry.term)) {
        this.selfAck(lastEntry.index);
      }
    }
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata;
      this.raftLog.stableSnapTo(md.index);
      // The application's state is now the snapshot's, membership included.
      this.appliedConfig = configurationFromState(md.index, md.confState);
    }
    this.configs.compact(this.raftLog.applied);
    this.maybeStepDownRemoved();
  }

  /** The leader's own log is durable up to `index`: count it like a follower's MsgAppResp. */
  private selfAck(index: number): void {
    const pr = this.prs.progress.get(this.id);
    if (pr === undefined || !pr.maybeUpdate(index)) return;
    if (this.maybeCommit()) {
      releasePendingReadIndexMessages(this);
      this.bcastAppend();
    }
  }

  /** Advances the commit index to what a quorum has, if that entry is of the current term. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.prs.committed(), this.term);
  }

  // ------------------------------------------------------------------------------------------
  // Role changes

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    const persisted = this.raftLog.lastPersistedIndex();
    const fresh = new Map<bigint, Progress>();
    for (const [id, old] of this.prs.progress) {
      const pr = new Progress(lastIndex + 1, this.prs.maxInflight, old.isLearner, false);
      // Our own log counts only as far as it is persisted.
      if (id === this.id) pr.match = persisted;
      fresh.set(id, pr);
    }
    this.prs.progress = fresh;
    this.uncommittedSize = 0;
    this.pendingBroadcast = false;
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  becomeFollower(term: number, lead: bigint): void {
    this.stepFn = stepFollower;
    this.reset(term);
    this.tickFn = tickElection;
    this.lead = lead;
    this.state = StateType.Follower;
    this.pendingReadIndexMessages = [];
  }

  becomeCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.stepFn = stepCandidate;
    this.reset(this.term + 1);
    this.tickFn = tickElection;
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`raft ${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither its term nor its vote (thesis 9.6).
    this.stepFn = stepCandidate;
    this.prs.resetVotes();
    this.tickFn = tickElection;
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  becomeLeader(): void {
    invariant(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.stepFn = stepLeader;
    this.reset(this.term);
    this.tickFn = tickHeartbeat;
    this.lead = this.id;
    this.state = StateType.Leader;
    // Followers are probed; our own progress is replicating by definition (reset set its
    // match to what we have persisted).
    this.prs.progress.get(this.id)?.becomeReplicate();

    // An empty entry of the new term: committing it commits everything before it (5.4.2), and
    // tells the leader what is committed (needed for ReadIndex).
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }]);
    invariant(ok, 'empty entry was dropped');
    this.logger.info(`raft ${this.id} became leader at term ${this.term}`);
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    invariant(r >= 0 && r < 1, () => `config.random returned ${r}, want [0, 1)`);
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionTimeout);
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  /** Whether this member may become leader: a voter with no snapshot waiting to be persisted. */
  promotable(): boolean {
    const pr = this.prs.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ------------------------------------------------------------------------------------------
  // Elections

  tick(): void {
    this.tickFn(this);
    this.maybeStepDownRemoved();
  }

  hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn(`raft ${this.id} is unpromotable and can not campaign`);
      return;
    }
    this.campaign(t);
  }

  campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      // The pre-vote asks about the next term without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A single-voter configuration: we won by voting for ourselves.
      if (t === CampaignType.PreElection) {
        this.campaign(CampaignType.Election);
      } else {
        this.becomeLeader();
        this.bcastAppend(); // to learners, if any
      }
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.prs.voterIds()) {
      if (id === this.id) continue;
      this.send(
        newMessage({
          type: voteMsg,
          to: id,
          term,
          index: lastIndex,
          logTerm: lastTerm,
          context: t === CampaignType.Transfer ? CAMPAIGN_TRANSFER_CTX : EMPTY_BYTES,
        }),
      );
    }
  }

  poll(id: bigint, granted: boolean): VoteResult {
    this.prs.recordVote(id, granted);
    return this.prs.tallyVotes().result;
  }

  // ------------------------------------------------------------------------------------------
  // Step: the term rules common to every role, then the role's step function.

  step(m: Message): void {
    this.stepInner(m);
    this.maybeStepDownRemoved();
  }

  private stepInner(m: Message): void {
    if (m.term === 0) {
      // A local message (or a forwarded proposal / read request).
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER_CTX);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Thesis 4.2.3: within the minimum election timeout of hearing from a current leader,
          // a server neither updates its term nor grants its vote. A removed or partitioned
          // member cannot disrupt a healthy leader this way.
          return;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // Pre-vote requests carry the next term; a granted answer echoes it. We move to that
        // term only once a quorum granted.
      } else if (
        m.type === MessageType.MsgApp ||
        m.type === MessageType.MsgHeartbeat ||
        m.type === MessageType.MsgSnap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)
      ) {
        // A leader of an older term (e.g. back from a partition). Tell it our term so it steps
        // down; otherwise, with check-quorum or pre-vote, it might never learn it and the
        // cluster could stall with our higher term.
        this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from }));
      } else if (m.type === MessageType.MsgPreVote) {
        // Reject, with our term, so that an out-of-date pre-candidate learns the current term.
        this.send(newMessage({ type: MessageType.MsgPreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      // Any other message from an older term is ignored.
      return;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        // We grant if this repeats the vote we already cast, or we have not voted and know of
        // no leader in this term, or it is a pre-vote for a later term; and only if the
        // candidate's log is at least as up to date as ours (5.4.1).
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // The response carries the request's term: for a pre-vote that is a future term.
          this.send(newMessage({ type: voteRespMsgType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.MsgVote) {
            // Only real votes are recorded (and persisted through the hard state).
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(newMessage({ type: voteRespMsgType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        this.stepFn(this, m);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Follower-side handlers

  handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: lastNew }));
      return;
    }
    // Log matching failed at m.index. Hint the leader at the largest index where our logs may
    // still agree: the last of our entries at or below m.index with a term <= m.logTerm. The
    // leader can then skip a whole term per round trip instead of one entry.
    let hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    hintIndex = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    const hintTerm = this.raftLog.term(hintIndex);
    this.send(
      newMessage({
        type: MessageType.MsgAppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hintIndex,
        logTerm: hintTerm,
      }),
    );
  }

  handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(newMessage({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context }));
  }

  handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (this.restore(s)) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader. Returns false if it was ignored (old, or already covered). */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Defense in depth: only followers install snapshots. Move to a new term as follower.
      this.logger.warn(`raft ${this.id} attempted to restore snapshot as ${stateTypeName(this.state)}`);
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    // Defense in depth: ignore a snapshot whose configuration does not include us.
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      this.logger.warn(`raft ${this.id} ignored snapshot at ${s.metadata.index}: not in its configuration`);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the entry at the snapshot's index: just fast-forward the commit.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    const base = configurationFromState(s.metadata.index, cs); // validates before anything changes
    this.raftLog.restore(s);
    this.configs.reset(base);
    this.prs = new ProgressTracker(this.prs.maxInflight);
    this.switchToConfig();
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Membership

  /** Entries were appended to the log (possibly replacing a tail): follow their configurations. */
  private onLogAppend(ents: readonly Entry[]): void {
    let changed = false;
    // Configurations of truncated entries are undone (thesis 4.1).
    if (ents[0]!.index <= this.configs.latest().index) changed = this.configs.truncateFrom(ents[0]!.index);
    if (this.configs.append(ents)) changed = true;
    if (changed) this.switchToConfig();
  }

  /**
   * The application applied the committed conf-change entry `cc`: returns the configuration it
   * established (to keep in the application's snapshots). Raft already switched to it when the
   * entry was appended. Throws ErrInvalidConfChange, changing nothing, if the change was refused
   * (it is then a no-op on every member).
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = applyChange(this.appliedConfig, cc);
    this.appliedConfig = {
      index: this.appliedConfig.index,
      voters: next.voters,
      learners: next.learners,
      change: cc,
      refused: undefined,
    };
    return confStateOf(this.appliedConfig);
  }

  /** The configuration in force: members, and progress for each (new members start probing). */
  private switchToConfig(): void {
    const c = this.configs.latest();
    const prs = this.prs;
    prs.voters.clear();
    for (const id of c.voters) prs.voters.add(id);
    prs.learners.clear();
    for (const id of c.learners) prs.learners.add(id);
    const next = Math.max(this.raftLog.lastIndex(), 1);
    const progress = new Map<bigint, Progress>();
    const added: bigint[] = [];
    for (const id of [...c.voters, ...c.learners]) {
      let pr = prs.progress.get(id);
      if (pr === undefined) {
        // Probed from the last index; counts as recently active so that check-quorum does not
        // depose the leader before the new member had a chance to answer.
        pr = new Progress(next, prs.maxInflight, c.learners.has(id), true);
        added.push(id);
      }
      pr.isLearner = c.learners.has(id);
      progress.set(id, pr);
    }
    prs.progress = progress;
    const self = progress.get(this.id);
    this.isLearner = self?.isLearner === true;

    if (this.state !== StateType.Leader) return;
    // A leader outside the new configuration keeps leading (without counting itself) until the
    // change commits, then steps down (thesis 4.2.2; see maybeStepDownRemoved).
    if (this.maybeCommit()) {
      // A smaller quorum may commit more right away.
      this.bcastAppend();
    } else {
      // Probe new members at once rather than at the next heartbeat.
      for (const id of added) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NONE && !prs.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
  }

  /** A leader removed from the configuration steps down once the removal is committed. */
  maybeStepDownRemoved(): void {
    if (this.state !== StateType.Leader || this.prs.voters.has(this.id)) return;
    if (this.configs.latest().index > this.raftLog.committed) return;
    this.logger.info(`raft ${this.id} steps down: removed from the configuration`);
    this.becomeFollower(this.term, NONE);
  }

  // ------------------------------------------------------------------------------------------
  // Leader helpers

  appendEntry(es: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    // Fresh objects: the proposal's entries belong to the caller (or to a message).
    const ents: Entry[] = new Array(es.length);
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      ents[i] = { term: this.term, index: li + 1 + i, type: e.type, data: e.data };
    }
    if (!this.increaseUncommittedSize(ents)) return false;
    this.raftLog.append(ents);
    return true;
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    let s = 0;
    for (const e of ents) s += payloadSize(e);
    // Always admit a proposal when nothing is uncommitted, so one large entry can get through.
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  private reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.uncommittedSize === 0) return; // followers do not track it
    let s = 0;
    for (const e of ents) s += payloadSize(e);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  committedEntryInCurrentTerm(): boolean {
    return (this.raftLog.termOrUndefined(this.raftLog.committed) ?? 0) === this.term;
  }

  sendTimeoutNow(to: bigint): void {
    this.send(newMessage({ type: MessageType.MsgTimeoutNow, to }));
  }

  /** The answer to a read request at `readIndex`: a ReadState if it is ours, else a message for the requester. */
  responseToReadIndexReq(req: Message, readIndex: number): Message | undefined {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.entries[0]!.data });
      return undefined;
    }
    return newMessage({ type: MessageType.MsgReadIndexResp, to: req.from, index: readIndex, entries: req.entries });
  }

  /**
   * Whether a conf-change entry may be appended now (undefined) or why not. One change at a
   * time: the previous one must be committed; and the leader must have committed an entry of
   * its own term, so that no older leader's uncommitted change can still take effect (the fix
   * to single-server changes, Ongaro, raft-dev, 2015-07-10).
   */
  confChangeRefusal(e: Entry): { dropped: string } | { invalid: string } | undefined {
    const latest: Configuration = this.configs.latest();
    if (latest.index > this.raftLog.committed) {
      return { dropped: `conf change at index ${latest.index} is not committed yet` };
    }
    if (!this.committedEntryInCurrentTerm()) {
      return { dropped: 'the leader has not committed an entry of its term yet' };
    }
    try {
      applyChange(latest, decodeConfChange(e.data));
    } catch (err) {
      if (err instanceof ErrDecode || err instanceof ErrInvalidConfChange) return { invalid: err.message };
      throw err;
    }
    return undefined;
  }
}

// ----------------------------------------------------------------------------------------------
// Ticks

function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.promotable() && r.pastElectionTimeout()) {
    r.electionElapsed = 0;
    r.step(newMessage({ type: MessageType.MsgHup, from: r.id }));
  }
}

function tickHeartbeat(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.electionTimeout) {
    r.electionElapsed = 0;
    if (r.checkQuorum) r.step(newMessage({ type: MessageType.MsgCheckQuorum, from: r.id }));
    // A transfer that did not finish within an election timeout is abandoned.
    if (r.state === StateType.Leader && r.leadTransferee !== NONE) r.abortLeaderTransfer();
  }
  if (r.state !== StateType.Leader) return;
  if (r.heartbeatElapsed >= r.heartbeatTimeout) {
    r.heartbeatElapsed = 0;
    r.step(newMessage({ type: MessageType.MsgBeat, from: r.id }));
  }
}

// ----------------------------------------------------------------------------------------------
// Role step functions

function stepLeader(r: Raft, m: Message): void {
  // Messages that need no progress for m.from.
  switch (m.type) {
    case MessageType.MsgBeat:
      r.bcastHeartbeat();
      return;
    case MessageType.MsgCheckQuorum: {
      // The leader always counts itself active (if it is still in the configuration).
      const self = r.prs.progress.get(r.id);
      if (self !== undefined) self.recentActive = true;
      if (!r.prs.quorumActive()) {
        r.logger.warn(`raft ${r.id} stepped down to follower since quorum is not active`);
        r.becomeFollower(r.term, NONE);
      }
      // Everyone else must show up again before the next check.
      for (const [id, pr] of r.prs.progress) if (id !== r.id) pr.recentActive = false;
      return;
    }
    case MessageType.MsgProp: {
      invariant(m.entries.length > 0, 'stepped empty MsgProp');
      if (!r.prs.progress.has(r.id)) throw new ErrProposalDropped('this member is not in the configuration');
      if (r.leadTransferee !== NONE) throw new ErrProposalDropped(`leader transfer to ${r.leadTransferee} in progress`);
      const local = m.from === r.id;
      let entries = m.entries;
      let sawConfChange = false;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (e.type !== EntryType.ConfChange) continue;
        const refused = sawConfChange
          ? { dropped: 'a conf change is already in this proposal' }
          : r.confChangeRefusal(e);
        if (refused === undefined) {
          sawConfChange = true;
          continue;
        }
        if (local) {
          if ('invalid' in refused) throw new ErrInvalidConfChange(refused.invalid);
          throw new ErrProposalDropped(refused.dropped);
        }
        // A forwarded conf change that cannot go in is replaced by an empty entry, as etcd does.
        r.logger.warn(`raft ${r.id} ignoring conf change from ${m.from}: ${JSON.stringify(refused)}`);
        if (entries === m.entries) entries = entries.slice();
        entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
      }
      if (!r.appendEntry(entries)) throw new ErrProposalDropped('too many uncommitted entries');
      // Batch: every proposal until the next Ready goes out in one append per follower.
      r.pendingBroadcast = true;
      return;
    }
    case MessageType.MsgReadIndex: {
      if (r.prs.isSingleton() && r.prs.voters.has(r.id)) {
        // The only voter: our commit index is the cluster's.
        const resp = r.responseToReadIndexReq(m, r.raftLog.committed);
        if (resp !== undefined) r.send(resp);
        return;
      }
      // Thesis 6.4: the leader's commit index is only known to be current once it has committed
      // an entry of its own term. Until then, hold the request back.
      if (!r.committedEntryInCurrentTerm()) {
        if (r.pendingReadIndexMessages.length >= PENDING_READ_INDEX_MESSAGES_MAX) {
          throw new ErrProposalDropped('too many pending read requests');
        }
        r.pendingReadIndexMessages.push(m);
        return;
      }
      sendMsgReadIndexResponse(r, m);
      return;
    }
  }

  // Everything else needs the sender's progress.
  const pr = r.prs.progress.get(m.from);
  if (pr === undefined) return;
  switch (m.type) {
    case MessageType.MsgAppResp: {
      pr.recentActive = true;
      if (m.reject) {
        // Fast back-off: the follower hinted (rejectHint, logTerm); skip to the last of our
        // entries at or below that index with a term <= logTerm.
        let nextProbeIdx = m.rejectHint;
        if (m.logTerm > 0) nextProbeIdx = r.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
        if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
          if (pr.state === ProgressState.Replicate) pr.becomeProbe();
          r.sendAppend(m.from);
        }
        return;
      }
      const oldPaused = pr.isPaused();
      if (!pr.maybeUpdate(m.index)) return;
      if (pr.state === ProgressState.Probe) {
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Replicate) {
        pr.inflights.freeLE(m.index);
      }
      if (r.maybeCommit()) {
        // The commit index moved in this term: pending reads can be served, and followers
        // should learn the new commit index.
        releasePendingReadIndexMessages(r);
        r.bcastAppend();
      } else if (oldPaused) {
        // It was paused, so it may be missing the latest commit index.
        r.sendAppend(m.from);
      }
      // Flow control may now allow several messages (e.g. moving from probe to replicate).
      while (r.maybeSendAppend(m.from, false)) {
        // keep sending
      }
      if (m.from === r.leadTransferee && pr.match === r.raftLog.lastIndex()) {
        // The transferee caught up: tell it to campaign now.
        r.sendTimeoutNow(m.from);
      }
      return;
    }
    case MessageType.MsgHeartbeatResp: {
      pr.recentActive = true;
      pr.probeSent = false;
      // Free one slot of a full window so a lost append cannot stall replication forever.
      if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.match < r.raftLog.lastIndex()) r.sendAppend(m.from);
      if (r.readOnly.option !== ReadOnlyOption.Safe || m.context.length === 0) return;
      const acks = r.readOnly.recvAck(m.from, m.context);
      if (acks === undefined || r.prs.voteResult(acks) !== VoteResult.Won) return;
      for (const rs of r.readOnly.advance(m.context)) {
        const resp = r.responseToReadIndexReq(rs.req, rs.index);
        if (resp !== undefined) r.send(resp);
      }
      return;
    }
    case MessageType.MsgSnapStatus:
      if (pr.state !== ProgressState.Snapshot) return;
      if (m.reject) {
        // Failed: probe from where we know the follower is, not from the snapshot.
        pr.pendingSnapshot = 0;
      }
      pr.becomeProbe();
      // Wait for the follower's answer (or a heartbeat interval on failure) before the next append.
      pr.probeSent = true;
      return;
    case MessageType.MsgUnreachable:
      // An optimistic append was probably lost: go back to probing.
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      return;
    case MessageType.MsgTransferLeader: {
      if (pr.isLearner) return;
      const transferee = m.from;
      if (r.leadTransferee !== NONE) {
        if (r.leadTransferee === transferee) return; // already in progress
        r.abortLeaderTransfer();
      }
      if (transferee === r.id) return;
      // The transfer must finish within an election timeout.
      r.electionElapsed = 0;
      r.leadTransferee = transferee;
      if (pr.match === r.raftLog.lastIndex()) r.sendTimeoutNow(transferee);
      else r.sendAppend(transferee);
      return;
    }
  }
}

function stepCandidate(r: Raft, m: Message): void {
  // A pre-candidate counts pre-votes; a candidate counts votes. Answers for the other kind are
  // stale and ignored.
  const myVoteRespType = r.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
  switch (m.type) {
    case MessageType.MsgProp:
      throw new ErrProposalDropped('no leader');
    case MessageType.MsgApp:
      r.becomeFollower(m.term, m.from); // m.term === r.term: a leader won this term
      r.handleAppendEntries(m);
      return;
    case MessageType.MsgHeartbeat:
      r.becomeFollower(m.term, m.from);
      r.handleHeartbeat(m);
      return;
    case MessageType.MsgSnap:
      r.becomeFollower(m.term, m.from);
      r.handleSnapshot(m);
      return;
    case myVoteRespType: {
      const result = r.poll(m.from, !m.reject);
      if (result === VoteResult.Won) {
        if (r.state === StateType.PreCandidate) {
          r.campaign(CampaignType.Election);
        } else {
          r.becomeLeader();
          r.bcastAppend();
        }
      } else if (result === VoteResult.Lost) {
        // A rejected pre-vote may carry a future term; stay in ours.
        r.becomeFollower(r.term, NONE);
      }
      return;
    }
    case MessageType.MsgReadIndex:
      throw new ErrProposalDropped('no leader');
    default:
      // MsgTimeoutNow and others: ignored while campaigning.
      return;
  }
}

function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.MsgProp:
      if (r.lead === NONE) throw new ErrProposalDropped('no leader');
      if (r.disableProposalForwarding) throw new ErrProposalDropped('proposal forwarding is disabled');
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case MessageType.MsgApp:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleAppendEntries(m);
      return;
    case MessageType.MsgHeartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleHeartbeat(m);
      return;
    case MessageType.MsgSnap:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleSnapshot(m);
      return;
    case MessageType.MsgTransferLeader:
      if (r.lead === NONE) return;
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case MessageType.MsgTimeoutNow:
      // The leader is handing over: campaign at once, without pre-vote, overriding leases.
      r.hup(CampaignType.Transfer);
      return;
    case MessageType.MsgReadIndex:
      if (r.lead === NONE) throw new ErrProposalDropped('no leader');
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case MessageType.MsgReadIndexResp:
      if (m.entries.length !== 1) return;
      r.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
      return;
    default:
      return;
  }
}

function sendMsgReadIndexResponse(r: Raft, m: Message): void {
  if (r.readOnly.option === ReadOnlyOption.Safe) {
    if (r.readOnly.size() >= READ_INDEX_PENDING_MAX) throw new ErrProposalDropped('too many pending read requests');
    r.readOnly.addRequest(r.raftLog.committed, m);
    // We acknowledge our own request; a heartbeat round collects the rest.
    r.readOnly.recvAck(r.id, m.entries[0]!.data);
    r.bcastHeartbeatWithCtx(m.entries[0]!.data);
    return;
  }
  const resp = r.responseToReadIndexReq(m, r.raftLog.committed);
  if (resp !== undefined) r.send(resp);
}

function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0) return;
  if (!r.committedEntryInCurrentTerm()) return;
  const msgs = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of msgs) {
    try {
      sendMsgReadIndexResponse(r, m);
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
    }
  }
}

export { CampaignType };
