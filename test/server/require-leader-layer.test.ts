/**
 * The require-leader layer (src/api/require-leader.ts) over every method of the API: calls with
 * the metadata `hasleader: true` are refused with etcd's `etcdserver: no leader` while the
 * member knows no leader, and streams that require a leader end with it after three checks in a
 * row without one. Calls without the metadata are served whatever the leader.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcError, GrpcStatus } from '../../src/api/errors.ts';
import type { AnyHandler } from '../../src/api/gateway/index.ts';
import { NO_LEADER_CHECKS_BEFORE_CANCEL, RequireLeader } from '../../src/api/require-leader.ts';
import { allMethods, WatchService } from '../../src/proto/index.ts';

const REQUIRE = { metadata: { hasleader: 'true' } };
const PLAIN = { metadata: {} };
/** Long enough that the layer's own timer never checks during a test: the tests call check(). */
const NEVER_MS = 3_600_000;

function isNoLeader(err: unknown): boolean {
  return err instanceof GrpcError && err.code === GrpcStatus.UNAVAILABLE && err.message === 'etcdserver: no leader';
}

/** A stream handler that runs until `finish` is called. */
function pendingStream(): { handler: AnyHandler; finish: () => void; started: () => number } {
  let finish = () => {};
  let starts = 0;
  const handler = (() => {
    starts++;
    return new Promise<void>((resolve) => {
      finish = resolve;
    });
  }) as AnyHandler;
  return { handler, finish: () => finish(), started: () => starts };
}

test('without a leader, every call that requires one is refused before its handler; others are served', async () => {
  let leader = false;
  const requireLeader = new RequireLeader({ hasLeader: () => leader }, NEVER_MS);
  try {
    const calls: string[] = [];
    for (const desc of allMethods) {
      const served = requireLeader.layer(desc, ((req: unknown) => {
        calls.push(desc.path);
        return req;
      }) as AnyHandler) as (req: unknown, call: unknown) => unknown;
      assert.throws(() => served({}, REQUIRE), isNoLeader, desc.path);
      assert.deepEqual(served({}, PLAIN), {}, desc.path);
      leader = true;
      // A stream that requires a leader is watched: its handler's result comes as a promise.
      assert.deepEqual(await served({}, REQUIRE), {}, desc.path);
      leader = false;
    }
    // Each method ran twice: without the metadata, and with it while there was a leader.
    assert.equal(calls.length, 2 * allMethods.length);
  } finally {
    requireLeader.close();
  }
});

test('a stream that requires a leader ends with "no leader" after three checks without one', async () => {
  let leader = true;
  const requireLeader = new RequireLeader({ hasLeader: () => leader }, NEVER_MS);
  try {
    const stream = pendingStream();
    const other = pendingStream();
    const watch = requireLeader.layer(WatchService.Watch, stream.handler) as (a: unknown, c: unknown) => unknown;
    const plainWatch = requireLeader.layer(WatchService.Watch, other.handler) as (a: unknown, c: unknown) => unknown;
    const required = watch(REQUIRE, REQUIRE) as Promise<unknown>;
    let requiredError: unknown;
    required.catch((err: unknown) => {
      requiredError = err;
    });
    const plain = plainWatch(PLAIN, PLAIN) as Promise<unknown>;
    assert.equal(requireLeader.streamCount, 1);

    // A short election (a check or two without a leader, then one again) ends nothing.
    leader = false;
    for (let i = 1; i < NO_LEADER_CHECKS_BEFORE_CANCEL; i++) requireLeader.check();
    leader = true;
    requireLeader.check();
    leader = false;
    for (let i = 1; i < NO_LEADER_CHECKS_BEFORE_CANCEL; i++) requireLeader.check();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(requiredError, undefined);

    requireLeader.check();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(isNoLeader(requiredError), String(requiredError));
    assert.equal(requireLeader.streamCount, 0);

    // The stream without the metadata goes on, and ends when its handler does.
    other.finish();
    assert.equal(await plain, undefined);
    stream.finish();
  } finally {
    requireLeader.close();
  }
});

test('a stream whose handler ends on its own is no longer tracked', async () => {
  const requireLeader = new RequireLeader({ hasLeader: () => true }, NEVER_MS);
  try {
    const stream = pendingStream();
    const watch = requireLeader.layer(WatchService.Watch, stream.handler) as (a: unknown, c: unknown) => unknown;
    const done = watch(REQUIRE, REQUIRE) as Promise<unknown>;
    assert.equal(stream.started(), 1);
    assert.equal(requireLeader.streamCount, 1);
    stream.finish();
    await done;
    assert.equal(requireLeader.streamCount, 0);

    // A handler that throws at once is not tracked either, and its error is the call's.
    const failing = requireLeader.layer(WatchService.Watch, (() => {
      throw new Error('bad stream');
    }) as AnyHandler) as (a: unknown, c: unknown) => unknown;
    assert.throws(() => failing(REQUIRE, REQUIRE), /bad stream/);
    assert.equal(requireLeader.streamCount, 0);
  } finally {
    requireLeader.close();
  }
});
