/**
 * The gateway's calls, in-process with handlers made for the test: errors and their HTTP
 * statuses, deadlines and cancellation, metadata, streams (results, errors before and after the
 * first message, back-pressure), requests streamed in a body, and the gRPC metrics the calls
 * leave behind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GrpcError, GrpcStatus } from '../../src/api/errors.ts';
import { STREAM_QUEUE_BYTES_SOFT } from '../../src/api/gateway/gateway.ts';
import { goJson, httpStatusOfCode, MethodTable, serveGateway } from '../../src/api/gateway/index.ts';
import { GrpcServer, type ServerCall, type ServerWritableCall } from '../../src/api/grpc/index.ts';
import { type HttpRequest, type HttpResponse, HttpRouter } from '../../src/api/http.ts';
import { GrpcMetrics } from '../../src/api/metrics/index.ts';
import {
  ElectionService,
  KVService,
  type LeaderRequest,
  type LeaderResponse,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  LeaseService,
  type RangeRequest,
  type RangeResponse,
} from '../../src/proto/index.ts';
import { ServerError, ServerErrorCode } from '../../src/server/errors.ts';
import { MetricsRegistry } from '../../src/server/metrics.ts';
import { parsePrometheusText, sampleValue } from './prom-text.ts';

interface Setup {
  readonly router: HttpRouter;
  readonly grpc: GrpcServer;
  readonly registry: MetricsRegistry;
  readonly handlerErrors: unknown[];
}

function setup(register: (grpc: GrpcServer) => void): Setup {
  const server = new GrpcServer();
  const registry = new MetricsRegistry();
  const metrics = new GrpcMetrics(registry, { extensive: true });
  const table = new MethodTable(server, metrics.wrap);
  register(table.grpc);
  const router = new HttpRouter();
  const handlerErrors: unknown[] = [];
  serveGateway(router, table, { onHandlerError: (err) => handlerErrors.push(err) });
  return { router, grpc: server, registry, handlerErrors };
}

function request(
  path: string,
  body: string,
  options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): HttpRequest {
  return {
    method: 'POST',
    path,
    query: new URLSearchParams(),
    headers: options.headers ?? {},
    body: Buffer.from(body),
    signal: options.signal ?? new AbortController().signal,
  };
}

async function bodyText(response: HttpResponse): Promise<string> {
  const body = response.body;
  if (body === undefined) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  let out = '';
  for await (const chunk of body) out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  return out;
}

const RANGE_OK = (req: RangeRequest): RangeResponse => ({
  header: { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n },
  kvs: [{ key: req.key, createRevision: 3n, modRevision: 3n, version: 1n, value: Buffer.from('<&>'), lease: 0n }],
  more: false,
  count: 1n,
});

function metric(s: Setup, name: string, labels: Record<string, string>): number | undefined {
  return sampleValue(parsePrometheusText(s.registry.render()), name, labels);
}

describe('gateway calls', () => {
  test('a unary call answers jsonpb JSON and counts as a gRPC call', async () => {
    const s = setup((grpc) => grpc.addMethod(KVService.Range, RANGE_OK));
    const res = await s.router.dispatch(request('/v3/kv/range', '{"key":"Zm9v"}'));
    assert.equal(res.status, 200);
    assert.equal(res.headers?.['content-type'], 'application/json');
    assert.equal(
      await bodyText(res),
      '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"kvs":[{"key":"Zm9v","create_revision":"3","mod_revision":"3","version":"1","value":"PCY+"}],"count":"1"}',
    );
    const labels = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Range' };
    assert.equal(metric(s, 'grpc_server_started_total', labels), 1);
    assert.equal(metric(s, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }), 1);
    assert.equal(metric(s, 'grpc_server_handled_total', { ...labels, grpc_code: 'Unavailable' }), 0);
    assert.equal(metric(s, 'grpc_server_msg_received_total', labels), 1);
    assert.equal(metric(s, 'grpc_server_msg_sent_total', labels), 1);
    assert.equal(metric(s, 'grpc_server_handling_seconds_count', labels), 1);
    // Every code of every registered method exists from the start, as grpc_prometheus pre-registers them.
    const put = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put', grpc_code: 'DataLoss' };
    assert.equal(metric(s, 'grpc_server_handled_total', put), undefined);
  });

  test("the server's errors answer with their gRPC status and grpc-gateway's HTTP status", async () => {
    const s = setup((grpc) =>
      grpc.addMethod(KVService.Range, () => {
        throw new ServerError(ServerErrorCode.NoLeader);
      }),
    );
    const res = await s.router.dispatch(request('/v3/kv/range', '{}'));
    assert.equal(res.status, 503);
    assert.equal(await bodyText(res), '{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}');
    const labels = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Range' };
    assert.equal(metric(s, 'grpc_server_handled_total', { ...labels, grpc_code: 'Unavailable' }), 1);
    assert.equal(s.handlerErrors.length, 0);
  });

  test('an unexpected handler failure answers UNKNOWN (500) and is reported', async () => {
    const s = setup((grpc) =>
      grpc.addMethod(KVService.Range, async () => {
        throw new TypeError('boom');
      }),
    );
    const res = await s.router.dispatch(request('/v3/kv/range', '{}'));
    assert.equal(res.status, 500);
    assert.deepEqual(JSON.parse(await bodyText(res)), { error: 'boom', message: 'boom', code: 2 });
    assert.equal(s.handlerErrors.length, 1);
  });

  test("grpc-gateway's mapping of every gRPC code", () => {
    const expected = [200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401];
    assert.deepEqual(
      expected.map((_, code) => httpStatusOfCode(code)),
      expected,
    );
  });

  test('grpc-timeout bounds the call: 504 when it passes, the handler sees its signal abort', async () => {
    let seen: AbortSignal | undefined;
    const s = setup((grpc) =>
      grpc.addMethod(KVService.Range, (_req, call: ServerCall) => {
        seen = call.signal;
        return new Promise<RangeResponse>(() => {});
      }),
    );
    const started = Date.now();
    const res = await s.router.dispatch(request('/v3/kv/range', '{}', { headers: { 'grpc-timeout': '50m' } }));
    assert.ok(Date.now() - started >= 45);
    assert.equal(res.status, 504);
    assert.deepEqual(JSON.parse(await bodyText(res)), {
      error: 'context deadline exceeded',
      message: 'context deadline exceeded',
      code: 4,
    });
    assert.equal(seen?.aborted, true);
    assert.equal((seen?.reason as GrpcError | undefined)?.code, GrpcStatus.DEADLINE_EXCEEDED);
    const bad = await s.router.dispatch(request('/v3/kv/range', '{}', { headers: { 'grpc-timeout': 'soon' } }));
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(await bodyText(bad)).message, 'invalid grpc-timeout: soon');
  });

  test('a client that goes away cancels the call; metadata reaches the handler', async () => {
    let call: ServerCall | undefined;
    const s = setup((grpc) =>
      grpc.addMethod(KVService.Range, (_req, c) => {
        call = c;
        return new Promise<RangeResponse>(() => {});
      }),
    );
    const client = new AbortController();
    const pending = s.router.dispatch(
      request('/v3/kv/range', '{}', {
        signal: client.signal,
        headers: { authorization: 'tok', 'grpc-metadata-x-trace': 'abc', cookie: 'no' },
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(call?.metadata, { authorization: 'tok', 'x-trace': 'abc' });
    assert.equal(call?.cancelled, false);
    client.abort();
    const res = await pending;
    assert.equal(call?.cancelled, true);
    assert.equal((call?.signal.reason as GrpcError | undefined)?.code, GrpcStatus.CANCELLED);
    assert.equal(res.status, 408);
  });

  test('a method without a handler answers UNIMPLEMENTED, unary and streaming alike', async () => {
    const s = setup(() => {});
    const unary = await s.router.dispatch(request('/v3/kv/compaction', '{}'));
    assert.equal(unary.status, 501);
    const message = 'method etcdserverpb.KV/Compact is not implemented yet';
    assert.deepEqual(JSON.parse(await bodyText(unary)), { error: message, message, code: 12 });
    const stream = await s.router.dispatch(request('/v3/maintenance/snapshot', '{}'));
    assert.equal(stream.status, 501);
    assert.deepEqual(JSON.parse(await bodyText(stream)), {
      error: {
        grpc_code: 12,
        http_code: 501,
        message: 'method etcdserverpb.Maintenance/Snapshot is not implemented yet',
        http_status: 'Not Implemented',
      },
    });
  });

  test('a server stream: one result per line, then the error chunk when it fails after messages', async () => {
    const s = setup((grpc) =>
      grpc.addMethod(ElectionService.Observe, async (req: LeaderRequest, call: ServerWritableCall<LeaderResponse>) => {
        for (let i = 1; i <= 2; i++) {
          call.write({
            header: undefined,
            kv: {
              key: req.name,
              createRevision: BigInt(i),
              modRevision: 0n,
              version: 0n,
              value: new Uint8Array(0),
              lease: 0n,
            },
          });
        }
        throw new GrpcError(GrpcStatus.NOT_FOUND, 'election: no leader');
      }),
    );
    const res = await s.router.dispatch(request('/v3/election/observe', '{"name":"ZQ=="}'));
    assert.equal(res.status, 200);
    assert.equal(res.headers?.['grpc-metadata-content-type'], 'application/grpc');
    assert.equal(
      await bodyText(res),
      '{"result":{"kv":{"key":"ZQ==","create_revision":"1"}}}\n' +
        '{"result":{"kv":{"key":"ZQ==","create_revision":"2"}}}\n' +
        '{"error":{"grpc_code":5,"http_code":404,"message":"election: no leader","http_status":"Not Found"}}',
    );
    const labels = { grpc_type: 'server_stream', grpc_service: 'v3electionpb.Election', grpc_method: 'Observe' };
    assert.equal(metric(s, 'grpc_server_msg_sent_total', labels), 2);
    assert.equal(metric(s, 'grpc_server_handled_total', { ...labels, grpc_code: 'NotFound' }), 1);
  });

  test('a stream that fails before its first message answers the error status', async () => {
    const s = setup((grpc) =>
      grpc.addMethod(ElectionService.Observe, async () => {
        throw new ServerError(ServerErrorCode.NoLeader);
      }),
    );
    const res = await s.router.dispatch(request('/v3/election/observe', '{}'));
    assert.equal(res.status, 503);
    assert.equal(
      await bodyText(res),
      '{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}',
    );
  });

  test('streamed requests: each JSON value of the body is one request; a bad later one ends the stream', async () => {
    const s = setup((grpc) =>
      grpc.addMethod(
        LeaseService.LeaseKeepAlive,
        async (requests: AsyncIterable<LeaseKeepAliveRequest>, call: ServerWritableCall<LeaseKeepAliveResponse>) => {
          for await (const r of requests) call.write({ header: undefined, ID: r.ID, TTL: r.ID * 10n });
        },
      ),
    );
    const res = await s.router.dispatch(
      request('/v3/lease/keepalive', '{"ID":1} {"ID":"2"}\n{"ID":3}{"ID":"x"}{"ID":5}'),
    );
    assert.equal(res.status, 200);
    const lines = (await bodyText(res))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { result: { ID: string } });
    assert.deepEqual(
      lines.map((l) => l.result.ID),
      ['1', '2', '3'],
    );
    const labels = { grpc_type: 'bidi_stream', grpc_service: 'etcdserverpb.Lease', grpc_method: 'LeaseKeepAlive' };
    assert.equal(metric(s, 'grpc_server_msg_received_total', labels), 3);
    assert.equal(metric(s, 'grpc_server_msg_sent_total', labels), 3);
    // A first request that does not decode answers as grpc-gateway's plain error does: UNKNOWN.
    const bad = await s.router.dispatch(request('/v3/lease/keepalive', '{"ID":true}'));
    assert.equal(bad.status, 500);
    assert.equal(JSON.parse(await bodyText(bad)).code, 2);
  });

  test('a stream is held back when the client reads slowly (write() returns false, drain() waits)', async () => {
    const size = 64 * 1024;
    let written = 0;
    let sawFalse = false;
    const total = 64;
    const s = setup((grpc) =>
      grpc.addMethod(ElectionService.Observe, async (_req, call: ServerWritableCall<LeaderResponse>) => {
        const value = new Uint8Array(size);
        while (written < total) {
          written++;
          const ok = call.write({
            header: undefined,
            kv: { key: new Uint8Array(0), createRevision: 0n, modRevision: 0n, version: 0n, value, lease: 0n },
          });
          if (!ok) {
            sawFalse = true;
            await call.drain();
          }
        }
      }),
    );
    const res = await s.router.dispatch(request('/v3/election/observe', '{}'));
    assert.equal(res.status, 200);
    // Nothing read yet: the handler stopped once about STREAM_QUEUE_BYTES_SOFT was queued.
    await new Promise((r) => setTimeout(r, 20));
    const perMessage = Math.ceil((size * 4) / 3);
    assert.ok(sawFalse, 'write() said wait');
    assert.ok(written * perMessage <= STREAM_QUEUE_BYTES_SOFT + 2 * perMessage, `${written} messages queued`);
    assert.ok(written < total);
    const lines = (await bodyText(res)).trim().split('\n');
    assert.equal(lines.length, total);
    assert.equal(written, total);
  });

  test('JSON strings are escaped as Go escapes them', () => {
    assert.equal(
      goJson({ s: '<a href="x">&</a>\u2028\b\f\n\\b' }),
      '{"s":"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e\\u2028\\u0008\\u000c\\n\\\\b"}',
    );
  });

  test('404 for an unknown route, 405 for another method than POST', async () => {
    const s = setup(() => {});
    const missing = await s.router.dispatch(request('/v3/kv/rangee', '{}'));
    assert.equal(missing.status, 404);
    assert.equal(await bodyText(missing), 'Not Found\n');
    const get = await s.router.dispatch({ ...request('/v3beta/kv/range', ''), method: 'GET' });
    assert.equal(get.status, 405);
    assert.equal(await bodyText(get), 'Method Not Allowed\n');
  });
});
