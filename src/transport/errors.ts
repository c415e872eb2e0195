// The transport's error catalogue: one class per condition, each with a stable `code`.
//
// Bad input to the API (an unknown peer, a malformed URL, invalid options) throws one of these
// and changes nothing. Failures on the network are not thrown: they are reported through the
// callbacks (`onUnreachable`, `onSnapshotStatus`) and logged.

export const TransportErrorCode = {
  InvalidOptions: 'ErrInvalidOptions',
  InvalidPeerUrl: 'ErrInvalidPeerUrl',
  PeerExists: 'ErrPeerExists',
  PeerNotFound: 'ErrPeerNotFound',
  Closed: 'ErrTransportClosed',
  FrameTooLarge: 'ErrFrameTooLarge',
  Protocol: 'ErrProtocol',
} as const;
export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

export abstract class TransportError extends Error {
  abstract readonly code: TransportErrorCode;
}

/** A constructor option out of range or of the wrong type. */
export class ErrInvalidOptions extends TransportError {
  readonly code = TransportErrorCode.InvalidOptions;
  constructor(detail: string) {
    super(`transport: invalid options: ${detail}`);
    this.name = 'ErrInvalidOptions';
  }
}

/** A peer URL that is not `http://host:port` or `https://host:port`. */
export class ErrInvalidPeerUrl extends TransportError {
  readonly code = TransportErrorCode.InvalidPeerUrl;
  readonly url: string;
  constructor(url: string, detail: string) {
    super(`transport: invalid peer URL ${JSON.stringify(url)}: ${detail}`);
    this.name = 'ErrInvalidPeerUrl';
    this.url = url;
  }
}

/** addPeer for a member the transport already knows. */
export class ErrPeerExists extends TransportError {
  readonly code = TransportErrorCode.PeerExists;
  constructor(id: bigint) {
    super(`transport: peer ${id.toString(16)} already exists`);
    this.name = 'ErrPeerExists';
  }
}

/** removePeer/updatePeer for a member the transport does not know. */
export class ErrPeerNotFound extends TransportError {
  readonly code = TransportErrorCode.PeerNotFound;
  constructor(id: bigint) {
    super(`transport: peer ${id.toString(16)} not found`);
    this.name = 'ErrPeerNotFound';
  }
}

/** A call after close(). */
export class ErrTransportClosed extends TransportError {
  readonly code = TransportErrorCode.Closed;
  constructor() {
    super('transport: closed');
    this.name = 'ErrTransportClosed';
  }
}

/** A frame announces more bytes than the receiver accepts (a corrupt stream or a misconfigured peer). */
export class ErrFrameTooLarge extends TransportError {
  readonly code = TransportErrorCode.FrameTooLarge;
  constructor(sizeBytes: number, sizeBytesMax: number) {
    super(`transport: frame of ${sizeBytes} bytes exceeds the limit of ${sizeBytesMax} bytes`);
    this.name = 'ErrFrameTooLarge';
  }
}

/** A peer broke the stream protocol (a message for another member, a truncated snapshot, a bad checksum). */
export class ErrProtocol extends TransportError {
  readonly code = TransportErrorCode.Protocol;
  constructor(detail: string, options?: ErrorOptions) {
    super(`transport: ${detail}`, options);
    this.name = 'ErrProtocol';
  }
}
