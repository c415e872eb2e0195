import assert from 'node:assert/strict';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Wal, type WalEntry, WalErrorCode, type WalHardState } from '../../src/storage/wal/index.ts';
import { hasExpectedData, makeEntries, makeEntry, tempDir } from './fixtures/wal-helpers.ts';

const META = new TextEncoder().encode('{"member":"8e9e05c52164694d","cluster":"cdf818194e3a8c32"}');

function assertEntries(actual: readonly WalEntry[], expected: readonly WalEntry[]): void {
  assert.equal(actual.length, expected.length, 'entry count');
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.equal(a.index, e.index, `entry ${i} index`);
    assert.equal(a.term, e.term, `entry ${i} term`);
    assert.equal(a.type, e.type, `entry ${i} type`);
    assert.deepEqual(Buffer.from(a.data), Buffer.from(e.data), `entry ${i} data`);
  }
}

async function withDir(prefix: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir(prefix);
  try {
    await body(join(dir.path, 'wal'));
  } finally {
    await dir.remove();
  }
}

function rejectsWith(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String(err)}`);
    return true;
  };
}

describe('wal round trips', () => {
  test('metadata, hard state and entries come back as written', async () => {
    await withDir('wal-rt', async (dir) => {
      assert.equal(Wal.exists(dir), false);
      const wal = await Wal.create(dir, META);
      assert.equal(Wal.exists(dir), true);
      const entries: WalEntry[] = [
        makeEntry(1, 1, 0),
        { index: 2, term: 1, type: 1, data: new Uint8Array(0) },
        { index: 3, term: 2, type: 0xffffffff, data: new Uint8Array(100_000).fill(0xab) },
        makeEntry(4, 2 ** 40, 2),
      ];
      const hardState: WalHardState = { term: 2 ** 40, vote: (1n << 64n) - 1n, commit: 3 };
      await wal.save({ term: 1, vote: 7n, commit: 0 }, entries.slice(0, 2));
      await wal.save(hardState, entries.slice(2));
      await wal.close();

      const reopened = await Wal.open(dir, { index: 0, term: 0 });
      assert.deepEqual(Buffer.from(reopened.metadata), Buffer.from(META));
      assert.deepEqual(reopened.hardState, hardState);
      assertEntries(reopened.entries, entries);
      // The reopened log continues where it left off.
      await reopened.wal.save(null, [makeEntry(5, 3)]);
      await reopened.wal.close();
      const again = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(again.entries, [...entries, makeEntry(5, 3)]);
      assert.deepEqual(again.hardState, hardState);
      await again.wal.close();
    });
  });

  test('a new log reads back empty, with an empty hard state', async () => {
    await withDir('wal-empty', async (dir) => {
      await (await Wal.create(dir, new Uint8Array(0))).close();
      const { wal, metadata, hardState, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assert.equal(metadata.length, 0);
      assert.deepEqual(hardState, { term: 0, vote: 0n, commit: 0 });
      assert.deepEqual(entries, []);
      await wal.close();
    });
  });

  test('create refuses an existing log, open refuses a missing one', async () => {
    await withDir('wal-exists', async (dir) => {
      await assert.rejects(Wal.open(dir, { index: 0, term: 0 }), rejectsWith(WalErrorCode.NotFound));
      const wal = await Wal.create(dir, META);
      await wal.save(null, makeEntries(1, 3, 1));
      await wal.close();
      await assert.rejects(Wal.create(dir, META), rejectsWith(WalErrorCode.Exists));
      const { entries, wal: reopened } = await Wal.open(dir, { index: 0, term: 0 });
      assert.equal(entries.length, 3, 'the refused create changed nothing');
      await reopened.close();
    });
  });

  test('entries with the index of earlier ones replace them and everything after', async () => {
    await withDir('wal-overwrite', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save({ term: 1, vote: 1n, commit: 2 }, makeEntries(1, 10, 1));
      await wal.save({ term: 2, vote: 2n, commit: 5 }, makeEntries(6, 3, 2));
      await wal.close();
      const first = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(first.entries, [...makeEntries(1, 5, 1), ...makeEntries(6, 3, 2)]);
      // A second overwrite further back, then appends after it.
      await first.wal.save(null, makeEntries(3, 2, 3));
      await first.wal.save(null, makeEntries(5, 2, 3));
      await first.wal.close();
      const second = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(second.entries, [...makeEntries(1, 2, 1), ...makeEntries(3, 4, 3)]);
      await second.wal.close();
    });
  });

  test('an overwrite that a later snapshot covers still drops the entries it replaced', async () => {
    await withDir('wal-overwrite-snap', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save(null, makeEntries(1, 10, 1));
      await wal.save({ term: 2, vote: 2n, commit: 8 }, makeEntries(7, 2, 2)); // 9 and 10 are gone
      await wal.saveSnapshot({ index: 8, term: 2 });
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index: 8, term: 2 });
      assert.deepEqual(entries, [], 'entries 9 and 10 of term 1 do not come back');
      await reopened.save(null, makeEntries(9, 1, 3));
      await reopened.close();
      const again = await Wal.open(dir, { index: 8, term: 2 });
      assertEntries(again.entries, makeEntries(9, 1, 3));
      await again.wal.close();
    });
  });

  test('opening at a snapshot marker returns only the entries after it', async () => {
    await withDir('wal-marker', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save({ term: 1, vote: 1n, commit: 20 }, makeEntries(1, 20, 1));
      await wal.saveSnapshot({ index: 12, term: 1 });
      await wal.save(null, makeEntries(21, 5, 1));
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index: 12, term: 1 });
      assertEntries(entries, makeEntries(13, 13, 1));
      await reopened.close();
      await assert.rejects(Wal.open(dir, { index: 11, term: 1 }), rejectsWith(WalErrorCode.SnapshotNotFound));
      await assert.rejects(Wal.open(dir, { index: 12, term: 2 }), rejectsWith(WalErrorCode.SnapshotMismatch));
    });
  });

  test('a snapshot received ahead of the log lets entries continue after it', async () => {
    await withDir('wal-restore', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save(null, makeEntries(1, 3, 1));
      await wal.saveSnapshot({ index: 1000, term: 4 });
      await wal.save({ term: 4, vote: 2n, commit: 1001 }, makeEntries(1001, 2, 4));
      await assert.rejects(wal.save(null, [makeEntry(1005, 4)]), rejectsWith(WalErrorCode.InvalidArgument));
      await wal.close();
      const { wal: reopened, entries, hardState } = await Wal.open(dir, { index: 1000, term: 4 });
      assertEntries(entries, makeEntries(1001, 2, 4));
      assert.equal(hardState.commit, 1001);
      await reopened.close();
    });
  });

  test('save with no hard state and no entries resolves after the saves before it', async () => {
    await withDir('wal-barrier', async (dir) => {
      const wal = await Wal.create(dir, META);
      const order: string[] = [];
      const a = wal.save(null, makeEntries(1, 50, 1)).then(() => order.push('a'));
      const b = wal.save(null, []).then(() => order.push('b'));
      await Promise.all([a, b]);
      assert.deepEqual(order, ['a', 'b']);
      await wal.close();
    });
  });
});

describe('wal group commit', () => {
  test('concurrent saves keep their order and share fsyncs', async () => {
    await withDir('wal-group', async (dir) => {
      const wal = await Wal.create(dir, META);
      const saves = 200;
      const resolved: number[] = [];
      const pending: Promise<unknown>[] = [];
      for (let i = 1; i <= saves; i++) {
        pending.push(wal.save({ term: 1, vote: 1n, commit: i - 1 }, [makeEntry(i, 1)]).then(() => resolved.push(i)));
      }
      await Promise.all(pending);
      const stats = wal.stats;
      assert.deepEqual(
        resolved,
        Array.from({ length: saves }, (_, i) => i + 1),
      );
      assert.equal(stats.batches, saves);
      // The first save is written alone; everything queued behind it goes in one group.
      assert.ok(stats.syncs <= 3, `${saves} concurrent saves took ${stats.syncs} fsyncs`);
      assert.equal(stats.syncs, stats.writes);
      await wal.close();
      const { wal: reopened, entries, hardState } = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(entries, makeEntries(1, saves, 1));
      assert.equal(hardState.commit, saves - 1);
      await reopened.close();
    });
  });

  test('sequential saves fsync once each', async () => {
    await withDir('wal-seq', async (dir) => {
      const fsyncs: number[] = [];
      const wal = await Wal.create(dir, META, { onFsync: (ms) => fsyncs.push(ms) });
      for (let i = 1; i <= 20; i++) await wal.save(null, [makeEntry(i, 1)]);
      assert.equal(wal.stats.syncs, 20);
      assert.equal(fsyncs.length, 20);
      assert.ok(fsyncs.every((ms) => ms >= 0));
      await wal.close();
    });
  });

  test('a group never passes groupBytesMax', async () => {
    await withDir('wal-groupmax', async (dir) => {
      const wal = await Wal.create(dir, META, { groupBytesMax: 4096 });
      const entries = Array.from({ length: 40 }, (_, i) => ({
        index: i + 1,
        term: 1,
        type: 0,
        data: new Uint8Array(1000),
      }));
      await Promise.all(entries.map((entry) => wal.save(null, [entry])));
      // About four 1 KiB entries fit a group: at least ten groups for forty entries.
      assert.ok(wal.stats.writes >= 10, `${wal.stats.writes} writes`);
      await wal.close();
    });
  });

  test('saveNow writes before it returns, with the deferred hard states, and declines while a write runs', async () => {
    await withDir('wal-now', async (dir) => {
      const fsyncs: number[] = [];
      const wal = await Wal.create(dir, META, { onFsync: (ms) => fsyncs.push(ms) });
      assert.equal(wal.saveNow({ term: 1, vote: 1n, commit: 0 }, [makeEntry(1, 1)], 1 << 20), true);
      assert.equal(wal.stats.syncs, 1);
      assert.equal(fsyncs.length, 1);
      wal.deferHardState({ term: 1, vote: 1n, commit: 1 });
      // A group commit in flight: saveNow declines and changes nothing; the queued save lands.
      const inFlight = wal.save(null, [makeEntry(2, 1)]);
      assert.equal(wal.saveNow(null, [makeEntry(3, 1)], 1 << 20), false);
      await inFlight;
      // Past bytesMax: declined as well.
      assert.equal(wal.saveNow(null, [makeEntry(3, 1)], 10), false);
      wal.deferHardState({ term: 1, vote: 1n, commit: 2 });
      assert.equal(wal.saveNow(null, [makeEntry(3, 1)], 1 << 20), true);
      assert.equal(wal.stats.batches, 3);
      assert.equal(wal.stats.deferredWritten, 2);
      // Bad input is refused as save refuses it: a gap.
      assert.throws(() => wal.saveNow(null, [makeEntry(9, 1)], 1 << 20), rejectsWith(WalErrorCode.InvalidArgument));
      // Read back without a close (a crash would leave the same file): everything saveNow wrote is there.
      const { wal: reopened, entries, hardState } = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(entries, makeEntries(1, 3, 1));
      assert.equal(hardState.commit, 2);
      await reopened.close();
      await wal.close();
    });
  });

  test('a failed saveNow stops the log like a failed save', async () => {
    await withDir('wal-now-failed', async (dir) => {
      const wal = await Wal.create(dir, META);
      assert.equal(wal.saveNow(null, makeEntries(1, 2, 1), 1 << 20), true);
      await (wal as unknown as { handle: { close(): Promise<void> } }).handle.close();
      assert.throws(() => wal.saveNow(null, [makeEntry(3, 1)], 1 << 20), rejectsWith(WalErrorCode.Failed));
      await assert.rejects(wal.save(null, [makeEntry(3, 1)]), rejectsWith(WalErrorCode.Failed));
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(entries, makeEntries(1, 2, 1));
      await reopened.close();
    });
  });

  test('unsafeNoFsync writes without fsync', async () => {
    await withDir('wal-nofsync', async (dir) => {
      const wal = await Wal.create(dir, META, { unsafeNoFsync: true });
      await wal.save(null, makeEntries(1, 5, 1));
      assert.equal(wal.stats.syncs, 0);
      assert.equal(wal.stats.writes, 1);
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assert.equal(entries.length, 5);
      await reopened.close();
    });
  });
});

describe('wal segments', () => {
  const segmentSizeBytes = 8 * 1024;

  async function fill(dir: string, count: number): Promise<Wal> {
    const wal = await Wal.create(dir, META, { segmentSizeBytes });
    for (let i = 1; i <= count; i += 10) {
      await wal.save({ term: 1, vote: 3n, commit: i - 1 }, makeEntries(i, 10, 1));
    }
    return wal;
  }

  test('segments are cut at the size limit, named by sequence and first index, and read back', async () => {
    await withDir('wal-cut', async (dir) => {
      const wal = await fill(dir, 400);
      const names = wal.segmentNames();
      assert.ok(names.length >= 5, `${names.length} segments`);
      assert.equal(wal.stats.segmentsCut, names.length - 1);
      await wal.close();
      assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.wal')).sort(), names);
      assert.equal(names[0], '0000000000000000-0000000000000000.wal');
      for (let i = 0; i < names.length; i++) {
        const [seq, index] = names[i]!.replace('.wal', '').split('-');
        assert.equal(Number.parseInt(seq!, 16), i);
        // Cuts happen between batches of ten: each later segment starts at 10k + 1.
        if (i > 0) assert.equal(Number.parseInt(index!, 16) % 10, 1);
        const { size } = await stat(join(dir, names[i]!));
        if (i < names.length - 1) {
          assert.ok(
            size >= segmentSizeBytes && size < segmentSizeBytes + 16 * 1024,
            `sealed segment ${i} is ${size} bytes`,
          );
        } else {
          // Preallocated; a batch that crossed the limit may have grown it (the cut comes before the next write).
          assert.ok(size >= segmentSizeBytes, 'the open segment is preallocated');
        }
      }
      const { wal: reopened, entries, hardState } = await Wal.open(dir, { index: 0, term: 0 }, { segmentSizeBytes });
      assertEntries(entries, makeEntries(1, 400, 1));
      assert.deepEqual(hardState, { term: 1, vote: 3n, commit: 390 });
      // Writing on after a reopen continues the sequence.
      for (let i = 401; i <= 600; i += 10) await reopened.save(null, makeEntries(i, 10, 1));
      const more = reopened.segmentNames();
      assert.ok(more.length > names.length);
      await reopened.close();
      const last = await Wal.open(dir, { index: 0, term: 0 }, { segmentSizeBytes });
      assertEntries(last.entries, makeEntries(1, 600, 1));
      await last.wal.close();
    });
  });

  test('releaseTo removes whole segments below the index and keeps the one holding it', async () => {
    await withDir('wal-release', async (dir) => {
      const wal = await fill(dir, 400);
      const starts = wal.segmentNames().map((name) => Number.parseInt(name.slice(17, 33), 16));
      // An index inside the third segment.
      const index = starts[2]! + 3;
      await wal.saveSnapshot({ index, term: 1 });
      const before = wal.segmentNames();
      await wal.releaseTo(index);
      const after = wal.segmentNames();
      assert.deepEqual(after, before.slice(2));
      assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.wal')).sort(), after);
      await wal.releaseTo(0); // nothing below the oldest segment: a no-op
      assert.deepEqual(wal.segmentNames(), after);
      await wal.save({ term: 2, vote: 4n, commit: 405 }, makeEntries(401, 5, 2));
      await wal.close();

      const { wal: reopened, entries, hardState } = await Wal.open(dir, { index, term: 1 }, { segmentSizeBytes });
      assertEntries(entries, [...makeEntries(index + 1, 400 - index, 1), ...makeEntries(401, 5, 2)]);
      assert.deepEqual(hardState, { term: 2, vote: 4n, commit: 405 });
      await assert.rejects(
        Wal.open(dir, { index: 0, term: 0 }, { segmentSizeBytes }),
        rejectsWith(WalErrorCode.NotFound),
      );
      // Releasing past the end keeps the segment being written.
      await reopened.releaseTo(1_000_000);
      assert.equal(reopened.segmentNames().length, 1);
      await reopened.close();
    });
  });

  test('a log opened at a later marker still releases the segments before it', async () => {
    await withDir('wal-release-reopen', async (dir) => {
      const wal = await fill(dir, 400);
      const index = Number.parseInt(wal.segmentNames()[3]!.slice(17, 33), 16) + 2;
      await wal.saveSnapshot({ index, term: 1 });
      const names = wal.segmentNames();
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index, term: 1 }, { segmentSizeBytes });
      assert.equal(entries[0]!.index, index + 1);
      assert.deepEqual(reopened.segmentNames(), names, 'every segment on disk is known, not only those read');
      await reopened.releaseTo(index);
      await reopened.close();
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort(),
        names.slice(3),
        'no older segment is left behind',
      );
    });
  });

  test('a hole among segments before the marker does not stop the open', async () => {
    await withDir('wal-old-hole', async (dir) => {
      const wal = await fill(dir, 400);
      const index = Number.parseInt(wal.segmentNames()[3]!.slice(17, 33), 16) + 2;
      await wal.saveSnapshot({ index, term: 1 });
      const names = wal.segmentNames();
      await wal.close();
      // As if a release had removed segment 1 and stopped before segment 0.
      await rm(join(dir, names[1]!));
      const { wal: reopened, entries } = await Wal.open(dir, { index, term: 1 }, { segmentSizeBytes });
      assertEntries(entries, makeEntries(index + 1, 400 - index, 1));
      await reopened.releaseTo(index);
      assert.deepEqual(reopened.segmentNames(), names.slice(3));
      await reopened.close();
    });
  });

  test('a later segment is readable alone: it starts with metadata and the last hard state', async () => {
    await withDir('wal-alone', async (dir) => {
      const wal = await Wal.create(dir, META, { segmentSizeBytes });
      await wal.save({ term: 5, vote: 9n, commit: 0 }, makeEntries(1, 10, 5));
      // Entries only from here on: the hard state is carried into new segments by the cut.
      for (let i = 11; i <= 200; i += 10) await wal.save(null, makeEntries(i, 10, 5));
      const names = wal.segmentNames();
      assert.ok(names.length >= 3);
      await wal.saveSnapshot({ index: 200, term: 5 });
      await wal.releaseTo(200);
      assert.equal(wal.segmentNames().length, 1);
      await wal.close();
      const { wal: reopened, hardState, metadata, entries } = await Wal.open(dir, { index: 200, term: 5 });
      assert.deepEqual(hardState, { term: 5, vote: 9n, commit: 0 });
      assert.deepEqual(Buffer.from(metadata), Buffer.from(META));
      assert.deepEqual(entries, []);
      await reopened.close();
    });
  });

  test('overwrites reach back across a segment boundary; later segments may start lower', async () => {
    await withDir('wal-overwrite-cut', async (dir) => {
      const wal = await fill(dir, 300);
      const before = wal.segmentNames();
      const lastStart = Number.parseInt(before[before.length - 1]!.slice(17, 33), 16);
      const from = lastStart - 15;
      await wal.save({ term: 2, vote: 1n, commit: from - 1 }, makeEntries(from, 4, 2));
      // Write on until the next cut: that segment is named after the overwrite, below its predecessor.
      let next = from + 4;
      while (wal.segmentNames().length === before.length) {
        await wal.save(null, makeEntries(next, 1, 2));
        next++;
      }
      await wal.save(null, makeEntries(next, 3, 2));
      next += 3;
      const names = wal.segmentNames();
      const starts = names.map((name) => Number.parseInt(name.slice(17, 33), 16));
      assert.ok(starts[starts.length - 1]! < lastStart + 100, 'the new segment is named after the overwrite');
      await wal.saveSnapshot({ index: next - 2, term: 2 });
      await wal.close();
      const expected = [...makeEntries(1, from - 1, 1), ...makeEntries(from, next - from, 2)];
      const all = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(all.entries, expected);
      await all.wal.close();
      const tail = await Wal.open(dir, { index: next - 2, term: 2 });
      assertEntries(tail.entries, expected.slice(next - 2));
      await tail.wal.close();
    });
  });

  test('zeros preallocation reserves the segment with written zeros', async () => {
    await withDir('wal-zeros', async (dir) => {
      const wal = await Wal.create(dir, META, { segmentSizeBytes, preallocate: 'zeros' });
      for (let i = 1; i <= 100; i += 10) await wal.save(null, makeEntries(i, 10, 1));
      const names = wal.segmentNames();
      await wal.close();
      const last = await readFile(join(dir, names[names.length - 1]!));
      assert.equal(last.length, segmentSizeBytes);
      const { wal: reopened, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(entries, makeEntries(1, 100, 1));
      await reopened.close();
    });
  });

  test('a missing segment in the middle is reported', async () => {
    await withDir('wal-hole', async (dir) => {
      const wal = await fill(dir, 300);
      const names = wal.segmentNames();
      await wal.close();
      await rm(join(dir, names[1]!));
      await assert.rejects(Wal.open(dir, { index: 0, term: 0 }), (err: Error & { code?: string }) => {
        assert.equal(err.code, WalErrorCode.Corrupt);
        assert.match(err.message, /sequence jumps from 0 to 2/);
        return true;
      });
    });
  });

  test('segments carrying different metadata conflict', async () => {
    await withDir('wal-meta', async (dir) => {
      const wal = await fill(dir, 100);
      const names = wal.segmentNames();
      await wal.close();
      const other = `${dir}-other`;
      try {
        const foreign = await Wal.create(other, new TextEncoder().encode('another member'));
        await foreign.close();
        const foreignSegment = await readFile(join(other, '0000000000000000-0000000000000000.wal'));
        await writeFile(join(dir, names[names.length - 1]!), foreignSegment);
        await assert.rejects(Wal.open(dir, { index: 0, term: 0 }), rejectsWith(WalErrorCode.MetadataConflict));
      } finally {
        await rm(other, { recursive: true, force: true });
      }
    });
  });
});

describe('wal refuses bad input and changes nothing', () => {
  test('invalid saves are rejected and the log is unchanged', async () => {
    await withDir('wal-invalid', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save({ term: 1, vote: 1n, commit: 0 }, makeEntries(1, 3, 1));
      const bad: [WalHardState | null, WalEntry[]][] = [
        [null, [makeEntry(5, 1)]], // gap after 3
        [null, [makeEntry(4, 1), makeEntry(6, 1)]], // not consecutive
        [null, [makeEntry(0, 1)]], // index 0
        [null, [{ ...makeEntry(4, 1), term: -1 }]],
        [null, [{ ...makeEntry(4, 1), index: 4.5 }]],
        [null, [{ ...makeEntry(4, 1), type: 2 ** 32 }]],
        [null, [{ ...makeEntry(4, 1), data: 'text' as unknown as Uint8Array }]],
        [{ term: 1, vote: 1 as unknown as bigint, commit: 0 }, []],
        [{ term: 1, vote: -1n, commit: 0 }, []],
        [{ term: 1, vote: 1n << 64n, commit: 0 }, []],
        [{ term: 2 ** 53, vote: 1n, commit: 0 }, []],
      ];
      for (const [hardState, entries] of bad) {
        await assert.rejects(wal.save(hardState, entries), rejectsWith(WalErrorCode.InvalidArgument));
      }
      await assert.rejects(wal.saveSnapshot({ index: -1, term: 0 }), rejectsWith(WalErrorCode.InvalidArgument));
      await assert.rejects(wal.releaseTo(Number.NaN), rejectsWith(WalErrorCode.InvalidArgument));
      assert.equal(wal.stats.writes, 1, 'no refused call wrote anything');
      await wal.save(null, [makeEntry(4, 1)]);
      await wal.close();
      const { wal: reopened, entries, hardState } = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(entries, makeEntries(1, 4, 1));
      assert.deepEqual(hardState, { term: 1, vote: 1n, commit: 0 });
      await reopened.close();
    });
  });

  test('bad options and metadata are refused before anything is created', async () => {
    await withDir('wal-options', async (dir) => {
      await assert.rejects(Wal.create(dir, META, { segmentSizeBytes: 10 }), rejectsWith(WalErrorCode.InvalidArgument));
      await assert.rejects(
        Wal.create(dir, META, { preallocate: 'fallocate' as 'sparse' }),
        rejectsWith(WalErrorCode.InvalidArgument),
      );
      await assert.rejects(Wal.create(dir, new Uint8Array(2 * 1024 * 1024)), rejectsWith(WalErrorCode.InvalidArgument));
      await assert.rejects(Wal.create(dir, 'meta' as unknown as Uint8Array), rejectsWith(WalErrorCode.InvalidArgument));
      assert.equal(Wal.exists(dir), false);
      await assert.rejects(Wal.open(dir, { index: -1, term: 0 }), rejectsWith(WalErrorCode.InvalidArgument));
    });
  });

  test('saves beyond pendingBytesMax are refused, the queued ones still land', async () => {
    await withDir('wal-overload', async (dir) => {
      const wal = await Wal.create(dir, META, { pendingBytesMax: 64 * 1024 });
      const big = (index: number) => ({ index, term: 1, type: 0, data: new Uint8Array(40 * 1024) });
      const first = wal.save(null, [big(1)]);
      await assert.rejects(wal.save(null, [big(2)]), rejectsWith(WalErrorCode.Overloaded));
      await assert.rejects(
        wal.save(null, [{ index: 2, term: 1, type: 0, data: new Uint8Array(100 * 1024) }]),
        rejectsWith(WalErrorCode.InvalidArgument),
      );
      await first;
      await wal.save(null, [big(2)]);
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assert.deepEqual(
        entries.map((e) => e.index),
        [1, 2],
      );
      await reopened.close();
    });
  });

  test('a failed write stops the log: the saves queued and every later call are refused', async () => {
    await withDir('wal-failed', async (dir) => {
      const wal = await Wal.create(dir, META);
      await wal.save(null, makeEntries(1, 2, 1));
      // Pull the file out from under the log, as a failing disk would: the next write fails.
      await (wal as unknown as { handle: { close(): Promise<void> } }).handle.close();
      const saves = [3, 4, 5].map((i) => wal.save(null, [makeEntry(i, 1)]));
      for (const save of saves) {
        await assert.rejects(save, (err: Error & { code?: string; cause?: { code?: string } }) => {
          assert.equal(err.code, WalErrorCode.Failed);
          assert.equal(err.cause?.code, 'EBADF');
          return true;
        });
      }
      await assert.rejects(wal.save(null, [makeEntry(3, 1)]), rejectsWith(WalErrorCode.Failed));
      await assert.rejects(wal.saveSnapshot({ index: 1, term: 1 }), rejectsWith(WalErrorCode.Failed));
      await wal.close();
      const { wal: reopened, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assertEntries(entries, makeEntries(1, 2, 1));
      await reopened.close();
    });
  });

  test('close waits for queued saves; later calls are refused', async () => {
    await withDir('wal-close', async (dir) => {
      const wal = await Wal.create(dir, META);
      const saves = [1, 2, 3].map((i) => wal.save(null, [makeEntry(i, 1)]));
      const closed = wal.close();
      await assert.rejects(wal.save(null, [makeEntry(4, 1)]), rejectsWith(WalErrorCode.Closed));
      await Promise.all(saves);
      await closed;
      await wal.close(); // idempotent
      await assert.rejects(wal.saveSnapshot({ index: 1, term: 1 }), rejectsWith(WalErrorCode.Closed));
      await assert.rejects(wal.releaseTo(1), rejectsWith(WalErrorCode.Closed));
      const { wal: reopened, entries } = await Wal.open(dir, { index: 0, term: 0 });
      assert.equal(entries.length, 3);
      assert.ok(entries.every(hasExpectedData));
      await reopened.close();
    });
  });
});
