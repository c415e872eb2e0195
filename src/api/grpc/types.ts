import type { IncomingHttpHeaders } from 'node:http2';
import type { EncodedResponse } from './framing.ts';

/**
 * What the server needs to know of a method: its HTTP/2 path, its streaming shape and the
 * codecs of the two messages. The entries of `src/proto/services.ts` satisfy it, and so does
 * a hand-made object.
 */
export interface MethodDescriptor<Req = unknown, Res = unknown> {
  /** `/<package>.<Service>/<Method>`, e.g. `/etcdserverpb.KV/Range`. */
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** May throw on bytes that are not a valid request; the call then answers INTERNAL. */
  decodeRequest(bytes: Uint8Array): Req;
  encodeResponse(message: Res): Uint8Array;
}

/** Any descriptor, whatever its message types (a registry's element type). */
export type AnyMethodDescriptor = MethodDescriptor<unknown, never>;

/** What every handler sees of its call besides the messages. */
export interface ServerCall {
  /** The method's path, e.g. `/etcdserverpb.KV/Range`. */
  readonly path: string;
  /** The request headers (gRPC metadata): `token`, `authorization`, `grpc-timeout`... */
  readonly metadata: IncomingHttpHeaders;
  /**
   * Aborted when the call ends before the handler does: the client cancelled (RST_STREAM or a
   * lost connection), the deadline passed, or the call failed. `signal.reason` is a GrpcError.
   */
  readonly signal: AbortSignal;
  /** The client went away (RST_STREAM or connection closed) before the call completed. */
  readonly cancelled: boolean;
  /** Absolute deadline in `Date.now()` milliseconds, `Infinity` when the client sent none. */
  readonly deadlineMs: number;
  /**
   * The request message of a unary call as it arrived (after gzip, if compressed), so that a
   * handler can pass it on without encoding the decoded request again. A view of the received
   * bytes: copy it to keep it. Undefined for streaming calls, for calls made in-process (the
   * gateway), and once the response is sent.
   */
  readonly requestBytes?: Uint8Array | undefined;
  /**
   * True when the response goes out as gRPC frames, so that a unary handler may answer with an
   * `EncodedResponse` (bytes it encoded itself); absent or false for calls made in-process (the
   * gateway), which need the message.
   */
  readonly acceptsEncoded?: boolean;
}

/** A call that streams responses: messages are written as they are produced. */
export interface ServerWritableCall<Res> extends ServerCall {
  /**
   * Sends one message. Returns false when the transport's buffer is full: wait for `drain()`
   * before writing more. A write after the call has ended is dropped and returns false.
   */
  write(message: Res): boolean;
  /** Resolves when writing may resume; rejects with the call's GrpcError once the call has ended. */
  drain(): Promise<void>;
  /**
   * True while what was written waits for the client to read it: the HTTP/2 stream is above its
   * own write mark (the method's send buffer may still take more). Absent on calls made in-process.
   */
  readonly backlogged?: boolean;
  /**
   * Resolves once the HTTP/2 stream is below its own write mark (at once if it is); rejects as
   * `drain` does. Absent on calls made in-process.
   */
  belowMark?(): Promise<void>;
  /**
   * Sends `count` messages the caller encoded and framed itself (whole gRPC frames, back to
   * back), as one write; returns as `write` does. Absent on calls made in-process (the gateway).
   */
  writeFrames?(frames: Uint8Array, count: number): boolean;
}

/** May answer with an EncodedResponse when `call.acceptsEncoded` is true. */
export type UnaryHandler<Req, Res> = (
  request: Req,
  call: ServerCall,
) => Res | EncodedResponse | Promise<Res | EncodedResponse>;
/** The call ends with OK when the returned promise resolves, with the error's status when it rejects. */
export type ServerStreamingHandler<Req, Res> = (request: Req, call: ServerWritableCall<Res>) => void | Promise<void>;
/** `requests` ends when the client half-closes and throws a GrpcError (CANCELLED...) if the call ends first. */
export type ClientStreamingHandler<Req, Res> = (requests: AsyncIterable<Req>, call: ServerCall) => Res | Promise<Res>;
export type BidiStreamingHandler<Req, Res> = (
  requests: AsyncIterable<Req>,
  call: ServerWritableCall<Res>,
) => void | Promise<void>;

export type AnyHandler<Req, Res> =
  | UnaryHandler<Req, Res>
  | ServerStreamingHandler<Req, Res>
  | ClientStreamingHandler<Req, Res>
  | BidiStreamingHandler<Req, Res>;

type RequestOf<D> = D extends MethodDescriptor<infer Req, unknown> ? Req : never;
type ResponseOf<D> = D extends { encodeResponse(message: infer Res): Uint8Array } ? Res : never;

/**
 * The handler type a descriptor calls for. Descriptors whose stream flags are literal types
 * (the service table's entries) get the exact shape; others accept any of the four.
 */
export type HandlerFor<D extends AnyMethodDescriptor> = D extends {
  readonly requestStream: true;
  readonly responseStream: true;
}
  ? BidiStreamingHandler<RequestOf<D>, ResponseOf<D>>
  : D extends { readonly requestStream: true; readonly responseStream: false }
    ? ClientStreamingHandler<RequestOf<D>, ResponseOf<D>>
    : D extends { readonly requestStream: false; readonly responseStream: true }
      ? ServerStreamingHandler<RequestOf<D>, ResponseOf<D>>
      : D extends { readonly requestStream: false; readonly responseStream: false }
        ? UnaryHandler<RequestOf<D>, ResponseOf<D>>
        : AnyHandler<RequestOf<D>, ResponseOf<D>>;
