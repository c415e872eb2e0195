import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { ANY_SOURCE, dialingSocketInode, PeerProxy } from './cluster-proxy.ts';

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return { server, port: address.port };
}

async function dial(port: number): Promise<Socket> {
  const s = tcpConnect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  return s;
}

/** Writes `text` and resolves with what came back within `waitMs` (empty when nothing did). */
async function roundTrip(s: Socket, text: string, waitMs = 300): Promise<string> {
  let got = '';
  const onData = (b: Buffer) => (got += b.toString());
  s.on('data', onData);
  s.write(text);
  const deadline = Date.now() + waitMs;
  while (got.length < text.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  s.off('data', onData);
  return got;
}

test('the proxy forwards, names the dialing process, and cuts and restores its connections', async () => {
  const echo = await echoServer();
  const proxy = await PeerProxy.listen(echo.port, () => new Map([[process.pid, 'self']]));
  const sockets: Socket[] = [];
  try {
    const a = await dial(proxy.port);
    sockets.push(a);
    assert.equal(await roundTrip(a, 'hello'), 'hello');
    assert.equal(proxy.accepted.get('self'), 1);
    assert.deepEqual(proxy.connections(), [{ from: 'self', blackholed: false }]);

    // Cut: what is written is swallowed, nothing comes back, and the socket is not closed.
    proxy.block('self');
    assert.equal(await roundTrip(a, 'lost'), '');
    assert.equal(a.destroyed, false);
    const b = await dial(proxy.port);
    sockets.push(b);
    assert.equal(await roundTrip(b, 'also lost'), '');
    assert.deepEqual(
      proxy.connections().map((c) => c.blackholed),
      [true, true],
    );

    // Healed: the swallowed connections are closed; a new one works.
    const closed = once(a, 'close');
    proxy.unblock('self');
    await closed;
    const c = await dial(proxy.port);
    sockets.push(c);
    assert.equal(await roundTrip(c, 'back'), 'back');

    // A block of someone else leaves this process alone; ANY_SOURCE cuts everyone.
    proxy.block('other');
    assert.equal(await roundTrip(c, 'still'), 'still');
    proxy.block(ANY_SOURCE);
    assert.equal(await roundTrip(c, 'cut'), '');
    proxy.unblockAll();
    assert.deepEqual(proxy.blockedSources(), []);
  } finally {
    for (const s of sockets) s.destroy();
    await proxy.close();
    echo.server.close();
  }
});

test('a connection to a proxy whose target is down is closed', async () => {
  const echo = await echoServer();
  const port = echo.port;
  await new Promise<void>((r) => echo.server.close(() => r()));
  const proxy = await PeerProxy.listen(port, () => new Map());
  try {
    const s = await dial(proxy.port);
    await once(s, 'close');
    assert.equal(proxy.connections().length, 0);
  } finally {
    await proxy.close();
  }
});

test('dialingSocketInode finds the socket of a loopback connection and nothing for an unknown one', async () => {
  const echo = await echoServer();
  try {
    const s = await dial(echo.port);
    assert.match(dialingSocketInode(s.localPort!, echo.port) ?? '', /^\d+$/);
    assert.equal(dialingSocketInode(s.localPort!, 1), undefined);
    s.destroy();
  } finally {
    echo.server.close();
  }
});
