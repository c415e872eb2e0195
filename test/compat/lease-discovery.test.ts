/**
 * Service discovery on leases, against etcd-ts (or the real etcd with COMPAT_TARGET=etcd): a
 * registrar puts `/service/user` and `/service/friend` with a 3 s lease and keeps the lease alive
 * on a LeaseKeepAlive stream; a watcher of the `/service` prefix (with prev_kv) sees the two
 * PUTs. When the keep-alives stop, the two keys go about 3 s later, in one revision, as DELETE
 * events that carry the registered values. Once with the registrar in this process stopping
 * its keep-alives, once with the registrar a child process that is SIGKILLed.
 *
 * Run with LEASE_REGISTRAR_ENDPOINT=<host:port>, this file is that child: it registers, prints
 * `registered <lease id>`, and keeps the lease alive until it is killed or its stdin closes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Channel } from '../../src/client/channel.ts';
import { Event_EventType, KVService, LeaseGrantRequest, LeaseService, PutRequest } from '../../src/proto/index.ts';
import { compatTarget, Member } from '../helpers/member.ts';
import { KeepAliveClient, WatchClient } from './watch-client.ts';

const LEASE_TTL_SEC = 3n;
/** When the DELETEs may come after the last keep-alive: about the TTL, give or take the checks. */
const EXPIRY_WINDOW_MS = { min: 2_500, max: 6_000 };
const KEEP_ALIVE_EVERY_MS = 250;
const CALL = { timeoutMs: 5_000 };
const SERVICES = [
  ['/service/user', 'user-addr 127.0.0.1:9001'],
  ['/service/friend', 'friend-addr 127.0.0.1:9002'],
] as const;
const CHILD_READY_TIMEOUT_MS = 15_000;

const text = (s: string) => Buffer.from(s);

/** Grants the lease and puts the services on it; returns the lease id. */
async function register(channel: Channel): Promise<bigint> {
  const lease = await channel.unary(
    LeaseService.LeaseGrant,
    LeaseGrantRequest.fromPartial({ TTL: LEASE_TTL_SEC }),
    CALL,
  );
  for (const [key, value] of SERVICES) {
    await channel.unary(
      KVService.Put,
      PutRequest.fromPartial({ key: text(key), value: text(value), lease: lease.ID }),
      CALL,
    );
  }
  return lease.ID;
}

async function runRegistrar(endpoint: string): Promise<void> {
  const channel = new Channel(endpoint);
  const lease = await register(channel);
  const keepAlive = new KeepAliveClient(endpoint);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  process.stdout.write(`registered ${lease.toString(16)}\n`);
  for (;;) {
    await keepAlive.keepAlive(lease);
    await sleep(KEEP_ALIVE_EVERY_MS);
  }
}

const registrarEndpoint = process.env.LEASE_REGISTRAR_ENDPOINT;
if (registrarEndpoint !== undefined) {
  await runRegistrar(registrarEndpoint);
} else {
  describeDiscovery();
}

function describeDiscovery(): void {
  let member: Member;
  let child: ChildProcess | undefined;

  /** Watches `/service`, with previous values. */
  async function watchServices(): Promise<{ watch: WatchClient; id: bigint }> {
    const watch = new WatchClient(member.endpoint);
    const id = await watch.create({ key: text('/service'), rangeEnd: text('/servicf'), prevKv: true });
    return { watch, id };
  }

  function checkPuts(watch: WatchClient, id: bigint): void {
    assert.deepEqual(
      watch.events(id).map((e) => [e.type, Buffer.from(e.kv!.key).toString(), Buffer.from(e.kv!.value).toString()]),
      SERVICES.map(([key, value]) => [Event_EventType.PUT, key, value]),
    );
  }

  /** Waits for the two DELETEs; checks their values and revision; returns when they came. */
  async function awaitDeletes(watch: WatchClient, id: bigint): Promise<number> {
    await watch.waitEvents(id, SERVICES.length * 2, EXPIRY_WINDOW_MS.max + 2_000);
    const atMs = Date.now();
    const deletes = watch.events(id).slice(SERVICES.length);
    assert.deepEqual(
      deletes
        .map((e) => [e.type, Buffer.from(e.kv!.key).toString(), Buffer.from(e.prevKv?.value ?? []).toString()])
        .sort(),
      SERVICES.map(([key, value]) => [Event_EventType.DELETE, key, value]).sort(),
    );
    assert.equal(deletes[0]!.kv!.modRevision, deletes[1]!.kv!.modRevision, 'both keys expire in one revision');
    return atMs;
  }

  function assertWindow(t: TestContext, elapsedMs: number): void {
    t.diagnostic(`deleted ${elapsedMs} ms after the last keep-alive`);
    assert.ok(
      elapsedMs >= EXPIRY_WINDOW_MS.min && elapsedMs <= EXPIRY_WINDOW_MS.max,
      `the services were deleted ${elapsedMs} ms after the last keep-alive, outside [${EXPIRY_WINDOW_MS.min}, ${EXPIRY_WINDOW_MS.max}] ms`,
    );
  }

  describe(`service discovery on a ${LEASE_TTL_SEC} s lease (${compatTarget()})`, { timeout: 60_000 }, () => {
    before(async () => {
      member = await Member.start({ kind: compatTarget(), name: 'discovery' });
    });

    after(async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await member?.stop();
    });

    test('the services stay while kept alive and go about a TTL after the keep-alives stop', async (t) => {
      const { watch, id } = await watchServices();
      const keepAlive = new KeepAliveClient(member.endpoint);
      try {
        const lease = await register(member.channel);
        await watch.waitEvents(id, SERVICES.length);
        checkPuts(watch, id);
        // Kept alive for longer than the TTL: nothing expires.
        const until = Date.now() + Number(LEASE_TTL_SEC) * 1000 + 1_000;
        while (Date.now() < until) {
          assert.equal((await keepAlive.keepAlive(lease)).TTL, LEASE_TTL_SEC);
          await sleep(1_000);
        }
        assert.equal(watch.events(id).length, SERVICES.length, 'a service went while it was kept alive');
        // One last keep-alive, then none.
        await keepAlive.keepAlive(lease);
        const lastKeepAliveMs = Date.now();
        keepAlive.close();
        assertWindow(t, (await awaitDeletes(watch, id)) - lastKeepAliveMs);
      } finally {
        keepAlive.close();
        watch.close();
      }
    });

    test('the services go about a TTL after the registrar process is killed', async (t) => {
      const { watch, id } = await watchServices();
      try {
        const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
          cwd: fileURLToPath(new URL('../../', import.meta.url)),
          env: { ...process.env, LEASE_REGISTRAR_ENDPOINT: member.endpoint },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        child = proc;
        let output = '';
        proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const readyBy = Date.now() + CHILD_READY_TIMEOUT_MS;
        while (!output.includes('registered ')) {
          assert.ok(proc.exitCode === null, `the registrar exited: ${output}`);
          assert.ok(Date.now() < readyBy, `the registrar did not register: ${output}`);
          await sleep(50);
        }
        await watch.waitEvents(id, SERVICES.length);
        checkPuts(watch, id);
        // Alive for longer than the TTL while the child keeps the lease alive.
        await sleep(Number(LEASE_TTL_SEC) * 1000 + 500);
        assert.equal(watch.events(id).length, SERVICES.length, 'a service went while the registrar ran');
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGKILL');
        const killedMs = Date.now();
        await exited;
        // The child's last keep-alive was at most KEEP_ALIVE_EVERY_MS (plus its round trip) before.
        assertWindow(t, (await awaitDeletes(watch, id)) - killedMs + KEEP_ALIVE_EVERY_MS);
      } finally {
        watch.close();
      }
    });
  });
}
