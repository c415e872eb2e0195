/**
 * The upload client of our own HTTP/2 (src/api/h2/client.ts), the peer transport's message
 * stream: against node:http2's server (headers, flow control with small windows, back-pressure
 * and drain, PING, refusals, resets, GOAWAY, lost connections) and against a raw socket
 * writing hand-built frames (protocol errors, CONTINUATION, SETTINGS changes).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import {
  createServer as createH2Server,
  type Http2Server,
  constants as h2constants,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { connectH2Socket, H2UploadConnection } from '../../src/api/h2/client.ts';
import { encodeHeaders } from '../../src/api/h2/hpack.ts';
import { TestCa } from '../auth/certs.ts';
import {
  ACK,
  CONTINUATION,
  DATA,
  END_HEADERS,
  frame,
  HEADERS,
  PING,
  PUSH_PROMISE,
  RST_STREAM,
  SETTINGS,
  WINDOW_UPDATE,
} from './h2-test-frames.ts';

const TIMEOUT = { timeout: 20_000 };

const servers: { close(): unknown }[] = [];
after(() => {
  for (const s of servers) s.close();
});

interface Recorded {
  responses: IncomingHttpHeaders[];
  closes: string[];
  drains: number;
}

function open(
  port: number,
  headers: [string, string][] = [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':authority', `127.0.0.1:${port}`],
    [':path', '/upload'],
    ['x-test', 'yes'],
  ],
): Promise<{ connection: H2UploadConnection; rec: Recorded; closed: Promise<string> }> {
  return connectH2Socket(`http://127.0.0.1:${port}`, null, 2000).then((socket) => {
    const rec: Recorded = { responses: [], closes: [], drains: 0 };
    let resolveClosed: (reason: string) => void = () => {};
    const closed = new Promise<string>((resolve) => {
      resolveClosed = resolve;
    });
    const connection = new H2UploadConnection(socket, headers, {
      onResponse: (h) => rec.responses.push(h),
      onDrain: () => rec.drains++,
      onClose: (reason) => {
        rec.closes.push(reason);
        resolveClosed(reason);
      },
    });
    return { connection, rec, closed };
  });
}

async function h2Server(
  settings: Settings,
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void,
): Promise<{ server: Http2Server; port: number }> {
  const server = createH2Server({ settings });
  server.on('stream', onStream);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port };
}

/** A TCP server whose connections `onSocket` handles with raw bytes. */
async function rawServer(onSocket: (socket: Socket) => void): Promise<number> {
  const server: Server = createNetServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

function settingsFrame(pairs: [number, number][]): Buffer {
  const payload = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(SETTINGS, 0, 0, payload);
}

/** Reads frames from a raw socket after the client preface. */
function frameReader(socket: Socket, onFrame: (type: number, flags: number, stream: number, payload: Buffer) => void) {
  let buf = Buffer.alloc(0);
  let prefaceSeen = false;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (!prefaceSeen) {
      if (buf.length < 24) return;
      assert.equal(buf.subarray(0, 24).toString('latin1'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      buf = buf.subarray(24);
      prefaceSeen = true;
    }
    while (buf.length >= 9) {
      const length = buf.readUIntBE(0, 3);
      if (buf.length < 9 + length) break;
      onFrame(buf[3] as number, buf[4] as number, buf.readUInt32BE(5) & 0x7fffffff, buf.subarray(9, 9 + length));
      buf = buf.subarray(9 + length);
    }
  });
}

function waitFor(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 5);
    };
    check();
  });
}

describe('h2 upload client against node:http2', TIMEOUT, () => {
  test('sends the request headers, reports the response, and delivers 8 MiB in order through 1 KiB windows', async () => {
    const received: Buffer[] = [];
    let seenHeaders: IncomingHttpHeaders | undefined;
    const { port } = await h2Server({ initialWindowSize: 1024 }, (stream, headers) => {
      seenHeaders = headers;
      stream.respond({ ':status': 200, 'x-answer': 'ok' });
      stream.on('data', (chunk: Buffer) => received.push(chunk));
    });
    const { connection, rec } = await open(port);
    const sent = createHash('sha256');
    let total = 0;
    let falseReturns = 0;
    for (let i = 0; i < 64; i++) {
      const chunk = Buffer.alloc(128 * 1024, i);
      chunk.writeUInt32BE(i, 0);
      sent.update(chunk);
      total += chunk.length;
      if (!connection.write(chunk)) falseReturns++;
    }
    await waitFor(() => received.reduce((n, c) => n + c.length, 0) === total, 15_000, 'all bytes');
    const got = createHash('sha256');
    for (const c of received) got.update(c);
    assert.equal(got.digest('hex'), sent.digest('hex'));
    assert.equal(seenHeaders?.[':method'], 'POST');
    assert.equal(seenHeaders?.[':path'], '/upload');
    assert.equal(seenHeaders?.['x-test'], 'yes');
    assert.equal(rec.responses.length, 1);
    assert.equal(rec.responses[0]?.[':status'], '200');
    assert.equal(rec.responses[0]?.['x-answer'], 'ok');
    assert.ok(falseReturns > 0, 'writes beyond the window ask the writer to wait');
    await waitFor(() => rec.drains > 0 && connection.backlogBytes === 0, 5000, 'drain');
    assert.deepEqual(rec.closes, []);
    connection.destroy();
  });

  test('a server that stops reading holds the data back; reading again lets it through and drains', async () => {
    let serverStream: ServerHttp2Stream | undefined;
    let bytes = 0;
    const { port } = await h2Server({ initialWindowSize: 16 * 1024 }, (stream) => {
      serverStream = stream;
      stream.respond({ ':status': 200 });
      stream.pause();
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
    });
    const { connection, rec } = await open(port);
    assert.equal(connection.write(Buffer.alloc(2 * 1024 * 1024, 7)), false);
    await waitFor(() => serverStream !== undefined, 2000, 'the stream');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bytes, 0);
    assert.ok(connection.backlogBytes > 0);
    assert.equal(rec.drains, 0);
    serverStream?.resume();
    await waitFor(() => bytes === 2 * 1024 * 1024 && rec.drains === 1, 10_000, 'the data after resume');
    assert.equal(connection.backlogBytes, 0);
    connection.destroy();
  });

  test('PING is answered and timed', async () => {
    const { port } = await h2Server({}, (stream) => stream.respond({ ':status': 200 }));
    const { connection } = await open(port);
    const ms = await new Promise<number>((resolve) => connection.ping(resolve));
    assert.ok(ms >= 0 && ms < 5000, `round trip ${ms} ms`);
    connection.destroy();
  });

  test('a refusal is reported with its status, then the close', async () => {
    const { port } = await h2Server({}, (stream) => {
      stream.respond({ ':status': 412, 'x-etcd-cluster-id': 'abc' });
      stream.end('cluster ID mismatch\n');
    });
    const { rec, closed } = await open(port);
    assert.match(await closed, /stream closed by the peer/);
    assert.equal(rec.responses[0]?.[':status'], '412');
    assert.equal(rec.responses[0]?.['x-etcd-cluster-id'], 'abc');
  });

  test('a reset stream, a GOAWAY and a lost connection each close it once, with the reason', async () => {
    const reset = await h2Server({}, (stream) => {
      stream.respond({ ':status': 200 });
      setTimeout(() => stream.close(h2constants.NGHTTP2_CANCEL), 20);
    });
    const a = await open(reset.port);
    // node:http2 ends its side before the reset: either is a close of the stream.
    assert.match(await a.closed, /stream (reset|closed) by the peer/);

    const goaway = await h2Server({}, (stream) => {
      stream.respond({ ':status': 200 });
      setTimeout(() => stream.session?.goaway(), 20);
    });
    const b = await open(goaway.port);
    assert.match(await b.closed, /going away/);

    let rawSocket: Socket | undefined;
    const lost = await h2Server({}, (stream) => {
      stream.respond({ ':status': 200 });
      setTimeout(() => rawSocket?.destroy(), 20);
    });
    lost.server.on('connection', (socket: Socket) => {
      rawSocket = socket;
    });
    const c = await open(lost.port);
    assert.match(await c.closed, /connection/);
    await new Promise((r) => setTimeout(r, 50));
    for (const x of [a, b, c]) assert.equal(x.rec.closes.length, 1);
    // Writing after the close is refused and does not throw.
    assert.equal(c.connection.write(Buffer.from('late')), false);
  });

  test('destroy() closes without calling back', async () => {
    let serverSawClose = false;
    const { port } = await h2Server({}, (stream) => {
      stream.respond({ ':status': 200 });
      stream.on('close', () => {
        serverSawClose = true;
      });
      stream.resume();
    });
    const { connection, rec } = await open(port);
    await waitFor(() => rec.responses.length === 1, 2000, 'the response');
    connection.destroy();
    await waitFor(() => serverSawClose, 2000, 'the server side close');
    assert.deepEqual(rec.closes, []);
  });
});

describe('h2 upload client against hand-built frames', TIMEOUT, () => {
  test('answers SETTINGS and PING, applies INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE, decodes CONTINUATION', async () => {
    const seen: { type: number; flags: number; stream: number; payload: Buffer }[] = [];
    let server: Socket | undefined;
    const port = await rawServer((socket) => {
      server = socket;
      frameReader(socket, (type, flags, stream, payload) => {
        seen.push({ type, flags, stream, payload: Buffer.from(payload) });
        if (type === HEADERS) {
          // A window of 10 bytes for the stream, frames up to 20 000 bytes, then a ping.
          socket.write(
            settingsFrame([
              [0x4, 10],
              [0x5, 20_000],
            ]),
          );
          socket.write(frame(PING, 0, 0, Buffer.from('12345678')));
          const block = encodeHeaders([
            [':status', '200'],
            ['x-long', 'v'.repeat(100)],
          ]);
          socket.write(frame(HEADERS, 0, 1, block.subarray(0, 10)));
          socket.write(frame(CONTINUATION, END_HEADERS, 1, block.subarray(10)));
        }
      });
    });
    const { connection, rec } = await open(port);
    await waitFor(() => rec.responses.length === 1, 2000, 'the response');
    assert.equal(rec.responses[0]?.['x-long'], 'v'.repeat(100));
    await waitFor(() => seen.some((f) => f.type === SETTINGS && f.flags === ACK), 2000, 'SETTINGS ACK');
    await waitFor(() => seen.some((f) => f.type === PING && f.flags === ACK), 2000, 'PING ACK');
    assert.equal(seen.find((f) => f.type === PING && f.flags === ACK)?.payload.toString(), '12345678');
    // Our own SETTINGS turned push off.
    const ours = seen.find((f) => f.type === SETTINGS && f.flags === 0);
    assert.deepEqual([ours?.payload.readUInt16BE(0), ours?.payload.readUInt32BE(2)], [0x2, 0]);

    // The stream window is 10: of 50 000 bytes, 10 go now, the rest waits for WINDOW_UPDATE.
    assert.equal(connection.write(Buffer.alloc(50_000, 1)), false);
    await new Promise((r) => setTimeout(r, 50));
    const dataNow = seen.filter((f) => f.type === DATA);
    assert.deepEqual(
      dataNow.map((f) => f.payload.length),
      [10],
    );
    assert.equal(rec.drains, 0);
    // More window: the rest arrives in frames of at most 20 000 bytes, and the writer may go on.
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(49_990);
    server?.write(frame(WINDOW_UPDATE, 0, 1, increment));
    await waitFor(
      () => seen.filter((f) => f.type === DATA).reduce((n, f) => n + f.payload.length, 0) === 50_000,
      2000,
      'the rest',
    );
    assert.deepEqual(
      seen.filter((f) => f.type === DATA).map((f) => f.payload.length),
      [10, 20_000, 20_000, 9_990],
    );
    await waitFor(() => rec.drains === 1, 2000, 'drain');
    connection.destroy();
  });

  test('a frame over 16 KiB, a PUSH_PROMISE and DATA before the response are protocol errors', async () => {
    const cases: [string, Buffer][] = [
      ['a frame over 16384 bytes', frame(DATA, 0, 1, Buffer.alloc(20_000))],
      ['PUSH_PROMISE', frame(PUSH_PROMISE, END_HEADERS, 1, Buffer.alloc(4))],
      ['DATA before the response headers', frame(DATA, 0, 1, Buffer.from('x'))],
      ['WINDOW_UPDATE of 0', frame(WINDOW_UPDATE, 0, 1, Buffer.alloc(4))],
      ['HEADERS on stream 3', frame(HEADERS, END_HEADERS, 3, encodeHeaders([[':status', '200']]))],
    ];
    for (const [what, bad] of cases) {
      const goaways: Buffer[] = [];
      const port = await rawServer((socket) => {
        frameReader(socket, (type, _flags, _stream, payload) => {
          if (type === 0x7) goaways.push(Buffer.from(payload));
          if (type === HEADERS) socket.write(bad);
        });
        socket.on('error', () => {});
      });
      const { closed, rec } = await open(port);
      const reason = await closed;
      assert.match(reason, /protocol error/, what);
      assert.match(reason, new RegExp(what.replace(/[()]/g, '.')), what);
      assert.equal(rec.responses.length, 0, what);
      await waitFor(() => goaways.length === 1, 2000, `GOAWAY after ${what}`);
    }
  });

  test('RST_STREAM on the stream closes it with the code', async () => {
    const port = await rawServer((socket) => {
      frameReader(socket, (type) => {
        if (type !== HEADERS) return;
        const code = Buffer.alloc(4);
        code.writeUInt32BE(8);
        socket.write(frame(HEADERS, END_HEADERS, 1, encodeHeaders([[':status', '200']])));
        socket.write(frame(RST_STREAM, 0, 1, code));
      });
    });
    const { closed, rec } = await open(port);
    assert.equal(await closed, 'stream reset by the peer (code 8)');
    assert.equal(rec.responses.length, 1);
  });

  test('connectH2Socket rejects a refused connection, a silent peer in time, and a TLS peer without h2', async () => {
    const refused = await rawServer(() => {});
    servers.pop()?.close();
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(connectH2Socket(`http://127.0.0.1:${refused}`, null, 1000), /ECONNREFUSED/);

    const dir = mkdtempSync(join(tmpdir(), 'h2-client-'));
    try {
      const ca = new TestCa(dir, 'ca');
      const files = ca.issue('server', 'server');
      // Accepts TCP but never finishes the TLS handshake.
      const silent = await rawServer(() => {});
      const started = Date.now();
      await assert.rejects(
        connectH2Socket(`https://127.0.0.1:${silent}`, { ca: readFileSync(ca.cert) }, 300),
        /timed out after 300 ms/,
      );
      assert.ok(Date.now() - started < 2000);

      const http1Only = createTlsServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (socket) =>
        socket.end(),
      );
      await new Promise<void>((resolve) => http1Only.listen(0, '127.0.0.1', resolve));
      servers.push(http1Only);
      const port = (http1Only.address() as AddressInfo).port;
      await assert.rejects(
        connectH2Socket(`https://127.0.0.1:${port}`, { ca: readFileSync(ca.cert) }, 2000),
        /does not speak HTTP\/2/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
