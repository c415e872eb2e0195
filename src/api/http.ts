import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { VERSION } from '../version.ts';
import type { ServerStream } from './h2/server-stream.ts';

/**
 * The plain HTTP endpoints of a client URL: `/version`, `/health`, `/livez`, `/readyz`, and
 * whatever is added later (`/metrics`, the `/v3/` JSON gateway). Routes are written once
 * against small request/response records and served both over HTTP/1.1 and over HTTP/2
 * streams that are not gRPC.
 */

export interface HttpRequest {
  readonly method: string;
  /** The path without the query string, e.g. `/v3/kv/range`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The whole request body (empty for GET); at most the router's `maxBodyBytes`. */
  readonly body: Buffer;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** A whole body, or chunks written as they come (a streaming gateway response). */
  readonly body?: string | Uint8Array | AsyncIterable<string | Uint8Array>;
}

export type HttpHandler = (request: HttpRequest) => HttpResponse | Promise<HttpResponse>;

export interface HttpRouterOptions {
  /** Larger request bodies answer 413 before they are buffered whole. */
  readonly maxBodyBytes?: number;
  /** Told of handler failures (answered 500). */
  readonly onError?: (error: unknown, path: string) => void;
}

/** etcd's `--max-request-bytes` default, used when no limit is given. */
export const DEFAULT_MAX_BODY_BYTES = 1572864;

const TEXT_PLAIN = 'text/plain; charset=utf-8';
const APPLICATION_JSON = 'application/json';

/** Go's `http.Error` answers: plain text with a newline. */
function goError(status: number, text: string, extra?: Record<string, string>): HttpResponse {
  return {
    status,
    headers: { 'content-type': TEXT_PLAIN, 'x-content-type-options': 'nosniff', ...extra },
    body: `${text}\n`,
  };
}

const NOT_FOUND = goError(404, '404 page not found');

interface Route {
  readonly methods: readonly string[] | null;
  readonly handler: HttpHandler;
}

export class HttpRouter {
  readonly #exact = new Map<string, Route>();
  readonly #prefixes: { prefix: string; route: Route }[] = [];
  readonly #maxBodyBytes: number;
  readonly #onError: ((error: unknown, path: string) => void) | null;
  #corsOrigins: readonly string[] | null = null;

  constructor(options: HttpRouterOptions = {}) {
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#onError = options.onError ?? null;
  }

  /**
   * etcd's CORS handling (`--cors`, `*` by default): every answer carries the
   * Access-Control-Allow-* headers for an allowed origin, and OPTIONS answers 200 on any path.
   * Null (the default) leaves answers as the routes make them.
   */
  setCorsOrigins(origins: readonly string[] | null): this {
    this.#corsOrigins = origins === null ? null : Object.freeze([...origins]);
    return this;
  }

  /** Serves exactly `path`; `methods` null accepts any method, else others answer 405. */
  route(path: string, methods: readonly string[] | null, handler: HttpHandler): this {
    if (!path.startsWith('/')) throw new Error(`HTTP route must start with /, got ${path}`);
    if (this.#exact.has(path)) throw new Error(`HTTP route ${path} is already served`);
    this.#exact.set(path, { methods, handler });
    return this;
  }

  /** Serves every path under `prefix` (e.g. `/v3/`) not served exactly; the longest prefix wins. */
  prefix(prefix: string, methods: readonly string[] | null, handler: HttpHandler): this {
    if (!prefix.startsWith('/')) throw new Error(`HTTP prefix must start with /, got ${prefix}`);
    this.#prefixes.push({ prefix, route: { methods, handler } });
    this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
    return this;
  }

  #find(path: string): Route | undefined {
    const exact = this.#exact.get(path);
    if (exact !== undefined) return exact;
    for (const p of this.#prefixes) if (path.startsWith(p.prefix)) return p.route;
    return undefined;
  }

  /** Answers a request already read: CORS, routing, method check, handler errors. */
  async dispatch(request: HttpRequest): Promise<HttpResponse> {
    const origins = this.#corsOrigins;
    if (origins === null) return this.#route(request);
    const origin = origins.includes('*') ? '*' : String(request.headers.origin ?? '');
    if (!origins.includes(origin)) return this.#route(request);
    const cors = {
      'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
      'access-control-allow-origin': origin,
      'access-control-allow-headers': 'accept, content-type, authorization',
    };
    if (request.method === 'OPTIONS') return { status: 200, headers: cors };
    const response = await this.#route(request);
    return { ...response, headers: { ...cors, ...response.headers } };
  }

  async #route(request: HttpRequest): Promise<HttpResponse> {
    const route = this.#find(request.path);
    if (route === undefined) return NOT_FOUND;
    if (route.methods !== null && !route.methods.includes(request.method)) {
      return goError(405, 'Method Not Allowed', { allow: route.methods.join(', ') });
    }
    try {
      return await route.handler(request);
    } catch (err) {
      this.#onError?.(err, request.path);
      return goError(500, 'Internal Server Error');
    }
  }

  /** The `request` listener of an `http.Server`. */
  readonly handleHttp1 = (req: IncomingMessage, res: ServerResponse): void => {
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    readBody(req, this.#maxBodyBytes).then(
      async (body) => {
        if (body === null) {
          req.resume();
          await writeHttp1(res, goError(413, 'Request Entity Too Large'), controller.signal);
          return;
        }
        const url = req.url ?? '/';
        const response = await this.dispatch(
          makeRequest(req.method ?? 'GET', url, req.headers, body, controller.signal),
        );
        await writeHttp1(res, response, controller.signal);
      },
      () => res.destroy(),
    );
  };

  /** Answers an HTTP/2 stream that is not a gRPC call (same routes as HTTP/1.1). */
  readonly handleHttp2 = (stream: ServerStream, headers: IncomingHttpHeaders): void => {
    const controller = new AbortController();
    stream.on('close', () => controller.abort());
    stream.on('error', () => {});
    readBody(stream, this.#maxBodyBytes).then(
      async (body) => {
        if (body === null) {
          stream.resume();
          await writeHttp2(stream, goError(413, 'Request Entity Too Large'), controller.signal);
          return;
        }
        const method = String(headers[':method'] ?? 'GET');
        const url = String(headers[':path'] ?? '/');
        const response = await this.dispatch(makeRequest(method, url, headers, body, controller.signal));
        await writeHttp2(stream, response, controller.signal);
      },
      () => stream.destroy(),
    );
  };
}

function makeRequest(
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
  signal: AbortSignal,
): HttpRequest {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  return { method, path, query, headers, body, signal };
}

const EMPTY = Buffer.alloc(0);

/** The whole body, or null when it exceeds `maxBytes`. */
function readBody(
  source: Pick<ServerStream, 'on' | 'once' | 'removeListener'>,
  maxBytes: number,
): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        source.removeListener('data', onData);
        source.removeListener('end', onEnd);
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      resolve(chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', reject);
  });
}

function headerRecord(response: HttpResponse): Record<string, string | number> {
  const headers: Record<string, string | number> = { ...response.headers };
  const body = response.body;
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    headers['content-length'] =
      body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  }
  return headers;
}

async function writeHttp1(res: ServerResponse, response: HttpResponse, signal: AbortSignal): Promise<void> {
  if (res.destroyed) return;
  res.writeHead(response.status, headerRecord(response));
  const body = response.body;
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    res.end(body);
    return;
  }
  await pipeChunks(body, res, signal);
  if (!res.destroyed) res.end();
}

async function writeHttp2(stream: ServerStream, response: HttpResponse, signal: AbortSignal): Promise<void> {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': response.status, ...headerRecord(response) });
  const body = response.body;
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    stream.end(body);
    return;
  }
  await pipeChunks(body, stream, signal);
  if (!stream.destroyed) stream.end();
}

/** Writes chunks with back-pressure; stops when the client goes away. */
async function pipeChunks(
  chunks: AsyncIterable<string | Uint8Array>,
  out: Pick<ServerStream, 'write' | 'once' | 'removeListener' | 'destroyed'>,
  signal: AbortSignal,
): Promise<void> {
  for await (const chunk of chunks) {
    if (signal.aborted || out.destroyed) return;
    if (!out.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          out.removeListener('drain', done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        out.once('drain', done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}

// ---- etcd's endpoints ----

export interface HealthReport {
  readonly healthy: boolean;
  /** Why not, in etcd's words (`RAFT NO LEADER`, `ALARM NOSPACE`...); empty when healthy. */
  readonly reason: string;
  /**
   * For `/livez` and `/readyz`: the outcome of each check asked for by name (`query.checks`),
   * null when it passed, else its error. A report without it answers `/readyz` from `healthy`
   * and `/livez` from the process being up.
   */
  readonly checks?: Readonly<Record<string, string | null>>;
}

/** Which endpoint asks. */
export type HealthEndpoint = 'health' | 'livez' | 'readyz';

export interface HealthQuery {
  readonly endpoint: HealthEndpoint;
  /** Alarms to ignore (`/health?exclude=NOSPACE`); for /livez and /readyz, checks left out. */
  readonly exclude: readonly string[];
  /** Check with a serializable read instead of a linearizable one (`?serializable=true`). */
  readonly serializable: boolean;
  /** The named checks to run (/livez and /readyz), in order; empty for /health. */
  readonly checks: readonly string[];
}

export type HealthCheck = (query: HealthQuery) => HealthReport | Promise<HealthReport>;

export interface EtcdEndpointsOptions {
  /** The member's health: a leader and no alarm. */
  readonly health: HealthCheck;
}

/** etcd's /livez checks: the member can read its own data. */
export const LIVEZ_CHECKS: readonly string[] = Object.freeze(['serializable_read']);
/** etcd's /readyz checks, in the order they are reported. */
export const READYZ_CHECKS: readonly string[] = Object.freeze([
  'data_corruption',
  'serializable_read',
  'linearizable_read',
  'non_learner',
]);

const VERSION_BODY = JSON.stringify({ etcdserver: VERSION.server, etcdcluster: VERSION.cluster });
const JSON_HEADERS = Object.freeze({ 'content-type': APPLICATION_JSON });
const TEXT_HEADERS = Object.freeze({ 'content-type': TEXT_PLAIN, 'x-content-type-options': 'nosniff' });
const GET = Object.freeze(['GET']);

/** `?name=a&name=b` without empty values, as etcd's getQuerySet. */
function querySet(request: HttpRequest, name: string): string[] {
  return request.query.getAll(name).filter((v) => v !== '');
}

/** The outcome of each check of a report, by name (see HealthReport.checks). */
function checkOutcomes(endpoint: HealthEndpoint, names: readonly string[], report: HealthReport): (string | null)[] {
  return names.map((name) => {
    const known = report.checks?.[name];
    if (known !== undefined) return known;
    if (report.checks !== undefined) return `health check ${name} did not run`;
    return endpoint === 'livez' || report.healthy ? null : report.reason;
  });
}

/**
 * Adds `/version`, `/health`, `/livez` and `/readyz` (and `/livez/<check>`, `/readyz/<check>`)
 * as etcd 3.5 answers them. `/health` answers `{"health":"true","reason":""}` (503 and Go's
 * http.Error text when unhealthy); the others answer `ok` or the failed checks, k8s style
 * (`[-]linearizable_read failed: ...`), with every check listed on `?verbose`.
 */
export function addEtcdEndpoints(router: HttpRouter, options: EtcdEndpointsOptions): HttpRouter {
  const { health } = options;
  router.route('/version', GET, () => ({ status: 200, headers: JSON_HEADERS, body: VERSION_BODY }));
  router.route('/health', GET, async (request) => {
    const report = await health({
      endpoint: 'health',
      exclude: querySet(request, 'exclude'),
      serializable: request.query.get('serializable') === 'true',
      checks: [],
    });
    const body = JSON.stringify({ health: String(report.healthy), reason: report.healthy ? '' : report.reason });
    // Go sniffs the healthy body as text; the unhealthy one goes through http.Error.
    if (report.healthy) return { status: 200, headers: { 'content-type': TEXT_PLAIN }, body };
    return goError(503, body);
  });
  const serveChecks = (endpoint: 'livez' | 'readyz', all: readonly string[]): void => {
    const run = async (request: HttpRequest, names: readonly string[]): Promise<HttpResponse> => {
      const report = await health({ endpoint, exclude: [], serializable: false, checks: names });
      const outcomes = checkOutcomes(endpoint, names, report);
      let detail = '';
      names.forEach((name, i) => {
        const error = outcomes[i];
        detail += error === null ? `[+]${name} ok\n` : `[-]${name} failed: ${error}\n`;
      });
      if (outcomes.some((e) => e !== null)) return goError(503, detail);
      const verbose = request.query.has('verbose');
      return { status: 200, headers: TEXT_HEADERS, body: `${verbose ? detail : ''}ok\n` };
    };
    router.route(`/${endpoint}`, GET, (request) => {
      const excluded = new Set(querySet(request, 'exclude'));
      return run(
        request,
        all.filter((name) => !excluded.has(name)),
      );
    });
    for (const name of all) router.route(`/${endpoint}/${name}`, GET, (request) => run(request, [name]));
  };
  serveChecks('livez', LIVEZ_CHECKS);
  serveChecks('readyz', READYZ_CHECKS);
  return router;
}
