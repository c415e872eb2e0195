import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GrpcStatus } from '../../src/api/errors.ts';
import { DataDirError, type MemberService, startMember } from '../../src/embed/index.ts';
import { allMethods, KVService, RangeResponse } from '../../src/proto/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { call, frame, openCall, selfSignedCert } from './grpc-helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-embed-'));
after(() => rmSync(root, { recursive: true, force: true }));

const LOOPBACK = ['http://127.0.0.1:0'];

function getJson(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    })
      .on('error', reject)
      .end();
  });
}

test('a member on port 0: bound URLs, every etcd method UNIMPLEMENTED, HTTP endpoints, lock released on close', async () => {
  const dataDir = join(root, 'm1');
  const member = await startMember(
    { name: 'm1', dataDir, listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK, listenMetricsUrls: LOOPBACK },
    { logger: createSilentLogger() },
  );
  try {
    assert.equal(member.clientUrls.length, 1);
    assert.match(member.clientUrls[0]!, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    assert.match(member.peerUrls[0]!, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    assert.equal(member.metricsUrls.length, 1);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(member.grpc.paths().length, allMethods.length);

    const session = connect(member.clientUrls[0]!);
    session.on('error', () => {});
    try {
      for (const method of [KVService.Range, KVService.Put]) {
        const r = await call(session, method.path, ['']);
        assert.equal(r.status, GrpcStatus.UNIMPLEMENTED);
        assert.equal(r.message, `method ${method.service}/${method.method} is not implemented yet`);
      }
    } finally {
      session.destroy();
    }
    const version = await getJson(`${member.clientUrls[0]}/version`);
    assert.deepEqual(version.body, { etcdserver: '3.5.0', etcdcluster: '3.5.0' });
    const health = await getJson(`${member.metricsUrls[0]}/health`);
    assert.equal(health.status, 503);
    assert.deepEqual(health.body, { health: 'false', reason: 'RAFT NO LEADER' });
    assert.equal((await getJson(`${member.peerUrls[0]}/version`)).status, 200);

    await assert.rejects(
      startMember(
        { name: 'm1b', dataDir, listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK },
        { logger: createSilentLogger() },
      ),
      (err: unknown) => err instanceof DataDirError && err.code === 'ERR_DATA_DIR_LOCKED',
    );
  } finally {
    await member.close();
  }
  await assert.rejects(getJson(`${member.clientUrls[0]}/version`));
  const again = await startMember(
    { name: 'm1', dataDir, listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK },
    { logger: createSilentLogger() },
  );
  await again.close();
});

test('services plug in handlers, routes and health, and are stopped in reverse order', async () => {
  const events: string[] = [];
  const kv: MemberService = {
    name: 'kv',
    start(ctx) {
      events.push(`start kv ${ctx.config.name}`);
      ctx.grpc.addMethod(KVService.Range, (req) =>
        RangeResponse.fromPartial({ count: BigInt(req.key.length), more: false }),
      );
      ctx.http.route('/hello', ['GET'], () => ({ status: 200, body: '"hi"' }));
      ctx.setHealthCheck(() => ({ healthy: true, reason: '' }));
    },
    stop() {
      events.push('stop kv');
    },
  };
  const other: MemberService = {
    name: 'other',
    start() {
      events.push('start other');
    },
    stop() {
      events.push('stop other');
    },
  };
  const member = await startMember(
    { name: 'm2', dataDir: join(root, 'm2'), listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK },
    { logger: createSilentLogger(), services: [kv, other] },
  );
  try {
    const session = connect(member.clientUrls[0]!);
    session.on('error', () => {});
    const { result, stream } = openCall(session, KVService.Range.path);
    stream.end(frame('\n\x04abcd'));
    const r = await result;
    session.destroy();
    assert.equal(r.status, 0);
    assert.equal(KVService.Range.decodeResponse(r.raw[0]!).count, 4n);
    assert.equal((await getJson(`${member.clientUrls[0]}/hello`)).body, 'hi');
    assert.deepEqual((await getJson(`${member.clientUrls[0]}/health`)).body, { health: 'true', reason: '' });
  } finally {
    await member.close();
  }
  assert.deepEqual(events, ['start kv m2', 'start other', 'stop other', 'stop kv']);
});

test('a failure while starting releases everything already opened', async () => {
  const dataDir = join(root, 'm3');
  const failing: MemberService = {
    name: 'failing',
    start() {
      throw new Error('cannot open backend');
    },
  };
  await assert.rejects(
    startMember(
      { name: 'm3', dataDir, listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK },
      { logger: createSilentLogger(), services: [failing] },
    ),
    /cannot open backend/,
  );
  // A port already taken: the error names the flag; the data dir lock is released.
  const holder = await startMember(
    { name: 'm4', dataDir: join(root, 'm4'), listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK },
    { logger: createSilentLogger() },
  );
  try {
    await assert.rejects(
      startMember(
        { name: 'm3', dataDir, listenClientUrls: [holder.clientUrls[0]!], listenPeerUrls: LOOPBACK },
        { logger: createSilentLogger() },
      ),
      /cannot listen on http:\/\/127\.0\.0\.1:\d+ \(--listen-client-urls\): .*EADDRINUSE/,
    );
  } finally {
    await holder.close();
  }
  const ok = await startMember(
    { name: 'm3', dataDir, listenClientUrls: LOOPBACK, listenPeerUrls: LOOPBACK },
    { logger: createSilentLogger() },
  );
  await ok.close();
});

test('https client URLs with the TLS flags: certificate, Go cipher suite names, TLS version bounds', async () => {
  const dir = join(root, 'tls');
  mkdirSync(dir);
  const { cert, key } = selfSignedCert(dir);
  const member = await startMember(
    {
      name: 'tls',
      dataDir: join(root, 'tls-data'),
      listenClientUrls: ['https://127.0.0.1:0'],
      listenPeerUrls: LOOPBACK,
      certFile: cert,
      keyFile: key,
      cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
      tlsMaxVersion: 'TLS1.2',
    },
    { logger: createSilentLogger() },
  );
  try {
    assert.match(member.clientUrls[0]!, /^https:\/\/127\.0\.0\.1:\d+$/);
    const session = connect(member.clientUrls[0]!, { ca: readFileSync(cert) });
    session.on('error', () => {});
    try {
      const r = await call(session, KVService.Range.path, ['']);
      assert.equal(r.status, GrpcStatus.UNIMPLEMENTED);
      const socket = session.socket as unknown as { getCipher(): { name: string }; getProtocol(): string };
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      assert.equal(socket.getCipher().name, 'ECDHE-ECDSA-AES256-GCM-SHA384');
    } finally {
      session.destroy();
    }
  } finally {
    await member.close();
  }
  await assert.rejects(
    startMember(
      {
        name: 'tls2',
        dataDir: join(root, 'tls2'),
        listenClientUrls: ['https://127.0.0.1:0'],
        listenPeerUrls: LOOPBACK,
        certFile: join(dir, 'missing.pem'),
        keyFile: key,
      },
      { logger: createSilentLogger() },
    ),
    /cannot read --cert-file/,
  );
});

test('--listen-client-http-urls moves the HTTP endpoints off the gRPC URLs', async () => {
  const member = await startMember(
    {
      name: 'split',
      dataDir: join(root, 'split'),
      listenClientUrls: LOOPBACK,
      listenClientHttpUrls: LOOPBACK,
      listenPeerUrls: LOOPBACK,
    },
    { logger: createSilentLogger() },
  );
  try {
    const grpcUrl = member.clientUrls[0]!;
    assert.equal((await fetch(`${grpcUrl}/version`)).status, 404);
    const session = connect(grpcUrl);
    session.on('error', () => {});
    const r = await call(session, KVService.Range.path, ['']);
    session.destroy();
    assert.equal(r.status, GrpcStatus.UNIMPLEMENTED);
    const httpUrl = member.clientHttpUrls[0]!;
    assert.notEqual(httpUrl, grpcUrl);
    assert.deepEqual(await (await fetch(`${httpUrl}/version`)).json(), { etcdserver: '3.5.0', etcdcluster: '3.5.0' });
  } finally {
    await member.close();
  }
});
