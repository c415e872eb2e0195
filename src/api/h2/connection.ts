import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  ErrorCode,
  Flag,
  FRAME_TOO_LARGE,
  FrameType,
  headersFragment,
  MAX_WINDOW_BYTES,
  readFrames,
  readSettings,
  Setting,
} from './frames.ts';
import { type HeaderField, HpackDecoder } from './hpack.ts';
import { FrameOutput } from './output.ts';
import { H2Stream } from './stream.ts';

/** The largest header list a request may carry (decoded, RFC 9113 accounting); also advertised. */
export const MAX_HEADER_LIST_BYTES = 1024 * 1024;
/** The largest header block (HEADERS and CONTINUATION payloads together) we collect. */
export const MAX_HEADER_BLOCK_BYTES = 1024 * 1024;
/** While the streams hold more than this for a slow client, its new streams are refused (REFUSED_STREAM). */
export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/**
 * A client that sends PINGs, SETTINGS or refused streams while this much output waits for it
 * to read is cut off (GOAWAY ENHANCE_YOUR_CALM): the answers would pile up without a bound.
 * Data alone stays below it (the client's windows bound it; grpc-go's grow to 16 MiB).
 */
export const DEFAULT_MAX_BACKLOG_BYTES = 64 * 1024 * 1024;
/** Pings sent and not yet answered, at most. */
const MAX_PINGS_IN_FLIGHT = 16;
/** The longest an acknowledgement waits for other output to go with (see #scheduleLater). */
const ACK_DELAY_MS = 1;

export interface H2ConnectionOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS: more open streams are refused (REFUSED_STREAM). */
  readonly maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: what a stream may send before we credit it. */
  readonly streamWindowBytes: number;
  /** What the whole connection may send before we credit it. */
  readonly connectionWindowBytes: number;
  /** Output waiting for the client beyond which control frames it asks for end the connection (default DEFAULT_MAX_BACKLOG_BYTES). */
  readonly maxBacklogBytes?: number;
  /** A new stream and its request headers. Exceptions reset the stream (INTERNAL_ERROR). */
  readonly onStream: (stream: H2Stream, headers: IncomingHttpHeaders) => void;
}

/**
 * The server side of one HTTP/2 connection (RFC 9113) on a socket that has not been read
 * from (or whose bytes were put back with `unshift`): frames in, streams out to `onStream`,
 * flow control both ways, SETTINGS, PING, GOAWAY. No server push, no priorities.
 *
 * Frames produced while handling events go to one `FrameOutput` and are written together
 * when the turn's I/O is done (`setImmediate`): the HEADERS, DATA and trailers of a response,
 * and the responses of many streams, leave in one write.
 */
export class H2Connection {
  readonly socket: Socket;
  /** Our send window on the connection (shared by all streams). */
  sendWindow = DEFAULT_WINDOW_BYTES;
  /** SETTINGS_MAX_FRAME_SIZE of the client: our DATA frames are at most this long. */
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  /** Bytes written to the streams that wait for flow-control window. */
  queuedBytes = 0;

  readonly #options: H2ConnectionOptions;
  readonly #maxBacklogBytes: number;
  readonly #streams = new Map<number, H2Stream>();
  readonly #decoder = new HpackDecoder(4096, MAX_HEADER_LIST_BYTES);
  readonly #out = new FrameOutput();
  /** A flush is queued as a microtask (output a client waits for). */
  #flushScheduled = false;
  /** A flush is queued for the next turn of the event loop (acknowledgements). */
  #flushLater = false;
  /** Bytes of an incomplete frame, kept until the rest arrives. */
  #partial: Buffer | null = null;
  #prefaceSeen = false;
  /** The highest stream id the client has opened. */
  #lastStreamId = 0;
  // A header block being collected from HEADERS and CONTINUATION frames.
  #blockStreamId = 0;
  #blockFlags = 0;
  #blockParts: Buffer[] | null = null;
  #blockBytes = 0;
  /** The client's SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window. */
  #peerStreamWindow = DEFAULT_WINDOW_BYTES;
  /** What the client may still send on the connection, and what it sent that we have not credited. */
  #recvWindow = DEFAULT_WINDOW_BYTES;
  #recvUnacked = 0;
  /** Streams with data waiting for window, in the order they blocked. */
  readonly #blocked = new Set<H2Stream>();
  /** Streams whose last write returned false. */
  readonly #needDrain = new Set<H2Stream>();
  #goawaySent = false;
  #closed = false;
  /** Pings in flight by the number in their payload; an ACK with another payload is ignored. */
  readonly #pings = new Map<number, (error: Error | null) => void>();
  #pingSeq = 0;
  readonly #closeListeners: (() => void)[] = [];

  constructor(socket: Socket, options: H2ConnectionOptions) {
    if (!(options.maxConcurrentStreams > 0)) throw new RangeError('maxConcurrentStreams must be positive');
    if (!(options.streamWindowBytes >= DEFAULT_WINDOW_BYTES && options.streamWindowBytes <= MAX_WINDOW_BYTES)) {
      throw new RangeError(`streamWindowBytes out of range: ${options.streamWindowBytes}`);
    }
    this.socket = socket;
    this.#options = options;
    this.#maxBacklogBytes = options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES;
    socket.setNoDelay(true);

    const out = this.#out;
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, Math.min(options.maxConcurrentStreams, 2 ** 32 - 1)],
      [Setting.INITIAL_WINDOW_SIZE, options.streamWindowBytes],
      [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES],
    ];
    out.header(settings.length * 6, FrameType.SETTINGS, 0, 0);
    for (const [id, value] of settings) {
      out.payload(Buffer.from([id >> 8, id & 0xff]));
      out.u32(value);
    }
    const extra = options.connectionWindowBytes - DEFAULT_WINDOW_BYTES;
    if (extra > 0) {
      this.writeWindowUpdate(0, extra);
      this.#recvWindow += extra;
    }
    this.#schedule();

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#checkDrain());
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose());
    socket.resume();
  }

  /** Open streams. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Bytes produced and not yet taken by the kernel: our output plus the socket's buffer. */
  get backlogBytes(): number {
    return this.#out.bytes + this.socket.writableLength;
  }

  get closed(): boolean {
    return this.#closed;
  }

  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#closeListeners.push(listener);
  }

  /** Sends a PING; `done` is called with null when it is answered, or an error when the connection ends. */
  ping(done: (error: Error | null) => void): boolean {
    if (this.#closed || this.#pings.size >= MAX_PINGS_IN_FLIGHT) return false;
    this.#pingSeq = (this.#pingSeq + 1) >>> 0;
    this.#pings.set(this.#pingSeq, done);
    this.#out.header(8, FrameType.PING, 0, 0);
    this.#out.u32(0);
    this.#out.u32(this.#pingSeq);
    this.#schedule();
    return true;
  }

  /**
   * Graceful close: GOAWAY (no new streams), the open streams run to their end, then the
   * socket is closed.
   */
  close(): void {
    if (this.#closed) return;
    if (!this.#goawaySent) this.#writeGoaway(ErrorCode.NO_ERROR);
    if (this.#streams.size === 0) this.#endSocket();
  }

  /** Drops the connection and every stream on it. */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- frames out (used by the streams) ----

  writeHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    this.#out.headerBlock(streamId, block, this.maxFrameBytes, endStream);
    this.#schedule();
  }

  /** One DATA frame; the caller has checked both windows and the frame size. */
  writeData(streamId: number, data: Buffer, endStream: boolean): void {
    this.#out.header(data.length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
    if (data.length > 0) this.#out.payload(data);
    this.#schedule();
  }

  writeReset(streamId: number, code: number): void {
    this.#out.header(4, FrameType.RST_STREAM, 0, streamId);
    this.#out.u32(code);
    this.#schedule();
  }

  writeWindowUpdate(streamId: number, increment: number): void {
    this.#out.header(4, FrameType.WINDOW_UPDATE, 0, streamId);
    this.#out.u32(increment);
    this.#scheduleLater();
  }

  /** The stream has data that waits for a window update. */
  waitForWindow(stream: H2Stream): void {
    this.#blocked.add(stream);
  }

  /** The stream's write returned false: it gets 'drain' when the backlog is below the mark again. */
  waitForDrain(stream: H2Stream): void {
    this.#needDrain.add(stream);
  }

  streamClosed(stream: H2Stream): void {
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    this.#needDrain.delete(stream);
    if (this.#goawaySent && this.#streams.size === 0) this.#endSocket();
  }

  // ---- output ----

  /**
   * Output a client waits for (headers, data, resets, GOAWAY) is written once the callback that
   * made it and its microtasks are done: the responses of one batch of applied requests (or of
   * one read of the socket) leave in one write, before the next turn of the event loop.
   */
  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#flushNow);
  }

  /**
   * Acknowledgements (PING, SETTINGS) and window updates go with the next output, or after
   * ACK_DELAY_MS: a PING that a client sends with its request is not answered ahead of the
   * work the request starts (grpc-go sends one with most requests to measure the bandwidth).
   */
  #scheduleLater(): void {
    if (this.#flushScheduled || this.#flushLater) return;
    this.#flushLater = true;
    setTimeout(flushConnection, ACK_DELAY_MS, this);
  }

  readonly #flushNow = (): void => this.flush();

  flush(): void {
    this.#flushScheduled = false;
    this.#flushLater = false;
    if (this.#out.writeTo(this.socket)) this.#checkDrain();
  }

  #checkDrain(): void {
    if (this.#needDrain.size === 0) return;
    for (const stream of this.#needDrain) {
      if (stream.checkDrain()) this.#needDrain.delete(stream);
    }
  }

  // ---- frames in ----

  #onData(chunk: Buffer): void {
    // After a connection error the socket may still deliver what was in flight: it is dropped.
    if (this.#closed) return;
    let buf = chunk;
    if (this.#partial !== null) {
      buf = Buffer.concat([this.#partial, chunk]);
      this.#partial = null;
    }
    let pos = 0;
    if (!this.#prefaceSeen) {
      if (buf.length < CLIENT_PREFACE.length) {
        this.#partial = buf;
        return;
      }
      if (buf.compare(CLIENT_PREFACE, 0, CLIENT_PREFACE.length, 0, CLIENT_PREFACE.length) !== 0) {
        this.#fail(ErrorCode.PROTOCOL_ERROR);
        return;
      }
      this.#prefaceSeen = true;
      pos = CLIENT_PREFACE.length;
    }
    pos = readFrames(buf, pos, DEFAULT_MAX_FRAME_BYTES, this.#onFrame);
    if (pos === FRAME_TOO_LARGE) this.#fail(ErrorCode.FRAME_SIZE_ERROR);
    if (pos < 0) return;
    if (pos < buf.length) this.#partial = buf.subarray(pos);
    if (this.#recvUnacked >= this.#options.connectionWindowBytes / 4) {
      this.#recvWindow += this.#recvUnacked;
      this.writeWindowUpdate(0, this.#recvUnacked);
      this.#recvUnacked = 0;
    }
  }

  /** Handles one frame; false once the connection has failed. */
  readonly #onFrame = (type: number, flags: number, streamId: number, payload: Buffer): boolean => {
    if (this.#blockParts !== null && (type !== FrameType.CONTINUATION || streamId !== this.#blockStreamId)) {
      return this.#fail(ErrorCode.PROTOCOL_ERROR);
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onDataFrame(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.#onHeaders(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, streamId, payload);
      case FrameType.PRIORITY:
        if (streamId === 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
        return true;
      case FrameType.RST_STREAM:
        if (streamId === 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
        if (payload.length !== 4) return this.#fail(ErrorCode.FRAME_SIZE_ERROR);
        if (streamId > this.#lastStreamId) return this.#fail(ErrorCode.PROTOCOL_ERROR);
        this.#streams.get(streamId)?.receiveReset(payload.readUInt32BE(0));
        return true;
      case FrameType.SETTINGS:
        return this.#onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        return this.#fail(ErrorCode.PROTOCOL_ERROR);
      case FrameType.PING:
        return this.#onPing(flags, streamId, payload);
      case FrameType.GOAWAY:
        if (streamId !== 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
        // The client will open no more streams; the ones open run to their end.
        return true;
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 4.1).
        return true;
    }
  };

  #onDataFrame(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId === 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
    const frameBytes = payload.length;
    this.#recvWindow -= frameBytes;
    if (this.#recvWindow < 0) return this.#fail(ErrorCode.FLOW_CONTROL_ERROR);
    this.#recvUnacked += frameBytes;
    let data = payload;
    if (flags & Flag.PADDED) {
      const pad = payload[0];
      if (pad === undefined || pad >= payload.length) return this.#fail(ErrorCode.PROTOCOL_ERROR);
      data = payload.subarray(1, payload.length - pad);
    }
    const stream = this.#streams.get(streamId);
    if (stream === undefined) {
      // DATA on a stream that was never opened is a connection error; on one that has
      // closed (we reset it, or answered it) it is dropped.
      if (streamId > this.#lastStreamId) return this.#fail(ErrorCode.PROTOCOL_ERROR);
      return true;
    }
    stream.receiveData(data, frameBytes, (flags & Flag.END_STREAM) !== 0);
    return true;
  }

  #onHeaders(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId === 0 || (streamId & 1) === 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
    const fragment = headersFragment(flags, payload);
    if (fragment === null) return this.#fail(ErrorCode.PROTOCOL_ERROR);
    if (flags & Flag.END_HEADERS) return this.#onHeaderBlock(flags, streamId, fragment);
    this.#blockStreamId = streamId;
    this.#blockFlags = flags;
    this.#blockParts = [fragment];
    this.#blockBytes = fragment.length;
    return true;
  }

  #onContinuation(flags: number, streamId: number, payload: Buffer): boolean {
    const parts = this.#blockParts;
    if (parts === null || streamId !== this.#blockStreamId) return this.#fail(ErrorCode.PROTOCOL_ERROR);
    this.#blockBytes += payload.length;
    if (this.#blockBytes > MAX_HEADER_BLOCK_BYTES) return this.#fail(ErrorCode.ENHANCE_YOUR_CALM);
    parts.push(payload);
    if ((flags & Flag.END_HEADERS) === 0) return true;
    this.#blockParts = null;
    return this.#onHeaderBlock(this.#blockFlags, streamId, Buffer.concat(parts, this.#blockBytes));
  }

  #onHeaderBlock(flags: number, streamId: number, block: Buffer): boolean {
    let fields: HeaderField[];
    try {
      fields = this.#decoder.decode(block);
    } catch {
      return this.#fail(ErrorCode.COMPRESSION_ERROR);
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const existing = this.#streams.get(streamId);
    if (existing !== undefined) {
      // Trailers: they must end the stream.
      if (!endStream) existing.close(ErrorCode.PROTOCOL_ERROR);
      else existing.receiveEnd();
      return true;
    }
    if (streamId <= this.#lastStreamId) {
      // A stream that is closed on our side (reset, or answered and done): its late frames are dropped.
      return true;
    }
    this.#lastStreamId = streamId;
    const full = this.#streams.size >= this.#options.maxConcurrentStreams || this.queuedBytes > MAX_QUEUED_BYTES;
    if (this.#goawaySent || full) {
      if (this.#answersPileUp()) return this.#fail(ErrorCode.ENHANCE_YOUR_CALM);
      this.writeReset(streamId, ErrorCode.REFUSED_STREAM);
      return true;
    }
    const headers = requestHeaders(fields);
    if (headers === null) {
      this.writeReset(streamId, ErrorCode.PROTOCOL_ERROR);
      return true;
    }
    const stream = new H2Stream(this, streamId, this.#peerStreamWindow, this.#options.streamWindowBytes);
    this.#streams.set(streamId, stream);
    try {
      this.#options.onStream(stream, headers);
    } catch {
      stream.close(ErrorCode.INTERNAL_ERROR);
      return true;
    }
    if (endStream) stream.receiveEnd();
    return true;
  }

  #onSettings(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId !== 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
    if (flags & Flag.ACK) {
      return payload.length === 0 ? true : this.#fail(ErrorCode.FRAME_SIZE_ERROR);
    }
    if (this.#answersPileUp()) return this.#fail(ErrorCode.ENHANCE_YOUR_CALM);
    let windowDelta = 0;
    // HEADER_TABLE_SIZE: our encoder uses no dynamic table. ENABLE_PUSH and the rest: nothing to do.
    const error = readSettings(payload, (id, value) => {
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        windowDelta += value - this.#peerStreamWindow;
        this.#peerStreamWindow = value;
      } else if (id === Setting.MAX_FRAME_SIZE) {
        this.maxFrameBytes = value;
      }
    });
    if (error !== 0) return this.#fail(error);
    this.#out.header(0, FrameType.SETTINGS, Flag.ACK, 0);
    this.#scheduleLater();
    if (windowDelta !== 0) {
      for (const stream of this.#streams.values()) stream.adjustSendWindow(windowDelta);
      if (windowDelta > 0) this.#unblock();
    }
    return true;
  }

  #onPing(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId !== 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
    if (payload.length !== 8) return this.#fail(ErrorCode.FRAME_SIZE_ERROR);
    if (flags & Flag.ACK) {
      const seq = payload.readUInt32BE(0) === 0 ? payload.readUInt32BE(4) : -1;
      const done = this.#pings.get(seq);
      if (done !== undefined) {
        this.#pings.delete(seq);
        done(null);
      }
      return true;
    }
    if (this.#answersPileUp()) return this.#fail(ErrorCode.ENHANCE_YOUR_CALM);
    this.#out.header(8, FrameType.PING, Flag.ACK, 0);
    this.#out.payload(payload);
    this.#scheduleLater();
    return true;
  }

  #onWindowUpdate(streamId: number, payload: Buffer): boolean {
    if (payload.length !== 4) return this.#fail(ErrorCode.FRAME_SIZE_ERROR);
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) return this.#fail(ErrorCode.PROTOCOL_ERROR);
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_BYTES) return this.#fail(ErrorCode.FLOW_CONTROL_ERROR);
      this.#unblock();
      return true;
    }
    const stream = this.#streams.get(streamId);
    if (stream === undefined) {
      return streamId > this.#lastStreamId ? this.#fail(ErrorCode.PROTOCOL_ERROR) : true;
    }
    if (increment === 0) {
      stream.close(ErrorCode.PROTOCOL_ERROR);
      return true;
    }
    // Out of the blocked set first: a stream still short of window puts itself back.
    this.#blocked.delete(stream);
    stream.receiveWindowUpdate(increment);
    this.#checkDrain();
    return true;
  }

  /** A frame that asks for an answer arrived while the client leaves too much of our output unread. */
  #answersPileUp(): boolean {
    return this.backlogBytes > this.#maxBacklogBytes;
  }

  /** More window: the blocked streams send again, in the order they blocked. */
  #unblock(): void {
    if (this.#blocked.size === 0) return;
    const blocked = [...this.#blocked];
    this.#blocked.clear();
    for (const stream of blocked) stream.pump();
    this.#checkDrain();
  }

  // ---- ending ----

  #writeGoaway(code: number): void {
    this.#goawaySent = true;
    this.#out.header(8, FrameType.GOAWAY, 0, 0);
    this.#out.u32(this.#lastStreamId);
    this.#out.u32(code);
    this.#schedule();
  }

  /** A connection error: GOAWAY with `code`, then the socket closes. Returns false (stop reading). */
  #fail(code: number): boolean {
    if (this.#closed) return false;
    this.#writeGoaway(code);
    this.flush();
    this.socket.end();
    this.socket.destroySoon();
    this.#onClose();
    return false;
  }

  #endSocket(): void {
    this.flush();
    this.socket.end();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#partial = null;
    for (const stream of [...this.#streams.values()]) stream.abort();
    this.#streams.clear();
    this.#blocked.clear();
    this.#needDrain.clear();
    const gone = new Error('h2: connection closed');
    const pings = [...this.#pings.values()];
    this.#pings.clear();
    for (const done of pings) done(gone);
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}

function flushConnection(connection: H2Connection): void {
  connection.flush();
}

/**
 * A request's header fields as node:http2 gives them: an object without prototype, names as
 * sent (lowercase), repeated fields joined with ", " (cookies with "; "). Null when the
 * request is malformed (RFC 9113 8.3): uppercase names, pseudo-headers after regular fields
 * or unknown ones, or no :method.
 */
export function requestHeaders(fields: readonly HeaderField[]): IncomingHttpHeaders | null {
  const headers: Record<string, string> = Object.create(null);
  let regularSeen = false;
  for (const [name, value] of fields) {
    if (name.charCodeAt(0) === 0x3a) {
      if (regularSeen || !PSEUDO_HEADERS.has(name) || headers[name] !== undefined) return null;
    } else {
      regularSeen = true;
      if (hasUppercase(name)) return null;
    }
    const before = headers[name];
    headers[name] = before === undefined ? value : `${before}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  if (headers[':method'] === undefined) return null;
  return headers as IncomingHttpHeaders;
}

const PSEUDO_HEADERS = new Set([':method', ':path', ':scheme', ':authority', ':protocol']);

function hasUppercase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}
