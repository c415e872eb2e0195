/**
 * A gRPC channel to one endpoint over node:http2: unary, server-streaming and bidirectional
 * calls with deadlines, TLS, HTTP/2 keepalive pings and a bounded dial time. A failed call
 * becomes a `GrpcCallError` with the status code and message, and with `sent`: whether the
 * request may have reached the server (false only when the connection was never established,
 * so a non-idempotent request can safely go to another endpoint).
 *
 * One HTTP/2 session per channel carries every call. The session keeps the process alive only
 * while calls are open: an idle channel never holds the event loop.
 */
import http2 from 'node:http2';
import type { SecureContextOptions } from 'node:tls';
import { GrpcStatus } from '../proto/grpc-status.ts';
import type { Method } from '../proto/index.ts';

/** gRPC status codes. */
export const Status = GrpcStatus;
export type Status = GrpcStatus;

export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  readonly code: number;
  readonly details: string;
  /** False when the request certainly did not reach the server (no connection was made). */
  readonly sent: boolean;

  constructor(code: number, details: string, sent = true) {
    super(`${statusName(code)}: ${details}`);
    this.code = code;
    this.details = details;
    this.sent = sent;
  }
}

export function statusName(code: number): string {
  for (const [name, value] of Object.entries(Status)) if (value === code) return name;
  return `STATUS_${code}`;
}

export interface CallOptions {
  /** Milliseconds until the call fails with DEADLINE_EXCEEDED. */
  timeoutMs?: number;
  metadata?: Record<string, string>;
  /** Aborting cancels the call (status CANCELLED). */
  signal?: AbortSignal;
}

/** TLS settings of a channel: PEM contents (not file names). */
export interface TlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the server certificate against (default: the endpoint's host). */
  serverName?: string;
  /** Skip verification of the server certificate (testing only). */
  insecureSkipVerify?: boolean;
}

export interface ChannelOptions {
  /** Use TLS; implied by an `https://` endpoint. */
  tls?: TlsOptions;
  /** How long establishing the connection may take before calls on it fail UNAVAILABLE. */
  dialTimeoutMs?: number;
  /** Interval of HTTP/2 pings while calls are open (0: no pings). */
  keepaliveTimeMs?: number;
  /** A ping unanswered this long closes the connection (its calls fail UNAVAILABLE). */
  keepaliveTimeoutMs?: number;
}

const DIAL_TIMEOUT_MS_DEFAULT = 2_000;
const KEEPALIVE_TIME_MS_DEFAULT = 2_000;
const KEEPALIVE_TIMEOUT_MS_DEFAULT = 6_000;
/** A deadline fires this much later locally than the server's, so the server's status wins. */
const DEADLINE_GRACE_MS = 50;
/** The gRPC frame header: 1 byte compressed flag, 4 bytes big-endian length. */
const FRAME_HEADER_BYTES = 5;
/** Largest message accepted from a server (etcd's client default is math.MaxInt32; be sane). */
const MESSAGE_BYTES_MAX = 512 * 1024 * 1024;

/** Splits a gRPC message stream into messages (5-byte prefix: flag, u32 length). */
export class MessageFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of the message being read, prefix included; -1 until its prefix is here. */
  private frameBytes = -1;

  /** Buffers `chunk`; joins chunks only once a whole message is here (linear in its size). */
  push(chunk: Buffer, onMessage: (msg: Buffer) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.frameBytes < 0) {
        if (this.pendingBytes < FRAME_HEADER_BYTES) return;
        if (this.pending[0]!.length < FRAME_HEADER_BYTES) this.pending = [Buffer.concat(this.pending)];
        const head = this.pending[0]!;
        if (head[0] !== 0) throw new GrpcCallError(Status.INTERNAL, 'compressed messages are not supported');
        const len = head.readUInt32BE(1);
        if (len > MESSAGE_BYTES_MAX) throw new GrpcCallError(Status.RESOURCE_EXHAUSTED, `message of ${len} bytes`);
        this.frameBytes = FRAME_HEADER_BYTES + len;
      }
      if (this.pendingBytes < this.frameBytes) return;
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
      const message = all.subarray(FRAME_HEADER_BYTES, this.frameBytes);
      const rest = all.subarray(this.frameBytes);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.frameBytes = -1;
      onMessage(message);
    }
  }
}

export function frameMessage(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, FRAME_HEADER_BYTES);
  return out;
}

/** Reverses grpc-message percent-encoding; a `%` without two hex digits stays as is. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function formatGrpcTimeout(timeoutMs: number): string {
  const ms = Math.max(1, Math.ceil(timeoutMs));
  if (ms < 100_000_000) return `${ms}m`;
  return `${Math.min(99_999_999, Math.ceil(ms / 1000))}S`;
}

/** One HTTP/2 connection and what the channel knows about it. */
interface Connection {
  readonly session: http2.ClientHttp2Session;
  /** The connection was established at some point (requests on it may have been delivered). */
  connected: boolean;
  openCalls: number;
  dialTimer: NodeJS.Timeout | undefined;
  pingTimer: NodeJS.Timeout | undefined;
  /** Why the connection failed, for calls that fail because of it. */
  failure: string | undefined;
}

/** Handlers of one streaming call. Every message is delivered before `onClose`. */
export interface StreamHandlers<Res> {
  onMessage(message: Res): void;
  /** Called once: undefined when the server ended the call with status OK. */
  onClose(error: GrpcCallError | undefined): void;
}

/** An open streaming call: write requests (bidirectional calls), half-close, cancel. */
export interface ClientStream<Req> {
  /** Sends one request; false once the call is closed. */
  write(message: Req): boolean;
  /** Half-closes: no more requests; the server may still answer. */
  end(): void;
  /** Cancels the call (the server sees RST_STREAM CANCEL); `onClose` gets CANCELLED. */
  cancel(): void;
  readonly closed: boolean;
}

export class Channel {
  readonly endpoint: string;
  private readonly options: ChannelOptions;
  private readonly secure: boolean;
  private connection: Connection | undefined = undefined;
  private closedForGood = false;

  /** `endpoint` as etcdctl takes it: `host:port`, `http://host:port` or `https://host:port`. */
  constructor(endpoint: string, options: ChannelOptions = {}) {
    this.options = options;
    const hasScheme = endpoint.includes('://');
    this.secure = hasScheme ? endpoint.startsWith('https://') : options.tls !== undefined;
    if (hasScheme && !/^https?:\/\//.test(endpoint)) throw new TypeError(`unsupported endpoint scheme: ${endpoint}`);
    this.endpoint = hasScheme ? endpoint : `${this.secure ? 'https' : 'http'}://${endpoint}`;
  }

  /** True while a connection is established. */
  get connected(): boolean {
    const c = this.connection;
    return c?.connected === true && !c.session.closed && !c.session.destroyed;
  }

  private connect(): Connection {
    const existing = this.connection;
    if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) return existing;
    if (this.closedForGood) throw new GrpcCallError(Status.CANCELLED, 'channel closed', false);
    const tls = this.options.tls;
    const connectOptions: http2.SecureClientSessionOptions = {};
    if (this.secure) {
      const secure: SecureContextOptions = {};
      if (tls?.ca !== undefined) secure.ca = tls.ca;
      if (tls?.cert !== undefined) secure.cert = tls.cert;
      if (tls?.key !== undefined) secure.key = tls.key;
      Object.assign(connectOptions, secure);
      if (tls?.serverName !== undefined) connectOptions.servername = tls.serverName;
      if (tls?.insecureSkipVerify === true) connectOptions.rejectUnauthorized = false;
    }
    const session = http2.connect(this.endpoint, connectOptions);
    const conn: Connection = {
      session,
      connected: false,
      openCalls: 0,
      dialTimer: undefined,
      pingTimer: undefined,
      failure: undefined,
    };
    const dialTimeoutMs = this.options.dialTimeoutMs ?? DIAL_TIMEOUT_MS_DEFAULT;
    conn.dialTimer = setTimeout(() => {
      conn.failure = `dial ${this.endpoint}: timed out after ${dialTimeoutMs} ms`;
      session.destroy();
    }, dialTimeoutMs);
    conn.dialTimer.unref();
    session.on('connect', () => {
      conn.connected = true;
      clearTimeout(conn.dialTimer);
      conn.dialTimer = undefined;
      this.startPings(conn);
    });
    session.on('error', (err: NodeJS.ErrnoException) => {
      conn.failure ??= err.code === undefined ? err.message : `${err.code}: ${err.message}`;
    });
    session.on('close', () => {
      clearTimeout(conn.dialTimer);
      clearInterval(conn.pingTimer);
      if (this.connection === conn) this.connection = undefined;
    });
    session.unref();
    this.connection = conn;
    return conn;
  }

  private startPings(conn: Connection): void {
    const everyMs = this.options.keepaliveTimeMs ?? KEEPALIVE_TIME_MS_DEFAULT;
    if (everyMs <= 0) return;
    const timeoutMs = this.options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS_DEFAULT;
    let waiting = false;
    conn.pingTimer = setInterval(() => {
      if (waiting || conn.openCalls === 0 || conn.session.destroyed) return;
      waiting = true;
      const timer = setTimeout(() => {
        conn.failure = `keepalive ping unanswered for ${timeoutMs} ms`;
        conn.session.destroy();
      }, timeoutMs);
      timer.unref();
      try {
        conn.session.ping((err) => {
          waiting = false;
          clearTimeout(timer);
          if (err !== null && !conn.session.destroyed) {
            conn.failure = `keepalive ping failed: ${err.message}`;
            conn.session.destroy();
          }
        });
      } catch {
        waiting = false;
        clearTimeout(timer);
      }
    }, everyMs);
    conn.pingTimer.unref();
  }

  /** A unary call. */
  unary<Req, Res>(method: Method<Req, Res>, request: Req, options: CallOptions = {}): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      let response: Res | undefined;
      const stream = this.stream(method, options, {
        onMessage: (message) => {
          response = message;
        },
        onClose: (error) => {
          if (error !== undefined) reject(error);
          else if (response === undefined) reject(new GrpcCallError(Status.INTERNAL, 'no response message'));
          else resolve(response);
        },
      });
      stream.write(request);
      stream.end();
    });
  }

  /**
   * A streaming call of any shape. For a server-streaming method write exactly one request
   * and end; for a bidirectional one write as many as needed.
   */
  stream<Req, Res>(method: Method<Req, Res>, options: CallOptions, handlers: StreamHandlers<Res>): ClientStream<Req> {
    let conn: Connection;
    try {
      conn = this.connect();
    } catch (err) {
      const error = err instanceof GrpcCallError ? err : new GrpcCallError(Status.UNAVAILABLE, String(err), false);
      queueMicrotask(() => handlers.onClose(error));
      return { write: () => false, end: () => {}, cancel: () => {}, closed: true };
    }
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': method.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...options.metadata,
    };
    if (options.timeoutMs !== undefined) headers['grpc-timeout'] = formatGrpcTimeout(options.timeoutMs);
    try {
      return new Call<Req, Res>(conn, method, headers, options, handlers);
    } catch (err) {
      // The session refused a new stream (closing, or told to go away): nothing was sent.
      if (this.connection === conn) this.connection = undefined;
      const error = new GrpcCallError(Status.UNAVAILABLE, `cannot open a stream: ${String(err)}`, false);
      queueMicrotask(() => handlers.onClose(error));
      return { write: () => false, end: () => {}, cancel: () => {}, closed: true };
    }
  }

  /** Closes the connection; open calls fail with UNAVAILABLE. The channel reconnects on the next call. */
  reset(): void {
    const conn = this.connection;
    this.connection = undefined;
    if (conn !== undefined) {
      conn.failure ??= 'connection reset by the client';
      conn.session.destroy();
    }
  }

  /** Closes the connection for good: open calls end, later calls fail at once. */
  close(): void {
    this.closedForGood = true;
    const conn = this.connection;
    this.connection = undefined;
    if (conn !== undefined) {
      conn.failure ??= 'channel closed';
      conn.session.close();
      // Streams that stay open (watches) would keep a closing session alive: end them.
      setImmediate(() => {
        if (!conn.session.destroyed) conn.session.destroy();
      }).unref();
    }
  }
}

/** An open call keeps the process alive; an idle connection does not. */
function openCall(conn: Connection): void {
  if (conn.openCalls++ === 0 && !conn.session.destroyed) conn.session.ref();
}

function closeCall(conn: Connection): void {
  if (--conn.openCalls === 0 && !conn.session.destroyed) conn.session.unref();
}

/** One call on one connection. */
class Call<Req, Res> implements ClientStream<Req> {
  private readonly conn: Connection;
  private readonly method: Method<Req, Res>;
  private readonly handlers: StreamHandlers<Res>;
  private readonly stream: http2.ClientHttp2Stream;
  private readonly framer = new MessageFramer();
  private timer: NodeJS.Timeout | undefined = undefined;
  private status: number | undefined = undefined;
  private message = '';
  private localError: GrpcCallError | undefined = undefined;
  private done = false;
  private readonly onAbort: () => void;
  private readonly signal: AbortSignal | undefined;

  constructor(
    conn: Connection,
    method: Method<Req, Res>,
    headers: http2.OutgoingHttpHeaders,
    options: CallOptions,
    handlers: StreamHandlers<Res>,
  ) {
    this.conn = conn;
    this.method = method;
    this.handlers = handlers;
    this.signal = options.signal;
    this.onAbort = () => this.fail(new GrpcCallError(Status.CANCELLED, 'context canceled'));
    this.stream = conn.session.request(headers);
    openCall(conn);
    const stream = this.stream;
    if (options.timeoutMs !== undefined) {
      this.timer = setTimeout(
        () => this.fail(new GrpcCallError(Status.DEADLINE_EXCEEDED, 'context deadline exceeded')),
        options.timeoutMs + DEADLINE_GRACE_MS,
      );
    }
    if (this.signal !== undefined) {
      if (this.signal.aborted) queueMicrotask(this.onAbort);
      else this.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    const readStatus = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) {
        this.status = Number(h['grpc-status']);
        this.message = decodeGrpcMessage(String(h['grpc-message'] ?? ''));
      }
    };
    stream.on('response', (h) => {
      const httpStatus = Number(h[':status']);
      if (httpStatus !== 200 && h['grpc-status'] === undefined) {
        this.localError = new GrpcCallError(httpStatusToGrpc(httpStatus), `unexpected HTTP status code ${httpStatus}`);
      }
      readStatus(h);
    });
    stream.on('trailers', readStatus);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err: NodeJS.ErrnoException) => {
      const reason = this.conn.failure ?? (err.code === undefined ? err.message : `${err.code}: ${err.message}`);
      this.localError ??= new GrpcCallError(Status.UNAVAILABLE, reason, this.conn.connected);
    });
    stream.on('close', () => this.onClose());
  }

  get closed(): boolean {
    return this.done;
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    try {
      this.framer.push(chunk, (bytes) => {
        if (this.done) return;
        let message: Res;
        try {
          message = this.method.decodeResponse(bytes);
        } catch (err) {
          throw new GrpcCallError(Status.INTERNAL, String(err));
        }
        this.handlers.onMessage(message);
      });
    } catch (err) {
      this.fail(err instanceof GrpcCallError ? err : new GrpcCallError(Status.INTERNAL, String(err)));
    }
  }

  private onClose(): void {
    if (this.localError !== undefined) this.finish(this.localError);
    else if (this.status === undefined) {
      const reason = this.conn.failure ?? 'stream closed without status';
      this.finish(new GrpcCallError(Status.UNAVAILABLE, reason, this.conn.connected));
    } else if (this.status !== Status.OK) this.finish(new GrpcCallError(this.status, this.message));
    else this.finish(undefined);
  }

  /** Ends the call locally with `error` (deadline, cancel, bad data). */
  private fail(error: GrpcCallError): void {
    if (this.done) return;
    this.localError ??= error;
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.finish(this.localError);
  }

  private finish(error: GrpcCallError | undefined): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
    closeCall(this.conn);
    this.handlers.onClose(error);
  }

  write(message: Req): boolean {
    if (this.done || this.stream.destroyed || this.stream.writableEnded) return false;
    let body: Buffer;
    try {
      body = frameMessage(this.method.encodeRequest(message));
    } catch (err) {
      this.fail(new GrpcCallError(Status.INTERNAL, `cannot encode request: ${String(err)}`, false));
      return false;
    }
    this.stream.write(body);
    return true;
  }

  end(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  cancel(): void {
    this.fail(new GrpcCallError(Status.CANCELLED, 'context canceled'));
  }
}

/** The gRPC code for a non-200 HTTP answer (the gRPC spec's table). */
function httpStatusToGrpc(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}
