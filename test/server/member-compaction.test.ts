/**
 * Automatic compaction of one member:
 *
 * - `--auto-compaction-mode periodic --auto-compaction-retention 1s` (etcd-ts, or the real etcd
 *   with COMPAT_TARGET=etcd): while writes go on, the compacted revision (HashKV's
 *   `compact_revision`) moves forward, stays behind the current revision, and a watch from
 *   revision 1 is refused as compacted.
 * - `--auto-compaction-mode revision --auto-compaction-retention 10`, in-process on etcd-ts: the
 *   revision compactor runs every 5 minutes, as etcd's, so the member's interval timers are
 *   mocked; nothing is compacted before 5 minutes, then the compacted revision is the current
 *   revision minus 10, and moves again 5 minutes later.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, mock, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdService } from '../../src/api/etcd-service.ts';
import { Channel } from '../../src/client/channel.ts';
import { startMember } from '../../src/embed/index.ts';
import { KVService, MaintenanceService, PutRequest } from '../../src/proto/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { WatchClient } from '../compat/watch-client.ts';
import { compatTarget, Member } from '../helpers/member.ts';

const CALL = { timeoutMs: 5_000 };
/** etcd's revision compactor interval. */
const REVISION_COMPACTOR_INTERVAL_MS = 5 * 60 * 1000;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function putKeys(channel: Channel, count: number, tag: string): Promise<number> {
  let revision = 0;
  for (let i = 0; i < count; i++) {
    const resp = await channel.unary(
      KVService.Put,
      PutRequest.fromPartial({ key: Buffer.from(`c/${i % 4}`), value: Buffer.from(`${tag}-${i}`) }),
      CALL,
    );
    revision = Number(resp.header!.revision);
  }
  return revision;
}

async function compacted(channel: Channel): Promise<{ compactRevision: number; revision: number }> {
  const resp = await channel.unary(MaintenanceService.HashKV, { revision: 0n }, CALL);
  return { compactRevision: Number(resp.compactRevision), revision: Number(resp.header!.revision) };
}

test(`periodic auto compaction with a 1 s retention moves the compacted revision (${compatTarget()})`, {
  timeout: 30_000,
}, async () => {
  const m = await Member.start({
    kind: compatTarget(),
    name: 'periodic',
    extraArgs: ['--auto-compaction-mode=periodic', '--auto-compaction-retention=1s'],
  });
  cleanups.push(() => m.stop());
  const seen: number[] = [];
  const deadline = Date.now() + 8_000;
  while (Date.now() < deadline && new Set(seen.filter((r) => r > 0)).size < 3) {
    await putKeys(m.channel, 5, 'p');
    const { compactRevision, revision } = await compacted(m.channel);
    assert.ok(compactRevision < revision, `compacted ${compactRevision} at revision ${revision}`);
    if (compactRevision > 0) {
      assert.ok(compactRevision >= (seen[seen.length - 1] ?? 0), `compaction went back to ${compactRevision}`);
      seen.push(compactRevision);
    }
    await sleep(200);
  }
  const distinct = [...new Set(seen)];
  assert.ok(distinct.length >= 3, `the compacted revision moved only through ${distinct}`);
  const watch = new WatchClient(m.endpoint);
  try {
    const created = await watch.createRaw({ key: Buffer.from('c/'), rangeEnd: Buffer.from('c0'), startRevision: 1n });
    await watch.stream.until((r) => r.some((x) => x.canceled), 'compacted watch canceled');
    const canceled = watch.stream.received.find((x) => x.canceled)!;
    assert.equal(canceled.watchId, created.watchId);
    assert.ok(Number(canceled.compactRevision) >= distinct[distinct.length - 1]!);
  } finally {
    watch.close();
  }
});

test('revision auto compaction keeps the last 10 revisions, every 5 minutes (etcd-ts, mocked timers)', {
  timeout: 30_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'etcd-ts-compaction-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  mock.timers.enable({ apis: ['setInterval'] });
  cleanups.push(() => mock.timers.reset());
  const service = new EtcdService();
  const member = await startMember(
    {
      name: 'revision',
      dataDir,
      listenClientUrls: ['http://127.0.0.1:0'],
      listenPeerUrls: ['http://127.0.0.1:0'],
      autoCompactionMode: 'revision',
      autoCompactionRetention: '10',
    },
    { logger: createSilentLogger(), services: [service] },
  );
  cleanups.push(() => member.close());
  const channel = new Channel(member.clientUrls[0]!);
  cleanups.push(() => channel.close());
  const server = service.server!;
  // Raft ticks are interval timers too: tick until the member has elected itself.
  for (let i = 0; !server.hasLeader(); i++) {
    assert.ok(i < 1_000, 'no leader');
    mock.timers.tick(100);
    await sleep(1);
  }
  /** Advances the mocked clock and waits (in real time) for the compaction it may trigger. */
  const advance = async (ms: number, expected: number) => {
    mock.timers.tick(ms);
    for (let i = 0; i < 200 && (await compacted(channel)).compactRevision !== expected; i++) await sleep(10);
  };

  const rev1 = await putKeys(channel, 30, 'a');
  await advance(REVISION_COMPACTOR_INTERVAL_MS - 1_000, -1);
  assert.equal((await compacted(channel)).compactRevision, -1, 'compacted before 5 minutes');
  await advance(1_000, rev1 - 10);
  assert.deepEqual(await compacted(channel), { compactRevision: rev1 - 10, revision: rev1 });

  const rev2 = await putKeys(channel, 25, 'b');
  await advance(REVISION_COMPACTOR_INTERVAL_MS, rev2 - 10);
  assert.deepEqual(await compacted(channel), { compactRevision: rev2 - 10, revision: rev2 });
});
