/**
 * The server side of our own HTTP/2 implementation (src/api/h2) on a plain `net` server:
 * against node:http2's client (requests, trailers, flow control both ways, resets, limits,
 * graceful close, pings, back-pressure, pause/resume), and against a raw socket writing
 * hand-built frames (connection errors, SETTINGS, PING, CONTINUATION).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  type ClientHttp2Session,
  type ClientSessionOptions,
  connect as h2connect,
  constants as h2constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import {
  type AddressInfo,
  createServer as createNetServer,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import { after, describe, test } from 'node:test';
import { H2Connection, type H2ConnectionOptions } from '../../src/api/h2/connection.ts';
import { HpackDecoder } from '../../src/api/h2/hpack.ts';
import type { H2Stream } from '../../src/api/h2/stream.ts';
import {
  ACK,
  CANCEL,
  COMPRESSION_ERROR,
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  FRAME_SIZE_ERROR,
  frame,
  GOAWAY,
  HEADERS,
  literal,
  PING,
  PREFACE,
  PROTOCOL_ERROR,
  postBlock,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  WINDOW_UPDATE,
} from './h2-test-frames.ts';

const TIMEOUT = { timeout: 20_000 };
const MiB = 1024 * 1024;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection with `message()` after `ms` (the timer does not outlive the race). */
async function within<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message())), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms` or when `wake` resolves, whichever is first, leaving no timer behind. */
async function sleepOrWake(wake: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([wake, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `check` holds (polled), or rejects after `ms`. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** Deterministic, non-periodic bytes (an LCG), so that a lost, repeated or reordered frame shows. */
function pattern(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  if (!actual.equals(expected)) {
    let i = 0;
    while (actual[i] === expected[i]) i++;
    assert.fail(`${what}: bytes differ first at offset ${i}`);
  }
}

// ---- a net server whose connections are our H2Connection ----

type Handler = (stream: H2Stream, headers: IncomingHttpHeaders) => void;

interface TestServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly connections: H2Connection[];
  /** The handler of new streams; tests may replace it. */
  handler: Handler;
  /** Streams that reached onStream. */
  streamsSeen: number;
}

const servers: TestServer[] = [];
const sessions: ClientHttp2Session[] = [];
const rawSockets: Socket[] = [];

after(async () => {
  for (const session of sessions) session.destroy();
  for (const socket of rawSockets) socket.destroy();
  for (const s of servers) {
    for (const connection of s.connections) connection.destroy();
    await new Promise<void>((resolve) => s.server.close(() => resolve()));
  }
});

async function startServer(
  handler: Handler,
  options: Partial<Omit<H2ConnectionOptions, 'onStream'>> = {},
): Promise<TestServer> {
  const connections: H2Connection[] = [];
  const server = createNetServer((socket) => {
    const connection = new H2Connection(socket, {
      maxConcurrentStreams: options.maxConcurrentStreams ?? 1000,
      streamWindowBytes: options.streamWindowBytes ?? MiB,
      connectionWindowBytes: options.connectionWindowBytes ?? 16 * MiB,
      ...(options.maxBacklogBytes === undefined ? {} : { maxBacklogBytes: options.maxBacklogBytes }),
      onStream: (stream, headers) => {
        t.streamsSeen++;
        t.handler(stream, headers);
      },
    });
    connections.push(connection);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const t: TestServer = { server, port, url: `http://127.0.0.1:${port}`, connections, handler, streamsSeen: 0 };
  servers.push(t);
  return t;
}

/** Collects the request body; on its end answers 200 with the body and trailers (x-bytes). */
function echoHandler(stream: H2Stream, headers: IncomingHttpHeaders): void {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    stream.respond({ ':status': 200, 'x-path': String(headers[':path']) }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-bytes': String(body.length), 'x-done': 'yes' }));
    stream.end(body);
  });
}

function digest(bytes: Buffer): string {
  return `${bytes.length}:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Answers with the length and SHA-256 of the request body. */
function digestHandler(stream: H2Stream): void {
  const hash = createHash('sha256');
  let length = 0;
  stream.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    length += chunk.length;
  });
  stream.on('end', () => {
    stream.respond({ ':status': 200 });
    stream.end(`${length}:${hash.digest('hex')}`);
  });
}

/** Answers every request with `body` (written in 64 KiB pieces), ignoring the request body. */
function bodyHandler(body: Buffer): Handler {
  return (stream) => {
    stream.on('data', () => {});
    stream.respond({ ':status': 200 });
    for (let i = 0; i < body.length; i += 64 * 1024) stream.write(body.subarray(i, i + 64 * 1024));
    stream.end();
  };
}

function connectClient(server: TestServer, options: ClientSessionOptions = {}): ClientHttp2Session {
  const session = h2connect(server.url, options);
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

interface Reply {
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | null;
  rstCode: number;
}

/**
 * One request; resolves at the stream's 'close'. With `stallMs`, rejects (with the bytes
 * received so far) when the response has not ended by then, so that a stall shows as such.
 */
function request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders = {},
  body?: Buffer | string,
  stallMs = 0,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/', ...headers });
    if (stallMs > 0) {
      const timer = setTimeout(() => {
        const got = chunks.reduce((n, c) => n + c.length, 0);
        reject(new Error(`response to ${String(headers[':path'] ?? '/')} stalled after ${got} bytes`));
      }, stallMs);
      req.on('close', () => clearTimeout(timer));
    }
    let responseHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | null = null;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      responseHeaders = h;
    });
    req.on('trailers', (h) => {
      trailers = h;
    });
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', reject);
    req.on('close', () =>
      resolve({ headers: responseHeaders, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode ?? -1 }),
    );
    req.end(body);
  });
}

/** A fresh node:http2 connection to the server gets an echo answer: the server is alive and serving. */
async function assertServes(server: TestServer): Promise<void> {
  const before = server.handler;
  server.handler = echoHandler;
  const session = connectClient(server);
  try {
    const reply = await request(session, { ':path': '/alive' }, 'still here');
    assert.equal(reply.headers[':status'], 200);
    assert.equal(reply.body.toString(), 'still here');
    assert.equal(reply.trailers?.['x-bytes'], '10');
  } finally {
    session.destroy();
    server.handler = before;
  }
}

// ---- raw frames ----

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Appends the whole frames at the start of `bytes` to `frames`; returns the bytes left over. */
function takeFrames(bytes: Buffer, frames: Frame[]): Buffer {
  let rest = bytes;
  while (rest.length >= 9) {
    const length = rest.readUIntBE(0, 3);
    if (rest.length < 9 + length) break;
    frames.push({
      type: rest[3] as number,
      flags: rest[4] as number,
      streamId: rest.readUInt32BE(5) & 0x7fffffff,
      payload: Buffer.from(rest.subarray(9, 9 + length)),
    });
    rest = rest.subarray(9 + length);
  }
  return rest;
}

function goawayCode(f: Frame): { lastStreamId: number; code: number } {
  return { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
}

class RawClient {
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  closed = false;
  #buf: Buffer = Buffer.alloc(0);
  #wake: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buf = takeFrames(Buffer.concat([this.#buf, chunk]), this.frames);
      this.#notify();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1');
      rawSockets.push(socket);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.setNoDelay(true);
        resolve(new RawClient(socket));
      });
    });
  }

  /** Connects and sends the preface and an empty SETTINGS. */
  static async handshake(port: number): Promise<RawClient> {
    const client = await RawClient.open(port);
    client.send(PREFACE, frame(SETTINGS, 0, 0));
    return client;
  }

  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#wake.push(resolve));
  }

  /** The first frame received (so far or later) that matches. */
  async waitFor(match: (f: Frame) => boolean, what: string, ms = 5_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`connection closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await sleepOrWake(this.#changed(), left);
    }
  }

  async waitClosed(ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the server to close the connection');
      await sleepOrWake(this.#changed(), left);
    }
  }

  async goaway(ms = 5_000): Promise<{ lastStreamId: number; code: number }> {
    return goawayCode(await this.waitFor((f) => f.type === GOAWAY, 'GOAWAY', ms));
  }
}

/**
 * A fresh echo server and a handshaken client that sends `frames`: the GOAWAY the client gets,
 * once the server has closed the connection.
 */
async function connectionError(...frames: Buffer[]) {
  const server = await startServer(echoHandler);
  const client = await RawClient.handshake(server.port);
  client.send(...frames);
  const goaway = await client.goaway();
  await client.waitClosed();
  return { server, client, goaway };
}

// =====================================================================================
// node:http2 client
// =====================================================================================

describe('H2Connection with node:http2 client', () => {
  test(
    'a request with a body gets headers, body and trailers; 200 concurrent requests on one connection',
    TIMEOUT,
    async () => {
      const server = await startServer(echoHandler);
      const session = connectClient(server);

      const one = await request(session, { ':path': '/one', 'content-type': 'text/plain' }, 'hello h2');
      assert.equal(one.headers[':status'], 200);
      assert.equal(one.headers['x-path'], '/one');
      assert.equal(typeof one.headers.date, 'string');
      assert.equal(one.body.toString(), 'hello h2');
      assert.equal(one.trailers?.['x-bytes'], '8');
      assert.equal(one.trailers?.['x-done'], 'yes');
      assert.equal(one.rstCode, h2constants.NGHTTP2_NO_ERROR);

      const replies = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          request(session, { ':path': `/r/${i}` }, i % 3 === 0 ? pattern(100 + i, i) : `body-${i}`),
        ),
      );
      replies.forEach((reply, i) => {
        const expected = i % 3 === 0 ? pattern(100 + i, i) : Buffer.from(`body-${i}`);
        assert.equal(reply.headers[':status'], 200, `request ${i}`);
        assert.equal(reply.headers['x-path'], `/r/${i}`);
        assertSameBytes(reply.body, expected, `request ${i}`);
        assert.equal(reply.trailers?.['x-bytes'], String(expected.length));
      });
      assert.equal(server.connections.length, 1);
      assert.equal(server.streamsSeen, 201);
      await until(() => server.connections[0]?.streamCount === 0, 'all streams closed on the server');
      session.destroy();
    },
  );

  test('a 3 MiB response to a client with the default 65,535-byte windows', TIMEOUT, async () => {
    const body = pattern(3 * MiB, 7);
    const server = await startServer(bodyHandler(body));
    const session = connectClient(server);
    const reply = await request(session, {}, '', 10_000);
    assert.equal(reply.headers[':status'], 200);
    assertSameBytes(reply.body, body, '3 MiB response');
    session.destroy();
  });

  test('a 3 MiB response to a client with initialWindowSize 16384', TIMEOUT, async () => {
    const body = pattern(3 * MiB, 8);
    const server = await startServer(bodyHandler(body));
    const session = connectClient(server, { settings: { initialWindowSize: 16384 } });
    const reply = await request(session, {}, '', 10_000);
    assert.equal(reply.headers[':status'], 200);
    assertSameBytes(reply.body, body, '3 MiB response, small stream window');
    session.destroy();
  });

  test(
    'a 3 MiB response to a client whose stream window (1 MiB) is larger than its connection window',
    TIMEOUT,
    async () => {
      const body = pattern(3 * MiB, 9);
      const server = await startServer(bodyHandler(body));
      const session = connectClient(server, { settings: { initialWindowSize: MiB } });
      const reply = await request(session, {}, '', 10_000);
      assert.equal(reply.headers[':status'], 200);
      assertSameBytes(reply.body, body, '3 MiB response, large stream window');
      session.destroy();
    },
  );

  test('four concurrent 1 MiB responses share the connection window (default client windows)', TIMEOUT, async () => {
    const body = pattern(MiB, 10);
    const server = await startServer(bodyHandler(body));
    const session = connectClient(server);
    const replies = await Promise.all([1, 2, 3, 4].map((i) => request(session, { ':path': `/${i}` }, '', 10_000)));
    for (const [i, reply] of replies.entries()) assertSameBytes(reply.body, body, `response ${i}`);
    session.destroy();
  });

  test('a 1.5 MiB request body with a 1 MiB stream window and a 16 MiB connection window', TIMEOUT, async () => {
    const server = await startServer(echoHandler, { streamWindowBytes: MiB, connectionWindowBytes: 16 * MiB });
    const session = connectClient(server);
    const body = pattern(1.5 * MiB, 11);
    const reply = await request(session, {}, body);
    assert.equal(reply.rstCode, h2constants.NGHTTP2_NO_ERROR);
    assert.equal(reply.trailers?.['x-bytes'], String(body.length));
    assertSameBytes(reply.body, body, 'echoed 1.5 MiB');
    session.destroy();
  });

  test('a 1.5 MiB request body with 65,535-byte stream and connection windows', TIMEOUT, async () => {
    const server = await startServer(echoHandler, { streamWindowBytes: 65_535, connectionWindowBytes: 65_535 });
    const session = connectClient(server);
    const body = pattern(1.5 * MiB, 12);
    const reply = await request(session, {}, body);
    assert.equal(reply.rstCode, h2constants.NGHTTP2_NO_ERROR);
    assert.equal(reply.trailers?.['x-bytes'], String(body.length));
    assertSameBytes(reply.body, body, 'echoed 1.5 MiB');
    session.destroy();
  });

  test(
    'four concurrent 200 KiB request bodies with a 1 MiB connection window and 65,535-byte stream windows',
    TIMEOUT,
    async () => {
      // The answer is a digest, not an echo: this is about the request direction only.
      const server = await startServer(digestHandler, { streamWindowBytes: 65_535, connectionWindowBytes: MiB });
      const session = connectClient(server);
      const bodies = [1, 2, 3, 4].map((i) => pattern(200 * 1024, 20 + i));
      const replies = await Promise.all(bodies.map((b) => request(session, {}, b)));
      for (const [i, reply] of replies.entries()) {
        assert.equal(reply.rstCode, h2constants.NGHTTP2_NO_ERROR, `stream ${i}`);
        assert.equal(reply.body.toString(), digest(bodies[i] as Buffer), `digest of body ${i}`);
      }
      session.destroy();
    },
  );

  test('a stream cancelled by the client closes with rstCode 8; the connection keeps working', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    let serverStream: H2Stream | null = null;
    let closeCode: number | undefined;
    let gotClose!: () => void;
    const closed = new Promise<void>((resolve) => {
      gotClose = resolve;
    });
    server.handler = (stream) => {
      serverStream = stream;
      stream.on('data', () => {});
      stream.on('close', () => {
        closeCode = stream.rstCode;
        gotClose();
      });
      stream.respond({ ':status': 200 });
      stream.write('partial');
    };
    const session = connectClient(server);
    const req = session.request({ ':method': 'POST', ':path': '/cancel' });
    req.on('error', () => {});
    req.write('some');
    await new Promise<void>((resolve) => req.once('response', () => resolve()));
    req.close(h2constants.NGHTTP2_CANCEL);
    await closed;
    assert.equal(closeCode, CANCEL);
    assert.equal((serverStream as H2Stream | null)?.closed, true);
    assert.equal(server.connections[0]?.streamCount, 0);

    server.handler = echoHandler;
    const reply = await request(session, { ':path': '/after' }, 'next');
    assert.equal(reply.body.toString(), 'next');
    assert.equal(reply.trailers?.['x-bytes'], '4');
    assert.equal(server.connections.length, 1);
    session.destroy();
  });

  test(
    'maxConcurrentStreams 2: never more than 2 streams inside the handler; the third runs later',
    TIMEOUT,
    async () => {
      let open = 0;
      let maxOpen = 0;
      const waiting: H2Stream[] = [];
      const paths = new Map<H2Stream, string>();
      const server = await startServer(
        (stream, headers) => {
          open++;
          maxOpen = Math.max(maxOpen, open);
          stream.on('close', () => open--);
          stream.on('data', () => {});
          paths.set(stream, String(headers[':path']));
          stream.on('end', () => waiting.push(stream));
        },
        { maxConcurrentStreams: 2 },
      );
      const session = connectClient(server);
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      assert.equal(session.remoteSettings.maxConcurrentStreams, 2);

      const results = [1, 2, 3].map((i) =>
        request(session, { ':path': `/${i}` }, `r${i}`).then(
          (r) => ({ ok: true as const, r }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
      );
      await until(() => waiting.length === 2, 'two streams in the handler');
      await delay(200);
      assert.equal(waiting.length, 2, 'a third stream was let in');
      assert.equal(server.streamsSeen, 2);
      assert.equal(open, 2);

      const answer = (stream: H2Stream): void => {
        stream.respond({ ':status': 200 });
        stream.end(`done ${paths.get(stream)}`);
      };
      answer(waiting.shift() as H2Stream);
      await until(() => waiting.length === 2, 'the third stream after one ended');
      answer(waiting.shift() as H2Stream);
      answer(waiting.shift() as H2Stream);
      const settled = await Promise.all(results);
      // node's client queues streams beyond the peer's limit, so all three succeed.
      const bodies = settled.map((s) => (s.ok ? s.r.body.toString() : `error: ${String(s.error)}`)).sort();
      assert.deepEqual(bodies, ['done /1', 'done /2', 'done /3']);
      assert.equal(maxOpen, 2);
      session.destroy();
    },
  );

  test(
    'graceful close(): the in-flight response completes, the client gets GOAWAY, the socket closes',
    TIMEOUT,
    async () => {
      let held: H2Stream | null = null;
      const server = await startServer((stream) => {
        stream.on('data', () => {});
        stream.on('end', () => {
          held = stream;
        });
      });
      const session = connectClient(server);
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
      const reply = request(session, { ':path': '/slow' }, 'in flight');
      await until(() => held !== null, 'the request in the handler');
      const connection = server.connections[0] as H2Connection;
      let onCloseCalled = false;
      connection.onClose(() => {
        onCloseCalled = true;
      });
      connection.close();
      assert.equal(await goaway, h2constants.NGHTTP2_NO_ERROR);
      assert.equal(connection.closed, false, 'closed before the open stream ended');

      const stream = held as unknown as H2Stream;
      stream.respond({ ':status': 200 });
      stream.end('late answer');
      const r = await reply;
      assert.equal(r.headers[':status'], 200);
      assert.equal(r.body.toString(), 'late answer');
      await sessionClosed;
      await until(() => connection.closed, 'the server connection to close');
      assert.equal(onCloseCalled, true);
      assert.equal(connection.socket.destroyed, true);
    },
  );

  test('graceful close() with no stream open ends the connection at once', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const session = connectClient(server);
    await request(session, {}, 'x');
    const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const connection = server.connections[0] as H2Connection;
    connection.close();
    await sessionClosed;
    await until(() => connection.closed, 'the server connection to close');
  });

  test('ping() from the server is answered; a client ping is answered', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const session = connectClient(server);
    await request(session, {}, 'warm up');
    const connection = server.connections[0] as H2Connection;
    const results = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<Error | null>((resolve) => {
            assert.equal(connection.ping(resolve), true);
          }),
      ),
    );
    assert.deepEqual(results, [null, null, null]);

    const payload = Buffer.from('8 bytes!');
    const answer = await new Promise<{ err: Error | null; payload: Buffer }>((resolve) => {
      session.ping(payload, (err, _duration, echoed) => resolve({ err, payload: echoed }));
    });
    assert.equal(answer.err, null);
    assert.deepEqual(answer.payload, payload);

    // A ping outstanding when the connection drops is answered with an error.
    const pending = new Promise<Error | null>((resolve) => connection.ping(resolve));
    connection.destroy();
    const error = await pending;
    assert.ok(error instanceof Error);
    assert.equal(
      connection.ping(() => {}),
      false,
      'a ping on a closed connection',
    );
  });

  /**
   * Writes `total` bytes in 16 KiB writes, one per turn, until write() returns false, then
   * waits for 'drain'. With `deferInDrain` the drain listener writes on the next turn; without,
   * it writes at once (the usual `on('drain', writeMore)` pattern).
   */
  async function backPressure(deferInDrain: boolean): Promise<void> {
    const chunk = 16 * 1024;
    const total = 2 * MiB;
    const body = pattern(total, deferInDrain ? 31 : 30);
    let clientResumed = false;
    let firstFalseAt = -1;
    let falses = 0;
    let drains = 0;
    let drainBeforeResume = false;
    let needDrainAfterFalse = true;
    let serverStream: H2Stream | null = null;
    const server = await startServer((stream) => {
      serverStream = stream;
      stream.on('data', () => {});
      stream.respond({ ':status': 200 });
      let offset = 0;
      const writeMore = (): void => {
        if (offset >= total) {
          stream.end();
          return;
        }
        const ok = stream.write(body.subarray(offset, offset + chunk));
        offset += chunk;
        if (ok) {
          // One write per turn, so that the client gets the chance to send window updates.
          setImmediate(writeMore);
          return;
        }
        falses++;
        if (firstFalseAt < 0) firstFalseAt = offset;
        if (!stream.writableNeedDrain) needDrainAfterFalse = false;
        stream.once('drain', () => {
          drains++;
          if (!clientResumed) drainBeforeResume = true;
          if (deferInDrain) setImmediate(writeMore);
          else writeMore();
        });
      };
      writeMore();
    });
    const session = connectClient(server, { settings: { initialWindowSize: 16384 } });
    const req = session.request({ ':method': 'POST', ':path': '/bp' });
    req.end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((resolve, reject) => {
      req.on('end', resolve);
      req.on('error', reject);
    });
    await new Promise<void>((resolve) => req.once('response', () => resolve()));
    req.pause();
    await until(() => firstFalseAt >= 0, 'write() to return false');
    await delay(300);
    assert.equal(drains, 0, 'drain while the client was paused');
    clientResumed = true;
    req.resume();
    try {
      await within(ended, 8_000, () => {
        const s = serverStream as H2Stream | null;
        return (
          `stalled: client has ${Buffer.concat(chunks).length} of ${total} bytes; ` +
          `write() returned false ${falses} times, 'drain' fired ${drains} times; ` +
          `server stream writableNeedDrain=${s?.writableNeedDrain} writableLength=${s?.writableLength}`
        );
      });
    } finally {
      session.destroy();
    }
    assert.equal(drainBeforeResume, false);
    assert.equal(needDrainAfterFalse, true, 'writableNeedDrain after write() returned false');
    assert.ok(drains >= 1, 'no drain');
    assert.equal(drains, falses, "every false from write() is followed by one 'drain'");
    assert.ok(firstFalseAt < total);
    assertSameBytes(Buffer.concat(chunks), body, 'back-pressured body');
  }

  test("back-pressure: write() returns false while the client does not read; 'drain' after it resumes", TIMEOUT, () =>
    backPressure(true),
  );

  test("back-pressure with a 'drain' listener that writes at once (and gets false again)", TIMEOUT, () =>
    backPressure(false),
  );

  test(
    "writeMarkBytes 0: write() is false once a byte waits for window, 'drain' once all is sent",
    TIMEOUT,
    async () => {
      const results: { ok: boolean; needDrain: boolean }[] = [];
      let drains = 0;
      const server = await startServer((stream) => {
        stream.on('data', () => {});
        stream.writeMarkBytes = 0;
        stream.respond({ ':status': 200 });
        // The client's window is 16384 bytes: the first write fits, the second does not.
        for (const n of [10_000, 10_000]) {
          const ok = stream.write(Buffer.alloc(n, 7));
          results.push({ ok, needDrain: stream.writableNeedDrain });
        }
        stream.on('drain', () => {
          drains++;
          stream.end();
        });
      });
      const session = connectClient(server, { settings: { initialWindowSize: 16384 } });
      try {
        const req = session.request({ ':method': 'POST', ':path': '/mark' });
        req.end();
        let received = 0;
        req.on('data', (c: Buffer) => {
          received += c.length;
        });
        await within(
          new Promise<void>((resolve, reject) => {
            req.on('end', resolve);
            req.on('error', reject);
          }),
          8_000,
          () => `stalled: ${received} bytes received; writes ${JSON.stringify(results)}`,
        );
        assert.deepEqual(results, [
          { ok: true, needDrain: false },
          { ok: false, needDrain: true },
        ]);
        assert.equal(drains, 1, "one 'drain', once the client's window took the rest");
        assert.equal(received, 20_000);
      } finally {
        session.destroy();
      }
    },
  );

  test('request headers: pseudo-headers, custom lowercase names, repeated headers joined', TIMEOUT, async () => {
    let seen: IncomingHttpHeaders | null = null;
    const server = await startServer((stream, headers) => {
      seen = headers;
      stream.on('data', () => {});
      stream.respond({ ':status': 204, 'x-multi': ['one', 'two'] }, { endStream: true });
    });
    const session = connectClient(server);
    const reply = await request(
      session,
      {
        ':method': 'PUT',
        ':path': '/some/path?q=1&r=2',
        'X-Custom-Header': 'Custom Value',
        'x-repeated': ['first', 'second', 'third'],
        cookie: ['a=1', 'b=2'],
      },
      'x',
    );
    assert.equal(reply.headers[':status'], 204);
    assert.equal(reply.headers['x-multi'], 'one, two');
    assert.ok(seen !== null);
    const h = seen as IncomingHttpHeaders;
    assert.equal(h[':method'], 'PUT');
    assert.equal(h[':path'], '/some/path?q=1&r=2');
    assert.equal(h[':scheme'], 'http');
    assert.equal(h[':authority'], `127.0.0.1:${server.port}`);
    assert.equal(h['x-custom-header'], 'Custom Value');
    assert.equal(h['X-Custom-Header'], undefined);
    assert.equal(h['x-repeated'], 'first, second, third');
    assert.equal(h.cookie, 'a=1; b=2');
    session.destroy();
  });

  test(
    'pause()/resume() on the server stream: data received while paused comes after resume, in order, then end',
    TIMEOUT,
    async () => {
      const events: string[] = [];
      let paused = false;
      let serverStream: H2Stream | null = null;
      const server = await startServer((stream) => {
        serverStream = stream;
        stream.pause();
        paused = true;
        stream.on('data', (c: Buffer) => {
          if (paused) events.push('DATA-WHILE-PAUSED');
          events.push(`data:${c.toString()}`);
        });
        stream.on('end', () => {
          if (paused) events.push('END-WHILE-PAUSED');
          events.push('end');
          stream.respond({ ':status': 200 });
          stream.end('ok');
        });
      });
      const session = connectClient(server);
      const req = session.request({ ':method': 'POST', ':path': '/p' });
      req.on('error', () => {});
      const reply = new Promise<string>((resolve) => {
        let text = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (text += c));
        req.on('end', () => resolve(text));
      });
      for (let i = 0; i < 5; i++) {
        req.write(`part${i};`);
        await delay(20);
      }
      req.end('last');
      // The client's END_STREAM reaches the paused server stream.
      await delay(200);
      assert.equal(events.length, 0, `events while paused: ${events.join(' ')}`);
      paused = false;
      (serverStream as unknown as H2Stream).resume();
      assert.equal(await reply, 'ok');
      assert.ok(!events.includes('DATA-WHILE-PAUSED') && !events.includes('END-WHILE-PAUSED'), events.join(' '));
      assert.equal(events.at(-1), 'end');
      const text = events
        .filter((e) => e.startsWith('data:'))
        .map((e) => e.slice(5))
        .join('');
      assert.equal(text, 'part0;part1;part2;part3;part4;last');
      session.destroy();
    },
  );

  test('a paused stream gets its data and end on resume even if the response already ended', TIMEOUT, async () => {
    const events: string[] = [];
    let serverStream: H2Stream | null = null;
    const server = await startServer((stream) => {
      serverStream = stream;
      stream.pause();
      stream.on('data', (c: Buffer) => events.push(`data:${c.toString()}`));
      stream.on('end', () => events.push('end'));
      stream.on('close', () => events.push('close'));
      // The response is complete before the request is.
      stream.respond({ ':status': 200 });
      stream.end('early answer');
    });
    const session = connectClient(server);
    const req = session.request({ ':method': 'POST', ':path': '/early' });
    req.on('error', () => {});
    req.on('data', () => {});
    await new Promise<void>((resolve) => req.once('response', () => resolve()));
    req.end('request body');
    await new Promise<void>((resolve) => req.once('close', () => resolve()));
    await delay(50);
    (serverStream as unknown as H2Stream).resume();
    await delay(100);
    // As node:http2 does: the data and 'end' on resume, and 'close' only after them.
    assert.deepEqual(events, ['data:request body', 'end', 'close']);
    session.destroy();
  });

  test('many small requests on one connection: more than 65,535 request bytes in total', TIMEOUT, async () => {
    // Default options of this file: 1 MiB stream windows, a 16 MiB connection window.
    const server = await startServer(echoHandler);
    const session = connectClient(server);
    const body = pattern(1024, 50);
    for (let i = 0; i < 100; i++) {
      const reply = await request(session, { ':path': `/small/${i}` }, body).catch((error: unknown) => {
        throw new Error(`request ${i} (after ${i} KiB sent on the connection) failed: ${String(error)}`);
      });
      assertSameBytes(reply.body, body, `request ${i}`);
    }
    session.destroy();
  });

  test(
    'sendTrailers() called after the wantTrailers listener returned still sends those trailers',
    TIMEOUT,
    async () => {
      const server = await startServer((stream) => {
        stream.on('data', () => {});
        stream.on('end', () => {
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.on('wantTrailers', () => setTimeout(() => stream.sendTrailers({ 'x-late': 'yes' }), 20));
          stream.end('body');
        });
      });
      const session = connectClient(server);
      const reply = await request(session, {}, 'x');
      assert.equal(reply.body.toString(), 'body');
      assert.equal(reply.trailers?.['x-late'], 'yes');
      session.destroy();
    },
  );

  test(
    'waitForTrailers without a wantTrailers listener still ends the stream, as node:http2 does',
    TIMEOUT,
    async () => {
      const server = await startServer((stream) => {
        stream.on('data', () => {});
        stream.on('end', () => {
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.end('no listener');
        });
      });
      const session = connectClient(server);
      const reply = await request(session, {}, 'x', 3_000);
      assert.equal(reply.body.toString(), 'no listener');
      assert.equal(reply.rstCode, h2constants.NGHTTP2_NO_ERROR);
      await until(() => server.connections[0]?.streamCount === 0, 'the stream to close on the server');
      session.destroy();
    },
  );

  test('destroy(): open streams close with rstCode CANCEL, the client session closes', TIMEOUT, async () => {
    let closeCode: number | undefined;
    let streamClosed = false;
    const server = await startServer((stream) => {
      stream.on('data', () => {});
      stream.on('close', () => {
        streamClosed = true;
        closeCode = stream.rstCode;
      });
    });
    const session = connectClient(server);
    const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const req = session.request({ ':method': 'POST', ':path': '/held' });
    req.on('error', () => {});
    req.write('x');
    await until(() => server.streamsSeen === 1, 'the stream in the handler');
    const connection = server.connections[0] as H2Connection;
    assert.equal(connection.streamCount, 1);
    connection.destroy();
    await until(() => streamClosed, "the stream's close");
    assert.equal(closeCode, CANCEL);
    assert.equal(connection.closed, true);
    assert.equal(connection.streamCount, 0);
    await sessionClosed;
  });
});

// =====================================================================================
// raw frames
// =====================================================================================

describe('H2Connection with hand-built frames', () => {
  test(
    "the server's first frame is SETTINGS; the client's SETTINGS gets an ACK; PING is answered",
    TIMEOUT,
    async () => {
      const server = await startServer(echoHandler, {
        maxConcurrentStreams: 77,
        streamWindowBytes: 100_000,
        connectionWindowBytes: 1_000_000,
      });
      const client = await RawClient.open(server.port);
      client.send(PREFACE);
      const first = await client.waitFor(() => true, 'the first frame');
      assert.equal(first.type, SETTINGS);
      assert.equal(first.flags & ACK, 0);
      assert.equal(first.streamId, 0);
      assert.equal(first.payload.length % 6, 0);
      const settings = new Map<number, number>();
      for (let p = 0; p < first.payload.length; p += 6) {
        settings.set(first.payload.readUInt16BE(p), first.payload.readUInt32BE(p + 2));
      }
      assert.equal(settings.get(0x3), 77, 'MAX_CONCURRENT_STREAMS');
      assert.equal(settings.get(0x4), 100_000, 'INITIAL_WINDOW_SIZE');
      const wu = await client.waitFor((f) => f.type === WINDOW_UPDATE && f.streamId === 0, 'connection WINDOW_UPDATE');
      assert.equal(wu.payload.readUInt32BE(0), 1_000_000 - 65_535);
      // No ACK before the client has sent its SETTINGS.
      await delay(50);
      assert.equal(client.frames.filter((f) => f.type === SETTINGS && f.flags & ACK).length, 0);

      client.send(frame(SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0x40, 0])));
      await client.waitFor((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, 'SETTINGS ACK');
      const ack = client.frames.find((f) => f.type === SETTINGS && (f.flags & ACK) !== 0) as Frame;
      assert.equal(ack.payload.length, 0);

      const opaque = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
      client.send(frame(PING, 0, 0, opaque));
      const pong = await client.waitFor((f) => f.type === PING, 'PING ACK');
      assert.equal(pong.flags & ACK, ACK);
      assert.equal(pong.streamId, 0);
      assert.deepEqual(pong.payload, opaque);
      // A PING ACK from the client is not answered.
      client.send(frame(PING, ACK, 0, opaque));
      await delay(50);
      assert.equal(client.frames.filter((f) => f.type === PING).length, 1);
      assert.equal(client.closed, false);
    },
  );

  test('a wrong preface: GOAWAY PROTOCOL_ERROR and close; the server keeps serving', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const client = await RawClient.open(server.port);
    client.send(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 'latin1'), frame(SETTINGS, 0, 0));
    const goaway = await client.goaway();
    assert.equal(goaway.code, PROTOCOL_ERROR);
    assert.equal(goaway.lastStreamId, 0);
    await client.waitClosed();
    assert.equal(server.connections[0]?.closed, true);
    await assertServes(server);
  });

  test('a frame longer than 16384 bytes: GOAWAY FRAME_SIZE_ERROR; the server keeps serving', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const client = await RawClient.handshake(server.port);
    await client.waitFor((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, 'SETTINGS ACK');
    client.send(frame(PING, 0, 0, Buffer.alloc(16385)));
    const goaway = await client.goaway();
    assert.equal(goaway.code, FRAME_SIZE_ERROR);
    await client.waitClosed();
    await assertServes(server);
  });

  test('a DATA frame of 16385 bytes on an open stream: GOAWAY FRAME_SIZE_ERROR', TIMEOUT, async () => {
    const { server, goaway } = await connectionError(
      frame(HEADERS, END_HEADERS, 1, postBlock()),
      frame(DATA, 0, 1, Buffer.alloc(16385, 0x61)),
    );
    assert.equal(goaway.code, FRAME_SIZE_ERROR);
    await assertServes(server);
  });

  test('a garbage header block: GOAWAY COMPRESSION_ERROR; the server keeps serving', TIMEOUT, async () => {
    const { server, goaway } = await connectionError(
      frame(HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
    );
    assert.equal(goaway.code, COMPRESSION_ERROR);
    assert.equal(server.streamsSeen, 0);
    await assertServes(server);
  });

  test('DATA on a stream never opened: GOAWAY PROTOCOL_ERROR; the server keeps serving', TIMEOUT, async () => {
    const { server, goaway } = await connectionError(frame(DATA, END_STREAM, 7, Buffer.from('orphan')));
    assert.equal(goaway.code, PROTOCOL_ERROR);
    assert.equal(goaway.lastStreamId, 0);
    assert.equal(server.streamsSeen, 0);
    await assertServes(server);
  });

  test('a request by hand: response HEADERS, DATA and trailers come back', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const client = await RawClient.handshake(server.port);
    client.send(
      frame(HEADERS, END_HEADERS, 1, postBlock(literal('x-test', 'raw'))),
      frame(DATA, END_STREAM, 1, Buffer.from('raw body')),
    );
    const decoder = new HpackDecoder(4096, 1 << 20);
    const headers = await client.waitFor((f) => f.type === HEADERS && f.streamId === 1, 'response HEADERS');
    assert.equal(headers.flags & END_STREAM, 0);
    const fields = new Map(decoder.decode(headers.payload));
    assert.equal(fields.get(':status'), '200');
    assert.equal(fields.get('x-path'), '/');
    const data = await client.waitFor((f) => f.type === DATA && f.streamId === 1, 'response DATA');
    assert.equal(data.payload.toString(), 'raw body');
    const trailers = await client.waitFor(
      (f) => f.type === HEADERS && f.streamId === 1 && (f.flags & END_STREAM) !== 0,
      'trailers',
    );
    assert.equal(new Map(decoder.decode(trailers.payload)).get('x-bytes'), '8');
    await until(() => server.connections[0]?.streamCount === 0, 'the stream to close');
  });

  test('HEADERS without END_HEADERS and a CONTINUATION complete a request', TIMEOUT, async () => {
    let seen: IncomingHttpHeaders | null = null;
    const server = await startServer((stream, headers) => {
      seen = headers;
      stream.on('end', () => stream.respond({ ':status': 200 }, { endStream: true }));
    });
    const client = await RawClient.handshake(server.port);
    const block = postBlock(literal('x-first', 'one'), literal('x-second', 'two'));
    const cut = 7; // in the middle of a literal
    client.send(frame(HEADERS, END_STREAM, 1, block.subarray(0, cut)));
    await delay(50);
    assert.equal(seen, null, 'the handler ran before the header block was complete');
    client.send(frame(CONTINUATION, 0, 1, block.subarray(cut, cut + 10)));
    client.send(frame(CONTINUATION, END_HEADERS, 1, block.subarray(cut + 10)));
    const response = await client.waitFor((f) => f.type === HEADERS && f.streamId === 1, 'response HEADERS');
    assert.equal(response.flags & END_STREAM, END_STREAM);
    assert.equal(new Map(new HpackDecoder(4096, 1 << 20).decode(response.payload)).get(':status'), '200');
    const h = seen as IncomingHttpHeaders | null;
    assert.equal(h?.[':method'], 'POST');
    assert.equal(h?.['x-first'], 'one');
    assert.equal(h?.['x-second'], 'two');
  });

  test('HEADERS without END_HEADERS followed by a PING: GOAWAY PROTOCOL_ERROR', TIMEOUT, async () => {
    const { server, client, goaway } = await connectionError(
      frame(HEADERS, END_STREAM, 1, postBlock()),
      frame(PING, 0, 0, Buffer.alloc(8)),
    );
    assert.equal(goaway.code, PROTOCOL_ERROR);
    assert.equal(client.frames.filter((f) => f.type === PING).length, 0, 'the PING was answered');
    assert.equal(server.streamsSeen, 0);
    await assertServes(server);
  });

  test('PINGs from a client that reads nothing: the connection is cut once the answers pile up', TIMEOUT, async () => {
    const server = await startServer(echoHandler, { maxBacklogBytes: 256 * 1024 });
    const socket = netConnect(server.port, '127.0.0.1');
    rawSockets.push(socket);
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
    socket.pause();
    let closed = false;
    socket.once('close', () => {
      closed = true;
    });
    // 1.7 MB of PINGs per write; the kernels' buffers take a few MB before the server's grows.
    const batch = Buffer.concat(Array.from({ length: 100_000 }, () => frame(PING, 0, 0, Buffer.alloc(8, 1))));
    let sentBytes = 0;
    const sentMax = 200 * MiB;
    while (sentBytes < sentMax && !closed) {
      const ok = socket.write(batch);
      sentBytes += batch.length;
      if (!ok) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), delay(200)]);
    }
    // The server sends GOAWAY ENHANCE_YOUR_CALM and closes; with our PINGs still unread on its
    // side the close is a reset, which drops what we had not read (the GOAWAY among it).
    assert.ok(closed, `the server took ${sentBytes} bytes of PINGs and kept the connection`);
    assert.equal(server.connections.length, 1);
    assert.equal(server.connections[0]!.closed, true);
    await assertServes(server);
  });

  test('a CONTINUATION for another stream than the open header block: GOAWAY PROTOCOL_ERROR', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const client = await RawClient.handshake(server.port);
    const block = postBlock();
    client.send(
      frame(HEADERS, END_STREAM, 1, block.subarray(0, 3)),
      frame(CONTINUATION, END_HEADERS, 3, block.subarray(3)),
    );
    assert.equal((await client.goaway()).code, PROTOCOL_ERROR);
    await client.waitClosed();
  });

  test('maxConcurrentStreams 2: a third stream opened at once gets RST_STREAM REFUSED_STREAM', TIMEOUT, async () => {
    let inHandler = 0;
    const server = await startServer(
      (stream) => {
        inHandler++;
        stream.on('data', () => {});
      },
      { maxConcurrentStreams: 2 },
    );
    const client = await RawClient.handshake(server.port);
    client.send(
      frame(HEADERS, END_HEADERS, 1, postBlock()),
      frame(HEADERS, END_HEADERS, 3, postBlock()),
      frame(HEADERS, END_HEADERS, 5, postBlock()),
    );
    const rst = await client.waitFor((f) => f.type === RST_STREAM, 'RST_STREAM');
    assert.equal(rst.streamId, 5);
    assert.equal(rst.payload.readUInt32BE(0), REFUSED_STREAM);
    assert.equal(inHandler, 2);
    assert.equal(server.connections[0]?.streamCount, 2);
    // DATA that was in flight for the refused stream is dropped, not a connection error.
    client.send(frame(DATA, END_STREAM, 5, Buffer.from('late')));
    // Once one stream ends, a new one is accepted.
    client.send(frame(RST_STREAM, 0, 1, Buffer.from([0, 0, 0, CANCEL])));
    client.send(frame(HEADERS, END_HEADERS, 7, postBlock()));
    await until(() => inHandler === 3, 'stream 7 in the handler');
    assert.equal(client.frames.filter((f) => f.type === RST_STREAM).length, 1);
    assert.equal(client.frames.filter((f) => f.type === GOAWAY).length, 0);
  });

  test('after a graceful close, a new stream is refused and the open one completes', TIMEOUT, async () => {
    let held: H2Stream | null = null;
    const server = await startServer((stream) => {
      held = stream;
      stream.on('data', () => {});
    });
    const client = await RawClient.handshake(server.port);
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock()));
    await until(() => held !== null, 'stream 1 in the handler');
    (server.connections[0] as H2Connection).close();
    const goaway = await client.goaway();
    assert.equal(goaway.code, 0);
    assert.equal(goaway.lastStreamId, 1);
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, postBlock()));
    const rst = await client.waitFor((f) => f.type === RST_STREAM, 'RST_STREAM for stream 3');
    assert.equal(rst.streamId, 3);
    assert.equal(rst.payload.readUInt32BE(0), REFUSED_STREAM);
    assert.equal(client.closed, false);
    const stream = held as unknown as H2Stream;
    stream.respond({ ':status': 200 });
    stream.end('bye');
    const data = await client.waitFor((f) => f.type === DATA && f.streamId === 1, 'the response');
    assert.equal(data.payload.toString(), 'bye');
    await client.waitClosed();
  });

  test(
    'a paused stream is not credited; more than its window is a stream error FLOW_CONTROL_ERROR',
    TIMEOUT,
    async () => {
      let serverStream: H2Stream | null = null;
      let closeCode: number | undefined;
      const server = await startServer(
        (stream) => {
          serverStream = stream;
          stream.pause();
          stream.on('close', () => {
            closeCode = stream.rstCode;
          });
        },
        { streamWindowBytes: 65_535, connectionWindowBytes: 65_535 },
      );
      const client = await RawClient.handshake(server.port);
      const parts: Buffer[] = [frame(HEADERS, END_HEADERS, 1, postBlock())];
      for (let i = 0; i < 3; i++) parts.push(frame(DATA, 0, 1, Buffer.alloc(16384)));
      parts.push(frame(DATA, 0, 1, Buffer.alloc(16383)));
      client.send(...parts); // exactly the 65,535 bytes of the stream window
      // The connection is credited; the paused stream is not.
      await client.waitFor((f) => f.type === WINDOW_UPDATE && f.streamId === 0, 'connection WINDOW_UPDATE');
      await delay(50);
      assert.equal(client.frames.filter((f) => f.type === WINDOW_UPDATE && f.streamId === 1).length, 0);
      assert.ok(serverStream !== null);
      client.send(frame(DATA, 0, 1, Buffer.from('!')));
      const rst = await client.waitFor((f) => f.type === RST_STREAM, 'RST_STREAM');
      assert.equal(rst.streamId, 1);
      assert.equal(rst.payload.readUInt32BE(0), 3, 'FLOW_CONTROL_ERROR');
      await until(() => closeCode !== undefined, "the stream's close");
      assert.equal(closeCode, 3);
      // A stream error: the connection goes on.
      client.send(frame(PING, 0, 0, Buffer.alloc(8, 1)));
      await client.waitFor((f) => f.type === PING, 'PING ACK');
      assert.equal(client.frames.filter((f) => f.type === GOAWAY).length, 0);
    },
  );

  test('a paused stream is credited (WINDOW_UPDATE) once resumed', TIMEOUT, async () => {
    let serverStream: H2Stream | null = null;
    let received = 0;
    const server = await startServer(
      (stream) => {
        serverStream = stream;
        stream.pause();
        stream.on('data', (c: Buffer) => {
          received += c.length;
        });
      },
      { streamWindowBytes: 65_535, connectionWindowBytes: 65_535 },
    );
    const client = await RawClient.handshake(server.port);
    client.send(frame(HEADERS, END_HEADERS, 1, postBlock()));
    const parts: Buffer[] = [];
    for (let i = 0; i < 3; i++) parts.push(frame(DATA, 0, 1, Buffer.alloc(15_000, i)));
    client.send(...parts);
    await delay(100);
    assert.equal(received, 0);
    assert.equal(client.frames.filter((f) => f.type === WINDOW_UPDATE && f.streamId === 1).length, 0);
    (serverStream as unknown as H2Stream).resume();
    const wu = await client.waitFor((f) => f.type === WINDOW_UPDATE && f.streamId === 1, 'stream WINDOW_UPDATE');
    assert.equal(received, 45_000);
    assert.equal(wu.payload.readUInt32BE(0), 45_000);
  });

  test('request bytes up to the advertised 16 MiB connection window are accepted', TIMEOUT, async () => {
    let received = 0;
    const server = await startServer(
      (stream) => {
        stream.on('data', (c: Buffer) => {
          received += c.length;
        });
      },
      { streamWindowBytes: 1 << 20, connectionWindowBytes: 16 << 20 },
    );
    const client = await RawClient.handshake(server.port);
    const wu = await client.waitFor((f) => f.type === WINDOW_UPDATE && f.streamId === 0, 'the connection window');
    assert.equal(wu.payload.readUInt32BE(0), (16 << 20) - 65_535);
    const parts: Buffer[] = [frame(HEADERS, END_HEADERS, 1, postBlock())];
    // 256 KiB: within the 1 MiB stream window and the 16 MiB connection window the server advertised.
    for (let i = 0; i < 16; i++) parts.push(frame(DATA, 0, 1, Buffer.alloc(16384)));
    client.send(...parts);
    await until(() => received === 16 * 16384 || client.closed, 'the data to arrive');
    const goaways = client.frames.filter((f) => f.type === GOAWAY).map(goawayCode);
    assert.deepEqual(goaways, []);
    assert.equal(received, 16 * 16384);
  });

  test('a stream blocked on the connection window resumes when the connection window opens', TIMEOUT, async () => {
    const body = pattern(200 * 1024, 40);
    const server = await startServer(bodyHandler(body));
    const client = await RawClient.open(server.port);
    // Streams may receive 1 MiB; the connection window stays at its initial 65,535.
    client.send(PREFACE, frame(SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0x10, 0, 0])));
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock()));
    const dataBytes = (): number =>
      client.frames.filter((f) => f.type === DATA && f.streamId === 1).reduce((n, f) => n + f.payload.length, 0);
    await until(() => dataBytes() === 65_535, 'the first 65,535 bytes');
    await delay(50);
    assert.equal(dataBytes(), 65_535, 'more than the connection window');
    // A stream WINDOW_UPDATE while the connection window is still closed: nothing can be sent yet.
    const increment = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    client.send(frame(WINDOW_UPDATE, 0, 1, increment(1000)));
    await delay(50);
    assert.equal(dataBytes(), 65_535);
    // Now the connection window: the rest of the body must come.
    client.send(frame(WINDOW_UPDATE, 0, 0, increment(1 << 20)));
    await until(
      () => client.frames.some((f) => f.type === DATA && f.streamId === 1 && (f.flags & END_STREAM) !== 0),
      `the end of the response (have ${dataBytes()} of ${body.length} bytes)`,
      3_000,
    );
    const received = Buffer.concat(
      client.frames.filter((f) => f.type === DATA && f.streamId === 1).map((f) => f.payload),
    );
    assertSameBytes(received, body, 'response');
  });

  test('a stream created with a zero send window sends once SETTINGS_INITIAL_WINDOW_SIZE grows', TIMEOUT, async () => {
    const server = await startServer((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('waited for window');
    });
    const client = await RawClient.open(server.port);
    client.send(PREFACE, frame(SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0, 0])));
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock()));
    await client.waitFor((f) => f.type === HEADERS && f.streamId === 1, 'response HEADERS');
    await delay(50);
    assert.equal(client.frames.filter((f) => f.type === DATA).length, 0, 'DATA sent without window');
    client.send(frame(SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0xff, 0xff])));
    const data = await client.waitFor((f) => f.type === DATA && f.streamId === 1, 'DATA');
    assert.equal(data.payload.toString(), 'waited for window');
    assert.equal(data.flags & END_STREAM, END_STREAM);
  });

  test('request trailers end the request; padded DATA is delivered without its padding', TIMEOUT, async () => {
    let seenHeaders: IncomingHttpHeaders | null = null;
    const server = await startServer((stream, headers) => {
      seenHeaders = headers;
      echoHandler(stream, headers);
    });
    const client = await RawClient.handshake(server.port);
    const padded = Buffer.concat([Buffer.from([5]), Buffer.from('padded'), Buffer.alloc(5)]);
    client.send(
      frame(HEADERS, END_HEADERS, 1, postBlock(literal('x-h', '1'))),
      frame(DATA, 0, 1, Buffer.from('plain|')),
      frame(DATA, 0x8, 1, padded),
      frame(HEADERS, END_HEADERS | END_STREAM, 1, literal('x-trailer', 't')),
    );
    const trailers = await client.waitFor(
      (f) => f.type === HEADERS && f.streamId === 1 && (f.flags & END_STREAM) !== 0,
      'response trailers',
    );
    const data = client.frames.filter((f) => f.type === DATA && f.streamId === 1).map((f) => f.payload);
    assert.equal(Buffer.concat(data).toString(), 'plain|padded');
    const decoder = new HpackDecoder(4096, 1 << 20);
    decoder.decode((client.frames.find((f) => f.type === HEADERS) as Frame).payload);
    assert.equal(new Map(decoder.decode(trailers.payload)).get('x-bytes'), '12');
    assert.equal((seenHeaders as IncomingHttpHeaders | null)?.['x-h'], '1');
  });

  test(
    'malformed request headers: RST_STREAM PROTOCOL_ERROR, no handler call, the connection goes on',
    TIMEOUT,
    async () => {
      const server = await startServer(echoHandler);
      const client = await RawClient.handshake(server.port);
      // An uppercase field name (RFC 9113 8.2.1).
      client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock(literal('X-Upper', 'v'))));
      const rst = await client.waitFor((f) => f.type === RST_STREAM, 'RST_STREAM');
      assert.equal(rst.streamId, 1);
      assert.equal(rst.payload.readUInt32BE(0), PROTOCOL_ERROR);
      // A pseudo-header after a regular one.
      client.send(
        frame(HEADERS, END_HEADERS | END_STREAM, 3, Buffer.concat([literal('x-a', 'b'), Buffer.from([0x83])])),
      );
      const rst3 = await client.waitFor((f) => f.type === RST_STREAM && f.streamId === 3, 'RST_STREAM 3');
      assert.equal(rst3.payload.readUInt32BE(0), PROTOCOL_ERROR);
      assert.equal(server.streamsSeen, 0);
      client.send(frame(HEADERS, END_HEADERS | END_STREAM, 5, postBlock()));
      await client.waitFor((f) => f.type === HEADERS && f.streamId === 5, 'the response on stream 5');
      assert.equal(server.streamsSeen, 1);
      assert.equal(client.frames.filter((f) => f.type === GOAWAY).length, 0);
    },
  );

  test('a handler that throws: RST_STREAM INTERNAL_ERROR; the connection goes on', TIMEOUT, async () => {
    const server = await startServer(() => {
      throw new Error('handler bug');
    });
    const client = await RawClient.handshake(server.port);
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock()));
    const rst = await client.waitFor((f) => f.type === RST_STREAM, 'RST_STREAM');
    assert.equal(rst.streamId, 1);
    assert.equal(rst.payload.readUInt32BE(0), 2, 'INTERNAL_ERROR');
    assert.equal(server.connections[0]?.streamCount, 0);
    server.handler = echoHandler;
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, postBlock()));
    await client.waitFor((f) => f.type === HEADERS && f.streamId === 3, 'the response on stream 3');
  });

  test('HEADERS on an even (server-initiated) stream id: GOAWAY PROTOCOL_ERROR', TIMEOUT, async () => {
    const server = await startServer(echoHandler);
    const client = await RawClient.handshake(server.port);
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 2, postBlock()));
    assert.equal((await client.goaway()).code, PROTOCOL_ERROR);
    await client.waitClosed();
    assert.equal(server.streamsSeen, 0);
    await assertServes(server);
  });

  test('response headers larger than a frame go out as HEADERS and CONTINUATION', TIMEOUT, async () => {
    const big = 'b'.repeat(40_000);
    const server = await startServer((stream) => {
      stream.respond({ ':status': 200, 'x-big': big }, { endStream: true });
    });
    const client = await RawClient.handshake(server.port);
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock()));
    await client.waitFor((f) => f.type === CONTINUATION && (f.flags & END_HEADERS) !== 0, 'the last CONTINUATION');
    const block = client.frames.filter((f) => f.streamId === 1);
    assert.equal(block[0]?.type, HEADERS);
    assert.equal((block[0]?.flags ?? 0) & END_HEADERS, 0);
    assert.equal((block[0]?.flags ?? 0) & END_STREAM, END_STREAM);
    for (const f of block) assert.ok(f.payload.length <= 16384);
    assert.ok(block.slice(1).every((f) => f.type === CONTINUATION));
    const fields = new Map(new HpackDecoder(4096, 1 << 20).decode(Buffer.concat(block.map((f) => f.payload))));
    assert.equal(fields.get('x-big'), big);

    // And node's client puts them back together.
    const session = connectClient(server);
    const reply = await request(session, {}, '');
    assert.equal(reply.headers['x-big'], big);
    session.destroy();
  });
});

// =====================================================================================

describe('H2Connection: when output is written', () => {
  /** A socket that records what is written to it and is fed bytes by the test. */
  class RecordingSocket extends EventEmitter {
    destroyed = false;
    writableLength = 0;
    written: Buffer[] = [];
    setNoDelay(): void {}
    resume(): void {}
    cork(): void {}
    uncork(): void {}
    write(chunk: Buffer): boolean {
      this.written.push(Buffer.from(chunk));
      return true;
    }
    end(): void {}
    destroySoon(): void {}
    destroy(): void {
      this.destroyed = true;
    }
    /** The frames written since the last call. */
    takeWritten(): Frame[] {
      const frames: Frame[] = [];
      assert.equal(takeFrames(Buffer.concat(this.written.splice(0)), frames).length, 0, 'whole frames');
      return frames;
    }
  }

  /** A connection past its handshake, answering every request at once with 200 and "ok". */
  async function answering(): Promise<{ socket: RecordingSocket; connection: H2Connection }> {
    const socket = new RecordingSocket();
    const connection = new H2Connection(socket as unknown as Socket, {
      maxConcurrentStreams: 10,
      streamWindowBytes: 65_535,
      connectionWindowBytes: 65_535,
      onStream: (stream) => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      },
    });
    socket.emit('data', Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
    await new Promise((resolve) => setImmediate(resolve));
    socket.takeWritten();
    return { socket, connection };
  }

  /** Lets the microtasks queued so far run, without a turn of the event loop. */
  async function microtasks(): Promise<void> {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }

  test('a response is written before the next turn, with the PING ACK that came before it', TIMEOUT, async () => {
    const { socket, connection } = await answering();
    const opaque = Buffer.from([8, 7, 6, 5, 4, 3, 2, 1]);
    socket.emit(
      'data',
      Buffer.concat([frame(PING, 0, 0, opaque), frame(HEADERS, END_HEADERS | END_STREAM, 1, postBlock())]),
    );
    await microtasks();
    const frames = socket.takeWritten();
    assert.deepEqual(
      frames.map((f) => [f.type, f.streamId]),
      [
        [PING, 0],
        [HEADERS, 1],
        [DATA, 1],
      ],
    );
    assert.deepEqual(frames[0]?.payload, opaque);
    connection.destroy();
  });

  test('a PING ACK alone is not written in the turn that read the PING', TIMEOUT, async (t) => {
    const { socket, connection } = await answering();
    // The acknowledgement's delay is a timer: mocked, a slow turn cannot let it fire early.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    socket.emit('data', frame(PING, 0, 0, Buffer.alloc(8, 1)));
    await microtasks();
    assert.deepEqual(socket.takeWritten(), []);
    // Work the PING came with (a proposal's Ready) runs on the next turn, before the answer.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(socket.takeWritten(), []);
    t.mock.timers.tick(1);
    const frames = socket.takeWritten();
    assert.deepEqual(
      frames.map((f) => [f.type, f.flags & ACK]),
      [[PING, ACK]],
    );
    connection.destroy();
  });
});
