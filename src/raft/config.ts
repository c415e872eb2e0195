// Configuration of one Raft member, with etcd's defaults, validated once at construction.

import { ErrInvalidConfig } from './errors.ts';
import { NONE, ReadOnlyOption } from './types.ts';
import { NO_LIMIT } from './util.ts';

/** Where Raft reports notable events. It must not block; the default discards everything. */
export interface RaftLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface Config {
  /** This member's id; must not be 0n. */
  id: bigint;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). Default 10. */
  electionTick?: number;
  /** Ticks between a leader's heartbeats. Must be less than electionTick. Default 1. */
  heartbeatTick?: number;
  /** Run a pre-vote round before a real election, so a partitioned member cannot inflate terms. Default true. */
  preVote?: boolean;
  /** A leader steps down if it has not heard from a quorum within an election timeout. Default true. */
  checkQuorum?: boolean;
  /** Upper bound in bytes of the entries of one MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** The most MsgApp in flight to one follower in Replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Upper bound in bytes of the payloads of entries appended but not committed on the leader. Default unlimited. */
  maxUncommittedEntriesSize?: number;
  /** Upper bound in bytes of Ready.committedEntries (at least one). Default maxSizePerMsg. */
  maxCommittedSizePerReady?: number;
  /**
   * The source of randomness for election timeouts: returns a number in [0, 1). Injected so
   * that the library stays deterministic; tests pass a seeded generator.
   */
  random: () => number;
  /** The last index the application applied before a restart (entries up to it are not handed out again). */
  applied?: number;
  /** How ReadIndex confirms leadership. Default ReadOnlyOption.Safe. LeaseBased requires checkQuorum. */
  readOnlyOption?: ReadOnlyOption;
  /** A follower drops proposals instead of forwarding them to the leader. Default false. */
  disableProposalForwarding?: boolean;
  logger?: RaftLogger;
}

export interface ResolvedConfig {
  id: bigint;
  electionTick: number;
  heartbeatTick: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxUncommittedEntriesSize: number;
  maxCommittedSizePerReady: number;
  random: () => number;
  applied: number;
  readOnlyOption: ReadOnlyOption;
  disableProposalForwarding: boolean;
  logger: RaftLogger;
}

export const DEFAULT_ELECTION_TICK = 10;
export const DEFAULT_HEARTBEAT_TICK = 1;
export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;

const silentLogger: RaftLogger = { info() {}, warn() {} };

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new ErrInvalidConfig(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Applies the defaults and checks every field; throws ErrInvalidConfig on the first bad one. */
export function resolveConfig(c: Config): ResolvedConfig {
  if (typeof c.id !== 'bigint' || c.id === NONE || c.id < 0n || c.id > 0xffff_ffff_ffff_ffffn) {
    throw new ErrInvalidConfig('id must be a non-zero uint64 bigint');
  }
  const heartbeatTick = positiveInt(c.heartbeatTick ?? DEFAULT_HEARTBEAT_TICK, 'heartbeatTick');
  const electionTick = positiveInt(c.electionTick ?? DEFAULT_ELECTION_TICK, 'electionTick');
  if (electionTick <= heartbeatTick) throw new ErrInvalidConfig('electionTick must be greater than heartbeatTick');
  const maxSizePerMsg = positiveInt(c.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG, 'maxSizePerMsg');
  const maxInflightMsgs = positiveInt(c.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS, 'maxInflightMsgs');
  const maxUncommittedEntriesSize = positiveInt(c.maxUncommittedEntriesSize ?? NO_LIMIT, 'maxUncommittedEntriesSize');
  const maxCommittedSizePerReady = positiveInt(c.maxCommittedSizePerReady ?? maxSizePerMsg, 'maxCommittedSizePerReady');
  if (typeof c.random !== 'function') throw new ErrInvalidConfig('random must be a function returning [0, 1)');
  const applied = c.applied ?? 0;
  if (!Number.isSafeInteger(applied) || applied < 0)
    throw new ErrInvalidConfig('applied must be a non-negative integer');
  const readOnlyOption = c.readOnlyOption ?? ReadOnlyOption.Safe;
  if (readOnlyOption !== ReadOnlyOption.Safe && readOnlyOption !== ReadOnlyOption.LeaseBased) {
    throw new ErrInvalidConfig(`unknown readOnlyOption ${readOnlyOption}`);
  }
  const checkQuorum = c.checkQuorum ?? true;
  if (readOnlyOption === ReadOnlyOption.LeaseBased && !checkQuorum) {
    throw new ErrInvalidConfig('checkQuorum must be enabled when readOnlyOption is LeaseBased');
  }
  return {
    id: c.id,
    electionTick,
    heartbeatTick,
    preVote: c.preVote ?? true,
    checkQuorum,
    maxSizePerMsg,
    maxInflightMsgs,
    maxUncommittedEntriesSize,
    maxCommittedSizePerReady,
    random: c.random,
    applied,
    readOnlyOption,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    logger: c.logger ?? silentLogger,
  };
}
