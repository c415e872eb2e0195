import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { type AddressInfo, createServer as createNetServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GrpcStatus } from '../../src/api/errors.ts';
import { GrpcServer } from '../../src/api/grpc/index.ts';
import { addEtcdEndpoints, type HealthReport, HttpRouter } from '../../src/api/http.ts';
import { MultiplexServer } from '../../src/embed/serve.ts';
import { readAnswer } from '../helpers/h2-answer.ts';
import { call, delay, selfSignedCert, textMethod } from './grpc-helpers.ts';

const Echo = textMethod('/test.Echo/Unary', false, false);

interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, path: string, method = 'GET', body?: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('one port, gRPC (HTTP/2) and HTTP/1.1', () => {
  let server: MultiplexServer;
  let url: string;
  let health: HealthReport = { healthy: true, reason: '' };

  before(async () => {
    const grpc = new GrpcServer();
    grpc.addMethod(Echo, (req: string) => `echo:${req}`);
    const http = addEtcdEndpoints(new HttpRouter({ maxBodyBytes: 1024 }), { health: () => health });
    http.route('/echo-body', ['POST'], (req) => ({ status: 200, body: req.body }));
    http.prefix('/v3/', null, (req) => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: (async function* () {
        yield '{"path":';
        yield JSON.stringify(req.path);
        yield '}';
      })(),
    }));
    server = new MultiplexServer({
      grpc,
      http,
      maxConcurrentStreams: 100,
      keepalive: { intervalMs: 0, timeoutMs: 0 },
      tls: null,
    });
    const listener = await server.listen('http://127.0.0.1:0');
    url = listener.url;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(url, 'http://127.0.0.1:0');
  });
  after(() => server.close(500));

  test('GET /version over HTTP/1.1 answers etcd 3.5 JSON', async () => {
    const r = await get(url, '/version');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(r.body), { etcdserver: '3.5.0', etcdcluster: '3.5.0' });
  });

  test('/health, /livez and /readyz follow the health check; 404 and 405 as Go answers them', async () => {
    health = { healthy: true, reason: '' };
    const ok = await get(url, '/health');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '{"health":"true","reason":""}');
    assert.equal((await get(url, '/livez')).body, 'ok\n');
    assert.equal((await get(url, '/readyz')).body, 'ok\n');

    health = { healthy: false, reason: 'RAFT NO LEADER' };
    const bad = await get(url, '/health');
    assert.equal(bad.status, 503);
    assert.equal(bad.body, '{"health":"false","reason":"RAFT NO LEADER"}\n');
    assert.equal((await get(url, '/readyz')).status, 503);
    assert.equal((await get(url, '/livez')).status, 200);

    const missing = await get(url, '/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body, '404 page not found\n');
    const wrongMethod = await get(url, '/version', 'POST');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'GET');
  });

  test('request bodies are bounded; streaming bodies are written as they come', async () => {
    const echoed = await get(url, '/echo-body', 'POST', 'hello body');
    assert.equal(echoed.body, 'hello body');
    const tooBig = await get(url, '/echo-body', 'POST', 'x'.repeat(2048));
    assert.equal(tooBig.status, 413);
    const streamed = await get(url, '/v3/kv/range?x=1', 'POST', '{}');
    assert.deepEqual(JSON.parse(streamed.body), { path: '/v3/kv/range' });
  });

  test('gRPC and plain HTTP/2 requests on the same port and the same connection', async () => {
    const session = h2connect(url);
    try {
      const r = await call(session, Echo.path, ['multiplexed']);
      assert.equal(r.status, 0);
      assert.deepEqual(r.messages, ['echo:multiplexed']);
      const req = session.request({ ':path': '/version' });
      req.end();
      const plain = await readAnswer(req);
      assert.equal(plain.status, 200);
      assert.deepEqual(JSON.parse(plain.body), { etcdserver: '3.5.0', etcdcluster: '3.5.0' });
    } finally {
      session.destroy();
    }
  });

  test('a preface that arrives in pieces is still recognised as HTTP/2', async () => {
    // A proxy that forwards the client's first bytes in three separate writes.
    const port = Number(new URL(url).port);
    const proxy = createNetServer((client) => {
      const upstream = netConnect(port, '127.0.0.1');
      upstream.setNoDelay(true);
      let first = true;
      client.on('data', async (chunk: Buffer) => {
        if (!first) {
          upstream.write(chunk);
          return;
        }
        first = false;
        client.pause();
        upstream.write(chunk.subarray(0, 3));
        await delay(20);
        upstream.write(chunk.subarray(3, 10));
        await delay(20);
        upstream.write(chunk.subarray(10));
        client.resume();
      });
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const session = h2connect(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    session.on('error', () => {});
    try {
      const r = await call(session, Echo.path, ['pieces']);
      assert.deepEqual(r.messages, ['echo:pieces']);
    } finally {
      session.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  test('a connection that is neither (garbage bytes) gets an HTTP/1.1 400 and the server stays up', async () => {
    const port = Number(new URL(url).port);
    const reply = await new Promise<string>((resolve) => {
      const socket = netConnect(port, '127.0.0.1', () => socket.write('\x16\x03\x01garbage\r\n\r\n'));
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.equal((await get(url, '/version')).status, 200);
  });
});

describe('listeners', () => {
  test('several URLs, a unix socket, and a graceful close that lets a call finish', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-serve-'));
    const grpc = new GrpcServer();
    let release: () => void = () => {};
    grpc.addMethod(
      Echo,
      (req: string) =>
        new Promise<string>((resolve) => {
          release = () => resolve(`late:${req}`);
        }),
    );
    const server = new MultiplexServer({
      grpc,
      http: addEtcdEndpoints(new HttpRouter(), { health: () => ({ healthy: true, reason: '' }) }),
      maxConcurrentStreams: 10,
      keepalive: { intervalMs: 50, timeoutMs: 1000 },
      tls: null,
    });
    try {
      const a = await server.listen('http://127.0.0.1:0');
      const b = await server.listen('http://localhost:0');
      const all = await server.listen('http://0.0.0.0:0');
      assert.match(all.url, /^http:\/\/0\.0\.0\.0:[1-9]\d*$/);
      assert.equal((await get(all.url.replace('0.0.0.0', '127.0.0.1'), '/version')).status, 200);
      const socketPath = join(dir, 'etcd.sock');
      const u = await server.listen(`unix://${socketPath}`);
      assert.equal(u.url, `unix://${socketPath}`);
      assert.notEqual(a.url, b.url);
      assert.equal((await get(a.url, '/version')).status, 200);
      assert.equal((await get(b.url.replace('localhost', '127.0.0.1'), '/version')).status, 200);
      const viaUnix = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ socketPath, path: '/version' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(viaUnix, 200);

      // Keepalive pings flow while a call is in flight; the close waits for the call.
      const session = h2connect(a.url);
      session.on('error', () => {});
      const pending = call(session, Echo.path, ['in-flight']);
      await delay(150);
      const closing = server.close(2000);
      await delay(20);
      release();
      const r = await pending;
      assert.equal(r.status, 0);
      assert.deepEqual(r.messages, ['late:in-flight']);
      await closing;
      session.destroy();
      await assert.rejects(get(a.url, '/version'));
    } finally {
      await server.close(100);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('https: ALPN h2 for gRPC and HTTP/1.1 on the same TLS port', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { cert, key } = selfSignedCert(dir);
    const grpc = new GrpcServer();
    grpc.addMethod(Echo, (req: string) => `tls:${req}`);
    const server = new MultiplexServer({
      grpc,
      http: addEtcdEndpoints(new HttpRouter(), { health: () => ({ healthy: true, reason: '' }) }),
      maxConcurrentStreams: 10,
      keepalive: { intervalMs: 0, timeoutMs: 0 },
      tls: { cert: readFileSync(cert), key: readFileSync(key) },
    });
    try {
      const l = await server.listen('https://127.0.0.1:0');
      assert.match(l.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = readFileSync(cert);
      const session = h2connect(l.url, { ca });
      session.on('error', () => {});
      const r = await call(session, Echo.path, ['secure']);
      session.destroy();
      assert.deepEqual(r.messages, ['tls:secure']);
      const { request: httpsRequest } = await import('node:https');
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(`${l.url}/version`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
    } finally {
      await server.close(100);
    }
  });

  test('gRPC on an HTTP-only server is a 404, not a crash', async () => {
    const server = new MultiplexServer({
      grpc: null,
      http: null,
      maxConcurrentStreams: 10,
      keepalive: { intervalMs: 0, timeoutMs: 0 },
      tls: null,
    });
    try {
      const l = await server.listen('http://127.0.0.1:0');
      const session = h2connect(l.url);
      session.on('error', () => {});
      const r = await call(session, Echo.path, ['x']);
      session.destroy();
      assert.equal(r.headers?.[':status'], 404);
      assert.equal(r.status, null);
      assert.equal((await get(l.url, '/version')).status, 404);
      assert.notEqual(GrpcStatus.OK, r.status);
    } finally {
      await server.close(100);
    }
  });
});
