import { rmSync } from 'node:fs';
import {
  createServer as createHttp1Server,
  type Server as Http1Server,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { IncomingHttpHeaders } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { recordTlsPeer } from '../api/auth.ts';
import type { GrpcServer } from '../api/grpc/index.ts';
import { CLIENT_PREFACE as H2_PREFACE, H2Connection, type ServerStream } from '../api/h2/index.ts';
import type { HttpRouter } from '../api/http.ts';
import { type EtcdUrl, formatEtcdUrl, parseEtcdUrl } from '../server/config-values.ts';

/**
 * One port, two protocols (etcd's cmux): every accepted connection is peeked at; one that
 * opens with the HTTP/2 client preface (gRPC clients use prior knowledge over cleartext) goes
 * to the HTTP/2 server, any other to the HTTP/1.1 server. Over TLS the same peek runs on the
 * decrypted bytes, so ALPN `h2` and prior-knowledge clients both work. On HTTP/2, streams whose
 * content-type is `application/grpc...` are gRPC calls; the rest are plain HTTP requests
 * answered by the same routes as HTTP/1.1 (e.g. `curl --http2-prior-knowledge /version`).
 *
 * HTTP/2 is our own `H2Connection` (src/api/h2), on the client and the peer ports alike.
 */

/** A connection that has not sent enough bytes to be told apart within this time is dropped. */
export const PEEK_TIMEOUT_MS = 10_000;
/** HTTP/2 flow-control windows: large enough for etcd's 1.5 MiB requests without round trips. */
export const H2_STREAM_WINDOW_BYTES = 1024 * 1024;
export const H2_CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

export interface KeepaliveOptions {
  /** Server-to-client ping period (0 disables). */
  readonly intervalMs: number;
  /** A ping unanswered this long closes the connection (0 disables). */
  readonly timeoutMs: number;
}

export interface MultiplexServerOptions {
  /** gRPC calls; null answers them as plain HTTP requests (404). */
  readonly grpc: GrpcServer | null;
  /** Plain HTTP requests; null answers them 404. */
  readonly http: HttpRouter | null;
  readonly maxConcurrentStreams: number;
  readonly keepalive: KeepaliveOptions;
  /** Certificates for https:// and unixs:// URLs. */
  readonly tls: TlsOptions | null;
  /**
   * The certificates as of now, when they can change on disk: consulted as each connection
   * arrives, before its handshake; a new version replaces the listener's secure context.
   */
  readonly tlsSource?: { current(): { version: number; options: TlsOptions } } | null;
  /** --peer-cert-allowed-cn: a connection whose client certificate has another common name is dropped. */
  readonly tlsAllowedCommonName?: string;
  /**
   * Consulted first for every HTTP/2 stream (the peer transport's long-lived streams): a hook
   * that returns true has taken the stream. The list may grow after the server starts.
   */
  readonly streamHooks?: readonly StreamHook[];
}

/** Takes an HTTP/2 stream (returns true) or leaves it to the gRPC and HTTP handlers. */
export type StreamHook = (stream: ServerStream, headers: IncomingHttpHeaders) => boolean;

export interface BoundListener {
  /** The URL as bound: port 0 replaced by the port the system chose. */
  readonly url: string;
  close(): Promise<void>;
}

const NOT_FOUND_BODY = '404 page not found\n';

function answer404Http1(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': NOT_FOUND_BODY.length });
  res.end(NOT_FOUND_BODY);
}

function answer404Http2(stream: ServerStream): void {
  stream.on('error', () => {});
  stream.respond({ ':status': 404, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(NOT_FOUND_BODY);
  stream.resume();
}

function isGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  return type?.startsWith('application/grpc') === true;
}

/** The HTTP/2 and HTTP/1.1 servers behind any number of listening sockets. */
export class MultiplexServer {
  readonly #h1: Http1Server;
  readonly #options: MultiplexServerOptions;
  readonly #sockets = new Set<Socket>();
  readonly #connections = new Set<H2Connection>();
  /** Routes an HTTP/2 stream: the stream hooks first, then gRPC, HTTP routes, or 404. */
  readonly #route: (stream: ServerStream, headers: IncomingHttpHeaders, socket: Socket) => void;
  /**
   * HTTP/1.1 connections and how many requests each has in flight. node:http tracks idle
   * connections only for servers that listen themselves, and ours are handed sockets.
   */
  readonly #h1Requests = new Map<Socket, number>();
  readonly #listeners = new Set<BoundListener>();
  #closing = false;

  constructor(options: MultiplexServerOptions) {
    this.#options = options;
    const grpc = options.grpc;
    const http = options.http;
    const grpcHandler = grpc === null ? null : grpc.handleStream;
    const httpHandler = http === null ? null : http.handleHttp2;
    const hooks = options.streamHooks ?? [];
    // With client certificates required, a call's verified certificate can name its user.
    const certAuth = options.tls?.requestCert === true;
    this.#route = (stream, headers, socket) => {
      for (const hook of hooks) if (hook(stream, headers)) return;
      if (certAuth) recordTlsPeer(headers, socket as TLSSocket);
      if (grpcHandler !== null && isGrpc(headers)) grpcHandler(stream, headers);
      else if (httpHandler !== null) httpHandler(stream, headers);
      else answer404Http2(stream);
    };
    this.#h1 = createHttp1Server(http === null ? answer404Http1 : http.handleHttp1);
    this.#h1.on('request', (req: IncomingMessage, res: ServerResponse) => this.#trackRequest(req.socket, res));
    this.#h1.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      else socket.destroy();
    });
  }

  #trackRequest(socket: Socket, res: ServerResponse): void {
    this.#h1Requests.set(socket, (this.#h1Requests.get(socket) ?? 0) + 1);
    if (this.#closing) res.shouldKeepAlive = false;
    res.once('close', () => {
      const left = (this.#h1Requests.get(socket) ?? 1) - 1;
      if (!this.#h1Requests.has(socket)) return;
      this.#h1Requests.set(socket, left);
      if (left === 0 && this.#closing) socket.destroy();
    });
  }

  #onConnection(socket: Socket): void {
    const connection = new H2Connection(socket, {
      maxConcurrentStreams: this.#options.maxConcurrentStreams,
      streamWindowBytes: H2_STREAM_WINDOW_BYTES,
      connectionWindowBytes: H2_CONNECTION_WINDOW_BYTES,
      onStream: (stream, headers) => this.#route(stream, headers, socket),
    });
    this.#connections.add(connection);
    connection.onClose(() => this.#connections.delete(connection));
    if (this.#closing) connection.close();
    this.#keepAlive(connection);
  }

  /** Server-to-client pings every interval; an answer later than the timeout drops the connection. */
  #keepAlive(connection: H2Connection): void {
    const { intervalMs, timeoutMs } = this.#options.keepalive;
    if (intervalMs > 0) {
      let deadline: NodeJS.Timeout | null = null;
      const timer = setInterval(() => {
        if (connection.closed || deadline !== null) return;
        if (timeoutMs > 0) deadline = setTimeout(() => connection.destroy(), timeoutMs).unref();
        // A ping that cannot be sent (too many in flight) is left to the deadline.
        connection.ping((err) => {
          if (err === null && deadline !== null) {
            clearTimeout(deadline);
            deadline = null;
          }
        });
      }, intervalMs).unref();
      connection.onClose(() => {
        clearInterval(timer);
        if (deadline !== null) clearTimeout(deadline);
      });
    }
  }

  /** Starts listening on `url` (http, https, unix or unixs). */
  async listen(url: string): Promise<BoundListener> {
    if (this.#closing) throw new Error('server is closing');
    const parsed = parseEtcdUrl(url);
    const secure = parsed.scheme === 'https' || parsed.scheme === 'unixs';
    let server: NetServer;
    if (secure) {
      if (this.#options.tls === null)
        throw new Error(`${url}: TLS URL without a certificate (--cert-file, --key-file)`);
      const source = this.#options.tlsSource ?? null;
      const allowedCn = this.#options.tlsAllowedCommonName;
      let applied = source?.current() ?? null;
      const tls = createTlsServer(
        { ...(applied?.options ?? this.#options.tls), ALPNProtocols: ['h2', 'http/1.1'] },
        (socket) => {
          if (allowedCn !== undefined && commonNameOf(socket) !== allowedCn) {
            socket.destroy();
            return;
          }
          this.#dispatch(socket);
        },
      );
      tls.on('tlsClientError', () => {});
      if (source !== null) {
        // Runs before the TLS server wraps the connection, so its handshake uses the new files.
        tls.prependListener('connection', () => {
          const now = source.current();
          if (now.version === applied?.version) return;
          applied = now;
          tls.setSecureContext(now.options);
        });
      }
      server = tls;
    } else {
      server = createNetServer((socket) => this.#dispatch(socket));
    }
    const bound = await listenOn(server, parsed);
    let closed = false;
    const listener: BoundListener = {
      url: formatEtcdUrl(bound),
      close: async () => {
        if (closed) return;
        closed = true;
        this.#listeners.delete(listener);
        await new Promise<void>((ok) => server.close(() => ok()));
      },
    };
    this.#listeners.add(listener);
    return listener;
  }

  /** Peeks at the first bytes of a connection and hands it to the HTTP/2 or the HTTP/1.1 server. */
  #dispatch(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    socket.setTimeout(PEEK_TIMEOUT_MS, () => socket.destroy());
    let seen: Buffer | null = null;
    const onData = (chunk: Buffer): void => {
      seen = seen === null ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const h2 = seen.compare(H2_PREFACE, 0, n, 0, n) === 0;
      if (h2 && n < H2_PREFACE.length) return;
      socket.removeListener('data', onData);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(seen);
      if (h2) {
        this.#onConnection(socket);
      } else {
        this.#h1Requests.set(socket, 0);
        socket.once('close', () => this.#h1Requests.delete(socket));
        this.#h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  }

  /**
   * Stops accepting, lets calls in flight finish for up to `graceMs` (HTTP/2 GOAWAY, idle
   * HTTP/1.1 connections closed), then drops whatever is left.
   */
  async close(graceMs: number): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const listenersClosed = Promise.all([...this.#listeners].map((l) => l.close()));
    for (const connection of this.#connections) connection.close();
    for (const [socket, inFlight] of this.#h1Requests) if (inFlight === 0) socket.destroy();
    const drained = new Promise<void>((ok) => {
      const check = (): void => {
        if (this.#sockets.size === 0) ok();
        else setTimeout(check, 10).unref();
      };
      check();
    });
    let timer: NodeJS.Timeout | null = null;
    const grace = new Promise<void>((ok) => {
      timer = setTimeout(ok, graceMs);
    });
    await Promise.race([drained, grace]);
    if (timer !== null) clearTimeout(timer);
    for (const connection of this.#connections) connection.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await listenersClosed;
  }
}

/** The common name of the client certificate a TLS connection presented. */
function commonNameOf(socket: TLSSocket): string | undefined {
  const cn = (socket.getPeerCertificate()?.subject as { CN?: string | string[] } | undefined)?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** etcd binds `localhost` as the IPv4 loopback (Go resolves it that way first). */
function bindHost(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host;
}

function listenOn(server: NetServer, url: EtcdUrl): Promise<EtcdUrl> {
  if (url.scheme === 'unix' || url.scheme === 'unixs') {
    // As etcd does, a socket file left by an earlier run is replaced.
    rmSync(url.host, { force: true });
  }
  return new Promise((ok, fail) => {
    const onError = (err: Error): void => fail(err);
    server.once('error', onError);
    const done = (): void => {
      server.removeListener('error', onError);
      const address = server.address();
      if (address !== null && typeof address === 'object') ok({ ...url, port: address.port });
      else ok(url);
    };
    if (url.scheme === 'unix' || url.scheme === 'unixs') server.listen(url.host, done);
    else server.listen({ host: bindHost(url.host), port: url.port }, done);
  });
}
