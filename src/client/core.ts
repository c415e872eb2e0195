/**
 * The part of the client every feature builds on: endpoints with failover, deadlines, the auth
 * token, and the retry rule.
 *
 * Retry rule: a call that fails UNAVAILABLE moves to the next healthy endpoint and is tried again
 * until its deadline, but only when that is safe: the call is idempotent (reads, lease
 * keep-alives, member list...), or the request never left the client (no connection could be
 * made). A write that may have reached a server is never sent again; its failure is reported.
 */
import { setMaxListeners } from 'node:events';
import type { Method } from '../proto/index.ts';
import { AuthService } from '../proto/index.ts';
import {
  type ChannelOptions,
  type ClientStream,
  GrpcCallError,
  Status,
  type StreamHandlers,
  type TlsOptions,
} from './channel.ts';
import { type Endpoint, EndpointPool } from './endpoints.ts';
import { AuthNotEnabledError, ClientClosedError, DeadlineExceededError, EtcdError, fromGrpcError } from './errors.ts';

export interface ClientOptions {
  /** `host:port`, `http://host:port` or `https://host:port`; one string may list several, comma-separated. */
  endpoints: readonly string[] | string;
  /** How long connecting to an endpoint may take (default 5000). */
  dialTimeoutMs?: number;
  /** Deadline of each call, retries included, unless the call gives its own (default 10000). */
  callTimeoutMs?: number;
  /** HTTP/2 ping interval while calls are open (default 10000; 0: none). */
  keepaliveTimeMs?: number;
  /** A ping unanswered this long drops the connection (default 6000). */
  keepaliveTimeoutMs?: number;
  /** An endpoint whose connection failed is avoided this long (default 5000). */
  unhealthyMs?: number;
  /** Authenticate with etcd's user and password; the token is refreshed when it expires. */
  auth?: { username: string; password: string };
  /** TLS with these PEM contents (`https://` endpoints use TLS too). */
  tls?: TlsOptions;
}

/** Per-call options. */
export interface CallOptions {
  /** Deadline of this call, retries included (default: the client's `callTimeoutMs`). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface UnaryOptions extends CallOptions {
  /** Safe to send again after a failure that may have reached the server. */
  idempotent: boolean;
  /** Call this endpoint only (maintenance calls about one member). */
  endpoint?: string;
  /** Do not attach the auth token (the Authenticate call itself). */
  anonymous?: boolean;
}

export interface OpenedStream<Req> {
  readonly stream: ClientStream<Req>;
  readonly endpoint: Endpoint;
}

const DIAL_TIMEOUT_MS_DEFAULT = 5_000;
const CALL_TIMEOUT_MS_DEFAULT = 10_000;
const KEEPALIVE_TIME_MS_DEFAULT = 10_000;
const KEEPALIVE_TIMEOUT_MS_DEFAULT = 6_000;
const UNHEALTHY_MS_DEFAULT = 5_000;
const RETRY_BACKOFF_MS_BASE = 25;
const RETRY_BACKOFF_MS_MAX = 500;

/** Splits `endpoints` given as a list or as one comma-separated string. */
export function endpointList(endpoints: readonly string[] | string): string[] {
  const list = (typeof endpoints === 'string' ? endpoints.split(',') : [...endpoints]).map((e) => e.trim());
  const nonEmpty = list.filter((e) => e.length > 0);
  if (nonEmpty.length === 0) throw new TypeError('at least one endpoint is needed');
  return nonEmpty;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', done);
      clearTimeout(timer);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class ClientCore {
  readonly pool: EndpointPool;
  readonly callTimeoutMs: number;
  private readonly auth: { username: string; password: string } | undefined;
  private token: string | undefined = undefined;
  private tokenRequest: Promise<string> | undefined = undefined;
  /** The cluster answered that authentication is not enabled: calls go without a token. */
  private authNotEnabled = false;
  private isClosed = false;
  /** Aborted by close(): everything in flight stops. */
  protected readonly lifetime = new AbortController();

  constructor(options: ClientOptions) {
    // Every call in flight listens to the client's lifetime: there may be many at once.
    setMaxListeners(0, this.lifetime.signal);
    const channelOptions: ChannelOptions = {
      dialTimeoutMs: options.dialTimeoutMs ?? DIAL_TIMEOUT_MS_DEFAULT,
      keepaliveTimeMs: options.keepaliveTimeMs ?? KEEPALIVE_TIME_MS_DEFAULT,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS_DEFAULT,
    };
    if (options.tls !== undefined) channelOptions.tls = options.tls;
    this.pool = new EndpointPool(
      endpointList(options.endpoints),
      channelOptions,
      options.unhealthyMs ?? UNHEALTHY_MS_DEFAULT,
    );
    this.callTimeoutMs = options.callTimeoutMs ?? CALL_TIMEOUT_MS_DEFAULT;
    if (!(this.callTimeoutMs > 0)) throw new RangeError('callTimeoutMs must be positive');
    this.auth = options.auth;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The endpoints as given. */
  get endpoints(): string[] {
    return this.pool.endpoints.map((e) => e.address);
  }

  /**
   * Calls any unary method of etcd's API with this client's failover, deadline, auth and retry
   * rule; the answer is etcd's message as decoded. Failures are `EtcdError`s.
   */
  async call<Req, Res>(method: Method<Req, Res>, request: Req, options: UnaryOptions): Promise<Res> {
    if (this.isClosed) throw new ClientClosedError();
    const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
    const deadlineMs = Date.now() + timeoutMs;
    const signal =
      options.signal === undefined ? this.lifetime.signal : AbortSignal.any([options.signal, this.lifetime.signal]);
    const pinned = options.endpoint === undefined ? undefined : this.pinnedEndpoint(options.endpoint);
    const tried = new Set<number>();
    let refreshedToken = false;
    let lastError: GrpcCallError | undefined;
    for (let attempt = 0; ; attempt++) {
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0) throw this.deadlineError(lastError);
      if (signal.aborted)
        throw this.isClosed
          ? new ClientClosedError()
          : fromGrpcError(new GrpcCallError(Status.CANCELLED, 'context canceled'));
      const endpoint = pinned ?? this.pool.pick(tried);
      try {
        const metadata = options.anonymous === true ? undefined : await this.metadata(signal, remainingMs);
        const callOptions = {
          timeoutMs: deadlineMs - Date.now(),
          signal,
          ...(metadata === undefined ? {} : { metadata }),
        };
        const response = await endpoint.channel.unary(method, request, callOptions);
        this.pool.succeeded(endpoint);
        return response;
      } catch (err) {
        if (err instanceof EtcdError) throw err;
        if (!(err instanceof GrpcCallError)) throw fromGrpcError(err);
        lastError = err;
        if (isConnectionFailure(err)) this.pool.failed(endpoint);
        if (isInvalidToken(err) && this.auth !== undefined && !refreshedToken && options.anonymous !== true) {
          refreshedToken = true;
          this.invalidateToken();
          continue;
        }
        if (!isRetryable(err, options.idempotent)) throw fromGrpcError(err);
        if (pinned !== undefined && err.sent) throw fromGrpcError(err);
        tried.add(endpoint.index);
        if (tried.size >= this.pool.endpoints.length) {
          tried.clear();
          const backoffMs = Math.min(RETRY_BACKOFF_MS_MAX, RETRY_BACKOFF_MS_BASE * 2 ** Math.min(attempt, 8));
          await sleep(Math.min(backoffMs, Math.max(0, deadlineMs - Date.now())), signal);
        }
      }
    }
  }

  /**
   * Opens a streaming call on the preferred endpoint, with the auth token. `onClose` of the
   * handlers tells the caller when to open another; `streamFailed` moves it elsewhere.
   */
  async openStream<Req, Res>(
    method: Method<Req, Res>,
    handlers: StreamHandlers<Res>,
    extraMetadata: Record<string, string> = {},
  ): Promise<OpenedStream<Req>> {
    if (this.isClosed) throw new ClientClosedError();
    const endpoint = this.pool.pick();
    const metadata = { ...(await this.metadata(this.lifetime.signal, this.callTimeoutMs)), ...extraMetadata };
    if (this.isClosed) throw new ClientClosedError();
    const stream = endpoint.channel.stream(method, { metadata, signal: this.lifetime.signal }, handlers);
    return { stream, endpoint };
  }

  /**
   * Authenticates now instead of at the first call (nothing to do without credentials), so
   * wrong credentials show at once.
   */
  async authenticateNow(options: CallOptions = {}): Promise<void> {
    if (this.isClosed) throw new ClientClosedError();
    await this.metadata(options.signal ?? this.lifetime.signal, options.timeoutMs ?? this.callTimeoutMs);
  }

  /** A stream on `endpoint` ended with `error`: prefer another endpoint, renew the token if needed. */
  streamFailed(endpoint: Endpoint, error: GrpcCallError): void {
    if (isConnectionFailure(error) || error.code === Status.UNAVAILABLE) this.pool.failed(endpoint);
    if (isInvalidToken(error)) this.invalidateToken();
  }

  /** A stream on `endpoint` got an answer. */
  streamSucceeded(endpoint: Endpoint): void {
    this.pool.succeeded(endpoint);
  }

  /** A signal aborted when the client closes. */
  get closeSignal(): AbortSignal {
    return this.lifetime.signal;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.lifetime.abort();
    this.pool.close();
  }

  private pinnedEndpoint(address: string): Endpoint {
    const endpoint = this.pool.find(address);
    if (endpoint === undefined) throw new TypeError(`${address} is not one of the client's endpoints`);
    return endpoint;
  }

  private deadlineError(lastError: GrpcCallError | undefined): EtcdError {
    // Like Go's client: past the deadline, the answer is the deadline, whatever failed before.
    const details = lastError === undefined ? 'context deadline exceeded' : lastError.details;
    return new DeadlineExceededError(Status.DEADLINE_EXCEEDED, details, {
      message: 'context deadline exceeded',
      cause: lastError,
    });
  }

  private invalidateToken(): void {
    this.token = undefined;
  }

  private async metadata(signal: AbortSignal, timeoutMs: number): Promise<Record<string, string> | undefined> {
    if (this.auth === undefined || this.authNotEnabled) return undefined;
    if (this.token !== undefined) return { token: this.token };
    this.tokenRequest ??= this.authenticate(signal, timeoutMs).finally(() => {
      this.tokenRequest = undefined;
    });
    try {
      return { token: await this.tokenRequest };
    } catch (err) {
      // As etcd's Go client: credentials for a cluster without auth are not an error.
      if (err instanceof AuthNotEnabledError) {
        this.authNotEnabled = true;
        return undefined;
      }
      throw err;
    }
  }

  private async authenticate(signal: AbortSignal, timeoutMs: number): Promise<string> {
    const auth = this.auth!;
    const response = await this.call(
      AuthService.Authenticate,
      { name: auth.username, password: auth.password },
      { idempotent: true, anonymous: true, signal, timeoutMs },
    );
    this.token = response.token;
    return response.token;
  }
}

/** The connection failed (as opposed to a server answering with an error). */
function isConnectionFailure(err: GrpcCallError): boolean {
  return err.code === Status.UNAVAILABLE && !err.details.startsWith('etcdserver:');
}

function isInvalidToken(err: GrpcCallError): boolean {
  return err.details === 'etcdserver: invalid auth token';
}

function isRetryable(err: GrpcCallError, idempotent: boolean): boolean {
  if (err.code !== Status.UNAVAILABLE) return false;
  return idempotent || !err.sent;
}
