// The WAL's two ways to make a group commit durable (O_DSYNC segments, or write + fdatasync)
// and its deferred hard states (raft's mustSync false: written with the next save).
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Wal, WalErrorCode, WalSyncMode } from '../../src/storage/wal/index.ts';
import { hasExpectedData, makeEntries, makeEntry, tempDir } from '../storage/fixtures/wal-helpers.ts';

const META = new TextEncoder().encode('{"member":"1","cluster":"2"}');

async function withDir(prefix: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir(prefix);
  try {
    await body(join(dir.path, 'wal'));
  } finally {
    await dir.remove();
  }
}

/** The open flags of the WAL's current segment handle, from /proc/self/fdinfo. */
async function segmentFlags(wal: Wal): Promise<number> {
  const handle = (wal as unknown as { handle: FileHandle }).handle;
  const info = await readFile(`/proc/self/fdinfo/${handle.fd}`, 'utf8');
  const flags = /^flags:\s+([0-7]+)$/m.exec(info);
  assert.ok(flags !== null, `no flags in ${info}`);
  return Number.parseInt(flags[1]!, 8);
}

function rejectsWith(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  };
}

describe('wal sync modes', () => {
  test('dsync (the default) appends through O_DSYNC handles, also after a cut and a reopen', async () => {
    await withDir('wal-dsync', async (dir) => {
      const synced: number[] = [];
      const wal = await Wal.create(dir, META, { segmentSizeBytes: 4096, onFsync: (ms) => synced.push(ms) });
      assert.ok((await segmentFlags(wal)) & constants.O_DSYNC, 'the first segment is O_DSYNC');
      for (let i = 1; i <= 40; i++) await wal.save({ term: 1, vote: 1n, commit: i - 1 }, [makeEntry(i, 1)]);
      assert.ok(wal.stats.segmentsCut > 0, 'segments were cut');
      assert.ok((await segmentFlags(wal)) & constants.O_DSYNC, 'a segment after a cut is O_DSYNC');
      // One durable write per save, each reported like an fsync.
      assert.equal(wal.stats.syncs, 40);
      assert.equal(synced.length, 40);
      await wal.close();
      const opened = await Wal.open(dir, { index: 0, term: 0 }, { segmentSizeBytes: 4096 });
      assert.ok((await segmentFlags(opened.wal)) & constants.O_DSYNC, 'the reopened segment is O_DSYNC');
      assert.equal(opened.entries.length, 40);
      assert.ok(opened.entries.every(hasExpectedData));
      assert.equal(opened.hardState.commit, 39);
      await opened.wal.close();
    });
  });

  test('fdatasync mode appends through plain handles; unsafeNoFsync never opens O_DSYNC', async () => {
    await withDir('wal-fdatasync', async (dir) => {
      const wal = await Wal.create(dir, META, { syncMode: WalSyncMode.Fdatasync });
      assert.equal((await segmentFlags(wal)) & constants.O_DSYNC, 0);
      await wal.save(null, makeEntries(1, 3, 1));
      assert.equal(wal.stats.syncs, 1);
      await wal.close();
      const opened = await Wal.open(dir, { index: 0, term: 0 }, { unsafeNoFsync: true });
      assert.equal((await segmentFlags(opened.wal)) & constants.O_DSYNC, 0);
      await opened.wal.save(null, [makeEntry(4, 1)]);
      assert.equal(opened.wal.stats.syncs, 0);
      await opened.wal.close();
    });
  });

  test('an unknown sync mode is refused before anything is created', async () => {
    await withDir('wal-badmode', async (dir) => {
      await assert.rejects(
        Wal.create(dir, META, { syncMode: 'fsync-twice' as never }),
        rejectsWith(WalErrorCode.InvalidArgument),
      );
      assert.equal(Wal.exists(dir), false);
    });
  });
});

describe('wal deferred hard states', () => {
  test('a deferred hard state costs no write; the next save writes it first', async () => {
    await withDir('wal-defer', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save({ term: 2, vote: 1n, commit: 0 }, makeEntries(1, 3, 2));
      const writes = wal.stats.writes;
      wal.deferHardState({ term: 2, vote: 1n, commit: 2 });
      wal.deferHardState({ term: 2, vote: 1n, commit: 3 });
      assert.equal(wal.stats.writes, writes, 'deferring writes nothing');
      // Not on disk yet: a reader of the files now (as after a crash) sees the old commit.
      const before = await Wal.open(dir, { index: 0, term: 0 }, { preallocate: 'none' });
      assert.equal(before.hardState.commit, 0);
      await before.wal.close();
      // The next save carries it, in order before its own records: its own (no hard state) adds entries.
      await wal.save(null, [makeEntry(4, 2)]);
      assert.equal(wal.stats.writes, writes + 1, 'one write for the save and the deferred state');
      assert.equal(wal.stats.deferredWritten, 1, 'the second deferral replaced the first');
      await wal.close();
      const after = await Wal.open(dir, { index: 0, term: 0 });
      assert.equal(after.hardState.commit, 3);
      assert.deepEqual(after.hardState, { term: 2, vote: 1n, commit: 3 });
      assert.equal(after.entries.length, 4);
      await after.wal.close();
    });
  });

  test('a save queued after a deferred state writes its own hard state last', async () => {
    await withDir('wal-defer-order', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save({ term: 1, vote: 1n, commit: 0 }, makeEntries(1, 2, 1));
      wal.deferHardState({ term: 1, vote: 1n, commit: 2 });
      await wal.save({ term: 3, vote: 2n, commit: 2 }, [makeEntry(3, 3)]);
      await wal.close();
      const opened = await Wal.open(dir, { index: 0, term: 0 });
      assert.deepEqual(opened.hardState, { term: 3, vote: 2n, commit: 2 });
      await opened.wal.close();
    });
  });

  test('close writes and syncs a deferred hard state still queued', async () => {
    await withDir('wal-defer-close', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save(null, makeEntries(1, 5, 1));
      const syncs = wal.stats.syncs;
      wal.deferHardState({ term: 1, vote: 0n, commit: 5 });
      await wal.close();
      assert.equal(wal.stats.syncs, syncs + 1);
      const opened = await Wal.open(dir, { index: 0, term: 0 });
      assert.equal(opened.hardState.commit, 5);
      await opened.wal.close();
    });
  });

  test('deferred states while a group is in flight go out with the next group, not alone', async () => {
    await withDir('wal-defer-inflight', async (dir) => {
      const wal = await Wal.create(dir, META);
      const first = wal.save(null, makeEntries(1, 2, 1));
      wal.deferHardState({ term: 1, vote: 0n, commit: 1 });
      await first;
      // The write loop stopped with only a deferred state left: it waits for the next save.
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(wal.stats.writes, 1);
      await wal.save(null, [makeEntry(3, 1)]);
      assert.equal(wal.stats.writes, 2);
      assert.equal(wal.stats.deferredWritten, 1);
      await wal.close();
    });
  });

  test('a bad hard state is refused and changes nothing; a closed log refuses deferrals', async () => {
    await withDir('wal-defer-bad', async (dir) => {
      const wal = await Wal.create(dir, META);
      assert.throws(
        () => wal.deferHardState({ term: -1, vote: 0n, commit: 0 }),
        rejectsWith(WalErrorCode.InvalidArgument),
      );
      assert.throws(
        () => wal.deferHardState({ term: 1, vote: -1n, commit: 0 }),
        rejectsWith(WalErrorCode.InvalidArgument),
      );
      await wal.save(null, [makeEntry(1, 1)]);
      assert.equal(wal.stats.deferredWritten, 0);
      await wal.close();
      assert.throws(() => wal.deferHardState({ term: 1, vote: 0n, commit: 1 }), rejectsWith(WalErrorCode.Closed));
      const opened = await Wal.open(dir, { index: 0, term: 0 });
      assert.deepEqual(opened.hardState, { term: 0, vote: 0n, commit: 0 });
      await opened.wal.close();
    });
  });
});
