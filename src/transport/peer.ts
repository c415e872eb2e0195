// The sending side of one peer: a bounded queue of encoded messages and the long-lived HTTP/2
// stream that carries them, with reconnection.
//
// States:
//   connecting  dialing, or waiting for the peer to accept the stream; messages queue up
//   active      the peer answered 200; the queue drains into the stream as fast as it takes it
//   inactive    the last attempt failed; messages are refused (the caller reports the peer
//               unreachable) until the retry timer dials again, after an exponential back-off
//   closed      for good (removePeer, close)
//
// One stream per direction keeps every message to a peer in the order it was sent. When the
// stream breaks, what was queued is dropped and the caller is told (raft retries from its
// progress tracking); nothing is ever re-sent by the transport.

import type { IncomingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { connectH2Socket, H2UploadConnection } from '../api/h2/client.ts';
import { VERSION } from '../version.ts';
import { FRAME_HEADER_BYTES, writeFrameHeader } from './framing.ts';
import type { TransportLogger } from './log.ts';
import {
  CONTENT_TYPE_STREAM,
  formatId,
  HEADER_CLUSTER_ID,
  HEADER_FROM,
  HEADER_SERVER_VERSION,
  HEADER_TO,
  PATH_MESSAGE_STREAM,
  type PeerTlsOptions,
  parseId,
} from './protocol.ts';
import { FrameQueue } from './queue.ts';
import { RoundTripRecorder, type RoundTripStats } from './rtt.ts';

/** Bytes of frames copied into one stream write: small messages are coalesced up to this. */
export const WRITE_BATCH_BYTES_MAX = 256 * 1024;

export const PeerState = {
  Connecting: 'connecting',
  Active: 'active',
  Inactive: 'inactive',
  Closed: 'closed',
} as const;
export type PeerState = (typeof PeerState)[keyof typeof PeerState];

export interface PeerTimings {
  /** A dial (TCP, TLS, HTTP/2 settings) that takes longer fails. */
  readonly dialTimeoutMs: number;
  /** The first retry after a failure waits this long; each further failure doubles it... */
  readonly backoffInitialMs: number;
  /** ...up to this cap. A peer that refuses the stream (412, 410, 404) is retried at the cap. */
  readonly backoffMaxMs: number;
  /** HTTP/2 PING period on an active connection (round-trip times, liveness). */
  readonly pingIntervalMs: number;
  /** A PING, or the stream request, unanswered this long drops the connection. */
  readonly pingTimeoutMs: number;
}

export interface PeerSenderOptions {
  readonly localId: bigint;
  readonly remoteId: bigint;
  readonly clusterId: bigint;
  /** Normalised origins (protocol.checkPeerUrls). */
  readonly urls: readonly string[];
  readonly tls: PeerTlsOptions | null;
  readonly logger: TransportLogger;
  readonly queueMessagesMax: number;
  readonly queueBytesMax: number;
  readonly timings: PeerTimings;
  /** Messages to this peer were lost (dropped from the queue, or the stream broke). */
  readonly onLost: () => void;
  /** The peer answered 410: this member was removed from the cluster. */
  readonly onRemoved: () => void;
}

export interface PeerStatus {
  readonly state: PeerState;
  /** When the current stream became active; null when not active. */
  readonly activeSince: Date | null;
  /** The URL of the current or last connection. */
  readonly url: string;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Messages refused because the queue was full or the peer inactive. */
  readonly droppedMessages: number;
  readonly roundTrip: RoundTripStats;
}

export class PeerSender {
  readonly #opts: PeerSenderOptions;
  readonly #queue: FrameQueue;
  readonly #rtt = new RoundTripRecorder();
  /** Scratch list of the bodies of one write batch, reused. */
  readonly #batch: Uint8Array[] = [];
  #urls: readonly string[];
  #urlIndex = 0;
  #state: PeerState = PeerState.Connecting;
  /** Bumped on every (re)connection and teardown: callbacks of an older attempt are ignored. */
  #generation = 0;
  #connection: H2UploadConnection | null = null;
  #activeSince: Date | null = null;
  #backoffMs: number;
  #retryTimer: NodeJS.Timeout | null = null;
  /** Fails an attempt whose stream the peer neither accepts nor refuses in time. */
  #answerTimer: NodeJS.Timeout | null = null;
  #pingTimer: NodeJS.Timeout | null = null;
  /** performance.now() when the outstanding PING was sent; 0 when none is. */
  #pingSentAt = 0;
  #waitingDrain = false;
  #dropped = 0;

  constructor(opts: PeerSenderOptions) {
    if (opts.urls.length === 0) throw new Error('PeerSender needs at least one URL');
    this.#opts = opts;
    this.#urls = opts.urls;
    this.#queue = new FrameQueue(opts.queueMessagesMax, opts.queueBytesMax);
    this.#backoffMs = opts.timings.backoffInitialMs;
    this.#connect();
  }

  get state(): PeerState {
    return this.#state;
  }

  /** The URL of the current or last connection attempt. */
  get url(): string {
    return this.#currentUrl();
  }

  get activeSince(): Date | null {
    return this.#activeSince;
  }

  roundTrip(): RoundTripStats {
    return this.#rtt.stats();
  }

  status(): PeerStatus {
    return {
      state: this.#state,
      activeSince: this.#activeSince,
      url: this.#currentUrl(),
      queuedMessages: this.#queue.length,
      queuedBytes: this.#queue.bytes,
      droppedMessages: this.#dropped,
      roundTrip: this.#rtt.stats(),
    };
  }

  /**
   * Queues one encoded message; `flush` writes it. False when it was not taken (the peer is
   * inactive or the queue is full): the caller reports the peer unreachable. Never blocks.
   */
  enqueue(body: Uint8Array): boolean {
    const taken = (this.#state === PeerState.Active || this.#state === PeerState.Connecting) && this.#queue.push(body);
    if (!taken) {
      this.#dropped++;
      return false;
    }
    return true;
  }

  /** Replaces the peer's URLs; a connection to a URL no longer listed is dropped and redialed at once. */
  updateUrls(urls: readonly string[]): void {
    const current = this.#currentUrl();
    this.#urls = urls;
    this.#urlIndex = 0;
    if (this.#state === PeerState.Closed) return;
    if (urls.includes(current) && this.#state !== PeerState.Inactive) {
      this.#urlIndex = urls.indexOf(current);
      return;
    }
    const lost = this.#teardown();
    if (lost) this.#opts.onLost();
    this.#backoffMs = this.#opts.timings.backoffInitialMs;
    this.#connect();
  }

  close(): void {
    if (this.#state === PeerState.Closed) return;
    this.#teardown();
    this.#state = PeerState.Closed;
  }

  #currentUrl(): string {
    return this.#urls[this.#urlIndex % this.#urls.length]!;
  }

  #connect(): void {
    const generation = ++this.#generation;
    this.#state = PeerState.Connecting;
    const opts = this.#opts;
    const origin = this.#currentUrl();
    connectH2Socket(origin, opts.tls, opts.timings.dialTimeoutMs).then(
      (socket) => {
        if (generation !== this.#generation) {
          socket.destroy();
          return;
        }
        // A peer shutting down sends GOAWAY and waits for open streams to end: ours ends then.
        this.#connection = new H2UploadConnection(
          socket,
          [
            [':method', 'POST'],
            [':scheme', origin.startsWith('https:') ? 'https' : 'http'],
            [':authority', new URL(origin).host],
            [':path', PATH_MESSAGE_STREAM],
            ['content-type', CONTENT_TYPE_STREAM],
            [HEADER_CLUSTER_ID, formatId(opts.clusterId)],
            [HEADER_FROM, formatId(opts.localId)],
            [HEADER_TO, formatId(opts.remoteId)],
            [HEADER_SERVER_VERSION, VERSION.server],
          ],
          {
            onResponse: (headers) => this.#onResponse(generation, headers),
            onDrain: () => {
              if (generation === this.#generation) this.#onDrain();
            },
            onClose: (reason) => this.#fail(generation, reason),
          },
        );
        this.#answerTimer = setTimeout(
          () => this.#fail(generation, `no answer to the stream request in ${opts.timings.pingTimeoutMs} ms`),
          opts.timings.pingTimeoutMs,
        );
        this.#answerTimer.unref();
      },
      (err: Error) => this.#fail(generation, err.message),
    );
  }

  #onResponse(generation: number, headers: IncomingHttpHeaders): void {
    if (generation !== this.#generation) return;
    if (this.#answerTimer !== null) clearTimeout(this.#answerTimer);
    this.#answerTimer = null;
    const opts = this.#opts;
    const status = Number(headers[':status']);
    const remoteClusterId = parseId(headers[HEADER_CLUSTER_ID]);
    const fields = {
      'local-member-id': formatId(opts.localId),
      'remote-peer-id': formatId(opts.remoteId),
      'remote-peer-url': this.#currentUrl(),
      status,
    };
    const clusterMismatch = remoteClusterId !== null && remoteClusterId !== opts.clusterId;
    if (status === 200 && !clusterMismatch) {
      this.#activate(generation);
      return;
    }
    const retryMs = opts.timings.backoffMaxMs;
    if (clusterMismatch) {
      opts.logger.error(
        {
          ...fields,
          'local-member-cluster-id': formatId(opts.clusterId),
          'remote-peer-cluster-id': remoteClusterId === null ? '' : formatId(remoteClusterId),
        },
        'request sent was ignored by remote peer due to cluster ID mismatch',
      );
    } else if (status === 412) {
      opts.logger.error(fields, 'request sent was ignored by remote peer due to member ID mismatch');
    } else if (status === 410) {
      opts.logger.error(fields, 'peer refused the stream: this member was removed from the cluster');
      this.#fail(generation, 'removed from the cluster', retryMs);
      opts.onRemoved();
      return;
    } else if (status === 404) {
      opts.logger.warn(fields, 'peer does not know this member yet');
    } else {
      opts.logger.warn(fields, 'peer refused the message stream');
    }
    this.#fail(generation, `refused with HTTP ${status}`, retryMs);
  }

  #activate(generation: number): void {
    this.#state = PeerState.Active;
    this.#activeSince = new Date();
    this.#backoffMs = this.#opts.timings.backoffInitialMs;
    this.#opts.logger.info(
      {
        'local-member-id': formatId(this.#opts.localId),
        'remote-peer-id': formatId(this.#opts.remoteId),
        'remote-peer-url': this.#currentUrl(),
      },
      'peer became active',
    );
    this.#pingSentAt = 0;
    this.#ping(generation);
    this.#pingTimer = setInterval(() => this.#ping(generation), this.#opts.timings.pingIntervalMs);
    this.#pingTimer.unref();
    // What was queued while connecting.
    this.flush();
  }

  #ping(generation: number): void {
    const connection = this.#connection;
    if (generation !== this.#generation || connection === null) return;
    const now = performance.now();
    if (this.#pingSentAt !== 0) {
      if (now - this.#pingSentAt > this.#opts.timings.pingTimeoutMs) this.#fail(generation, 'ping timed out');
      return;
    }
    this.#pingSentAt = now;
    const sent = connection.ping((durationMs) => {
      if (generation !== this.#generation) return;
      this.#pingSentAt = 0;
      this.#rtt.observe(durationMs / 1000);
    });
    if (!sent) this.#pingSentAt = 0;
  }

  /**
   * Writes queued frames until the queue is empty or the stream pushes back (then the rest
   * follows on drain). Nothing while the stream is not active: activation writes the queue.
   */
  flush(): void {
    const connection = this.#connection;
    if (this.#state !== PeerState.Active || connection === null || this.#waitingDrain) return;
    while (this.#queue.length > 0) {
      if (!connection.write(this.#takeBatch())) {
        this.#waitingDrain = true;
        return;
      }
    }
  }

  #onDrain(): void {
    this.#waitingDrain = false;
    this.flush();
  }

  /** Takes queued messages, at most WRITE_BATCH_BYTES_MAX of frames (at least one), as one buffer. */
  #takeBatch(): Buffer {
    const batch = this.#batch;
    let total = 0;
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined) break;
      const size = FRAME_HEADER_BYTES + next.byteLength;
      if (batch.length > 0 && total + size > WRITE_BATCH_BYTES_MAX) break;
      batch.push(this.#queue.shift()!);
      total += size;
    }
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    for (const body of batch) {
      pos = writeFrameHeader(out, pos, body.byteLength);
      out.set(body, pos);
      pos += body.byteLength;
    }
    if (pos !== total) throw new Error(`write batch assembled ${pos} of ${total} bytes`);
    batch.length = 0;
    return out;
  }

  /**
   * Ends the current attempt: the connection is dropped, the queue emptied, and a retry
   * scheduled after the back-off (or `retryMs`).
   */
  #fail(generation: number, reason: string, retryMs?: number): void {
    if (generation !== this.#generation || this.#state === PeerState.Closed) return;
    const wasActive = this.#state === PeerState.Active;
    const lost = this.#teardown();
    this.#state = PeerState.Inactive;
    const fields = {
      'local-member-id': formatId(this.#opts.localId),
      'remote-peer-id': formatId(this.#opts.remoteId),
      'remote-peer-url': this.#currentUrl(),
      reason,
    };
    if (wasActive) this.#opts.logger.warn(fields, 'peer became inactive (message send to peer failed)');
    else this.#opts.logger.debug(fields, 'failed to reach peer');
    if (lost || wasActive) this.#opts.onLost();
    const delay = retryMs ?? this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#opts.timings.backoffMaxMs);
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    const retryGeneration = this.#generation;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (retryGeneration === this.#generation && this.#state === PeerState.Inactive) this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  /** Drops the connection, the queue and the timers. Returns whether queued messages were dropped. */
  #teardown(): boolean {
    this.#generation++;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    if (this.#answerTimer !== null) clearTimeout(this.#answerTimer);
    this.#answerTimer = null;
    this.#retryTimer = null;
    this.#pingTimer = null;
    this.#pingSentAt = 0;
    this.#connection?.destroy();
    this.#connection = null;
    this.#waitingDrain = false;
    this.#activeSince = null;
    const dropped = this.#queue.clear();
    this.#dropped += dropped;
    return dropped > 0;
  }
}
