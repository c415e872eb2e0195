import assert from 'node:assert/strict';
import { getDefaultHighWaterMark } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { GrpcError, GrpcStatus } from '../../src/api/errors.ts';
import { MethodTable } from '../../src/api/gateway/methods.ts';
import { GrpcServer, type ServerCall, type ServerWritableCall } from '../../src/api/grpc/index.ts';
import { KVService, WatchService } from '../../src/proto/services.ts';
import { call, delay, frame, openCall, startGrpc, type TestServer, textMethod } from './grpc-helpers.ts';

const Echo = textMethod('/test.Echo/Unary', false, false);
const Count = textMethod('/test.Echo/Count', false, true);
const Join = textMethod('/test.Echo/Join', true, false);
const Chat = textMethod('/test.Echo/Chat', true, true);
const Fail = textMethod('/test.Echo/Fail', false, false);
const Slow = textMethod('/test.Echo/Slow', false, false);
const Flood = textMethod('/test.Echo/Flood', false, true);
const FloodBuffered = textMethod('/test.Echo/FloodBuffered', false, true);
const Declared = textMethod('/test.Echo/Declared', false, false);
const Lazy = textMethod('/test.Echo/Lazy', true, false);

const MAX_RECEIVE = 64 * 1024;

describe('GrpcServer over node:http2', () => {
  let t: TestServer;
  const cancelled: { reason: unknown }[] = [];
  const handlerErrors: string[] = [];
  let floodPaused = 0;
  /** Writes that returned true before the first false, per flood method. */
  const firstPause: Record<string, number> = {};
  let lazyGate: () => void = () => {};

  before(async () => {
    const grpc = new GrpcServer({
      maxReceiveMessageBytes: MAX_RECEIVE,
      onHandlerError: (_err, path) => handlerErrors.push(path),
    });
    grpc.addMethod(Echo, (req: string) => `echo:${req}`);
    grpc.addMethod(Count, async (req: string, c: ServerWritableCall<string>) => {
      for (let i = 0; i < Number(req); i++) c.write(`n${i}`);
    });
    grpc.addMethod(Join, async (reqs: AsyncIterable<string>) => {
      const all: string[] = [];
      for await (const r of reqs) all.push(r);
      return all.join('+');
    });
    grpc.addMethod(Chat, async (reqs: AsyncIterable<string>, c: ServerWritableCall<string>) => {
      for await (const r of reqs) c.write(`re:${r}`);
      c.write('bye');
    });
    grpc.addMethod(Fail, (req: string) => {
      if (req === 'grpc') throw new GrpcError(GrpcStatus.FAILED_PRECONDITION, 'etcdserver: not leader');
      if (req === 'async') return Promise.reject(new Error('boom async'));
      if (req === 'translated') throw Object.assign(new Error('x'), { code: 'LEASE_NOT_FOUND' });
      if (req === 'unicode') throw new GrpcError(GrpcStatus.INVALID_ARGUMENT, 'bad key: ключ 100%\n');
      throw new Error('boom');
    });
    grpc.addMethod(Slow, (_req: string, c: ServerCall) => {
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => resolve('late'), 5000);
        c.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          cancelled.push({ reason: c.signal.reason });
          reject(c.signal.reason);
        });
      });
    });
    const flood = async (req: string, c: ServerWritableCall<string>) => {
      const chunk = 'x'.repeat(16 * 1024);
      for (let i = 0; i < Number(req); i++) {
        if (!c.write(chunk)) {
          firstPause[c.path] ??= i;
          floodPaused++;
          await c.drain();
        }
      }
    };
    grpc.addMethod(Flood, flood);
    grpc.addMethod(FloodBuffered, flood, { sendBufferBytes: 512 * 1024 });
    grpc.addMethod(Lazy, async (reqs: AsyncIterable<string>) => {
      await new Promise<void>((resolve) => {
        lazyGate = resolve;
      });
      let count = 0;
      let bytes = 0;
      for await (const r of reqs) {
        count++;
        bytes += r.length;
      }
      return `${count}/${bytes}`;
    });
    grpc.declareMethods([Declared, Echo]);
    t = await startGrpc(grpc);
  });
  after(() => t.close());

  test('unary: one request, one response, status OK in trailers', async () => {
    const r = await call(t.session, Echo.path, ['hello']);
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, ['echo:hello']);
    assert.equal(r.headers?.[':status'], 200);
    assert.equal(r.headers?.['content-type'], 'application/grpc');
    assert.equal(r.trailersOnly, false);
  });

  test('server streaming: every message in order, then OK', async () => {
    const r = await call(t.session, Count.path, ['5']);
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, ['n0', 'n1', 'n2', 'n3', 'n4']);
    const none = await call(t.session, Count.path, ['0']);
    assert.equal(none.status, 0);
    assert.equal(none.trailersOnly, true);
    assert.deepEqual(none.messages, []);
  });

  test('client streaming: all requests reach the handler, one response', async () => {
    const r = await call(t.session, Join.path, ['a', 'b', 'c']);
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, ['a+b+c']);
  });

  test('bidi: responses interleave with requests sent one at a time', async () => {
    const { stream, result } = openCall(t.session, Chat.path);
    const seen: string[] = [];
    stream.on('data', (chunk: Buffer) => seen.push(chunk.toString('latin1')));
    stream.write(frame('one'));
    while (seen.length === 0) await delay(5);
    assert.match(seen.join(''), /re:one/);
    stream.write(frame('two'));
    stream.end();
    const r = await result;
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, ['re:one', 're:two', 'bye']);
  });

  test('a message split across DATA frames, byte by byte, is reassembled', async () => {
    const { stream, result } = openCall(t.session, Join.path);
    const bytes = Buffer.concat([frame('split-me'), frame(''), frame('é')]);
    for (let i = 0; i < bytes.length; i++) {
      stream.write(bytes.subarray(i, i + 1));
      if (i % 4 === 0) await delay(1);
    }
    stream.end();
    const r = await result;
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, ['split-me++é']);
  });

  test('several messages in one chunk are all delivered', async () => {
    const { stream, result } = openCall(t.session, Chat.path);
    stream.end(Buffer.concat(['a', 'b', 'c', 'd'].map(frame)));
    const r = await result;
    assert.deepEqual(r.messages, ['re:a', 're:b', 're:c', 're:d', 'bye']);
  });

  test('a handler error answers its status; the server keeps serving', async () => {
    const grpcErr = await call(t.session, Fail.path, ['grpc']);
    assert.equal(grpcErr.status, GrpcStatus.FAILED_PRECONDITION);
    assert.equal(grpcErr.message, 'etcdserver: not leader');
    assert.equal(grpcErr.trailersOnly, true);

    const plain = await call(t.session, Fail.path, ['plain']);
    assert.equal(plain.status, GrpcStatus.UNKNOWN);
    assert.equal(plain.message, 'boom');
    const rejected = await call(t.session, Fail.path, ['async']);
    assert.equal(rejected.status, GrpcStatus.UNKNOWN);
    assert.equal(rejected.message, 'boom async');
    assert.deepEqual(handlerErrors.slice(-2), [Fail.path, Fail.path]);

    const translated = await call(t.session, Fail.path, ['translated']);
    assert.equal(translated.status, GrpcStatus.NOT_FOUND);
    assert.equal(translated.message, 'etcdserver: requested lease not found');

    const after = await call(t.session, Echo.path, ['still-alive']);
    assert.deepEqual(after.messages, ['echo:still-alive']);
  });

  test('grpc-message is percent-encoded on the wire', async () => {
    const r = await call(t.session, Fail.path, ['unicode']);
    const raw = r.headers?.['grpc-message'];
    assert.equal(raw, 'bad key: %D0%BA%D0%BB%D1%8E%D1%87 100%25%0A');
    assert.equal(r.message, 'bad key: ключ 100%\n');
  });

  test('unknown paths answer UNIMPLEMENTED as grpc-go words it', async () => {
    const method = await call(t.session, '/test.Echo/Nope', ['x']);
    assert.equal(method.status, GrpcStatus.UNIMPLEMENTED);
    assert.equal(method.message, 'unknown method Nope for service test.Echo');
    const service = await call(t.session, '/test.Other/Nope', ['x']);
    assert.equal(service.status, GrpcStatus.UNIMPLEMENTED);
    assert.equal(service.message, 'unknown service test.Other');
    const malformed = await call(t.session, '/nonsense', ['x']);
    assert.equal(malformed.status, GrpcStatus.UNIMPLEMENTED);
    assert.equal(malformed.message, 'malformed method name: "/nonsense"');
  });

  test('a declared method without a handler is UNIMPLEMENTED "not implemented yet"; a served one keeps its handler', async () => {
    const r = await call(t.session, Declared.path, ['x']);
    assert.equal(r.status, GrpcStatus.UNIMPLEMENTED);
    assert.equal(r.message, 'method test.Echo/Declared is not implemented yet');
    const served = await call(t.session, Echo.path, ['x']);
    assert.deepEqual(served.messages, ['echo:x']);
  });

  test('a message over the receive limit answers RESOURCE_EXHAUSTED before it is buffered', async () => {
    const big = 'x'.repeat(MAX_RECEIVE + 1);
    const r = await call(t.session, Echo.path, [big]);
    assert.equal(r.status, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(r.message, `grpc: received message larger than max (${MAX_RECEIVE + 1} vs. ${MAX_RECEIVE})`);
    const atLimit = await call(t.session, Echo.path, ['y'.repeat(MAX_RECEIVE)]);
    assert.equal(atLimit.status, 0);
    assert.equal(atLimit.messages[0]?.length, MAX_RECEIVE + 5);
  });

  test('grpc-timeout: DEADLINE_EXCEEDED and the handler is aborted', async () => {
    const before = cancelled.length;
    const started = Date.now();
    const r = await call(t.session, Slow.path, ['x'], { 'grpc-timeout': '100m' });
    assert.equal(r.status, GrpcStatus.DEADLINE_EXCEEDED);
    assert.equal(r.message, 'context deadline exceeded');
    assert.ok(Date.now() - started < 2000);
    assert.equal(cancelled.length, before + 1);
    assert.equal((cancelled.at(-1)!.reason as GrpcError).code, GrpcStatus.DEADLINE_EXCEEDED);
  });

  test('a long grpc-timeout uses the shared tick and still fires', async () => {
    const before = cancelled.length;
    const started = Date.now();
    const r = await call(t.session, Slow.path, ['x'], { 'grpc-timeout': '1S' });
    const took = Date.now() - started;
    assert.equal(r.status, GrpcStatus.DEADLINE_EXCEEDED);
    assert.ok(took >= 950 && took < 2500, `took ${took}ms`);
    assert.equal(cancelled.length, before + 1);
  });

  test('a malformed grpc-timeout is refused', async () => {
    const r = await call(t.session, Echo.path, ['x'], { 'grpc-timeout': '12x' });
    assert.equal(r.status, GrpcStatus.INTERNAL);
    assert.match(r.message, /malformed grpc-timeout/);
  });

  test('client cancellation (RST_STREAM) aborts the handler with CANCELLED', async () => {
    const before = cancelled.length;
    const { stream, result } = openCall(t.session, Slow.path);
    stream.end(frame('x'));
    await delay(50);
    stream.close(8); // NGHTTP2_CANCEL
    await result.catch(() => undefined);
    for (let i = 0; i < 100 && cancelled.length === before; i++) await delay(10);
    assert.equal(cancelled.length, before + 1);
    const reason = cancelled.at(-1)!.reason as GrpcError;
    assert.equal(reason.code, GrpcStatus.CANCELLED);
    assert.equal(reason.message, 'context canceled');
  });

  test('streaming writes respect back-pressure (write() false, drain() resumes)', async () => {
    const before = floodPaused;
    const { stream, result } = openCall(t.session, Flood.path);
    stream.end(frame('400'));
    // Read slowly at first so the server's buffer fills.
    stream.pause();
    await delay(200);
    stream.resume();
    const r = await result;
    assert.equal(r.status, 0);
    assert.equal(r.messages.length, 400);
    assert.ok(floodPaused > before, 'the handler saw write() return false');
  });

  test('a method with a send buffer accepts that much before write() returns false', async () => {
    for (const method of [Flood, FloodBuffered]) {
      delete firstPause[method.path];
      const { stream, result } = openCall(t.session, method.path);
      stream.end(frame('100'));
      stream.pause();
      await delay(200);
      stream.resume();
      const r = await result;
      assert.equal(r.status, 0);
      assert.equal(r.messages.length, 100);
    }
    // 16 KiB messages: the stream's own mark (Node's default: 16 KiB on Node 20, 64 KiB from
    // Node 22) is passed after a write or four, 512 KiB after about 32.
    const defaultWrites = Math.ceil(getDefaultHighWaterMark(false) / (16 * 1024));
    assert.ok(
      firstPause[Flood.path]! <= defaultWrites + 1,
      `default: first false after ${firstPause[Flood.path]} writes (stream mark: ${defaultWrites} writes)`,
    );
    assert.ok(firstPause[FloodBuffered.path]! >= 28, `buffered: first false after ${firstPause[FloodBuffered.path]}`);
    assert.throws(() => new GrpcServer().addMethod(Flood, async () => {}, { sendBufferBytes: -1 }), RangeError);
    // Services register through a method table (metrics, the gateway); it passes the options on.
    const table = new MethodTable(new GrpcServer(), (_desc, handler) => handler);
    assert.throws(() => table.grpc.addMethod(Flood, async () => {}, { sendBufferBytes: -1 }), RangeError);
    assert.throws(() => new GrpcServer().addMethod(Flood, async () => {}, { streamWriteMarkBytes: -1 }), RangeError);
    assert.throws(() => new GrpcServer().addMethod(Flood, async () => {}, { streamWriteMarkBytes: 0.5 }), RangeError);
  });

  test('a handler that does not read pauses the request stream; nothing is lost when it reads', async () => {
    const { stream, result } = openCall(t.session, Lazy.path);
    const message = frame('m'.repeat(1024));
    for (let i = 0; i < 2000; i++) stream.write(message);
    stream.end();
    await delay(150);
    // 2 MB against a 64-message queue and a 64 KiB window: the server stops reading, so
    // most of it is still waiting on the client side.
    assert.ok(stream.writableLength > 1024 * 1024, `client still holds ${stream.writableLength} bytes`);
    lazyGate();
    const r = await result;
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, [`2000/${2000 * 1024}`]);
  });

  test('gzip-compressed requests are inflated; unknown encodings and bad flags are refused', async () => {
    const payload = gzipSync(Buffer.from('zipped'));
    const framed = Buffer.alloc(5 + payload.length);
    framed[0] = 1;
    framed.writeUInt32BE(payload.length, 1);
    payload.copy(framed, 5);
    const g = openCall(t.session, Echo.path, { 'grpc-encoding': 'gzip' });
    g.stream.end(framed);
    assert.deepEqual((await g.result).messages, ['echo:zipped']);

    const snappy = await call(t.session, Echo.path, ['x'], { 'grpc-encoding': 'snappy' });
    assert.equal(snappy.status, GrpcStatus.UNIMPLEMENTED);
    assert.equal(snappy.message, 'grpc: Decompressor is not installed for grpc-encoding "snappy"');

    const identity = openCall(t.session, Echo.path);
    identity.stream.end(framed);
    const r = await identity.result;
    assert.equal(r.status, GrpcStatus.INTERNAL);
    assert.equal(r.message, 'grpc: compressed flag set with identity or empty encoding');
  });

  test('an undecodable request answers INTERNAL "error unmarshalling request"', async () => {
    const r = await call(t.session, Echo.path, ['undecodable']);
    assert.equal(r.status, GrpcStatus.INTERNAL);
    assert.equal(r.message, 'grpc: error unmarshalling request: bad request bytes');
  });

  test('a unary call whose stream ends without a message answers INTERNAL', async () => {
    const { stream, result } = openCall(t.session, Echo.path);
    stream.end(Buffer.from([0, 0, 0])); // half a frame header
    const r = await result;
    assert.equal(r.status, GrpcStatus.INTERNAL);
    assert.match(r.message, /ended in the middle of a message/);
  });

  test('a call whose client never half-closes is reset after its status (no leaked stream)', async () => {
    const { stream, result } = openCall(t.session, Count.path);
    stream.write(frame('1'));
    const r = await result;
    assert.equal(r.status, 0);
    assert.deepEqual(r.messages, ['n0']);
  });
});

describe('GrpcServer registration', () => {
  test('a second handler for a path is a programmer error; malformed paths are refused', () => {
    const grpc = new GrpcServer();
    grpc.addMethod(Echo, (r: string) => r);
    assert.throws(() => grpc.addMethod(Echo, (r: string) => r), /already has a handler/);
    assert.throws(() => grpc.addMethod(textMethod('nope', false, false), (r: string) => r), /must look like/);
    assert.throws(() => new GrpcServer({ maxReceiveMessageBytes: 0 }), RangeError);
  });

  test("every etcd method can be declared, and the service table's descriptors type their handlers", async () => {
    const grpc = new GrpcServer();
    grpc.addMethod(KVService.Range, (req) => ({
      header: undefined,
      kvs: [],
      more: false,
      count: BigInt(req.key.length),
    }));
    grpc.declareMethods(Object.values(KVService));
    grpc.declareMethods(Object.values(WatchService));
    assert.equal(grpc.serves(KVService.Range.path), true);
    assert.equal(grpc.serves(KVService.Put.path), false);
    const t = await startGrpc(grpc);
    try {
      const { stream, result } = openCall(t.session, KVService.Put.path);
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      const r = await result;
      assert.equal(r.status, GrpcStatus.UNIMPLEMENTED);
      assert.equal(r.message, 'method etcdserverpb.KV/Put is not implemented yet');
      const range = openCall(t.session, KVService.Range.path);
      range.stream.end(frame('\n\x03abc'));
      const rr = await range.result;
      assert.equal(rr.status, 0);
      const decoded = KVService.Range.decodeResponse(rr.raw[0]!);
      assert.equal(decoded.count, 3n);
    } finally {
      await t.close();
    }
  });
});
