/**
 * gRPC's standard health service (grpc.health.v1.Health) against the real etcd and etcd-ts:
 * Check of the whole server ("") is SERVING, of any other service NOT_FOUND `unknown service`;
 * Watch sends SERVING (or SERVICE_UNKNOWN) at once and holds the stream until the client
 * cancels. Both servers must answer alike.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Channel, type ClientStream, GrpcCallError } from '../../src/client/channel.ts';
import { type HealthCheckResponse, HealthCheckResponse_ServingStatus, HealthService } from '../../src/proto/index.ts';
import { Member, MemberKind } from '../helpers/member.ts';

const CALL_TIMEOUT_MS = 5_000;
/** How long a watch must stay open after its first answer (it ends only when cancelled). */
const HOLD_MS = 300;

type CheckAnswer = { status: number } | { code: number; details: string };

async function check(channel: Channel, service: string): Promise<CheckAnswer> {
  try {
    const res = await channel.unary(HealthService.Check, { service }, { timeoutMs: CALL_TIMEOUT_MS });
    return { status: res.status };
  } catch (err) {
    if (!(err instanceof GrpcCallError)) throw err;
    return { code: err.code, details: err.details };
  }
}

/** The first answer of a Watch of `service`, and whether the stream was still open HOLD_MS later. */
async function watchFirst(channel: Channel, service: string): Promise<{ statuses: number[]; heldOpen: boolean }> {
  const statuses: number[] = [];
  let closed = false;
  let stream: ClientStream<unknown> | undefined;
  const first = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no Watch answer for "${service}"`)), CALL_TIMEOUT_MS);
    stream = channel.stream(
      HealthService.Watch,
      {},
      {
        onMessage(message: HealthCheckResponse) {
          statuses.push(message.status);
          clearTimeout(timer);
          resolve();
        },
        onClose(error) {
          closed = true;
          clearTimeout(timer);
          if (statuses.length === 0) reject(error ?? new Error('the Watch ended without an answer'));
        },
      },
    );
    stream.write({ service });
    stream.end();
  });
  try {
    await first;
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    return { statuses, heldOpen: !closed };
  } finally {
    stream?.cancel();
  }
}

describe('grpc.health.v1.Health', { timeout: 60_000 }, () => {
  let etcd: Member;
  let ours: Member;

  before(async () => {
    [etcd, ours] = await Promise.all([
      Member.start({ kind: MemberKind.ETCD, name: 'health-etcd' }),
      Member.start({ kind: MemberKind.ETCD_TS, name: 'health-ours' }),
    ]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test('Check answers as etcd: SERVING for the whole server, NOT_FOUND for any other service', async () => {
    for (const service of ['', 'etcdserverpb.KV', 'unknown']) {
      const [theirs, mine] = await Promise.all([check(etcd.channel, service), check(ours.channel, service)]);
      assert.deepEqual(mine, theirs, `Check "${service}"`);
    }
    assert.deepEqual(await check(ours.channel, ''), { status: HealthCheckResponse_ServingStatus.SERVING });
    assert.deepEqual(await check(ours.channel, 'unknown'), { code: 5, details: 'unknown service' });
  });

  test('Watch answers as etcd: the status at once, then the stream stays open', async () => {
    for (const service of ['', 'unknown']) {
      const [theirs, mine] = await Promise.all([watchFirst(etcd.channel, service), watchFirst(ours.channel, service)]);
      assert.deepEqual(mine, theirs, `Watch "${service}"`);
    }
    assert.deepEqual(await watchFirst(ours.channel, ''), {
      statuses: [HealthCheckResponse_ServingStatus.SERVING],
      heldOpen: true,
    });
    assert.deepEqual(await watchFirst(ours.channel, 'unknown'), {
      statuses: [HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN],
      heldOpen: true,
    });
  });
});
