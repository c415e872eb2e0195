// The public surface of the Raft library. Everything else in this folder is internal.

export {
  decodeConfChange,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  entrySize,
} from './codec.ts';
export {
  type Config,
  DEFAULT_ELECTION_TICK,
  DEFAULT_HEARTBEAT_TICK,
  DEFAULT_MAX_INFLIGHT_MSGS,
  DEFAULT_MAX_SIZE_PER_MSG,
  type RaftLogger,
} from './config.ts';
export {
  ErrCompacted,
  ErrDecode,
  ErrInvalidConfChange,
  ErrInvalidConfig,
  ErrInvalidMessage,
  ErrProposalDropped,
  ErrSnapOutOfDate,
  ErrSnapshotTemporarilyUnavailable,
  ErrStepLocalMsg,
  ErrStepPeerNotFound,
  ErrUnavailable,
  RaftError,
  RaftErrorCode,
  RaftInvariantError,
  type StorageError,
} from './errors.ts';
export { ProgressState } from './progress.ts';
export { createSeededRandom } from './random.ts';
export {
  type Peer,
  type ProgressStatus,
  RawNode,
  type Ready,
  type Status,
} from './rawnode.ts';
export { type InitialState, MemoryStorage, type Storage } from './storage.ts';
export {
  type ConfChange,
  ConfChangeType,
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
  ReadOnlyOption,
  type ReadState,
  type Snapshot,
  type SnapshotMetadata,
  type SoftState,
  StateType,
  stateTypeName,
} from './types.ts';
