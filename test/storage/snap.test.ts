import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type BrokenSnapshot,
  SnapErrorCode,
  type Snapshot,
  Snapshotter,
  snapshotName,
} from '../../src/storage/snap/index.ts';
import { tempDir } from './fixtures/wal-helpers.ts';

function snapshot(index: number, term: number, size = 1000): Snapshot {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 7 + term * 13 + i) & 0xff;
  return { index, term, data };
}

function assertSnapshot(actual: Snapshot | null, expected: Snapshot): void {
  assert.ok(actual !== null, 'a snapshot was found');
  assert.equal(actual.index, expected.index);
  assert.equal(actual.term, expected.term);
  assert.ok(Buffer.from(actual.data).equals(Buffer.from(expected.data)), 'data round-trips');
}

function rejectsWith(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  };
}

async function withSnapshotter(
  body: (snap: Snapshotter, dir: string, broken: BrokenSnapshot[]) => Promise<void>,
): Promise<void> {
  const root = await tempDir('snap');
  const dir = join(root.path, 'snap');
  const broken: BrokenSnapshot[] = [];
  try {
    await body(new Snapshotter(dir, { onBroken: (b) => broken.push(b) }), dir, broken);
  } finally {
    await root.remove();
  }
}

describe('snapshotter', () => {
  test('saves under <term>-<index>.snap and loads back', async () => {
    await withSnapshotter(async (snap, dir) => {
      assert.equal(await snap.loadNewest(), null, 'no directory yet: no snapshot');
      assert.deepEqual(await snap.list(), []);
      const s = snapshot(0x1234, 7, 100_000);
      await snap.save(s);
      assert.deepEqual(await readdir(dir), ['0000000000000007-0000000000001234.snap']);
      assert.equal(snapshotName(7, 0x1234), '0000000000000007-0000000000001234.snap');
      assertSnapshot(await snap.load({ index: 0x1234, term: 7 }), s);
      assertSnapshot(await snap.loadNewest(), s);
      const empty = { index: 1, term: 1, data: new Uint8Array(0) };
      await snap.save(empty);
      assertSnapshot(await snap.load({ index: 1, term: 1 }), empty);
      await assert.rejects(snap.load({ index: 2, term: 1 }), rejectsWith(SnapErrorCode.NotFound));
    });
  });

  test('the newest valid snapshot is chosen; a corrupt newer one is skipped, reported and moved aside', async () => {
    await withSnapshotter(async (snap, dir, broken) => {
      const older = snapshot(100, 2);
      const middle = snapshot(200, 3);
      const newest = snapshot(300, 3);
      for (const s of [older, middle, newest]) await snap.save(s);
      assert.deepEqual(
        (await snap.list()).map((f) => f.index),
        [300, 200, 100],
      );
      // Flip one bit in the newest file's data.
      const newestPath = join(dir, snapshotName(3, 300));
      const bytes = await readFile(newestPath);
      bytes[500]! ^= 0x10;
      await writeFile(newestPath, bytes);
      await assert.rejects(snap.load({ index: 300, term: 3 }), rejectsWith(SnapErrorCode.CrcMismatch));

      assertSnapshot(await snap.loadNewest(), middle);
      assert.equal(broken.length, 1);
      assert.equal(broken[0]!.name, snapshotName(3, 300));
      assert.equal(broken[0]!.movedTo, `${snapshotName(3, 300)}.broken`);
      assert.equal(broken[0]!.error.code, SnapErrorCode.CrcMismatch);
      const names = await readdir(dir);
      assert.ok(names.includes(`${snapshotName(3, 300)}.broken`));
      assert.ok(!names.includes(snapshotName(3, 300)));
      // Once moved aside it is no longer listed or reported.
      assertSnapshot(await snap.loadNewest(), middle);
      assert.equal(broken.length, 1);
    });
  });

  test('truncated, foreign and misnamed files are corrupt', async () => {
    await withSnapshotter(async (snap, dir, broken) => {
      const good = snapshot(10, 1);
      await snap.save(good);
      await snap.save(snapshot(20, 1));
      await snap.save(snapshot(30, 1));
      await snap.save(snapshot(40, 1));
      const path = (index: number) => join(dir, snapshotName(1, index));
      const full = await readFile(path(20));
      await writeFile(path(20), full.subarray(0, full.length - 10)); // cut short
      await writeFile(path(30), Buffer.from('this is not a snapshot at all, just some text'));
      await writeFile(path(40), await readFile(path(10))); // another snapshot under this name
      assertSnapshot(await snap.loadNewest(), good);
      assert.deepEqual(
        broken.map((b) => [b.name, b.error.code]),
        [
          [snapshotName(1, 40), SnapErrorCode.Corrupt],
          [snapshotName(1, 30), SnapErrorCode.Corrupt],
          [snapshotName(1, 20), SnapErrorCode.Corrupt],
        ],
      );
      assert.match(broken[0]!.error.message, /not the one its name says/);
    });
  });

  test('with markers, only snapshots the WAL knows of are considered', async () => {
    await withSnapshotter(async (snap, _dir, broken) => {
      const known = snapshot(100, 2);
      await snap.save(known);
      await snap.save(snapshot(200, 2)); // saved, but its WAL marker never made it
      await snap.save(snapshot(150, 3)); // same index range, a term the WAL does not have
      assertSnapshot(
        await snap.loadNewest([
          { index: 100, term: 2 },
          { index: 150, term: 2 },
        ]),
        known,
      );
      assert.equal(await snap.loadNewest([{ index: 5, term: 1 }]), null);
      assertSnapshot(await snap.loadNewest(), snapshot(200, 2));
      assert.deepEqual(broken, []);
    });
  });

  test('dbPath and releaseOlderThan', async () => {
    await withSnapshotter(async (snap, dir) => {
      assert.equal(snap.dbPath(0x2a), join(dir, '000000000000002a.snap.db'));
      for (const index of [10, 20, 30]) {
        await snap.save(snapshot(index, 1));
        await writeFile(snap.dbPath(index), 'backend');
      }
      await writeFile(join(dir, `${snapshotName(1, 5)}.broken`), 'kept for inspection');
      await writeFile(join(dir, 'unrelated.txt'), 'not ours');
      const removed = await snap.releaseOlderThan(30);
      assert.deepEqual(
        removed,
        ['000000000000000a.snap.db', '0000000000000014.snap.db', snapshotName(1, 10), snapshotName(1, 20)].sort(),
      );
      assert.deepEqual(
        (await readdir(dir)).sort(),
        ['000000000000001e.snap.db', snapshotName(1, 30), `${snapshotName(1, 5)}.broken`, 'unrelated.txt'].sort(),
      );
      assertSnapshot(await snap.loadNewest(), snapshot(30, 1));
    });
  });

  test('bad input is refused and nothing is written', async () => {
    await withSnapshotter(async (snap, dir) => {
      await assert.rejects(
        snap.save({ index: -1, term: 1, data: new Uint8Array(1) }),
        rejectsWith(SnapErrorCode.InvalidArgument),
      );
      await assert.rejects(
        snap.save({ index: 1, term: 1.5, data: new Uint8Array(1) }),
        rejectsWith(SnapErrorCode.InvalidArgument),
      );
      await assert.rejects(
        snap.save({ index: 1, term: 1, data: 'text' as unknown as Uint8Array }),
        rejectsWith(SnapErrorCode.InvalidArgument),
      );
      await assert.rejects(snap.load({ index: Number.NaN, term: 1 }), rejectsWith(SnapErrorCode.InvalidArgument));
      await assert.rejects(snap.releaseOlderThan(-3), rejectsWith(SnapErrorCode.InvalidArgument));
      assert.throws(() => snap.dbPath(1.5), rejectsWith(SnapErrorCode.InvalidArgument));
      assert.deepEqual(await snap.list(), []);
      await assert.rejects(readdir(dir), { code: 'ENOENT' });
    });
  });

  test('a leftover temporary file from an interrupted save is ignored and cleared', async () => {
    await withSnapshotter(async (snap, dir) => {
      const good = snapshot(10, 1);
      await snap.save(good);
      await writeFile(join(dir, `${snapshotName(1, 20)}.tmp`), Buffer.alloc(100));
      assertSnapshot(await snap.loadNewest(), good);
      assert.deepEqual(await readdir(dir), [snapshotName(1, 10)]);
    });
  });
});
