// The peer transport of a member: raft messages to and from the other members of its cluster,
// over HTTP/2 on the peer URLs. README.md has the contract and the wire format.

import { rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http2';
import type { ServerStream } from '../api/h2/index.ts';
import { decodeMessage, encodeMessage, type Message, MessageType, messageTypeName } from '../raft/index.ts';
import { ErrInvalidOptions, ErrPeerExists, ErrPeerNotFound, ErrProtocol, ErrTransportClosed } from './errors.ts';
import { FRAME_BODY_BYTES_LIMIT, FrameDecoder } from './framing.ts';
import { SILENT_LOGGER, type TransportLogger } from './log.ts';
import { PeerSender, type PeerStatus, type PeerTimings } from './peer.ts';
import {
  CONTENT_TYPE_STREAM,
  checkPeerUrls,
  formatId,
  HEADER_CLUSTER_ID,
  HEADER_FROM,
  HEADER_TO,
  PATH_MESSAGE_STREAM,
  PATH_PREFIX,
  PATH_SNAPSHOT,
  type PeerTlsOptions,
  parseId,
  REJECT,
  RST_CANCEL,
  RST_PROTOCOL_ERROR,
  STATUS_SNAPSHOT_OK,
} from './protocol.ts';
import type { RoundTripStats } from './rtt.ts';
import {
  answerSnapshot,
  closeData,
  type ReceivedSnapshot,
  receiveSnapshotStream,
  SnapshotReceiveError,
  sendSnapshotStream,
} from './snapshot.ts';

/** etcd's per-peer stream buffer (rafthttp streamBufSize). */
export const DEFAULT_MAX_QUEUE_MESSAGES = 4096;
export const DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024;
/** The largest raft message accepted from a peer (a frame announcing more closes the stream). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024 * 1024;
/** Snapshots received at the same time; more are answered 503 (the leader retries). */
export const DEFAULT_MAX_INBOUND_SNAPSHOTS = 4;
export const DEFAULT_DIAL_TIMEOUT_MS = 1000;
export const DEFAULT_BACKOFF_INITIAL_MS = 100;
export const DEFAULT_BACKOFF_MAX_MS = 3200;
export const DEFAULT_PING_INTERVAL_MS = 1000;
/** etcd's ConnReadTimeout. */
export const DEFAULT_PING_TIMEOUT_MS = 5000;
export const DEFAULT_SNAPSHOT_IDLE_TIMEOUT_MS = 30_000;

export interface TransportOptions {
  /** This member. */
  readonly memberId: bigint;
  /** Streams carrying another cluster id are refused (412) both ways. */
  readonly clusterId: bigint;
  /** The other members and their peer URLs (`http://host:port`, `https://host:port`); not this member. */
  readonly peers: ReadonlyMap<bigint, readonly string[]>;
  /** For dialing `https://` peers. */
  readonly tls?: PeerTlsOptions;
  /** A raft message from a peer: step it into raft. Called synchronously, in the order the peer sent. */
  readonly onMessage: (message: Message) => void;
  /**
   * A MsgSnap with its backend data, stored complete in `snapshot.path` (the application now
   * owns the file). Step the message into raft and return; the sender is told of success once
   * this resolves, of failure if it throws (the file is then removed).
   */
  readonly onSnapshot: (message: Message, snapshot: ReceivedSnapshot) => void | Promise<void>;
  /** Messages to `peerId` were lost: call `RawNode.reportUnreachable(peerId)`. Never called from within `send`. */
  readonly onUnreachable: (peerId: bigint) => void;
  /** How sending a MsgSnap to `peerId` ended: call `RawNode.reportSnapshot(peerId, ok)`. Always called once per snapshot, asynchronously. */
  readonly onSnapshotStatus: (peerId: bigint, ok: boolean) => void;
  /** A peer answered 410 Gone: this member was removed from the cluster. */
  readonly onRemoved?: (byPeerId: bigint) => void;
  /** Where received snapshots are written (`<index>.snap.db`, etcd's name); it must exist. */
  readonly snapshotDir: string;
  readonly logger?: TransportLogger;
  /** Messages queued per peer; when full, messages are dropped and the peer reported unreachable. */
  readonly maxQueueMessages?: number;
  readonly maxQueueBytes?: number;
  readonly maxMessageBytes?: number;
  readonly maxSnapshotBytes?: number;
  readonly maxInboundSnapshots?: number;
  readonly dialTimeoutMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly pingIntervalMs?: number;
  readonly pingTimeoutMs?: number;
  readonly snapshotIdleTimeoutMs?: number;
}

/**
 * Takes an HTTP/2 stream of the peer listener if its path is the transport's (`/raft/...`):
 * returns true when it took it, false to let the listener route it elsewhere.
 */
export type PeerStreamHandler = (stream: ServerStream, headers: IncomingHttpHeaders) => boolean;

interface Peer {
  readonly sender: PeerSender;
}

interface OutboundSnapshot {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

function positiveInt(value: number | undefined, fallback: number, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ErrInvalidOptions(`${name} must be an integer in [1, ${max}], got ${String(value)}`);
  }
  return value;
}

function checkMemberId(id: unknown, name: string): bigint {
  if (typeof id !== 'bigint' || id <= 0n || id > 0xffff_ffff_ffff_ffffn) {
    throw new ErrInvalidOptions(`${name} must be a non-zero uint64 bigint`);
  }
  return id;
}

export class Transport {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly #tls: PeerTlsOptions | null;
  readonly #logger: TransportLogger;
  readonly #onMessage: TransportOptions['onMessage'];
  readonly #onSnapshot: TransportOptions['onSnapshot'];
  readonly #onUnreachable: TransportOptions['onUnreachable'];
  readonly #onSnapshotStatus: TransportOptions['onSnapshotStatus'];
  readonly #onRemoved: NonNullable<TransportOptions['onRemoved']>;
  readonly #snapshotDir: string;
  readonly #maxQueueMessages: number;
  readonly #maxQueueBytes: number;
  readonly #maxMessageBytes: number;
  readonly #maxSnapshotBytes: number;
  readonly #maxInboundSnapshots: number;
  readonly #snapshotIdleTimeoutMs: number;
  readonly #timings: PeerTimings;
  readonly #peers = new Map<bigint, Peer>();
  /** Members removed from the cluster: their streams are answered 410 Gone. */
  readonly #removed = new Set<bigint>();
  /** The accepted message stream from each peer (a newer one replaces it). */
  readonly #inbound = new Map<bigint, ServerStream>();
  readonly #inboundSnapshots = new Set<Promise<void>>();
  readonly #outboundSnapshots = new Map<bigint, OutboundSnapshot>();
  readonly #closeController = new AbortController();
  /** Peers to report unreachable at the next microtask (coalesced). */
  readonly #unreachable = new Set<bigint>();
  #unreachableScheduled = false;
  #closed = false;

  constructor(options: TransportOptions) {
    this.memberId = checkMemberId(options.memberId, 'memberId');
    this.clusterId = checkMemberId(options.clusterId, 'clusterId');
    for (const name of ['onMessage', 'onSnapshot', 'onUnreachable', 'onSnapshotStatus'] as const) {
      if (typeof options[name] !== 'function') throw new ErrInvalidOptions(`${name} must be a function`);
    }
    if (options.onRemoved !== undefined && typeof options.onRemoved !== 'function') {
      throw new ErrInvalidOptions('onRemoved must be a function');
    }
    if (typeof options.snapshotDir !== 'string' || options.snapshotDir === '') {
      throw new ErrInvalidOptions('snapshotDir must be a directory path');
    }
    if (!(options.peers instanceof Map)) throw new ErrInvalidOptions('peers must be a Map of member id to URLs');
    this.#tls = options.tls ?? null;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#onMessage = options.onMessage;
    this.#onSnapshot = options.onSnapshot;
    this.#onUnreachable = options.onUnreachable;
    this.#onSnapshotStatus = options.onSnapshotStatus;
    this.#onRemoved = options.onRemoved ?? (() => {});
    this.#snapshotDir = options.snapshotDir;
    this.#maxQueueMessages = positiveInt(options.maxQueueMessages, DEFAULT_MAX_QUEUE_MESSAGES, 'maxQueueMessages');
    this.#maxQueueBytes = positiveInt(options.maxQueueBytes, DEFAULT_MAX_QUEUE_BYTES, 'maxQueueBytes');
    this.#maxMessageBytes = positiveInt(
      options.maxMessageBytes,
      DEFAULT_MAX_MESSAGE_BYTES,
      'maxMessageBytes',
      FRAME_BODY_BYTES_LIMIT,
    );
    this.#maxSnapshotBytes = positiveInt(options.maxSnapshotBytes, DEFAULT_MAX_SNAPSHOT_BYTES, 'maxSnapshotBytes');
    this.#maxInboundSnapshots = positiveInt(
      options.maxInboundSnapshots,
      DEFAULT_MAX_INBOUND_SNAPSHOTS,
      'maxInboundSnapshots',
    );
    this.#snapshotIdleTimeoutMs = positiveInt(
      options.snapshotIdleTimeoutMs,
      DEFAULT_SNAPSHOT_IDLE_TIMEOUT_MS,
      'snapshotIdleTimeoutMs',
    );
    const backoffInitialMs = positiveInt(options.backoffInitialMs, DEFAULT_BACKOFF_INITIAL_MS, 'backoffInitialMs');
    this.#timings = {
      dialTimeoutMs: positiveInt(options.dialTimeoutMs, DEFAULT_DIAL_TIMEOUT_MS, 'dialTimeoutMs'),
      backoffInitialMs,
      backoffMaxMs: Math.max(
        backoffInitialMs,
        positiveInt(options.backoffMaxMs, DEFAULT_BACKOFF_MAX_MS, 'backoffMaxMs'),
      ),
      pingIntervalMs: positiveInt(options.pingIntervalMs, DEFAULT_PING_INTERVAL_MS, 'pingIntervalMs'),
      pingTimeoutMs: positiveInt(options.pingTimeoutMs, DEFAULT_PING_TIMEOUT_MS, 'pingTimeoutMs'),
    };
    // Every URL is checked before any connection starts: bad input changes nothing.
    const checked = new Map<bigint, string[]>();
    for (const [id, urls] of options.peers) {
      checkMemberId(id, 'peer id');
      if (id === this.memberId) throw new ErrInvalidOptions(`peers must not include this member (${formatId(id)})`);
      checked.set(id, checkPeerUrls(urls));
    }
    for (const [id, urls] of checked) this.#startPeer(id, urls);
  }

  /**
   * Queues messages for their peers and returns at once. A message to an unknown or removed
   * member is dropped; one that finds its peer's queue full, or the peer unreachable, is
   * dropped and `onUnreachable` told (asynchronously). A MsgSnap goes through `sendSnapshot`
   * with no backend data. Messages to one peer are delivered in the order given, across calls.
   * After close(), does nothing.
   */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const message of messages) {
      if (message.to === this.memberId) {
        throw new ErrInvalidOptions(`a ${messageTypeName(message.type)} to this member itself cannot be sent`);
      }
    }
    for (const message of messages) {
      if (message.type === MessageType.MsgSnap) {
        this.sendSnapshot(message, emptyData());
        continue;
      }
      const peer = this.#peers.get(message.to);
      if (peer === undefined) {
        this.#logger.debug(
          { 'remote-peer-id': formatId(message.to), type: messageTypeName(message.type) },
          'ignored message send request; unknown remote peer target',
        );
        continue;
      }
      const body = encodeMessage(message);
      if (body.byteLength > this.#maxMessageBytes) {
        this.#logger.error(
          { 'remote-peer-id': formatId(message.to), size: body.byteLength, limit: this.#maxMessageBytes },
          'dropped a raft message larger than the peer message limit',
        );
        this.#reportUnreachable(message.to);
        continue;
      }
      if (!peer.sender.enqueue(body)) this.#reportUnreachable(message.to);
    }
    // What was queued leaves now, before the caller goes on (a leader's appends are written to
    // the followers while its own WAL write is prepared), in one write per peer.
    for (const peer of this.#peers.values()) peer.sender.flush();
  }

  /**
   * Streams a MsgSnap and the backend data behind it (chunks of any size, pulled as the network
   * takes them) to `message.to` on a connection of its own. `onSnapshotStatus` tells how it
   * ended. One snapshot per peer at a time: another one to the same peer fails at once.
   */
  sendSnapshot(message: Message, data: AsyncIterable<Uint8Array>): void {
    if (message.type !== MessageType.MsgSnap || message.snapshot === undefined) {
      throw new ErrInvalidOptions(`sendSnapshot takes a MsgSnap with a snapshot, got ${messageTypeName(message.type)}`);
    }
    const to = message.to;
    const peer = this.#peers.get(to);
    if (this.#closed || peer === undefined || this.#outboundSnapshots.has(to)) {
      this.#logger.warn(
        {
          'remote-peer-id': formatId(to),
          reason: this.#closed ? 'closed' : peer === undefined ? 'unknown peer' : 'busy',
        },
        'cannot send a snapshot to the peer now',
      );
      void closeData(data);
      queueMicrotask(() => this.#reportSnapshot(to, false));
      return;
    }
    const controller = new AbortController();
    const index = message.snapshot.metadata.index;
    const fields = { 'remote-peer-id': formatId(to), 'snapshot-index': index };
    this.#logger.info(fields, 'sending database snapshot');
    const done = sendSnapshotStream({
      origin: peer.sender.url,
      tls: this.#tls,
      dialTimeoutMs: this.#timings.dialTimeoutMs,
      idleTimeoutMs: this.#snapshotIdleTimeoutMs,
      localId: this.memberId,
      clusterId: this.clusterId,
      message,
      data,
      signal: controller.signal,
    }).then(
      (result) => {
        this.#logger.info({ ...fields, size: result.sizeBytes }, 'sent database snapshot');
        return true;
      },
      (err: Error) => {
        this.#logger.warn({ ...fields, error: err.message }, 'failed to send database snapshot');
        return false;
      },
    );
    const entry: OutboundSnapshot = {
      controller,
      done: done.then((ok) => {
        this.#outboundSnapshots.delete(to);
        this.#reportSnapshot(to, ok);
      }),
    };
    this.#outboundSnapshots.set(to, entry);
  }

  /** Starts talking to a new member. Throws ErrPeerExists, ErrInvalidPeerUrl, ErrTransportClosed. */
  addPeer(id: bigint, urls: readonly string[]): void {
    this.#checkOpen();
    checkMemberId(id, 'peer id');
    if (id === this.memberId) throw new ErrInvalidOptions('a member is not its own peer');
    if (this.#peers.has(id)) throw new ErrPeerExists(id);
    const checked = checkPeerUrls(urls);
    this.#removed.delete(id);
    this.#startPeer(id, checked);
  }

  /**
   * Stops talking to a member removed from the cluster: its connections are closed and any
   * stream it opens later is answered 410 Gone. Throws ErrPeerNotFound.
   */
  removePeer(id: bigint): void {
    this.#checkOpen();
    const peer = this.#peers.get(id);
    if (peer === undefined) throw new ErrPeerNotFound(id);
    peer.sender.close();
    this.#peers.delete(id);
    this.#removed.add(id);
    this.#inbound.get(id)?.close(RST_CANCEL);
    this.#inbound.delete(id);
    this.#outboundSnapshots.get(id)?.controller.abort();
    this.#logger.info({ 'remote-peer-id': formatId(id) }, 'removed remote peer');
  }

  /** Replaces a member's peer URLs. Throws ErrPeerNotFound, ErrInvalidPeerUrl. */
  updatePeer(id: bigint, urls: readonly string[]): void {
    this.#checkOpen();
    const peer = this.#peers.get(id);
    if (peer === undefined) throw new ErrPeerNotFound(id);
    const checked = checkPeerUrls(urls);
    peer.sender.updateUrls(checked);
    this.#logger.info({ 'remote-peer-id': formatId(id), 'remote-peer-urls': checked }, 'updated remote peer');
  }

  /** The members this transport talks to. */
  peerIds(): bigint[] {
    return [...this.#peers.keys()];
  }

  /** Since when the stream to `id` has been working; null when it is not (or `id` is unknown). */
  activeSince(id: bigint): Date | null {
    return this.#peers.get(id)?.sender.activeSince ?? null;
  }

  /** Round-trip times to `id` (HTTP/2 PING), for `etcd_network_peer_round_trip_time_seconds`. */
  roundTripTime(id: bigint): RoundTripStats | null {
    return this.#peers.get(id)?.sender.roundTrip() ?? null;
  }

  /** The sending side of `id`: state, queue, drops, round-trip times. */
  peerStatus(id: bigint): PeerStatus | null {
    return this.#peers.get(id)?.sender.status() ?? null;
  }

  /** Mount on the peer listener's HTTP/2 `stream` event (README.md, "Mounting"). */
  readonly handler: PeerStreamHandler = (stream, headers) => {
    const path = String(headers[':path'] ?? '');
    if (path !== PATH_PREFIX && !path.startsWith(`${PATH_PREFIX}/`)) return false;
    stream.on('error', () => {});
    if (this.#closed) {
      reject(stream, REJECT.closing, this.clusterId);
      return true;
    }
    if (path === PATH_MESSAGE_STREAM) {
      const from = this.#admit(stream, headers);
      if (from !== null) this.#acceptMessageStream(stream, from);
    } else if (path === PATH_SNAPSHOT) {
      const from = this.#admit(stream, headers);
      if (from !== null) this.#acceptSnapshot(stream, from);
    } else {
      reject(stream, REJECT.notFound, this.clusterId);
    }
    return true;
  };

  /**
   * Stops everything: connections closed, queued messages and snapshots in flight dropped
   * (no callback is called any more), partial snapshot files removed. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeController.abort();
    for (const peer of this.#peers.values()) peer.sender.close();
    for (const stream of this.#inbound.values()) stream.close(RST_CANCEL);
    this.#inbound.clear();
    const outbound = [...this.#outboundSnapshots.values()];
    for (const s of outbound) s.controller.abort();
    await Promise.all([...outbound.map((s) => s.done), ...this.#inboundSnapshots]);
  }

  #checkOpen(): void {
    if (this.#closed) throw new ErrTransportClosed();
  }

  #startPeer(id: bigint, urls: readonly string[]): void {
    const sender = new PeerSender({
      localId: this.memberId,
      remoteId: id,
      clusterId: this.clusterId,
      urls,
      tls: this.#tls,
      logger: this.#logger,
      queueMessagesMax: this.#maxQueueMessages,
      queueBytesMax: this.#maxQueueBytes,
      timings: this.#timings,
      onLost: () => this.#reportUnreachable(id),
      onRemoved: () => {
        if (!this.#closed) this.#onRemoved(id);
      },
    });
    this.#peers.set(id, { sender });
  }

  #reportUnreachable(id: bigint): void {
    this.#unreachable.add(id);
    if (this.#unreachableScheduled) return;
    this.#unreachableScheduled = true;
    queueMicrotask(() => {
      this.#unreachableScheduled = false;
      const ids = [...this.#unreachable];
      this.#unreachable.clear();
      if (this.#closed) return;
      for (const peerId of ids) this.#call('onUnreachable', () => this.#onUnreachable(peerId));
    });
  }

  #reportSnapshot(id: bigint, ok: boolean): void {
    if (this.#closed) return;
    this.#call('onSnapshotStatus', () => this.#onSnapshotStatus(id, ok));
  }

  /** Runs an application callback; a throw is logged, never allowed to break the transport. */
  #call(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ callback: name, error: String(err) }, 'transport callback failed');
    }
  }

  /**
   * Checks the headers of an incoming stream as etcd's rafthttp handlers do. Returns the
   * sender, or null after answering the refusal.
   */
  #admit(stream: ServerStream, headers: IncomingHttpHeaders): bigint | null {
    if (headers[':method'] !== 'POST') {
      reject(stream, REJECT.methodNotAllowed, this.clusterId);
      return null;
    }
    const clusterId = parseId(headers[HEADER_CLUSTER_ID]);
    const fromHeader = headers[HEADER_FROM];
    if (clusterId !== this.clusterId) {
      this.#logger.warn(
        {
          'local-member-id': formatId(this.memberId),
          'local-member-cluster-id': formatId(this.clusterId),
          'remote-peer-id': String(fromHeader ?? ''),
          'remote-peer-cluster-id': String(headers[HEADER_CLUSTER_ID] ?? ''),
        },
        'request cluster ID mismatch',
      );
      reject(stream, REJECT.clusterIdMismatch, this.clusterId);
      return null;
    }
    const from = parseId(fromHeader);
    if (from === null) {
      reject(stream, REJECT.invalidFrom, this.clusterId);
      return null;
    }
    if (this.#removed.has(from)) {
      this.#logger.warn(
        { 'local-member-id': formatId(this.memberId), 'remote-peer-id': formatId(from) },
        'rejected stream from remote peer because it was removed',
      );
      reject(stream, REJECT.removedMember, this.clusterId);
      return null;
    }
    if (!this.#peers.has(from)) {
      this.#logger.warn(
        { 'local-member-id': formatId(this.memberId), 'remote-peer-id': formatId(from) },
        'failed to find remote peer in cluster',
      );
      reject(stream, REJECT.unknownSender, this.clusterId);
      return null;
    }
    if (parseId(headers[HEADER_TO]) !== this.memberId) {
      this.#logger.warn(
        {
          'local-member-id': formatId(this.memberId),
          'remote-peer-id': formatId(from),
          'raft-to': String(headers[HEADER_TO] ?? ''),
        },
        'ignored streaming request; ID mismatch',
      );
      reject(stream, REJECT.toMismatch, this.clusterId);
      return null;
    }
    return from;
  }

  #acceptMessageStream(stream: ServerStream, from: bigint): void {
    const previous = this.#inbound.get(from);
    if (previous !== undefined) {
      this.#logger.info({ 'remote-peer-id': formatId(from) }, 'closed an existing stream from remote peer');
      previous.close(RST_CANCEL);
    }
    this.#inbound.set(from, stream);
    stream.once('close', () => {
      if (this.#inbound.get(from) === stream) this.#inbound.delete(from);
    });
    stream.respond({
      ':status': 200,
      'content-type': CONTENT_TYPE_STREAM,
      [HEADER_CLUSTER_ID]: formatId(this.clusterId),
      [HEADER_FROM]: formatId(this.memberId),
    });
    const decoder = new FrameDecoder(this.#maxMessageBytes, (body) => this.#deliver(from, body));
    stream.on('data', (chunk: Buffer) => {
      if (this.#inbound.get(from) !== stream) return;
      try {
        decoder.push(chunk);
      } catch (err) {
        this.#logger.warn(
          { 'remote-peer-id': formatId(from), error: (err as Error).message },
          'closed the stream from remote peer: protocol error',
        );
        stream.close(RST_PROTOCOL_ERROR);
        if (this.#inbound.get(from) === stream) this.#inbound.delete(from);
      }
    });
  }

  /** One frame of a message stream: decode, check, hand to the application. Throws on a protocol error. */
  #deliver(from: bigint, body: Uint8Array): void {
    let message: Message;
    try {
      message = decodeMessage(body);
    } catch (err) {
      throw new ErrProtocol(`malformed raft message: ${(err as Error).message}`, { cause: err });
    }
    if (message.from !== from || message.to !== this.memberId) {
      throw new ErrProtocol(
        `message from ${formatId(message.from)} to ${formatId(message.to)} on the stream from ${formatId(from)}`,
      );
    }
    if (message.type === MessageType.MsgSnap) {
      throw new ErrProtocol('a MsgSnap on the message stream (snapshots have their own request)');
    }
    try {
      this.#onMessage(message);
    } catch (err) {
      // Raft refuses messages to discard (ErrStepPeerNotFound...): the stream goes on.
      this.#logger.debug(
        { 'remote-peer-id': formatId(from), type: messageTypeName(message.type), error: String(err) },
        'failed to process raft message',
      );
    }
  }

  #acceptSnapshot(stream: ServerStream, from: bigint): void {
    if (this.#inboundSnapshots.size >= this.#maxInboundSnapshots) {
      reject(stream, REJECT.tooManySnapshots, this.clusterId);
      return;
    }
    const fields = { 'local-member-id': formatId(this.memberId), 'remote-peer-id': formatId(from) };
    const task = (async (): Promise<void> => {
      try {
        const { message, snapshot } = await receiveSnapshotStream(stream, {
          localId: this.memberId,
          from,
          dir: this.#snapshotDir,
          frameBytesMax: this.#maxMessageBytes,
          sizeBytesMax: this.#maxSnapshotBytes,
          signal: this.#closeController.signal,
        });
        this.#logger.info(
          { ...fields, 'snapshot-index': message.snapshot?.metadata.index, size: snapshot.sizeBytes },
          'received and saved database snapshot',
        );
        try {
          if (this.#closed) throw new Error('transport closed');
          await this.#onSnapshot(message, snapshot);
        } catch (err) {
          await rm(snapshot.path, { force: true }).catch(() => {});
          throw new SnapshotReceiveError(500, `snapshot not taken: ${(err as Error).message}`, { cause: err });
        }
        answerSnapshot(stream, STATUS_SNAPSHOT_OK, '');
      } catch (err) {
        const status = err instanceof SnapshotReceiveError ? err.status : 500;
        const text = (err as Error).message;
        this.#logger.warn({ ...fields, status, error: text }, 'failed to receive database snapshot');
        answerSnapshot(stream, status, text);
        stream.resume();
      }
    })();
    this.#inboundSnapshots.add(task);
    void task.finally(() => this.#inboundSnapshots.delete(task));
  }
}

/** Answers a refused stream with etcd's status and text. */
function reject(stream: ServerStream, answer: { status: number; text: string }, clusterId: bigint): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({
    ':status': answer.status,
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    [HEADER_CLUSTER_ID]: formatId(clusterId),
  });
  stream.end(`${answer.text}\n`);
  // Whatever the peer still sends is read and discarded; it stops once it sees the answer.
  stream.resume();
}

async function* emptyData(): AsyncGenerator<Uint8Array> {}
