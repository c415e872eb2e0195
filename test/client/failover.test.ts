/**
 * Endpoints, failover, deadlines and the retry rule: a call moves to the next endpoint when one
 * cannot be reached; an endpoint that failed is skipped for a while; every call has a deadline;
 * an idempotent call is retried elsewhere after a connection failure, a put that may have
 * reached a server is not (its failure is reported).
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CancelledError,
  Client,
  ClientClosedError,
  DeadlineExceededError,
  UnavailableError,
} from '../../src/client/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';
import { freePort } from '../helpers/ports.ts';

/** An HTTP/2 server that takes requests and then drops the connection, or never answers. */
async function fakeServer(
  mode: 'drop' | 'hang',
): Promise<{ endpoint: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => {
    requests++;
    stream.on('data', () => {});
    stream.on('end', () => {
      if (mode === 'drop') stream.session?.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let member: Member;
let deadEndpoint: string;

describe('client endpoints, failover and retries', { timeout: 60_000 }, () => {
  before(async () => {
    member = await Member.start({ kind: MemberKind.ETCD, name: 'failover' });
    // A port nothing listens on: connections are refused.
    deadEndpoint = `127.0.0.1:${await freePort()}`;
  });
  after(async () => {
    await member?.stop();
  });

  test('a refused endpoint is passed over, then skipped while it is unhealthy', async () => {
    const client = new Client({ endpoints: [deadEndpoint, member.endpoint], unhealthyMs: 60_000 });
    try {
      await client.put('f', '1');
      assert.equal(await client.getString('f'), '1');
      const startMs = Date.now();
      for (let i = 0; i < 20; i++) await client.get('f');
      assert.ok(Date.now() - startMs < 2_000, 'calls kept trying the dead endpoint');
    } finally {
      client.close();
    }
  });

  test('every call has a deadline', async () => {
    const client = new Client({ endpoints: [deadEndpoint], callTimeoutMs: 300, dialTimeoutMs: 100 });
    const hang = await fakeServer('hang');
    const hanging = new Client({ endpoints: [hang.endpoint] });
    try {
      let startMs = Date.now();
      await assert.rejects(client.get('x'), (err: unknown) => {
        assert.ok(err instanceof DeadlineExceededError);
        assert.equal(err.message, 'context deadline exceeded');
        return true;
      });
      assert.ok(Date.now() - startMs < 1_500);
      startMs = Date.now();
      await assert.rejects(hanging.get('x', { timeoutMs: 200 }), DeadlineExceededError);
      assert.ok(Date.now() - startMs < 1_500);
      const aborted = new AbortController();
      const call = hanging.get('x', { signal: aborted.signal });
      aborted.abort();
      await assert.rejects(call, CancelledError);
    } finally {
      client.close();
      hanging.close();
      await hang.close();
    }
  });

  test('a get is retried on the next endpoint when the connection drops; a put is not', async () => {
    const drop = await fakeServer('drop');
    try {
      const setup = new Client({ endpoints: [member.endpoint] });
      await client(setup, async () => {
        await setup.put('retried', 'yes');
      });
      const before = drop.requests();
      const readerFresh = new Client({ endpoints: [drop.endpoint, member.endpoint] });
      await client(readerFresh, async () => {
        assert.equal(await readerFresh.getString('retried'), 'yes');
      });
      assert.equal(drop.requests(), before + 1, 'the get did not go to the dropping endpoint first');

      const writer = new Client({ endpoints: [drop.endpoint, member.endpoint] });
      await client(writer, async () => {
        await assert.rejects(writer.put('never-twice', 'v'), (err: unknown) => {
          assert.ok(err instanceof UnavailableError, String(err));
          return true;
        });
      });
      assert.equal(drop.requests(), before + 2);
      const check = new Client({ endpoints: [member.endpoint] });
      await client(check, async () => {
        assert.equal(await check.getString('never-twice'), undefined, 'the put was sent again elsewhere');
      });
    } finally {
      await drop.close();
    }
  });

  test('a closed client refuses calls', async () => {
    const c = new Client({ endpoints: [member.endpoint] });
    c.close();
    await assert.rejects(c.get('a'), ClientClosedError);
    assert.throws(() => c.watch('a'), ClientClosedError);
  });
});

async function client(c: Client, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } finally {
    c.close();
  }
}
