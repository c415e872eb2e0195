import type { IncomingHttpHeaders } from 'node:http2';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
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
import { encodeHeaders, type HeaderField, HpackDecoder } from './hpack.ts';
import { FrameOutput } from './output.ts';

/** The one stream of an upload connection. */
const STREAM_ID = 1;
/** Response header blocks (with CONTINUATIONs) larger than this end the connection. */
const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;
/** DATA waiting for flow-control window beyond which write() asks the caller to wait for onDrain. */
export const UPLOAD_BACKLOG_MARK_BYTES = 1024 * 1024;

export interface H2UploadHandlers {
  /** The response headers (`:status` and the rest, names lowercase, repeated values joined by ", "). */
  onResponse(headers: IncomingHttpHeaders): void;
  /** A write() returned false and everything written has now left for the socket. */
  onDrain(): void;
  /** Once, when the connection or the stream ends for any reason but destroy(). */
  onClose(reason: string): void;
}

/**
 * The client side of an HTTP/2 connection (RFC 9113) that carries one request whose body is
 * written for as long as the connection lives: the peer transport's message stream. Frames
 * leave on the socket as write() is called (nothing waits for a later turn of the event loop),
 * which is why it exists beside node:http2, whose session writes one turn later.
 *
 * It sends the preface, SETTINGS (no push) and the request HEADERS at once, then DATA within the
 * server's flow-control windows (the rest waits for WINDOW_UPDATE), answers SETTINGS and PING,
 * reports the response headers, and ignores a response body but for crediting its window.
 * RST_STREAM, GOAWAY, END_STREAM from the server, a protocol error or a lost socket close it.
 */
export class H2UploadConnection {
  readonly #socket: Socket;
  readonly #handlers: H2UploadHandlers;
  readonly #out = new FrameOutput();
  readonly #decoder = new HpackDecoder(4096, MAX_RESPONSE_HEADER_BYTES);
  #connectionWindow = DEFAULT_WINDOW_BYTES;
  #streamWindow = DEFAULT_WINDOW_BYTES;
  /** SETTINGS_INITIAL_WINDOW_SIZE of the server (the stream window's starting point). */
  #serverInitialWindow = DEFAULT_WINDOW_BYTES;
  #maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  /** DATA written by the caller that waits for window, in order; the first may be partly sent. */
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  #needDrain = false;
  #responded = false;
  #closed = false;
  /** Received DATA not yet credited back with WINDOW_UPDATE. */
  #receivedUncredited = 0;
  #partial: Buffer | null = null;
  #blockParts: Buffer[] | null = null;
  #blockBytes = 0;
  #blockEndsStream = false;
  readonly #pings = new Map<number, { sentAt: number; done: (durationMs: number) => void }>();
  #pingSeq = 0;

  /** `socket` is connected (TLS: handshake done, ALPN `h2`) and not yet read from. */
  constructor(socket: Socket, requestHeaders: readonly HeaderField[], handlers: H2UploadHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.setNoDelay(true);
    const out = this.#out;
    out.payload(CLIENT_PREFACE);
    out.header(6, FrameType.SETTINGS, 0, 0);
    out.u16(Setting.ENABLE_PUSH);
    out.u32(0);
    out.headerBlock(STREAM_ID, encodeHeaders(requestHeaders), this.#maxFrameBytes, false);
    this.#flush();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#pump());
    socket.on('error', (err) => this.#close(`connection error: ${err.message}`));
    socket.on('end', () => this.#close('connection closed by the peer'));
    socket.on('close', () => this.#close('connection closed'));
  }

  /** DATA waiting for window or for the socket. */
  get backlogBytes(): number {
    return this.#pendingBytes + this.#socket.writableLength;
  }

  /**
   * Sends `data` as DATA frames on the stream (what the windows do not allow yet waits, in
   * order). The caller must not change `data` afterwards. False when the caller should wait for
   * `onDrain` before writing more; the data is taken either way.
   */
  write(data: Buffer): boolean {
    if (this.#closed || data.length === 0) return !this.#closed;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    this.#sendPending();
    this.#flush();
    if (this.#pendingBytes > 0 || this.#socket.writableNeedDrain) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** Sends a PING; `done` gets the round trip when its ACK arrives (never, if the connection ends first). */
  ping(done: (durationMs: number) => void): boolean {
    if (this.#closed) return false;
    const seq = ++this.#pingSeq >>> 0;
    this.#pings.set(seq, { sentAt: performance.now(), done });
    this.#out.header(8, FrameType.PING, 0, 0);
    this.#out.u32(0);
    this.#out.u32(seq);
    this.#flush();
    return true;
  }

  /** Drops the connection at once; no handler is called afterwards. */
  destroy(): void {
    this.#closed = true;
    this.#pings.clear();
    this.#socket.destroy();
  }

  // ---- output ----

  /** Frames as much pending DATA as both windows allow. */
  #sendPending(): void {
    const pending = this.#pending;
    while (pending.length > 0) {
      const room = Math.min(this.#connectionWindow, this.#streamWindow);
      if (room <= 0) return;
      const head = pending[0] as Buffer;
      const size = Math.min(head.length, room, this.#maxFrameBytes);
      this.#out.header(size, FrameType.DATA, 0, STREAM_ID);
      this.#out.payload(size === head.length ? head : head.subarray(0, size));
      this.#connectionWindow -= size;
      this.#streamWindow -= size;
      this.#pendingBytes -= size;
      if (size === head.length) pending.shift();
      else pending[0] = head.subarray(size);
    }
  }

  #flush(): void {
    this.#out.writeTo(this.#socket);
  }

  /** More window or a drained socket: send what waits, and tell a waiting writer. */
  #pump(): void {
    if (this.#closed) return;
    this.#sendPending();
    this.#flush();
    if (this.#needDrain && this.#pendingBytes === 0 && !this.#socket.writableNeedDrain) {
      this.#needDrain = false;
      this.#handlers.onDrain();
    }
  }

  // ---- input ----

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let buf = chunk;
    if (this.#partial !== null) {
      buf = Buffer.concat([this.#partial, chunk]);
      this.#partial = null;
    }
    const pos = readFrames(buf, 0, DEFAULT_MAX_FRAME_BYTES, this.#onFrame);
    if (pos === FRAME_TOO_LARGE)
      this.#fail(ErrorCode.FRAME_SIZE_ERROR, `a frame over ${DEFAULT_MAX_FRAME_BYTES} bytes`);
    if (pos < 0) return;
    if (pos < buf.length) this.#partial = Buffer.from(buf.subarray(pos));
    this.#pump();
  }

  /** Handles one frame; false once the connection is closed. */
  readonly #onFrame = (type: number, flags: number, streamId: number, payload: Buffer): boolean => {
    if (this.#blockParts !== null && (type !== FrameType.CONTINUATION || streamId !== STREAM_ID)) {
      return this.#fail(ErrorCode.PROTOCOL_ERROR, 'a frame inside a header block');
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onDataFrame(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.#onHeaders(flags, streamId, payload);
      case FrameType.CONTINUATION:
        if (this.#blockParts === null) return this.#fail(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
        return this.#onBlockPart(flags, payload);
      case FrameType.RST_STREAM:
        if (payload.length !== 4) return this.#fail(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM of a wrong size');
        if (streamId !== STREAM_ID) return this.#fail(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on stream ${streamId}`);
        return this.#close(`stream reset by the peer (code ${payload.readUInt32BE(0)})`);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, streamId, payload);
      case FrameType.PING:
        return this.#onPing(flags, streamId, payload);
      case FrameType.GOAWAY:
        return this.#close('the peer is going away');
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(streamId, payload);
      case FrameType.PUSH_PROMISE:
        return this.#fail(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE after push was disabled');
      default:
        // PRIORITY and unknown frame types are ignored (RFC 9113 4.1, 5.3.2).
        return true;
    }
  };

  #onDataFrame(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId !== STREAM_ID) return this.#fail(ErrorCode.PROTOCOL_ERROR, `DATA on stream ${streamId}`);
    if (!this.#responded) return this.#fail(ErrorCode.PROTOCOL_ERROR, 'DATA before the response headers');
    // The body is not read (an accepted stream has none; a refusal's text is not needed), but
    // its bytes are credited back so that the server is never held up.
    this.#receivedUncredited += payload.length;
    if (this.#receivedUncredited >= DEFAULT_WINDOW_BYTES / 2) {
      for (const id of [0, STREAM_ID]) {
        this.#out.header(4, FrameType.WINDOW_UPDATE, 0, id);
        this.#out.u32(this.#receivedUncredited);
      }
      this.#receivedUncredited = 0;
    }
    if (flags & Flag.END_STREAM) return this.#close('stream closed by the peer');
    return true;
  }

  #onHeaders(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId !== STREAM_ID) return this.#fail(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${streamId}`);
    const fragment = headersFragment(flags, payload);
    if (fragment === null) return this.#fail(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
    this.#blockParts = [];
    this.#blockBytes = 0;
    this.#blockEndsStream = (flags & Flag.END_STREAM) !== 0;
    return this.#onBlockPart(flags, fragment);
  }

  #onBlockPart(flags: number, fragment: Buffer): boolean {
    const parts = this.#blockParts as Buffer[];
    parts.push(fragment);
    this.#blockBytes += fragment.length;
    if (this.#blockBytes > MAX_RESPONSE_HEADER_BYTES)
      return this.#fail(ErrorCode.ENHANCE_YOUR_CALM, 'response headers too large');
    if ((flags & Flag.END_HEADERS) === 0) return true;
    this.#blockParts = null;
    let fields: HeaderField[];
    try {
      fields = this.#decoder.decode(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
    } catch (err) {
      return this.#fail(ErrorCode.COMPRESSION_ERROR, `response headers: ${(err as Error).message}`);
    }
    if (!this.#responded) {
      const headers: IncomingHttpHeaders = {};
      for (const [name, value] of fields) {
        const seen = headers[name];
        headers[name] = seen === undefined ? value : `${seen}, ${value}`;
      }
      // 1xx answers are informational: the real response follows.
      const status = Number(headers[':status']);
      if (!(status >= 100 && status < 200)) {
        this.#responded = true;
        this.#handlers.onResponse(headers);
        if (this.#closed) return false;
      }
    }
    if (this.#blockEndsStream) return this.#close('stream closed by the peer');
    return true;
  }

  #onSettings(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId !== 0) return this.#fail(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      return payload.length === 0 ? true : this.#fail(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
    }
    const error = readSettings(payload, (id, value) => {
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        // A change applies to the open stream's window at once, and may make it negative.
        this.#streamWindow += value - this.#serverInitialWindow;
        this.#serverInitialWindow = value;
      } else if (id === Setting.MAX_FRAME_SIZE) {
        this.#maxFrameBytes = value;
      }
    });
    if (error !== 0) return this.#fail(error, 'SETTINGS out of range');
    this.#out.header(0, FrameType.SETTINGS, Flag.ACK, 0);
    return true;
  }

  #onPing(flags: number, streamId: number, payload: Buffer): boolean {
    if (streamId !== 0) return this.#fail(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) return this.#fail(ErrorCode.FRAME_SIZE_ERROR, 'PING of a wrong size');
    if (flags & Flag.ACK) {
      const seq = payload.readUInt32BE(0) === 0 ? payload.readUInt32BE(4) : -1;
      const ping = this.#pings.get(seq);
      if (ping !== undefined) {
        this.#pings.delete(seq);
        ping.done(performance.now() - ping.sentAt);
      }
      return !this.#closed;
    }
    this.#out.header(8, FrameType.PING, Flag.ACK, 0);
    this.#out.payload(Buffer.from(payload));
    return true;
  }

  #onWindowUpdate(streamId: number, payload: Buffer): boolean {
    if (payload.length !== 4) return this.#fail(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of a wrong size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (increment === 0) return this.#fail(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    if (streamId === 0) {
      this.#connectionWindow += increment;
      if (this.#connectionWindow > MAX_WINDOW_BYTES)
        return this.#fail(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
    } else if (streamId === STREAM_ID) {
      this.#streamWindow += increment;
      if (this.#streamWindow > MAX_WINDOW_BYTES)
        return this.#fail(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
    }
    return true;
  }

  // ---- ending ----

  /** A connection error on our side: GOAWAY with `code`, then the socket closes. Returns false. */
  #fail(code: number, reason: string): boolean {
    if (this.#closed) return false;
    this.#out.header(8, FrameType.GOAWAY, 0, 0);
    this.#out.u32(0);
    this.#out.u32(code);
    this.#flush();
    this.#socket.end();
    this.#socket.destroySoon();
    return this.#close(`protocol error: ${reason}`);
  }

  /** Ends the connection (once) and tells the owner why. Returns false (stop reading). */
  #close(reason: string): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#partial = null;
    this.#pending.length = 0;
    this.#pendingBytes = 0;
    this.#pings.clear();
    if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.destroy();
    this.#handlers.onClose(reason);
    return false;
  }
}

/**
 * Opens a socket for HTTP/2 to `origin` (`http://host:port` with prior knowledge, or `https://`
 * with ALPN `h2` and the given TLS options). Resolves once connected (and the handshake done);
 * rejects on error, on a TLS peer that does not choose h2, or after `timeoutMs`.
 */
export function connectH2Socket(origin: string, tls: ConnectionOptions | null, timeoutMs: number): Promise<Socket> {
  const url = new URL(origin);
  const secure = url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || (secure ? 443 : 80));
  return new Promise((resolve, reject) => {
    const socket: Socket = secure
      ? tlsConnect({
          ...(tls ?? {}),
          host,
          port,
          ALPNProtocols: ['h2'],
          ...(tls?.servername === undefined && isIP(host) === 0 ? { servername: host } : {}),
        })
      : netConnect({ host, port });
    const settle = (err: Error | null): void => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.removeListener(secure ? 'secureConnect' : 'connect', onConnect);
      if (err === null) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(err);
      }
    };
    const onConnect = (): void => {
      const alpn = secure ? (socket as TLSSocket).alpnProtocol : 'h2';
      settle(alpn === 'h2' ? null : new Error(`dial ${origin}: the peer does not speak HTTP/2 (ALPN ${String(alpn)})`));
    };
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(new Error(`dial ${origin}: connection closed`));
    const timer = setTimeout(() => settle(new Error(`dial ${origin}: timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.once(secure ? 'secureConnect' : 'connect', onConnect);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
