/**
 * Log compaction of one member (etcd-ts, or the real etcd with COMPAT_TARGET=etcd): with
 * `--snapshot-count 100`, 1000 puts leave snapshot files in `member/snap`; on etcd-ts the WAL
 * segments wholly before the last snapshot are released (the values are large enough for the
 * log to fill more than one 64 MiB segment; etcd itself keeps up to `--max-wals` files). After a
 * SIGKILL the member restarts from the snapshot and the WAL with every write: the same revision,
 * the same keys and values, the same HashKV.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KVService, MaintenanceService, PutRequest, RangeRequest } from '../../src/proto/index.ts';
import { compatTarget, Member, MemberKind } from '../helpers/member.ts';

const TEST_TIMEOUT_MS = 90_000;
const PUTS = 1000;
const SNAPSHOT_COUNT = 100;
/** 1000 entries of this size fill the first 64 MiB WAL segment before the last snapshot. */
const VALUE_BYTES = 80_000;
const WRITERS = 8;
const CALL = { timeoutMs: 10_000 };
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const WAL_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

let member: Member | undefined;
after(async () => {
  await member?.stop();
});

const keyOf = (i: number) => `snap/${String(i).padStart(4, '0')}`;

function storedValue(i: number): Buffer {
  const value = Buffer.alloc(VALUE_BYTES, i % 256);
  value.write(keyOf(i));
  return value;
}

/** Files of a directory matching `pattern`, with their two hex fields as numbers, in name order. */
function files(dir: string, pattern: RegExp): { name: string; first: number; second: number }[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const m = pattern.exec(name);
      return m === null ? [] : [{ name, first: Number.parseInt(m[1]!, 16), second: Number.parseInt(m[2]!, 16) }];
    });
}

async function state(m: Member): Promise<{ revision: bigint; hash: number; count: bigint }> {
  const hash = await m.channel.unary(MaintenanceService.HashKV, { revision: 0n }, CALL);
  const count = await m.channel.unary(
    KVService.Range,
    RangeRequest.fromPartial({ key: Buffer.from('snap/'), rangeEnd: Buffer.from('snap0'), countOnly: true }),
    CALL,
  );
  return { revision: hash.header!.revision, hash: hash.hash, count: count.count };
}

test(`--snapshot-count ${SNAPSHOT_COUNT}: snapshots, WAL release, restart with every write (${compatTarget()})`, {
  timeout: TEST_TIMEOUT_MS,
}, async () => {
  member = await Member.start({
    kind: compatTarget(),
    name: 'snapshot',
    extraArgs: [`--snapshot-count=${SNAPSHOT_COUNT}`],
  });
  const m = member;
  const snapDir = join(m.dataDir, 'member', 'snap');
  const walDir = join(m.dataDir, 'member', 'wal');
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (next < PUTS) {
        const i = next++;
        await m.channel.unary(
          KVService.Put,
          PutRequest.fromPartial({ key: Buffer.from(keyOf(i)), value: storedValue(i) }),
          CALL,
        );
      }
    }),
  );
  const before = await state(m);
  assert.equal(before.count, BigInt(PUTS));

  const snaps = files(snapDir, SNAP_NAME);
  assert.ok(snaps.length > 0, `no snapshot file in ${snapDir}: ${readdirSync(snapDir)}`);
  const lastSnapIndex = Math.max(...snaps.map((s) => s.second));
  // A snapshot is taken every SNAPSHOT_COUNT applied entries: the last one is within that of the end.
  assert.ok(lastSnapIndex >= PUTS - SNAPSHOT_COUNT, `last snapshot at index ${lastSnapIndex}`);
  const wals = files(walDir, WAL_NAME);
  assert.ok(wals.length > 0, `no WAL segment in ${walDir}`);
  if (m.kind === MemberKind.ETCD_TS) {
    // Segments are named <sequence>-<first index>. More than one was written, and the ones
    // before the segment holding the last snapshot's index are gone.
    const newest = wals[wals.length - 1]!;
    assert.ok(newest.first >= 1, `one WAL segment only: ${wals.map((w) => w.name)}`);
    assert.ok(
      wals.every((w) => w.first > 0),
      `the first WAL segment is still there: ${wals.map((w) => w.name)}`,
    );
    assert.ok(
      wals[0]!.second <= lastSnapIndex + 1,
      `the WAL does not cover the entries after the snapshot: ${wals.map((w) => w.name)}`,
    );
  }

  await m.kill('SIGKILL');
  await m.restart();
  assert.deepEqual(await state(m), before, 'the restarted member differs');
  // HashKV covers every stored revision and value; the keys and a sample of values are read too.
  const keys = await m.channel.unary(
    KVService.Range,
    RangeRequest.fromPartial({ key: Buffer.from('snap/'), rangeEnd: Buffer.from('snap0'), keysOnly: true }),
    CALL,
  );
  assert.deepEqual(
    keys.kvs.map((kv) => Buffer.from(kv.key).toString()),
    Array.from({ length: PUTS }, (_, i) => keyOf(i)),
  );
  for (let i = 0; i < PUTS; i += 47) {
    const resp = await m.channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from(keyOf(i)) }), CALL);
    assert.ok(Buffer.from(resp.kvs[0]!.value).equals(storedValue(i)), `wrong value of ${keyOf(i)}`);
  }
});
