import type { IncomingHttpHeaders } from 'node:http2';
import { GrpcStatus } from '../errors.ts';
import type { ServerStream } from '../h2/server-stream.ts';
import {
  Call,
  type CallEnvironment,
  lingerIfHalfOpen,
  methodKind,
  type RegisteredMethod,
  respondWithStatus,
} from './call.ts';
import { DeadlineClock } from './deadline.ts';
import { FAST_CODECS, frameEncoder } from './fast-codecs.ts';
import { parseGrpcTimeout } from './metadata.ts';
import type { AnyMethodDescriptor, HandlerFor } from './types.ts';

/** gRPC's own default limit on a received message. */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface GrpcServerOptions {
  /** Larger request messages answer RESOURCE_EXHAUSTED before they are buffered. */
  readonly maxReceiveMessageBytes?: number;
  /** Told of every error a handler throws that is not a GrpcError (answered UNKNOWN or as translated). */
  readonly onHandlerError?: (error: unknown, path: string) => void;
}

/**
 * A gRPC server for HTTP/2 streams (our own `H2Stream` on the client port, or node:http2's in
 * tests; both have `ServerStream`'s members). Register methods with `addMethod`, declare the ones
 * that exist but are not served yet with `declareMethods`, and hand it the streams of an
 * HTTP/2 server: `h2.on('stream', grpc.handleStream)`. It owns no socket; the listener decides
 * which streams are gRPC.
 */
export interface MethodOptions {
  /** Bytes a streaming call may buffer before `write` returns false (0: the stream's own limit). */
  sendBufferBytes?: number;
  /**
   * The HTTP/2 stream's own write mark for this method's calls (where `call.backlogged` turns
   * true; our `H2Stream` only, 64 KiB when absent). 0: backlogged as soon as anything waits for
   * the client's flow-control window.
   */
  streamWriteMarkBytes?: number;
}

export class GrpcServer {
  readonly #methods = new Map<string, RegisteredMethod>();
  readonly #services = new Set<string>();
  readonly #env: CallEnvironment;

  constructor(options: GrpcServerOptions = {}) {
    const max = options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES;
    if (!(Number.isInteger(max) && max > 0)) {
      throw new RangeError(`maxReceiveMessageBytes must be a positive integer, got ${max}`);
    }
    this.#env = {
      maxReceiveMessageBytes: max,
      clock: new DeadlineClock(),
      onHandlerError: options.onHandlerError ?? null,
    };
  }

  get maxReceiveMessageBytes(): number {
    return this.#env.maxReceiveMessageBytes;
  }

  /**
   * Serves `desc.path` with `handler`, whose shape follows the descriptor's stream flags.
   * `options.sendBufferBytes`: how much a streaming call may buffer before `write` returns
   * false (default: the HTTP/2 stream's own mark: 64 KiB on `H2Stream`, Node's default on node:http2).
   */
  addMethod<D extends AnyMethodDescriptor>(desc: D, handler: HandlerFor<D>, options: MethodOptions = {}): this {
    const existing = this.#methods.get(desc.path);
    if (existing !== undefined && existing.handler !== null) {
      throw new Error(`gRPC method ${desc.path} already has a handler`);
    }
    const sendBufferBytes = byteCount('sendBufferBytes', options.sendBufferBytes ?? 0);
    const streamWriteMarkBytes =
      options.streamWriteMarkBytes === undefined
        ? null
        : byteCount('streamWriteMarkBytes', options.streamWriteMarkBytes);
    this.#register(desc, handler as (...args: never[]) => unknown, sendBufferBytes, streamWriteMarkBytes);
    return this;
  }

  /**
   * Makes methods known without serving them: a call answers UNIMPLEMENTED with
   * `method <service>/<method> is not implemented yet`, and their services are known services.
   * Methods that already have a handler keep it.
   */
  declareMethods(descs: Iterable<AnyMethodDescriptor>): this {
    for (const desc of descs) {
      if (!this.#methods.has(desc.path)) this.#register(desc, null);
    }
    return this;
  }

  /** True when `path` has a handler (declared-only methods do not). */
  serves(path: string): boolean {
    return this.#methods.get(path)?.handler != null;
  }

  /** Every registered path, served or declared. */
  paths(): string[] {
    return [...this.#methods.keys()];
  }

  #register(
    desc: AnyMethodDescriptor,
    handler: ((...args: never[]) => unknown) | null,
    sendBufferBytes = 0,
    streamWriteMarkBytes: number | null = null,
  ): void {
    const split = splitPath(desc.path);
    if (split === null) throw new Error(`gRPC method path must look like /package.Service/Method, got ${desc.path}`);
    const fast = FAST_CODECS.get(desc);
    const decode = fast?.decodeRequest ?? ((bytes: Uint8Array) => desc.decodeRequest(bytes));
    const encodeFrame = fast === undefined ? null : frameEncoder(fast.encodeResponse);
    this.#methods.set(desc.path, {
      desc,
      kind: methodKind(desc),
      handler,
      decode,
      encodeFrame,
      sendBufferBytes,
      streamWriteMarkBytes,
    });
    this.#services.add(split.service);
  }

  /** Answers one HTTP/2 stream whose request is a gRPC call (`content-type: application/grpc...`). */
  readonly handleStream = (stream: ServerStream, headers: IncomingHttpHeaders): void => {
    const path = headers[':path'] ?? '';
    const method = this.#methods.get(path);
    if (method === undefined || method.handler === null) {
      reject(stream, GrpcStatus.UNIMPLEMENTED, this.#unimplemented(path, method));
      return;
    }
    if (headers[':method'] !== 'POST') {
      reject(stream, GrpcStatus.INTERNAL, `grpc: the :method of a call must be POST, got ${headers[':method']}`);
      return;
    }

    let timeoutMs = -1;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      timeoutMs = typeof timeout === 'string' ? parseGrpcTimeout(timeout) : -1;
      if (timeoutMs < 0) {
        reject(stream, GrpcStatus.INTERNAL, `grpc: malformed grpc-timeout: ${JSON.stringify(timeout)}`);
        return;
      }
    }

    let gzip = false;
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      if (encoding !== 'gzip') {
        reject(
          stream,
          GrpcStatus.UNIMPLEMENTED,
          `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(encoding)}`,
        );
        return;
      }
      gzip = true;
    }

    new Call(stream, headers, path, method, this.#env, timeoutMs, gzip);
  };

  /** grpc-go's wording for a path nobody serves. */
  #unimplemented(path: string, method: RegisteredMethod | undefined): string {
    const split = splitPath(path);
    if (split === null) return `malformed method name: ${JSON.stringify(path)}`;
    if (method !== undefined) return `method ${split.service}/${split.method} is not implemented yet`;
    if (!this.#services.has(split.service)) return `unknown service ${split.service}`;
    return `unknown method ${split.method} for service ${split.service}`;
  }
}

function reject(stream: ServerStream, code: GrpcStatus, message: string): void {
  respondWithStatus(stream, code, message);
  lingerIfHalfOpen(stream);
  // Discard whatever the client still sends on this stream.
  stream.on('error', ignore);
  stream.resume();
}

function ignore(): void {}

/** `/pkg.Service/Method` -> service `pkg.Service`, method `Method`; null when malformed. */
export function splitPath(path: string): { service: string; method: string } | null {
  const slash = path.lastIndexOf('/');
  if (path.charCodeAt(0) !== 0x2f || slash <= 1 || slash === path.length - 1) return null;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** `value` if it is a non-negative integer, else a RangeError naming the option. */
function byteCount(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}
