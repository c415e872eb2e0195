// RawNode: the application's handle on one Raft member. Everything goes in through method
// calls (tick, step, propose, ...) and comes out through ready(): a Ready of what to persist,
// send and apply, after which the application calls advance(). See README.md for the contract.

import { encodeConfChange } from './codec.ts';
import type { Config } from './config.ts';
import {
  ErrInvalidConfChange,
  ErrInvalidMessage,
  ErrProposalDropped,
  ErrStepLocalMsg,
  ErrStepPeerNotFound,
  invariant,
} from './errors.ts';
import { configurationFromState, confStateOf } from './membership.ts';
import { type ProgressState, progressStateName } from './progress.ts';
import { CampaignType, Raft } from './raft.ts';
import type { Storage } from './storage.ts';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  EMPTY_BYTES,
  EMPTY_HARD_STATE,
  type Entry,
  EntryType,
  type HardState,
  isHardStateEqual,
  isLocalMsg,
  isMessageType,
  isResponseMsg,
  type Message,
  MessageType,
  messageTypeName,
  NONE,
  newMessage,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from './types.ts';

/**
 * What the application must do next, in this order (README.md has the details):
 *
 * 1. Send `earlyMessages` (any time, even before or while persisting).
 * 2. Persist `snapshot`, `entries` and `hardState` (fsync if `mustSync`).
 * 3. Send `messages`.
 * 4. Apply `snapshot`, then `committedEntries`, to the state machine; serve `readStates` once applied up to their index.
 * 5. Call `advance(ready)`.
 */
export interface Ready {
  /** The leader and this member's role, if they changed. Not persisted. */
  softState?: SoftState;
  /** Term, vote and commit index, if they changed: persist before sending `messages`. */
  hardState?: HardState;
  /** Answers to readIndex() requests, in request order. */
  readStates: ReadState[];
  /**
   * Entries to append to stable storage, before sending `messages`. They may overwrite
   * (truncate) previously persisted entries at and after entries[0].index.
   */
  entries: Entry[];
  /** A snapshot from the leader to persist (and to apply to the state machine), if any. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order. They may include entries of `entries`: persist first. */
  committedEntries: Entry[];
  /**
   * Messages that depend on this Ready being durable (votes, acknowledgements of appended
   * entries, ...): send only after `snapshot`, `entries` and `hardState` are persisted. If one is
   * a MsgSnap, report its outcome with reportSnapshot().
   */
  messages: Message[];
  /**
   * A leader's appends, heartbeats and snapshots in a term already persisted: they depend on
   * nothing in this Ready being durable and may be sent at once, in parallel with the write
   * (Raft thesis 10.2.1). The leader counts its own entries towards commitment only after
   * advance(). If one is a MsgSnap, report its outcome with reportSnapshot().
   */
  earlyMessages: Message[];
  /** Whether the write of this Ready must be synced to disk (new entries, or a new term or vote). */
  mustSync: boolean;
}

export interface Peer {
  id: bigint;
  /** Stored in the bootstrap conf change (etcd's server puts the member's attributes there). */
  context?: Uint8Array;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  stateName: string;
  isLearner: boolean;
  recentActive: boolean;
  pendingSnapshot: number;
  inflight: number;
  paused: boolean;
}

export interface Status {
  id: bigint;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: bigint;
  /**
   * The configuration in force: the latest in the log, committed or not (membership changes
   * take effect when appended). Use it for who to talk to, not for snapshots.
   */
  config: ConfState;
  /** The configuration as of the applied index: the one to store with a snapshot taken now. */
  appliedConfig: ConfState;
  /** Replication progress of every member; only on the leader (empty elsewhere). */
  progress: Map<bigint, ProgressStatus>;
}

export class RawNode {
  /** The state machine; exposed for tests and diagnostics, not part of the stable API. */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  /** The hard state the application last persisted (as far as this node knows). */
  private prevHardState: HardState;
  /** A Ready was handed out and not yet advanced. */
  private outstanding: Ready | undefined = undefined;

  constructor(config: Config, storage: Storage) {
    this.raft = new Raft(config, storage);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Starts a fresh cluster on an empty storage: appends one AddNode conf change per peer
   * (term 1, indexes 1..n) and marks them committed, so that the member can campaign at once.
   * The entries come out in the first Ready, to persist and to apply like any committed conf
   * change.
   */
  bootstrap(peers: readonly Peer[]): void {
    if (peers.length === 0) throw new ErrInvalidConfChange('must provide at least one peer to bootstrap');
    const r = this.raft;
    if (r.raftLog.storage.lastIndex() !== 0 || r.raftLog.lastIndex() !== 0) {
      throw new ErrInvalidConfChange("can't bootstrap a nonempty storage");
    }
    const seen = new Set<bigint>();
    for (const p of peers) {
      if (typeof p.id !== 'bigint' || p.id === NONE)
        throw new ErrInvalidConfChange('peer id must be a non-zero bigint');
      if (seen.has(p.id)) throw new ErrInvalidConfChange(`duplicate peer id ${p.id}`);
      seen.add(p.id);
    }
    // Nothing is persisted yet: the first Ready carries the hard state.
    this.prevHardState = EMPTY_HARD_STATE;
    r.becomeFollower(1, NONE);
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({
        id: 0n,
        type: ConfChangeType.AddNode,
        nodeId: p.id,
        context: p.context ?? EMPTY_BYTES,
      }),
    }));
    // Appending them puts the configuration in force; they are committed but not applied, so
    // the application sees them in Ready.committedEntries.
    r.raftLog.append(ents);
    r.raftLog.committed = ents.length;
  }

  /** Advances the logical clock by one tick (election and heartbeat timeouts are counted in ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first, if enabled). */
  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.MsgHup, from: this.raft.id }));
  }

  /** Proposes data to be appended to the log. Throws ErrProposalDropped if it cannot be. */
  propose(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new ErrInvalidMessage('proposal data must be a Uint8Array');
    this.raft.step(
      newMessage({
        type: MessageType.MsgProp,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Proposes a membership change. It takes effect on each member when appended to its log. On
   * the leader, a change while the previous one is uncommitted (or before the leader committed
   * an entry of its term) throws ErrProposalDropped, an invalid one ErrInvalidConfChange; a
   * follower forwards it to the leader, which replaces a refused one with an empty entry.
   */
  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    this.raft.step(
      newMessage({
        type: MessageType.MsgProp,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }],
      }),
    );
  }

  /**
   * To call when applying a committed conf-change entry: returns the configuration it
   * established, to keep with the application's snapshots. (Raft switched to it when the entry
   * was appended, as in the Raft thesis.) Throws ErrInvalidConfChange if the change was refused
   * (an invalid change is a no-op on every member) or does not match a committed entry.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Steps a message received from a peer. Throws ErrStepLocalMsg for a local-only type,
   * ErrStepPeerNotFound for a response from a non-member, ErrInvalidMessage for a malformed
   * one; in each case nothing changed. A forwarded proposal the member cannot take is dropped
   * silently (the proposer learns of it by timeout, as with a lost message).
   */
  step(m: Message): void {
    if (!isMessageType(m.type)) throw new ErrInvalidMessage(`unknown message type ${m.type}`);
    if (isLocalMsg(m.type)) throw new ErrStepLocalMsg();
    validateMessage(m, this.raft.id);
    if (isResponseMsg(m.type) && !this.raft.prs.progress.has(m.from)) throw new ErrStepPeerNotFound();
    try {
      this.raft.step(m);
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
    }
  }

  /**
   * Requests a read index for a linearizable read; `ctx` identifies the request and comes back
   * in the matching ReadState. Throws ErrProposalDropped if there is no leader to ask.
   */
  readIndex(ctx: Uint8Array): void {
    if (!(ctx instanceof Uint8Array)) throw new ErrInvalidMessage('read context must be a Uint8Array');
    this.raft.step(
      newMessage({
        type: MessageType.MsgReadIndex,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data: ctx }],
      }),
    );
  }

  /**
   * Asks the leader to hand leadership to `transferee` (it catches the transferee up, then
   * tells it to campaign). Proposals are dropped while the transfer is in progress.
   */
  transferLeader(transferee: bigint): void {
    if (typeof transferee !== 'bigint' || transferee === NONE) {
      throw new ErrInvalidMessage('transferee must be a non-zero bigint');
    }
    this.raft.step(newMessage({ type: MessageType.MsgTransferLeader, from: transferee }));
  }

  /** Tells the leader that the last message to `id` could not be delivered. */
  reportUnreachable(id: bigint): void {
    this.raft.step(newMessage({ type: MessageType.MsgUnreachable, from: id }));
  }

  /** Tells the leader how sending a snapshot (a MsgSnap of a Ready) to `id` ended. */
  reportSnapshot(id: bigint, ok: boolean): void {
    this.raft.step(newMessage({ type: MessageType.MsgSnapStatus, from: id, reject: !ok }));
  }

  /**
   * Whether ready() would return something. False while a Ready is outstanding (handed out and
   * not yet advanced).
   */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    r.flushBroadcast();
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!isHardStateEqual(hs, this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) return true;
    return r.readStates.length !== 0;
  }

  /**
   * Takes what is to be persisted, sent and applied. Call advance() with it once handled; until
   * then ready() throws (one Ready at a time).
   */
  ready(): Ready {
    invariant(this.outstanding === undefined, 'ready() called again before advance()');
    const r = this.raft;
    r.flushBroadcast();
    const ss = r.softState();
    const hs = r.hardState();
    const prevHs = this.prevHardState;
    const messages: Message[] = [];
    const earlyMessages: Message[] = [];
    for (const m of r.msgs) {
      if (isEarly(m, r.id, r.state, prevHs.term)) earlyMessages.push(m);
      else messages.push(m);
    }
    // A copy: the unstable log keeps growing while the application persists this Ready.
    const entries = r.raftLog.unstableEntries().slice();
    const rd: Ready = {
      softState: ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState ? ss : undefined,
      hardState: isHardStateEqual(hs, prevHs) ? undefined : hs,
      readStates: r.readStates,
      entries,
      snapshot: r.raftLog.unstable.snapshot,
      committedEntries: r.raftLog.nextEnts(),
      messages,
      earlyMessages,
      mustSync: entries.length !== 0 || hs.vote !== prevHs.vote || hs.term !== prevHs.term,
    };
    if (rd.softState !== undefined) this.prevSoftState = rd.softState;
    r.readStates = [];
    r.msgs = [];
    this.outstanding = rd;
    return rd;
  }

  /**
   * The application has persisted and applied `rd` (the Ready last returned by ready()).
   */
  advance(rd: Ready): void {
    invariant(this.outstanding === rd, 'advance() must be given the Ready last returned by ready()');
    this.outstanding = undefined;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    this.raft.advance(rd);
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<bigint, ProgressStatus>();
    if (r.state === StateType.Leader) {
      for (const [id, pr] of r.prs.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          stateName: progressStateName(pr.state),
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          pendingSnapshot: pr.pendingSnapshot,
          inflight: pr.inflights.length(),
          paused: pr.isPaused(),
        });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      config: r.prs.confState(),
      appliedConfig: confStateOf(r.appliedConfig),
      progress,
    };
  }
}

/**
 * Whether a message may be sent before this Ready is persisted: a leader's appends, heartbeats
 * and snapshots, in a term that is already durable (if the term changed in this Ready, nothing
 * goes out early: a restarted member must never have spoken in a term it does not remember).
 */
function isEarly(m: Message, id: bigint, state: StateType, persistedTerm: number): boolean {
  return (
    state === StateType.Leader &&
    m.from === id &&
    m.term === persistedTerm &&
    (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap)
  );
}

function validateMessage(m: Message, self: bigint): void {
  if (typeof m.from !== 'bigint' || m.from === NONE) throw new ErrInvalidMessage('from must be a non-zero bigint');
  if (m.to !== self) throw new ErrInvalidMessage(`message to ${m.to} delivered to ${self}`);
  if (!Number.isSafeInteger(m.term) || m.term < 0 || !Number.isSafeInteger(m.index) || m.index < 0) {
    throw new ErrInvalidMessage('term and index must be non-negative integers');
  }
  if (!Number.isSafeInteger(m.logTerm) || m.logTerm < 0 || !Number.isSafeInteger(m.commit) || m.commit < 0) {
    throw new ErrInvalidMessage('logTerm and commit must be non-negative integers');
  }
  if (!Array.isArray(m.entries) || !(m.context instanceof Uint8Array)) {
    throw new ErrInvalidMessage('entries must be an array and context a Uint8Array');
  }
  switch (m.type) {
    case MessageType.MsgProp:
      if (m.entries.length === 0) throw new ErrInvalidMessage('MsgProp without entries');
      break;
    case MessageType.MsgReadIndex:
    case MessageType.MsgReadIndexResp:
      if (m.entries.length !== 1) throw new ErrInvalidMessage(`${messageTypeName(m.type)} needs exactly one entry`);
      break;
    case MessageType.MsgApp:
      for (let k = 0; k < m.entries.length; k++) {
        const e = m.entries[k]!;
        if (e.index !== m.index + 1 + k || e.term > m.term || e.term < m.logTerm) {
          throw new ErrInvalidMessage(`MsgApp entry ${k} does not follow (${m.index}, ${m.logTerm})`);
        }
      }
      break;
    case MessageType.MsgSnap:
      if (m.snapshot === undefined || m.snapshot.metadata.index === 0) {
        throw new ErrInvalidMessage('MsgSnap without a snapshot');
      }
      try {
        configurationFromState(m.snapshot.metadata.index, m.snapshot.metadata.confState);
      } catch (err) {
        if (err instanceof ErrInvalidConfChange) throw new ErrInvalidMessage(`MsgSnap: ${err.message}`);
        throw err;
      }
      break;
  }
}

export { CampaignType };
