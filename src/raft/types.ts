// The data model of the Raft library: log entries, persistent state, snapshots, membership
// and the messages members exchange. Field names and numeric values follow etcd's raftpb
// (raft.proto), so the codec in codec.ts writes the same wire format.
//
// Ids of members are uint64 `bigint`s with 0n meaning "none". Terms and indexes are
// `number`s: they grow by one per election or entry and stay far below 2^53.

/** The id that means "no member" (no leader, no vote). */
export const NONE = 0n;

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. `data` is opaque to Raft for Normal entries; for ConfChange entries it is an encoded ConfChange. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What a member must persist before it sends the messages of a Ready (etcd's raftpb.HardState). */
export interface HardState {
  term: number;
  /** The member this member voted for in `term`, NONE if it has not voted. */
  vote: bigint;
  /** The highest log index known to be committed. */
  commit: number;
}

/** The membership in force at some log index. Voters and learners are disjoint. */
export interface ConfState {
  voters: bigint[];
  learners: bigint[];
}

export interface SnapshotMetadata {
  /** The last log index the snapshot covers, and its term. */
  index: number;
  term: number;
  /** The membership at `index`. */
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** The application's state machine at `metadata.index`; opaque to Raft. */
  data: Uint8Array;
}

export const ConfChangeType = {
  AddNode: 0,
  RemoveNode: 1,
  UpdateNode: 2,
  AddLearnerNode: 3,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/**
 * A single membership change, carried in the data of an EntryType.ConfChange entry.
 * AddNode on a member that is a learner promotes it to voter.
 */
export interface ConfChange {
  /** An application-chosen id (etcd's server uses it as the request id). */
  id: bigint;
  type: ConfChangeType;
  nodeId: bigint;
  /** Opaque to Raft (etcd's server puts the member's attributes here). */
  context: Uint8Array;
}

export const MessageType = {
  MsgHup: 0,
  MsgBeat: 1,
  MsgProp: 2,
  MsgApp: 3,
  MsgAppResp: 4,
  MsgVote: 5,
  MsgVoteResp: 6,
  MsgSnap: 7,
  MsgHeartbeat: 8,
  MsgHeartbeatResp: 9,
  MsgUnreachable: 10,
  MsgSnapStatus: 11,
  MsgCheckQuorum: 12,
  MsgTransferLeader: 13,
  MsgTimeoutNow: 14,
  MsgReadIndex: 15,
  MsgReadIndexResp: 16,
  MsgPreVote: 17,
  MsgPreVoteResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const messageTypeNames: readonly string[] = Object.keys(MessageType);

/** The name of a message type ("MsgApp"), for logs and errors. */
export function messageTypeName(t: number): string {
  return messageTypeNames[t] ?? `MessageType(${t})`;
}

export function isMessageType(t: number): t is MessageType {
  return Number.isInteger(t) && t >= 0 && t < messageTypeNames.length;
}

/**
 * A message between members (or from the application to its own member, for the local types).
 * Every field is always present; `newMessage` fills the defaults. Raft never mutates a message
 * it is given.
 */
export interface Message {
  type: MessageType;
  to: bigint;
  from: bigint;
  term: number;
  /** MsgApp: term of the entry at `index`. MsgVote: candidate's last term. MsgAppResp reject: term at `rejectHint`. */
  logTerm: number;
  /** MsgApp: index preceding `entries`. MsgAppResp: the follower's last matching index. MsgVote: candidate's last index. */
  index: number;
  entries: Entry[];
  commit: number;
  /** Present on MsgSnap only. */
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** A message with every field present: the given ones, defaults for the rest. */
export function newMessage(init: Partial<Message> & { type: MessageType }): Message {
  return {
    type: init.type,
    to: init.to ?? NONE,
    from: init.from ?? NONE,
    term: init.term ?? 0,
    logTerm: init.logTerm ?? 0,
    index: init.index ?? 0,
    entries: init.entries ?? [],
    commit: init.commit ?? 0,
    snapshot: init.snapshot,
    reject: init.reject ?? false,
    rejectHint: init.rejectHint ?? 0,
    context: init.context ?? EMPTY_BYTES,
  };
}

export const StateType = {
  Follower: 0,
  Candidate: 1,
  Leader: 2,
  PreCandidate: 3,
} as const;
export type StateType = (typeof StateType)[keyof typeof StateType];

const stateTypeNames: readonly string[] = Object.keys(StateType);

export function stateTypeName(s: StateType): string {
  return stateTypeNames[s] ?? `StateType(${s})`;
}

/** Volatile state worth reporting to the application; not persisted. */
export interface SoftState {
  lead: bigint;
  raftState: StateType;
}

/**
 * The answer to a ReadIndex request: once the application has applied up to `index`, a read
 * of its state machine reflects every write committed before the request was made.
 */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export const ReadOnlyOption = {
  /** Confirm leadership with a heartbeat round before answering (linearizable under any clock). */
  Safe: 0,
  /** Rely on the leader lease (check-quorum); correct only if clock drift is bounded. */
  LeaseBased: 1,
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export function isEmptyHardState(st: HardState): boolean {
  return st.term === 0 && st.vote === NONE && st.commit === 0;
}

export function isHardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function isEmptySnap(s: Snapshot): boolean {
  return s.metadata.index === 0;
}

export function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY_BYTES };
}

/** Messages the application generates for its own member; never valid from the network. */
export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  );
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgPreVoteResp
  );
}

export function voteRespMsgType(t: MessageType): MessageType {
  if (t === MessageType.MsgVote) return MessageType.MsgVoteResp;
  if (t === MessageType.MsgPreVote) return MessageType.MsgPreVoteResp;
  throw new Error(`raft: not a vote message: ${messageTypeName(t)}`);
}

/** The bytes an entry's payload counts against the uncommitted-size limit. */
export function payloadSize(e: Entry): number {
  return e.data.byteLength;
}
