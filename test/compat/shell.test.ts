/**
 * The server shell as an operator meets it: `etcd-ts` started from ETCD_* variables only, on
 * free loopback ports, answering /version and the real etcdctl, keeping its data dir private
 * and to itself, and exiting 0 on SIGTERM; and a member with nothing behind its gRPC methods
 * answering the real etcdctl with a clean Unimplemented at once.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startMember } from '../../src/embed/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { etcdctl } from '../helpers/etcdctl.ts';
import { freePort } from '../helpers/ports.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const READY_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;

const tempRoot = mkdtempSync(join(tmpdir(), 'etcd-ts-shell-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(tempRoot, { recursive: true, force: true });
});

interface Server {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startServer(env: Record<string, string>): Server {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/etcd-ts.ts'], {
    cwd: REPO,
    // Only what the server is told: no stray ETCD_* variables from the test's environment.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tempRoot, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => output, exited };
}

async function waitForVersion(url: string, server: Server): Promise<Response> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  server.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    try {
      return await fetch(`${url}/version`);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`server did not answer /version:\n${server.output()}`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${ms}ms`)), ms);
    }),
  ]);
}

test('etcd-ts from ETCD_* variables only: /version, etcdctl get, private and exclusive data dir, SIGTERM exits 0', {
  timeout: 45_000,
}, async () => {
  const [clientPort, peerPort, clientPort2, peerPort2] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const dataDir = join(tempRoot, 'shell.etcd');
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const server = startServer({
    ETCD_NAME: 'shell',
    ETCD_DATA_DIR: dataDir,
    ETCD_LISTEN_CLIENT_URLS: client,
    ETCD_ADVERTISE_CLIENT_URLS: client,
    ETCD_LISTEN_PEER_URLS: peer,
    ETCD_INITIAL_ADVERTISE_PEER_URLS: peer,
    ETCD_HEARTBEAT_INTERVAL: '50',
    ETCD_ELECTION_TIMEOUT: '500',
  });

  const version = await waitForVersion(client, server);
  assert.equal(version.status, 200);
  assert.match(version.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(await version.json(), { etcdserver: '3.5.0', etcdcluster: '3.5.0' });

  // The real etcdctl, through the whole stack: a prompt answer rather than a hang or a crash.
  const started = Date.now();
  const get = await etcdctl(`127.0.0.1:${clientPort}`, ['--command-timeout=3s', 'get', 'foo'], { timeoutMs: 10_000 });
  const tookMs = Date.now() - started;
  assert.equal(get.code, 0, get.stderr);
  assert.equal(get.stdout, '');
  assert.ok(tookMs < 3000, `etcdctl took ${tookMs}ms`);

  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.ok(existsSync(join(dataDir, 'member', 'wal')) && existsSync(join(dataDir, 'member', 'snap')));

  // A second server on the same data dir refuses, naming the holder.
  const second = startServer({
    ETCD_NAME: 'shell',
    ETCD_DATA_DIR: dataDir,
    ETCD_LISTEN_CLIENT_URLS: `http://127.0.0.1:${clientPort2}`,
    ETCD_ADVERTISE_CLIENT_URLS: `http://127.0.0.1:${clientPort2}`,
    ETCD_LISTEN_PEER_URLS: `http://127.0.0.1:${peerPort2}`,
    ETCD_INITIAL_ADVERTISE_PEER_URLS: `http://127.0.0.1:${peerPort2}`,
  });
  const secondCode = await withTimeout(second.exited, EXIT_TIMEOUT_MS, 'the second server');
  assert.equal(secondCode, 1);
  assert.match(
    second.output(),
    new RegExp(
      `etcd-ts: data dir ${dataDir.replaceAll('.', '\\.')} is in use by another process \\(pid ${server.child.pid}\\)`,
    ),
  );
  // The first one is unaffected.
  assert.equal((await fetch(`${client}/version`)).status, 200);

  // The log is JSON lines with the member name, in etcd's words.
  const lines = server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; name: string; msg: string; address?: string });
  assert.ok(lines.every((l) => l.name === 'shell'));
  const insecure = lines.find((l) => l.msg === 'serving client traffic insecurely; this is strongly discouraged!');
  assert.equal(insecure?.address, `127.0.0.1:${clientPort}`);
  assert.ok(lines.some((l) => l.msg === 'now serving peer/client/metrics'));

  server.child.kill('SIGTERM');
  assert.equal(await withTimeout(server.exited, EXIT_TIMEOUT_MS, 'shutdown'), 0);
  assert.match(server.output(), /"msg":"closed etcd server"/);
});

test('a member with no services behind it: the real etcdctl gets Unimplemented at once, not a hang', {
  timeout: 20_000,
}, async () => {
  const member = await startMember(
    {
      name: 'bare',
      dataDir: join(tempRoot, 'bare.etcd'),
      listenClientUrls: ['http://127.0.0.1:0'],
      listenPeerUrls: ['http://127.0.0.1:0'],
    },
    { logger: createSilentLogger() },
  );
  try {
    const endpoint = member.clientUrls[0]!.replace('http://', '');
    const started = Date.now();
    const get = await etcdctl(endpoint, ['--command-timeout=3s', 'get', 'foo'], { timeoutMs: 10_000 });
    const tookMs = Date.now() - started;
    assert.notEqual(get.code, 0);
    assert.notEqual(get.code, -1, 'etcdctl was killed: it hung');
    assert.match(get.stderr, /code = Unimplemented desc = method etcdserverpb\.KV\/Range is not implemented yet/);
    assert.ok(tookMs < 3000, `etcdctl took ${tookMs}ms`);
    const status = await etcdctl(endpoint, ['endpoint', 'status'], { timeoutMs: 10_000 });
    assert.notEqual(status.code, 0);
    assert.match(status.stderr, /Unimplemented desc = method etcdserverpb\.Maintenance\/Status is not implemented yet/);
  } finally {
    await member.close();
  }
});
