// The public surface of the peer transport. Everything else in this folder is internal.

export {
  ErrFrameTooLarge,
  ErrInvalidOptions,
  ErrInvalidPeerUrl,
  ErrPeerExists,
  ErrPeerNotFound,
  ErrProtocol,
  ErrTransportClosed,
  TransportError,
  TransportErrorCode,
} from './errors.ts';
export type { TransportLogger } from './log.ts';
export { PeerState, type PeerStatus } from './peer.ts';
export { PATH_MESSAGE_STREAM, PATH_PREFIX, PATH_SNAPSHOT, type PeerTlsOptions } from './protocol.ts';
export { type RoundTripStats, RTT_BUCKETS_SECONDS } from './rtt.ts';
export { type ReceivedSnapshot, snapshotFileName } from './snapshot.ts';
export {
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_MAX_QUEUE_MESSAGES,
  type PeerStreamHandler,
  Transport,
  type TransportOptions,
} from './transport.ts';
