/**
 * `etcdctl-ts service`: a registrar process registers an instance; a discoverer (the library,
 * and `service watch` in another process) sees it appear, and, after the registrar is SIGKILLed
 * (so it cannot deregister), disappear within the registration's TTL. `service list` prints the
 * instances in both formats.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, type Instance } from '../../src/client/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';
import { etcdctlTs, etcdctlTsProcess } from './helpers.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TTL_S = 3;
/**
 * etcd expires leases on a 500 ms tick (and up to a TTL/3 may have passed since the last
 * renewal, which only shortens the wait); the rest is the watch notification on a busy machine.
 */
const EXPIRY_SLACK_MS = 2_000;
const STEP_TIMEOUT_MS = 15_000;

/** `promise`, or a failure naming `what` after STEP_TIMEOUT_MS. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let member: Member;
let client: Client;
const children: ChildProcess[] = [];

function startRegistrar(id: string, value: string): { child: ChildProcess; registered: Promise<string> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      `${REPO_ROOT}bin/etcdctl-ts.ts`,
      `--endpoints=${member.endpoint}`,
      'service',
      'register',
      'web',
      id,
      value,
      `--ttl=${TTL_S}`,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  const registered = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out);
    });
    child.once('exit', (code) => reject(new Error(`registrar exited ${code} before registering: ${out}`)));
  });
  return { child, registered };
}

describe('etcdctl-ts service register, list, watch', { timeout: 60_000 }, () => {
  before(async () => {
    member = await Member.start({ kind: MemberKind.ETCD, name: 'service' });
    client = new Client({ endpoints: [member.endpoint] });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    client?.close();
    await member?.stop();
  });

  test('a discoverer sees a registrar appear, and disappear within the TTL after SIGKILL', async () => {
    const discovery = await client.discover('web');
    const appeared = new Promise<Instance>((resolve) => discovery.once('added', resolve));
    const stopWatch = new AbortController();
    const watching = etcdctlTsProcess([`--endpoints=${member.endpoint}`, 'service', 'watch', 'web'], {
      stop: stopWatch.signal,
      timeoutMs: 30_000,
    });
    const registrar = startRegistrar('node-1', 'http://10.0.0.1:8080');
    assert.match(
      await within(registrar.registered, 'the registrar'),
      /^registered \/services\/web\/node-1 with lease [0-9a-f]{16}\n/,
    );
    const instance = await within(appeared, 'the instance to appear');
    assert.equal(instance.id, 'node-1');
    assert.equal(instance.value.toString(), 'http://10.0.0.1:8080');
    assert.deepEqual(
      discovery.instances().map((i) => i.id),
      ['node-1'],
    );

    const removed = new Promise<Instance>((resolve) => discovery.once('removed', resolve));
    registrar.child.kill('SIGKILL');
    const killedAtMs = Date.now();
    await within(removed, 'the instance to disappear');
    const goneAfterMs = Date.now() - killedAtMs;
    assert.ok(goneAfterMs <= TTL_S * 1000 + EXPIRY_SLACK_MS, `gone ${goneAfterMs} ms after the kill`);
    assert.equal(discovery.size, 0);
    await discovery.close();

    // The CLI watcher in its own process saw the same.
    await new Promise((r) => setTimeout(r, 300));
    stopWatch.abort();
    const watched = await watching;
    assert.equal(watched.stdout.toString(), 'ADDED node-1 http://10.0.0.1:8080\nREMOVED node-1 http://10.0.0.1:8080\n');
  });

  test('service list in both formats; an interrupted registrar deregisters', async () => {
    const stop = new AbortController();
    let registeredOut = '';
    const registrar = etcdctlTs([`--endpoints=${member.endpoint}`, 'service', 'register', 'db', 'primary', 'pg://1'], {
      stop: stop.signal,
      onStdout: (t) => (registeredOut += t),
    });
    const startMs = Date.now();
    while (!registeredOut.includes('registered')) {
      if (Date.now() - startMs > 5_000) throw new Error('not registered');
      await new Promise((r) => setTimeout(r, 20));
    }
    const simple = await etcdctlTs([`--endpoints=${member.endpoint}`, 'service', 'list', 'db']);
    assert.equal(simple.stdout.toString(), 'primary\npg://1\n');
    const json = await etcdctlTs([`--endpoints=${member.endpoint}`, 'service', 'list', 'db', '-w', 'json']);
    const parsed = JSON.parse(json.stdout.toString().replace(/"lease":(\d+)/, '"lease":"$1"'));
    assert.equal(parsed.service, 'db');
    assert.equal(parsed.instances[0].id, 'primary');
    assert.equal(parsed.instances[0].key, '/services/db/primary');
    assert.equal(parsed.instances[0].value, 'pg://1');
    stop.abort();
    const done = await registrar;
    assert.equal(done.code, 0, done.stderr.toString());
    assert.match(done.stdout.toString(), /deregistered \/services\/db\/primary\n$/);
    assert.equal((await client.get('/services/db/', { prefix: true })).count, 0n);
    const bad = await etcdctlTs([`--endpoints=${member.endpoint}`, 'service', 'register', 'db', 'a/b', 'v']);
    assert.equal(bad.code, 128);
    assert.equal(bad.stderr.toString(), 'Error: instanceId must not contain "/": "a/b"\n');
    const table = await etcdctlTs([`--endpoints=${member.endpoint}`, 'service', 'list', 'db', '-w', 'table']);
    assert.equal(table.code, 4);
  });
});
