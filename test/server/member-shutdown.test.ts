/**
 * A graceful stop (SIGTERM) of one member (etcd-ts, or the real etcd with COMPAT_TARGET=etcd)
 * while eight clients write as fast as they can: the process exits within the grace period
 * (no SIGKILL needed), every put in flight either completes or fails with UNAVAILABLE, none
 * hangs, and the restarted member has every acknowledged write with its value, and none that
 * no client sent.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcCallError, Status } from '../../src/client/channel.ts';
import { KVService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { compatTarget, Member } from '../helpers/member.ts';

const WRITERS = 8;
const WRITE_FOR_MS = 1_000;
/** A put settles (done or failed) within this long, even across the stop. */
const PUT_TIMEOUT_MS = 10_000;
/** The member helper sends SIGKILL 3 s after SIGTERM: a graceful stop ends before. */
const GRACEFUL_EXIT_MS = 2_500;

let member: Member | undefined;
after(async () => {
  await member?.stop();
});

test(`SIGTERM under load: in-flight puts complete or fail cleanly, acknowledged writes survive (${compatTarget()})`, {
  timeout: 60_000,
}, async (t) => {
  member = await Member.start({ kind: compatTarget(), name: 'shutdown' });
  const m = member;
  const acked = new Map<string, string>();
  const failed: string[] = [];
  let slowestMs = 0;
  let stopping = false;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; ; i++) {
      const key = `sd/${w}/${String(i).padStart(6, '0')}`;
      const value = `value of ${key}`;
      const startedMs = Date.now();
      try {
        await m.channel.unary(
          KVService.Put,
          PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(value) }),
          {
            timeoutMs: PUT_TIMEOUT_MS,
          },
        );
        acked.set(key, value);
      } catch (err) {
        assert.ok(err instanceof GrpcCallError, `a put failed with ${String(err)}`);
        assert.equal(err.code, Status.UNAVAILABLE, `a put failed with ${err.code}: ${err.details}`);
        assert.ok(stopping, `a put failed before the stop: ${err.details}`);
        failed.push(key);
        return;
      } finally {
        slowestMs = Math.max(slowestMs, Date.now() - startedMs);
      }
    }
  });
  await sleep(WRITE_FOR_MS);
  stopping = true;
  const stopMs = Date.now();
  await m.kill('SIGTERM');
  const exitMs = Date.now() - stopMs;
  await Promise.all(writers);
  t.diagnostic(`${acked.size} puts acknowledged, ${failed.length} failed at the stop; exit ${exitMs} ms after SIGTERM`);
  assert.ok(exitMs < GRACEFUL_EXIT_MS, `the member took ${exitMs} ms to stop`);
  assert.ok(slowestMs < PUT_TIMEOUT_MS, `a put took ${slowestMs} ms`);
  assert.ok(acked.size > WRITERS, `only ${acked.size} puts before the stop`);
  assert.equal(failed.length, WRITERS, 'every writer ends with one failed put');

  await m.restart();
  const resp = await m.channel.unary(
    KVService.Range,
    RangeRequest.fromPartial({ key: Buffer.from('sd/'), rangeEnd: Buffer.from('sd0') }),
    { timeoutMs: 10_000 },
  );
  const stored = new Map(resp.kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString()]));
  for (const [key, value] of acked) assert.equal(stored.get(key), value, `acknowledged ${key} lost`);
  // Beyond the acknowledged writes, at most the one put per writer whose answer was lost.
  for (const key of stored.keys()) assert.ok(acked.has(key) || failed.includes(key), `${key} was never written`);
});
