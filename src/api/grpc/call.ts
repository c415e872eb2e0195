import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { gunzipSync } from 'node:zlib';
import { GrpcError, GrpcStatus, toGrpcError } from '../errors.ts';
import type { ServerStream } from '../h2/server-stream.ts';
import type { DeadlineClock, Expirable } from './deadline.ts';
import {
  EncodedResponse,
  encodeFrame,
  encodeFrameHeader,
  FrameDecoder,
  FrameErrorReason,
  type FrameSink,
} from './framing.ts';
import { encodeGrpcMessage } from './metadata.ts';
import type {
  AnyMethodDescriptor,
  BidiStreamingHandler,
  ClientStreamingHandler,
  ServerCall,
  ServerStreamingHandler,
  ServerWritableCall,
  UnaryHandler,
} from './types.ts';

/**
 * One gRPC call on one HTTP/2 stream: decodes the request messages, runs the handler, writes
 * the responses and the status. The stream's listeners are shared functions that find their
 * call through a symbol on the stream, so a call allocates no closures of its own.
 */

/** Streaming requests received but not yet taken by the handler before the stream is paused. */
export const INBOUND_QUEUE_MAX = 64;
/** Responses up to this size are copied behind their header into one buffer; larger ones go out as two writes. */
export const COALESCE_RESPONSE_MAX_BYTES = 16 * 1024;

export const MethodKind = {
  Unary: 0,
  ServerStreaming: 1,
  ClientStreaming: 2,
  BidiStreaming: 3,
} as const;
export type MethodKind = (typeof MethodKind)[keyof typeof MethodKind];

export function methodKind(desc: AnyMethodDescriptor): MethodKind {
  return ((desc.requestStream ? 2 : 0) + (desc.responseStream ? 1 : 0)) as MethodKind;
}

export interface RegisteredMethod {
  readonly desc: AnyMethodDescriptor;
  readonly kind: MethodKind;
  /** Null for a method that is known but not served: it answers UNIMPLEMENTED. */
  readonly handler: ((...args: never[]) => unknown) | null;
  /** The request decoder: the descriptor's, or a faster one that gives the same values. */
  readonly decode: (bytes: Uint8Array) => unknown;
  /**
   * Encodes a response straight into a whole frame (header included, no copy); null: the
   * descriptor's `encodeResponse`, framed after.
   */
  readonly encodeFrame: ((message: unknown) => Buffer) | null;
  /** Bytes a streaming call may buffer before `write` returns false; 0: the stream's own limit. */
  readonly sendBufferBytes: number;
  /** The stream's own write mark for this method's calls; null: the stream's default. */
  readonly streamWriteMarkBytes: number | null;
}

/** What every call of one server shares. */
export interface CallEnvironment {
  readonly maxReceiveMessageBytes: number;
  readonly clock: DeadlineClock;
  /** Told of errors that are not a GrpcError (the handler failed unexpectedly). */
  readonly onHandlerError: ((error: unknown, path: string) => void) | null;
}

const kCall = Symbol('etcd-ts.grpc.call');
type CallStream = ServerStream & { [kCall]?: Call };

const RESPONSE_HEADERS: OutgoingHttpHeaders = Object.freeze({ ':status': 200, 'content-type': 'application/grpc' });
const OK_TRAILERS: OutgoingHttpHeaders = Object.freeze({ 'grpc-status': '0' });
const OK_TRAILERS_ONLY: OutgoingHttpHeaders = Object.freeze({
  ':status': 200,
  'content-type': 'application/grpc',
  'grpc-status': '0',
});
// No `date` header: gRPC servers send none (grpc-go neither), and Node would add one to every
// response (one more header to copy, validate and HPACK-encode per call).
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true, sendDate: false });
const END_STREAM = Object.freeze({ endStream: true, sendDate: false });
const ITERATION_DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/** Resolves when `call` ends (its signal aborts): for a stream that stays open until the client goes. */
export function untilCallEnds(call: ServerCall): Promise<void> {
  const signal = call.signal;
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** A response that carries only a status (no message): headers and trailers in one HEADERS frame. */
export function respondWithStatus(stream: ServerStream, code: GrpcStatus, message: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
    },
    END_STREAM,
  );
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: GrpcError): void;
}

export class Call implements ServerWritableCall<unknown>, AsyncIterator<unknown>, FrameSink, Expirable {
  readonly path: string;
  readonly metadata: IncomingHttpHeaders;
  readonly deadlineMs: number;
  /** The request message of a unary call as received (a view of it), once it has arrived. */
  requestBytes: Uint8Array | undefined = undefined;
  readonly acceptsEncoded = true;
  expiresAtMs: number;
  deadlineTimer: NodeJS.Timeout | null = null;

  readonly #stream: CallStream;
  readonly #method: RegisteredMethod;
  readonly #env: CallEnvironment;
  readonly #decoder: FrameDecoder;
  /** The request's `grpc-encoding` is gzip (compressed messages are inflated). */
  readonly #gzip: boolean;
  #controller: AbortController | null = null;
  /** Why the call ended before its handler: the abort reason and what pending reads reject with. */
  #endError: GrpcError | null = null;
  #cancelled = false;
  /** The status has been sent or the stream is gone: nothing more goes out. */
  #done = false;
  #headersSent = false;
  #trailers: OutgoingHttpHeaders = OK_TRAILERS;
  /** Unary request methods: the handler has been given its request. */
  #started = false;
  /** The status is out but the client has not closed its side: the clock now counts HALF_OPEN_LINGER_MS. */
  #lingering = false;
  // Streaming requests: a queue with a moving head, bounded by INBOUND_QUEUE_MAX (then paused).
  #queue: unknown[] | null = null;
  #queueHead = 0;
  #inboundEnded = false;
  #inboundAbandoned = false;
  #paused = false;
  #reader: Waiter<IteratorResult<unknown>> | null = null;
  #drainWaiters: Waiter<void>[] | null = null;

  constructor(
    stream: ServerStream,
    headers: IncomingHttpHeaders,
    path: string,
    method: RegisteredMethod,
    env: CallEnvironment,
    timeoutMs: number,
    gzip: boolean,
  ) {
    this.path = path;
    this.metadata = headers;
    this.deadlineMs = timeoutMs < 0 ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    this.expiresAtMs = this.deadlineMs;
    this.#stream = stream as CallStream;
    this.#method = method;
    this.#env = env;
    this.#gzip = gzip;
    this.#decoder = new FrameDecoder(env.maxReceiveMessageBytes, this);

    const s = this.#stream;
    s[kCall] = this;
    if (method.streamWriteMarkBytes !== null && s.writeMarkBytes !== undefined) {
      s.writeMarkBytes = method.streamWriteMarkBytes;
    }
    s.on('data', onStreamData);
    s.on('end', onStreamEnd);
    s.on('close', onStreamClose);
    s.on('error', onStreamError);
    s.on('wantTrailers', onWantTrailers);
    if (timeoutMs >= 0) env.clock.schedule(this, timeoutMs);
    if (method.kind >= MethodKind.ClientStreaming) this.#invokeStreaming();
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#endError !== null) this.#controller.abort(this.#endError);
    }
    return this.#controller.signal;
  }

  // ---- responses ----

  writeFrames(frames: Uint8Array, _count: number): boolean {
    const stream = this.#stream;
    if (this.#done || stream.destroyed) return false;
    this.#sendHeadersOnce();
    return this.#hasRoom(stream.write(frames));
  }

  write(message: unknown): boolean {
    const stream = this.#stream;
    // A reset stream is destroyed before its 'close' event marks the call done.
    if (this.#done || stream.destroyed) return false;
    const encoded = this.#encode(message);
    if (encoded === null) return false;
    this.#sendHeadersOnce();
    if (this.#method.encodeFrame !== null) return this.#hasRoom(stream.write(encoded));
    if (encoded.length <= COALESCE_RESPONSE_MAX_BYTES) return this.#hasRoom(stream.write(encodeFrame(encoded)));
    stream.write(encodeFrameHeader(encoded.length));
    return this.#hasRoom(stream.write(encoded));
  }

  #sendHeadersOnce(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
  }

  /** Whether more may be written: below the stream's mark, or within the method's send buffer. */
  #hasRoom(belowMark: boolean): boolean {
    return belowMark || this.#stream.writableLength <= this.#method.sendBufferBytes;
  }

  drain(): Promise<void> {
    return this.#waitForDrain(this.#hasRoom(!this.#stream.writableNeedDrain));
  }

  get backlogged(): boolean {
    return this.#stream.writableNeedDrain;
  }

  belowMark(): Promise<void> {
    return this.#waitForDrain(!this.#stream.writableNeedDrain);
  }

  /** Resolves at once when `ready`, else at the stream's next 'drain'; rejects once the call has ended. */
  #waitForDrain(ready: boolean): Promise<void> {
    if (this.#endError !== null) return Promise.reject(this.#endError);
    if (this.#done) return Promise.reject(new GrpcError(GrpcStatus.CANCELLED, 'grpc: the call has completed'));
    if (ready) return Promise.resolve();
    if (this.#drainWaiters === null) {
      this.#drainWaiters = [];
      this.#stream.on('drain', onStreamDrain);
    }
    const waiters = this.#drainWaiters;
    return new Promise<void>((resolve, reject) => {
      waiters.push({ resolve, reject });
    });
  }

  /** The whole frame when the method encodes into one, else the message alone; null on failure. */
  #encode(message: unknown): Uint8Array | null {
    try {
      const encodeFrame = this.#method.encodeFrame;
      if (encodeFrame !== null) return encodeFrame(message);
      return (this.#method.desc.encodeResponse as (m: unknown) => Uint8Array)(message);
    } catch (err) {
      this.#fail(new GrpcError(GrpcStatus.INTERNAL, `grpc: error while marshaling: ${errorMessage(err)}`));
      return null;
    }
  }

  /** The single response of a unary or client-streaming call, then status OK. */
  #respond(message: unknown): void {
    if (this.#done) return;
    // A response the handler encoded is already a frame, possibly in several chunks.
    const encoded = message instanceof EncodedResponse ? message.toFrame() : this.#encode(message);
    if (encoded === null) return;
    this.#done = true;
    this.#env.clock.cancel(this);
    this.#decoder.stop();
    this.requestBytes = undefined;
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    this.#headersSent = true;
    stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
    if (!(encoded instanceof Uint8Array)) {
      const last = encoded.length - 1;
      for (let i = 0; i < last; i++) stream.write(encoded[i] as Buffer);
      stream.end(encoded[last]);
    } else if (this.#method.encodeFrame !== null) {
      stream.end(encoded);
    } else if (encoded.length <= COALESCE_RESPONSE_MAX_BYTES) {
      stream.end(encodeFrame(encoded));
    } else {
      stream.write(encodeFrameHeader(encoded.length));
      stream.end(encoded);
    }
  }

  /** Ends the call with a status; the first status wins. */
  #finish(code: GrpcStatus, error: GrpcError | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#env.clock.cancel(this);
    this.#decoder.stop();
    if (error !== null) this.#endWith(error);
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    if (!this.#headersSent) {
      this.#headersSent = true;
      if (error === null) stream.respond(OK_TRAILERS_ONLY, END_STREAM);
      else respondWithStatus(stream, code, error.message);
      this.#lingerIfHalfOpen();
    } else {
      this.#trailers =
        error === null
          ? OK_TRAILERS
          : { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(error.message) };
      stream.end();
    }
  }

  #fail(err: unknown): void {
    const error = toGrpcError(err);
    if (!(err instanceof GrpcError) && this.#env.onHandlerError !== null && !this.#done) {
      this.#env.onHandlerError(err, this.path);
    }
    this.#finish(error.code, error);
  }

  /** Records why the call ended early and tells everyone waiting on it. */
  #endWith(error: GrpcError): void {
    if (this.#endError !== null) return;
    this.#endError = error;
    this.#controller?.abort(error);
    const reader = this.#reader;
    if (reader !== null) {
      this.#reader = null;
      reader.reject(error);
    }
    const waiters = this.#drainWaiters;
    if (waiters !== null) {
      this.#drainWaiters = null;
      for (const w of waiters) w.reject(error);
    }
  }

  onExpired(): void {
    if (this.#lingering) {
      this.#lingering = false;
      closeLingering(this.#stream);
      return;
    }
    this.#finish(
      GrpcStatus.DEADLINE_EXCEEDED,
      new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'context deadline exceeded'),
    );
  }

  #lingerIfHalfOpen(): void {
    const stream = this.#stream;
    if (stream.readableEnded || stream.closed || stream.destroyed) return;
    this.#lingering = true;
    this.expiresAtMs = Date.now() + HALF_OPEN_LINGER_MS;
    this.#env.clock.schedule(this, HALF_OPEN_LINGER_MS);
  }

  #stopLingering(): void {
    if (!this.#lingering) return;
    this.#lingering = false;
    this.#env.clock.cancel(this);
  }

  // ---- handlers ----

  #invokeUnary(request: unknown): void {
    const handler = this.#method.handler as UnaryHandler<unknown, unknown> | ServerStreamingHandler<unknown, unknown>;
    let out: unknown;
    try {
      out = handler(request, this);
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#settle(out);
  }

  #invokeStreaming(): void {
    const handler = this.#method.handler as
      | ClientStreamingHandler<unknown, unknown>
      | BidiStreamingHandler<unknown, unknown>;
    let out: unknown;
    try {
      out = handler(this, this);
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#settle(out);
  }

  #settle(out: unknown): void {
    if (out instanceof Promise) {
      settleAsync(this, out);
      return;
    }
    this.completeHandler(out);
  }

  /** The handler has returned (or its promise resolved) with `out`. */
  completeHandler(out: unknown): void {
    if ((this.#method.kind & 1) === 0) this.#respond(out);
    else this.#finish(GrpcStatus.OK, null);
  }

  failHandler(err: unknown): void {
    this.#fail(err);
  }

  // ---- requests ----

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this;
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.#endError !== null) return Promise.reject(this.#endError);
    const queue = this.#queue;
    if (queue !== null && this.#queueHead < queue.length) {
      const value = queue[this.#queueHead];
      queue[this.#queueHead++] = undefined;
      if (this.#queueHead === queue.length) {
        queue.length = 0;
        this.#queueHead = 0;
      }
      if (this.#paused && queue.length - this.#queueHead <= INBOUND_QUEUE_MAX / 2) {
        this.#paused = false;
        this.#stream.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#inboundEnded || this.#inboundAbandoned) return Promise.resolve(ITERATION_DONE);
    if (this.#reader !== null) return Promise.reject(new Error('grpc: next() called again before it settled'));
    return new Promise<IteratorResult<unknown>>((resolve, reject) => {
      this.#reader = { resolve, reject };
    });
  }

  /** The handler stopped reading (`break` out of `for await`): later requests are dropped. */
  return(): Promise<IteratorResult<unknown>> {
    this.#inboundAbandoned = true;
    this.#queue = null;
    this.#queueHead = 0;
    if (this.#paused) {
      this.#paused = false;
      this.#stream.resume();
    }
    return Promise.resolve(ITERATION_DONE);
  }

  onFrame(payload: Buffer, compressed: boolean): void {
    let bytes: Uint8Array = payload;
    if (compressed) {
      const inflated = this.#inflate(payload);
      if (inflated === null) return;
      bytes = inflated;
    }
    let request: unknown;
    try {
      request = this.#method.decode(bytes);
    } catch (err) {
      this.#finish(
        GrpcStatus.INTERNAL,
        new GrpcError(GrpcStatus.INTERNAL, `grpc: error unmarshalling request: ${errorMessage(err)}`),
      );
      return;
    }
    if (this.#method.kind >= MethodKind.ClientStreaming) {
      this.#enqueue(request);
      return;
    }
    if (this.#started) {
      if (!this.#done) this.#failProtocol('grpc: a unary request carries more than one message');
      return;
    }
    this.#started = true;
    this.requestBytes = bytes;
    this.#invokeUnary(request);
  }

  onFrameError(reason: FrameErrorReason, lengthBytes: number): void {
    if (reason === FrameErrorReason.TooLarge) {
      const message = `grpc: received message larger than max (${lengthBytes} vs. ${this.#env.maxReceiveMessageBytes})`;
      this.#finish(GrpcStatus.RESOURCE_EXHAUSTED, new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, message));
    } else {
      this.#failProtocol('grpc: received a message with an invalid compressed-flag');
    }
  }

  #inflate(payload: Buffer): Buffer | null {
    if (!this.#gzip) {
      this.#failProtocol('grpc: compressed flag set with identity or empty encoding');
      return null;
    }
    const max = this.#env.maxReceiveMessageBytes;
    try {
      return gunzipSync(payload, { maxOutputLength: Math.max(1, max) });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        const message = `grpc: received message after decompression larger than max (> ${max})`;
        this.#finish(GrpcStatus.RESOURCE_EXHAUSTED, new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, message));
      } else {
        this.#failProtocol(`grpc: failed to decompress the received message: ${errorMessage(err)}`);
      }
      return null;
    }
  }

  #failProtocol(message: string): void {
    this.#finish(GrpcStatus.INTERNAL, new GrpcError(GrpcStatus.INTERNAL, message));
  }

  #enqueue(request: unknown): void {
    if (this.#inboundAbandoned || this.#endError !== null) return;
    const reader = this.#reader;
    if (reader !== null) {
      this.#reader = null;
      reader.resolve({ value: request, done: false });
      return;
    }
    const queue = (this.#queue ??= []);
    queue.push(request);
    if (!this.#paused && queue.length - this.#queueHead >= INBOUND_QUEUE_MAX) {
      this.#paused = true;
      this.#stream.pause();
    }
  }

  // ---- stream events (called by the shared listeners below) ----

  onData(chunk: Buffer): void {
    if (!this.#done) this.#decoder.push(chunk);
  }

  onEnd(): void {
    this.#stopLingering();
    if (this.#decoder.partial && !this.#done) {
      this.#failProtocol('grpc: the request stream ended in the middle of a message');
      return;
    }
    if (this.#method.kind < MethodKind.ClientStreaming) {
      if (!this.#started && !this.#done) this.#failProtocol('grpc: the request stream ended without a message');
      return;
    }
    this.#inboundEnded = true;
    const reader = this.#reader;
    if (reader !== null && (this.#queue === null || this.#queueHead === this.#queue.length)) {
      this.#reader = null;
      reader.resolve(ITERATION_DONE);
    }
  }

  onClose(): void {
    this.#stream[kCall] = undefined;
    this.#stopLingering();
    if (this.#done) return;
    this.#done = true;
    this.#cancelled = true;
    this.#env.clock.cancel(this);
    this.#decoder.stop();
    this.#endWith(new GrpcError(GrpcStatus.CANCELLED, 'context canceled'));
  }

  onWantTrailers(): void {
    const stream = this.#stream;
    stream.sendTrailers(this.#trailers);
    this.#lingerIfHalfOpen();
  }

  onDrain(): void {
    const waiters = this.#drainWaiters;
    if (waiters === null || waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const w of waiters) w.resolve();
  }
}

/**
 * A client that has its status but keeps its side of the stream open is given this long to
 * close it (gRPC clients reset it at once) before the server resets the stream. Resetting at
 * once could overtake the trailers still queued in the session.
 */
export const HALF_OPEN_LINGER_MS = 1000;

/** For streams answered without a Call (unknown methods): a timer of their own, on a rare path. */
export function lingerIfHalfOpen(stream: ServerStream): void {
  if (stream.readableEnded || stream.closed || stream.destroyed) return;
  setTimeout(closeLingering, HALF_OPEN_LINGER_MS, stream).unref();
}

function closeLingering(stream: ServerStream): void {
  if (!stream.closed && !stream.destroyed) stream.close(0);
}

async function settleAsync(call: Call, pending: Promise<unknown>): Promise<void> {
  let out: unknown;
  try {
    out = await pending;
  } catch (err) {
    call.failHandler(err);
    return;
  }
  call.completeHandler(out);
}

function onStreamData(this: CallStream, chunk: Buffer): void {
  this[kCall]?.onData(chunk);
}
function onStreamEnd(this: CallStream): void {
  this[kCall]?.onEnd();
}
function onStreamClose(this: CallStream): void {
  this[kCall]?.onClose();
}
function onStreamError(this: CallStream): void {
  // A stream error (RST_STREAM with an error code, a broken connection) is followed by 'close',
  // which cancels the call; the listener only keeps the error from being thrown.
}
function onWantTrailers(this: CallStream): void {
  this[kCall]?.onWantTrailers();
}
function onStreamDrain(this: CallStream): void {
  this[kCall]?.onDrain();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
