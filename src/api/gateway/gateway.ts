/**
 * The grpc-gateway JSON API (`POST /v3/kv/range` with `{"key":"Zm9v"}`), answered as etcd's
 * gateway answers it: requests read by jsonpb's rules (./decode.ts), responses written as
 * jsonpb writes them with etcd's settings (proto field names, int64 as strings, bytes as
 * base64, enums by name, default values left out), gRPC errors as
 * `{"error":...,"message":...,"code":N}` with grpc-gateway v1's HTTP status for the code, and
 * streams (watch, keep-alive, observe, snapshot) as newline-delimited `{"result":...}` objects.
 *
 * Each request calls the handler the gRPC server serves for the method (./methods.ts), with a
 * call object of its own: its signal aborts when the HTTP client goes away or the
 * `grpc-timeout` header's deadline passes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GrpcError, GrpcStatus, toGrpcError } from '../errors.ts';
import type { ServerWritableCall } from '../grpc/index.ts';
import { parseGrpcTimeout, splitPath } from '../grpc/index.ts';
import type { HttpRequest, HttpResponse, HttpRouter } from '../http.ts';
import { decodeMessage, GatewayDecodeError } from './decode.ts';
import { JsonStreamReader, JsonSyntaxError, type JsonValue } from './json.ts';
import type { AnyHandler, MethodTable } from './methods.ts';
import { GATEWAY_PREFIXES, GATEWAY_ROUTES, type GatewayRoute } from './routes.ts';

/** A streamed response holds at most this many bytes not yet taken by the HTTP connection before `write` says wait. */
export const STREAM_QUEUE_BYTES_SOFT = 1024 * 1024;
/** A handler that keeps writing past this many queued bytes has its call ended (RESOURCE_EXHAUSTED). */
export const STREAM_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/** A streaming request body holds at most this many messages (the rest is not read). */
export const STREAM_REQUESTS_MAX = 1024;

export interface GatewayOptions {
  /** Told of handler failures that are neither gRPC errors nor translated ones (answered as UNKNOWN). */
  readonly onHandlerError?: (error: unknown, path: string) => void;
}

/** grpc-gateway v1's HTTPStatusFromCode, indexed by gRPC code. */
const HTTP_STATUS_OF_CODE: readonly number[] = [
  200, // OK
  408, // CANCELLED
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  412, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

/** Go's http.StatusText for the statuses above. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The HTTP status grpc-gateway answers a gRPC status code with. */
export function httpStatusOfCode(code: number): number {
  return HTTP_STATUS_OF_CODE[code] ?? 500;
}

const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json' });
const RESULT_HEADERS = Object.freeze({
  'content-type': 'application/json',
  'grpc-metadata-content-type': 'application/grpc',
});

/** Go's http.Error answers of the gateway's mux. */
const PLAIN_HEADERS = Object.freeze({
  'content-type': 'text/plain; charset=utf-8',
  'x-content-type-options': 'nosniff',
});
const NOT_FOUND: HttpResponse = Object.freeze({ status: 404, headers: PLAIN_HEADERS, body: 'Not Found\n' });
const METHOD_NOT_ALLOWED: HttpResponse = Object.freeze({
  status: 405,
  headers: PLAIN_HEADERS,
  body: 'Method Not Allowed\n',
});

/**
 * Text as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped, and `\b`,
 * `\f` as `\u0008`, `\u000c`. Applied to JSON.stringify's output, escape by escape (so that an
 * escaped backslash followed by `b` stays as it is); those characters only occur in strings.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/\\([\s\S])|[<>&\u2028\u2029]/g, (match: string, escaped?: string) => {
    if (escaped === undefined) return `\\u${match.charCodeAt(0).toString(16).padStart(4, '0')}`;
    if (escaped === 'b') return '\\u0008';
    if (escaped === 'f') return '\\u000c';
    return match;
  });
}

/** grpc-gateway's errorBody for a failed unary call (etcd 3.4's field order). */
function errorResponse(err: GrpcError): HttpResponse {
  return {
    status: httpStatusOfCode(err.code),
    headers: JSON_HEADERS,
    body: goJson({ error: err.message, message: err.message, code: err.code }),
  };
}

/** grpc-gateway's StreamError chunk for a stream that failed. */
function streamErrorChunk(err: GrpcError): string {
  const httpCode = httpStatusOfCode(err.code);
  const body: Record<string, unknown> = { grpc_code: err.code, http_code: httpCode };
  if (err.message !== '') body.message = err.message;
  body.http_status = STATUS_TEXT[httpCode] ?? '';
  return goJson({ error: body });
}

function invalidArgument(message: string): GrpcError {
  return new GrpcError(GrpcStatus.INVALID_ARGUMENT, message);
}

/** The gRPC metadata a gateway call carries (grpc-gateway's AnnotateContext, the parts etcd reads). */
function callMetadata(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const md: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (name === 'authorization') md.authorization = String(value);
    else if (name.startsWith('grpc-metadata-')) md[name.slice('grpc-metadata-'.length)] = value;
  }
  return md;
}

/**
 * The call a handler sees for a gateway request; for streams it also queues the response
 * chunks the HTTP body is read from.
 */
class GatewayCall implements ServerWritableCall<unknown> {
  readonly path: string;
  readonly metadata: IncomingHttpHeaders;
  readonly deadlineMs: number;
  readonly #controller = new AbortController();
  readonly #toJSON: (response: never) => unknown;
  readonly #chunks: string[] = [];
  #chunksHead = 0;
  #queuedBytes = 0;
  #wroteMessage = false;
  #ended = false;
  #endError: GrpcError | null = null;
  /** The HTTP body reader waiting for a chunk or the end. */
  #reader: (() => void) | null = null;
  /** Handlers waiting in drain(). */
  #drainers: { resolve: () => void; reject: (err: GrpcError) => void }[] = [];
  /** Settles at the first message or the end, whichever comes first. */
  readonly started: Promise<void>;
  #markStarted: () => void = () => {};
  #deadlineTimer: NodeJS.Timeout | null = null;

  constructor(path: string, request: HttpRequest, toJSON: (response: never) => unknown, timeoutMs: number) {
    this.path = path;
    this.metadata = callMetadata(request.headers);
    this.#toJSON = toJSON;
    this.started = new Promise((resolve) => {
      this.#markStarted = resolve;
    });
    this.deadlineMs = timeoutMs >= 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
    const onClientGone = (): void => this.abort(new GrpcError(GrpcStatus.CANCELLED, 'context canceled'));
    if (request.signal.aborted) onClientGone();
    else request.signal.addEventListener('abort', onClientGone, { once: true });
    if (timeoutMs >= 0) {
      this.#deadlineTimer = setTimeout(
        () => this.abort(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'context deadline exceeded')),
        timeoutMs,
      );
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get cancelled(): boolean {
    return this.#controller.signal.aborted;
  }

  get wroteMessage(): boolean {
    return this.#wroteMessage;
  }

  get endError(): GrpcError | null {
    return this.#endError;
  }

  /** Ends the call from outside the handler (client gone, deadline, overflow). */
  abort(reason: GrpcError): void {
    if (this.#controller.signal.aborted) return;
    this.#controller.abort(reason);
    this.end(reason);
  }

  write(message: unknown): boolean {
    if (this.#ended) return false;
    const chunk = `{"result":${goJson(this.#toJSON(message as never))}}\n`;
    this.#chunks.push(chunk);
    this.#queuedBytes += chunk.length;
    if (!this.#wroteMessage) {
      this.#wroteMessage = true;
      this.#markStarted();
    }
    this.#wake();
    if (this.#queuedBytes > STREAM_QUEUE_BYTES_MAX) {
      this.abort(new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, 'gateway: the client does not read the response stream'));
      return false;
    }
    return this.#queuedBytes <= STREAM_QUEUE_BYTES_SOFT;
  }

  drain(): Promise<void> {
    if (this.#ended) return Promise.reject(this.#endError ?? new GrpcError(GrpcStatus.CANCELLED, 'context canceled'));
    if (this.#queuedBytes <= STREAM_QUEUE_BYTES_SOFT) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainers.push({ resolve, reject }));
  }

  /** The handler is done (error null: OK) or the call was cut short; nothing more is written. */
  end(error: GrpcError | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endError = error;
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    if (error !== null && this.#wroteMessage) this.#chunks.push(streamErrorChunk(error));
    const drainers = this.#drainers;
    this.#drainers = [];
    for (const d of drainers) d.reject(error ?? new GrpcError(GrpcStatus.CANCELLED, 'context canceled'));
    this.#markStarted();
    this.#wake();
  }

  #wake(): void {
    const reader = this.#reader;
    this.#reader = null;
    reader?.();
  }

  /** The response body: chunks as they are written, until the end. */
  async *body(): AsyncGenerator<string> {
    for (;;) {
      if (this.#chunksHead < this.#chunks.length) {
        const chunk = this.#chunks[this.#chunksHead]!;
        this.#chunks[this.#chunksHead++] = '';
        if (this.#chunksHead === this.#chunks.length) {
          this.#chunks.length = 0;
          this.#chunksHead = 0;
        }
        this.#queuedBytes -= chunk.length;
        if (this.#queuedBytes <= STREAM_QUEUE_BYTES_SOFT && this.#drainers.length > 0) {
          const drainers = this.#drainers;
          this.#drainers = [];
          for (const d of drainers) d.resolve();
        }
        yield chunk;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#reader = resolve;
      });
    }
  }
}

/** Reads the request message(s) of a body; a bad first message is the whole request's error. */
function readRequests(route: GatewayRoute, body: Uint8Array): unknown[] {
  const reader = new JsonStreamReader(body);
  const decode = (value: JsonValue | null): unknown => decodeMessage(route.request, value);
  const first = reader.next();
  if (!route.method.requestStream) return [decode(first)];
  if (first === null) return [];
  const requests = [decode(first)];
  // As grpc-gateway: a later message that does not decode ends the request stream there.
  try {
    for (let v = reader.next(); v !== null && requests.length < STREAM_REQUESTS_MAX; v = reader.next()) {
      requests.push(decode(v));
    }
  } catch (err) {
    if (!(err instanceof JsonSyntaxError || err instanceof GatewayDecodeError)) throw err;
  }
  return requests;
}

/** Rejects with the signal's reason once it aborts. */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

async function* iterate(requests: readonly unknown[]): AsyncGenerator<unknown> {
  yield* requests;
}

function unimplemented(path: string): GrpcError {
  const split = splitPath(path);
  const name = split === null ? path : `${split.service}/${split.method}`;
  return new GrpcError(GrpcStatus.UNIMPLEMENTED, `method ${name} is not implemented yet`);
}

async function answer(
  route: GatewayRoute,
  request: HttpRequest,
  table: MethodTable,
  options: GatewayOptions,
): Promise<HttpResponse> {
  const method = route.method;
  let timeoutMs = -1;
  const timeout = request.headers['grpc-timeout'];
  if (typeof timeout === 'string' && timeout !== '') {
    timeoutMs = parseGrpcTimeout(timeout);
    if (timeoutMs < 0) return errorResponse(invalidArgument(`invalid grpc-timeout: ${timeout}`));
  }
  let requests: unknown[];
  try {
    requests = readRequests(route, request.body);
  } catch (err) {
    if (err instanceof JsonSyntaxError || err instanceof GatewayDecodeError) {
      // grpc-gateway wraps a decoding error in InvalidArgument, except for a streaming request's
      // first message, whose plain error answers as UNKNOWN.
      const code = method.requestStream ? GrpcStatus.UNKNOWN : GrpcStatus.INVALID_ARGUMENT;
      return errorResponse(new GrpcError(code, err.message));
    }
    throw err;
  }
  const handler: AnyHandler | undefined = table.handler(method.path);
  const call = new GatewayCall(method.path, request, route.toJSON, timeoutMs);
  const fail = (err: unknown): GrpcError => {
    const grpcError = toGrpcError(err);
    // Errors of the server's catalogue are answers; anything else is a failure to report.
    if (!(err instanceof GrpcError) && grpcError.code === GrpcStatus.UNKNOWN)
      options.onHandlerError?.(err, method.path);
    return grpcError;
  };

  if (!method.responseStream) {
    try {
      if (handler === undefined) throw unimplemented(method.path);
      const arg = method.requestStream ? iterate(requests) : requests[0];
      const pending = Promise.resolve((handler as (req: unknown, call: GatewayCall) => unknown)(arg, call));
      // The answer goes out when the call is cut short (deadline), whatever the handler still does.
      pending.catch(() => {});
      const response = await Promise.race([pending, whenAborted(call.signal)]);
      call.end(null);
      return { status: 200, headers: RESULT_HEADERS, body: goJson(route.toJSON(response as never)) };
    } catch (err) {
      const grpcError = call.signal.aborted ? (call.signal.reason as GrpcError) : fail(err);
      call.end(grpcError);
      return errorResponse(grpcError);
    }
  }

  const run = async (): Promise<void> => {
    if (handler === undefined) throw unimplemented(method.path);
    const arg = method.requestStream ? iterate(requests) : requests[0];
    await (handler as (req: unknown, call: GatewayCall) => unknown)(arg, call);
  };
  run().then(
    () => call.end(null),
    (err: unknown) => call.end(call.signal.aborted ? (call.signal.reason as GrpcError) : fail(err)),
  );
  await call.started;
  const endError = call.endError;
  if (!call.wroteMessage && endError !== null) {
    return { status: httpStatusOfCode(endError.code), headers: JSON_HEADERS, body: streamErrorChunk(endError) };
  }
  return { status: 200, headers: RESULT_HEADERS, body: call.body() };
}

/**
 * Serves the gateway under `/v3/`, `/v3beta/` and `/v3alpha/` of `router`, calling the
 * handlers of `table`. Unknown paths answer 404 and other methods than POST 405, as the
 * gateway's mux does.
 */
export function serveGateway(router: HttpRouter, table: MethodTable, options: GatewayOptions = {}): void {
  const routes = new Map(GATEWAY_ROUTES.map((r) => [r.path, r]));
  for (const prefix of GATEWAY_PREFIXES) {
    router.prefix(prefix, null, (request) => {
      const route = routes.get(request.path.slice(prefix.length));
      if (route === undefined) return NOT_FOUND;
      if (request.method !== 'POST') return METHOD_NOT_ALLOWED;
      return answer(route, request, table, options);
    });
  }
}
