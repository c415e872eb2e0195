/**
 * The limits of one member (etcd-ts, or the real etcd with COMPAT_TARGET=etcd):
 *
 * - `--quota-backend-bytes` 1 MiB: puts of 16 KiB are refused once the backend is full with
 *   `etcdserver: mvcc: database space exceeded` (RESOURCE_EXHAUSTED); the NOSPACE alarm is
 *   raised (`etcdctl alarm list`, `endpoint status`); reads, deletes and compaction still
 *   work; txn puts and lease grants are refused; the alarm survives a restart, and a disarm
 *   while the backend is still too large only brings it back.
 * - `--max-request-bytes` 1024: a larger put or txn is refused with `etcdserver: request is too
 *   large` (INVALID_ARGUMENT) and changes nothing; a request larger than the gRPC limit (the
 *   request limit plus 512 KiB) is refused by gRPC with RESOURCE_EXHAUSTED; reads are not limited.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrpcCallError, Status } from '../../src/client/channel.ts';
import {
  CompactionRequest,
  DeleteRangeRequest,
  KVService,
  LeaseGrantRequest,
  LeaseService,
  MaintenanceService,
  PutRequest,
  RangeRequest,
  TxnRequest,
} from '../../src/proto/index.ts';
import { etcdctl } from '../helpers/etcdctl.ts';
import { compatTarget, Member } from '../helpers/member.ts';

const SUITE_TIMEOUT_MS = 60_000;
const CALL = { timeoutMs: 5_000 };
const QUOTA_BYTES = 1024 * 1024;
const VALUE_BYTES = 16 * 1024;
/** The backend must refuse well before this many values (twice the quota). */
const PUTS_MAX = (2 * QUOTA_BYTES) / VALUE_BYTES;
const NO_SPACE = 'etcdserver: mvcc: database space exceeded';
const TOO_LARGE = 'etcdserver: request is too large';

const members: Member[] = [];
after(async () => {
  await Promise.all(members.map((m) => m.stop()));
});

async function start(name: string, extraArgs: string[]): Promise<Member> {
  const m = await Member.start({ kind: compatTarget(), name, extraArgs });
  members.push(m);
  return m;
}

async function refused(call: Promise<unknown>, code: number, details: string | RegExp): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof GrpcCallError, `not a gRPC error: ${String(err)}`);
    assert.equal(err.code, code, `${err.code}: ${err.details}`);
    if (typeof details === 'string') assert.equal(err.details, details);
    else assert.match(err.details, details);
    return true;
  });
}

const put = (key: string, value: Buffer) => PutRequest.fromPartial({ key: Buffer.from(key), value });
const putOp = (key: string, value: Buffer) => ({ request: { $case: 'requestPut' as const, value: put(key, value) } });

/** `etcdctl alarm list` with the member id replaced, once it shows what is expected. */
async function alarmList(m: Member, expected: string): Promise<string> {
  let out = '';
  for (let i = 0; i < 20; i++) {
    const result = await etcdctl(m.endpoint, ['alarm', 'list']);
    assert.equal(result.code, 0, result.stderr);
    out = result.stdout.replace(/memberID:\d+/g, 'memberID:<id>');
    if (out === expected) return out;
    // The alarm is proposed after the refused write: it may take a moment.
    await sleep(100);
  }
  return out;
}

describe(`member limits (${compatTarget()})`, { timeout: SUITE_TIMEOUT_MS }, () => {
  test(`--quota-backend-bytes ${QUOTA_BYTES}: NOSPACE`, async () => {
    const m = await start('quota', [`--quota-backend-bytes=${QUOTA_BYTES}`]);
    const c = m.channel;
    let stored = 0;
    for (; stored < PUTS_MAX; stored++) {
      try {
        await c.unary(KVService.Put, put(`q/${String(stored).padStart(4, '0')}`, Buffer.alloc(VALUE_BYTES, 1)), CALL);
      } catch (err) {
        assert.ok(err instanceof GrpcCallError);
        assert.deepEqual([err.code, err.details], [Status.RESOURCE_EXHAUSTED, NO_SPACE]);
        break;
      }
    }
    assert.ok(stored < PUTS_MAX, `${stored} puts of ${VALUE_BYTES} bytes fit in a ${QUOTA_BYTES} byte quota`);
    assert.ok(stored > QUOTA_BYTES / VALUE_BYTES / 4, `refused after only ${stored} puts`);
    const alarmed = 'memberID:<id> alarm:NOSPACE \n';
    assert.equal(await alarmList(m, alarmed), alarmed);
    const status = await c.unary(MaintenanceService.Status, {}, CALL);
    assert.deepEqual(
      status.errors.map((e) => e.replace(/memberID:\d+/, 'memberID:<id>')),
      ['memberID:<id> alarm:NOSPACE '],
    );

    // Writes that add data are refused; reads, deletes and compaction work.
    await refused(c.unary(KVService.Put, put('small', Buffer.from('x')), CALL), Status.RESOURCE_EXHAUSTED, NO_SPACE);
    await refused(
      c.unary(KVService.Txn, TxnRequest.fromPartial({ success: [putOp('txn', Buffer.from('x'))] }), CALL),
      Status.RESOURCE_EXHAUSTED,
      NO_SPACE,
    );
    await refused(
      c.unary(LeaseService.LeaseGrant, LeaseGrantRequest.fromPartial({ TTL: 10n }), CALL),
      Status.RESOURCE_EXHAUSTED,
      NO_SPACE,
    );
    const read = await c.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('q/0000') }), CALL);
    assert.equal(read.kvs[0]?.value.length, VALUE_BYTES);
    const deleted = await c.unary(
      KVService.DeleteRange,
      DeleteRangeRequest.fromPartial({ key: Buffer.from('q/'), rangeEnd: Buffer.from('q0') }),
      CALL,
    );
    assert.equal(Number(deleted.deleted), stored);
    await c.unary(
      KVService.Compact,
      CompactionRequest.fromPartial({ revision: deleted.header!.revision, physical: true }),
      CALL,
    );

    // The alarm is stored: a restarted member still refuses.
    await m.kill('SIGTERM');
    await m.restart();
    assert.equal(await alarmList(m, alarmed), alarmed);
    await refused(
      m.channel.unary(KVService.Put, put('small', Buffer.from('x')), CALL),
      Status.RESOURCE_EXHAUSTED,
      NO_SPACE,
    );
    // Disarmed while the backend file is still over the quota (nothing defragmented it): the
    // next put is refused again and raises the alarm again.
    const disarm = await etcdctl(m.endpoint, ['alarm', 'disarm']);
    assert.equal(disarm.code, 0, disarm.stderr);
    await refused(
      m.channel.unary(KVService.Put, put('small', Buffer.from('x')), CALL),
      Status.RESOURCE_EXHAUSTED,
      NO_SPACE,
    );
    assert.equal(await alarmList(m, alarmed), alarmed);
  });

  test('--max-request-bytes 1024: request is too large', async () => {
    const m = await start('max-request', ['--max-request-bytes=1024']);
    const c = m.channel;
    const first = await c.unary(KVService.Put, put('limit', Buffer.alloc(900, 1)), CALL);
    await refused(
      c.unary(KVService.Put, put('limit', Buffer.alloc(2_000, 2)), CALL),
      Status.INVALID_ARGUMENT,
      TOO_LARGE,
    );
    await refused(
      c.unary(
        KVService.Txn,
        TxnRequest.fromPartial({ success: ['a', 'b', 'c'].map((k) => putOp(k, Buffer.alloc(400, 3))) }),
        CALL,
      ),
      Status.INVALID_ARGUMENT,
      TOO_LARGE,
    );
    // Past the gRPC receive limit (max-request-bytes + 512 KiB) gRPC itself refuses.
    await refused(
      c.unary(KVService.Put, put('limit', Buffer.alloc(600 * 1024, 4)), CALL),
      Status.RESOURCE_EXHAUSTED,
      /^grpc: received message larger than max \(\d+ vs\. \d+\)$/,
    );
    // Nothing changed; a read is not limited by the request size.
    const after = await c.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.alloc(2_000, 0x61) }), CALL);
    assert.equal(after.header!.revision, first.header!.revision);
    const value = await c.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('limit') }), CALL);
    assert.ok(Buffer.from(value.kvs[0]!.value).equals(Buffer.alloc(900, 1)));
  });
});
