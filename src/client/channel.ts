/**
 * A gRPC channel to one endpoint over node:http2: unary calls with deadlines, and the status
 * (code and message) of a failed call as a typed error. The client library builds on it.
 */
import http2 from 'node:http2';
import type { Method } from '../proto/index.ts';

/** gRPC status codes. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  readonly code: number;
  readonly details: string;

  constructor(code: number, details: string) {
    super(`${statusName(code)}: ${details}`);
    this.code = code;
    this.details = details;
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
}

/** Splits a gRPC message stream into messages (5-byte prefix: flag, u32 length). */
export class MessageFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer, onMessage: (msg: Buffer) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes >= 5) {
      const head = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      this.pending = [head];
      const len = head.readUInt32BE(1);
      if (head.length < 5 + len) return;
      onMessage(head.subarray(5, 5 + len));
      const rest = head.subarray(5 + len);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
    }
  }
}

export function frameMessage(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

export class Channel {
  readonly endpoint: string;
  private session: http2.ClientHttp2Session | undefined = undefined;
  /** Calls in flight keep the process alive; an idle channel does not. */
  private activeCalls = 0;

  /** `endpoint` as etcdctl takes it: `host:port` or `http://host:port`. */
  constructor(endpoint: string) {
    this.endpoint = endpoint.includes('://') ? endpoint : `http://${endpoint}`;
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect(this.endpoint);
    session.on('error', () => {});
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }

  unary<Req, Res>(method: Method<Req, Res>, request: Req, options: CallOptions = {}): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      let body: Buffer;
      try {
        body = frameMessage(method.encodeRequest(request));
        session = this.connect();
      } catch (err) {
        reject(new GrpcCallError(Status.UNAVAILABLE, String(err)));
        return;
      }
      const headers: http2.OutgoingHttpHeaders = {
        ':method': 'POST',
        ':path': method.path,
        'content-type': 'application/grpc',
        te: 'trailers',
        ...options.metadata,
      };
      if (options.timeoutMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(options.timeoutMs))}m`;
      const stream = session.request(headers);
      if (this.activeCalls++ === 0) session.ref();
      let response: Res | undefined;
      let decodeError: unknown;
      const framer = new MessageFramer();
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish(new GrpcCallError(Status.DEADLINE_EXCEEDED, 'context deadline exceeded'));
        }, options.timeoutMs + 50);
      }
      let done = false;
      const finish = (err: Error | undefined) => {
        if (done) return;
        done = true;
        if (--this.activeCalls === 0 && !session.destroyed) session.unref();
        if (timer !== undefined) clearTimeout(timer);
        if (err !== undefined) reject(err);
        else if (response === undefined) reject(new GrpcCallError(Status.INTERNAL, 'no response message'));
        else resolve(response);
      };
      let status: number | undefined;
      let message = '';
      const readStatus = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = Number(h['grpc-status']);
          message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      };
      stream.on('response', readStatus);
      stream.on('trailers', readStatus);
      stream.on('data', (chunk: Buffer) => {
        framer.push(chunk, (msg) => {
          try {
            response = method.decodeResponse(msg);
          } catch (err) {
            decodeError = err;
          }
        });
      });
      stream.on('error', (err) => finish(new GrpcCallError(Status.UNAVAILABLE, err.message)));
      stream.on('close', () => {
        if (status === undefined) finish(new GrpcCallError(Status.UNAVAILABLE, 'stream closed without status'));
        else if (status !== Status.OK) finish(new GrpcCallError(status, message));
        else if (decodeError !== undefined) finish(new GrpcCallError(Status.INTERNAL, String(decodeError)));
        else finish(undefined);
      });
      stream.end(body);
    });
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}
