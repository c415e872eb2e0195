import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Wal, WalErrorCode } from '../../src/storage/wal/index.ts';
import { RecordType, RecordWriter } from '../../src/storage/wal/record.ts';
import { scanSegment } from '../../src/storage/wal/scan.ts';
import { segmentName } from '../../src/storage/wal/segment.ts';
import { hasExpectedData, makeEntries, makeEntry, prng, tempDir } from './fixtures/wal-helpers.ts';

const META = new TextEncoder().encode('corruption-test');
const SEGMENT_BYTES = 8 * 1024;

interface RecordSpan {
  type: number;
  start: number;
  end: number;
}

/** The records of a segment, as the reader sees them. */
function recordsOf(bytes: Buffer): RecordSpan[] {
  const spans: RecordSpan[] = [];
  scanSegment(bytes, 'inspect', true, (view, offset) => spans.push({ type: view.type, start: offset, end: view.end }));
  return spans;
}

function flipBit(bytes: Buffer, offset: number, bit = 3): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset]! ^= 1 << bit;
  return copy;
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.wal')).sort();
}

function rejectsWith(code: string, ...patterns: RegExp[]): (err: unknown) => boolean {
  return (err: unknown) => {
    const e = err as Error & { code?: string };
    assert.equal(e.code, code, `expected ${code}, got ${String(err)}`);
    for (const pattern of patterns) assert.match(e.message, pattern);
    return true;
  };
}

describe('wal tails and corruption', () => {
  let root: Awaited<ReturnType<typeof tempDir>>;
  let dir: string;
  /** The pristine bytes of every segment, restored before each case. */
  let pristine: Map<string, Buffer>;
  let names: string[];
  let lastName: string;
  let lastRecords: RecordSpan[];
  let firstRecords: RecordSpan[];
  const total = 201;

  before(async () => {
    root = await tempDir('wal-corrupt');
    dir = join(root.path, 'wal');
    const wal = await Wal.create(dir, META, { segmentSizeBytes: SEGMENT_BYTES });
    for (let i = 1; i <= total; i += 3) await wal.save({ term: 1, vote: 1n, commit: i - 1 }, makeEntries(i, 3, 1));
    await wal.close();
    names = await segmentFiles(dir);
    assert.ok(names.length >= 3, 'the log spans several segments');
    pristine = new Map();
    for (const name of names) pristine.set(name, await readFile(join(dir, name)));
    lastName = names[names.length - 1]!;
    lastRecords = recordsOf(pristine.get(lastName)!);
    firstRecords = recordsOf(pristine.get(names[0]!)!);
  });

  after(async () => {
    await root.remove();
  });

  async function restore(): Promise<void> {
    for (const [name, bytes] of pristine) await writeFile(join(dir, name), bytes);
  }

  /** Entries that end at or before `cut` in the last segment, plus all of the earlier segments. */
  function survivingEntries(cut: number): number {
    const lastStart = Number.parseInt(lastName.slice(17, 33), 16);
    const inLast = lastRecords.filter((r) => r.type === RecordType.Entry && r.end <= cut).length;
    return lastStart - 1 + inLast;
  }

  async function openAll() {
    return Wal.open(dir, { index: 0, term: 0 }, { segmentSizeBytes: SEGMENT_BYTES });
  }

  /** Opens, checks the entries are the expected prefix, writes on, and reads it all back. */
  async function expectPrefix(count: number): Promise<void> {
    const { wal, entries } = await openAll();
    assert.equal(entries.length, count, 'entries kept');
    entries.forEach((entry, i) => {
      assert.equal(entry.index, i + 1);
      assert.ok(hasExpectedData(entry), `entry ${entry.index} intact`);
    });
    // The log stays writable after the repair, and nothing from before the tear comes back.
    await wal.save(null, [makeEntry(count + 1, 9)]);
    await wal.close();
    const again = await openAll();
    assert.equal(again.entries.length, count + 1);
    assert.equal(again.entries[count]!.term, 9);
    assert.ok(again.entries.every(hasExpectedData));
    await again.wal.close();
  }

  test('a file truncated anywhere in its last records loses only the incomplete ones', async () => {
    const dataEnd = lastRecords[lastRecords.length - 1]!.end;
    const random = prng(7);
    const cuts = [dataEnd - 1, dataEnd - 8, lastRecords[lastRecords.length - 1]!.start + 5];
    for (let i = 0; i < 8; i++) cuts.push(dataEnd - 1 - Math.floor(random() * Math.min(600, dataEnd - 200)));
    for (const cut of cuts) {
      await restore();
      await writeFile(join(dir, lastName), pristine.get(lastName)!.subarray(0, cut));
      await expectPrefix(survivingEntries(cut));
    }
  });

  test('a zero-filled tail is cut at the last whole record', async () => {
    const dataEnd = lastRecords[lastRecords.length - 1]!.end;
    for (const from of [dataEnd - 4, dataEnd - 100, lastRecords[lastRecords.length - 4]!.start]) {
      await restore();
      const bytes = Buffer.from(pristine.get(lastName)!);
      bytes.fill(0, from, dataEnd);
      await writeFile(join(dir, lastName), bytes);
      await expectPrefix(survivingEntries(from));
    }
  });

  test('a flipped bit in the last record is a torn tail: truncated and cleared', async () => {
    const lastRecord = lastRecords[lastRecords.length - 1]!;
    // The last batch ends with its hard state; flip a bit in it and, separately, in its CRC.
    for (const offset of [lastRecord.start + 14, lastRecord.start]) {
      await restore();
      await writeFile(join(dir, lastName), flipBit(pristine.get(lastName)!, offset));
      const { wal, entries, hardState, repairedTail } = await openAll();
      assert.deepEqual(repairedTail, { file: lastName, offset: lastRecord.start });
      assert.equal(entries.length, total);
      assert.equal(hardState.commit, total - 6, 'the hard state before the torn one');
      await wal.close();
      const repaired = await readFile(join(dir, lastName));
      assert.ok(
        repaired.subarray(lastRecord.start).every((b) => b === 0),
        'the torn bytes were cleared',
      );
    }
  });

  test('garbage after the last record is dropped', async () => {
    await restore();
    const bytes = Buffer.from(pristine.get(lastName)!);
    const dataEnd = lastRecords[lastRecords.length - 1]!.end;
    const random = prng(11);
    for (let i = dataEnd; i < dataEnd + 300; i++) bytes[i] = Math.floor(random() * 256);
    await writeFile(join(dir, lastName), bytes);
    await expectPrefix(total);
  });

  test('a flipped bit in the middle of the newest segment stops the open with a clear error', async () => {
    const entryRecords = lastRecords.filter((r) => r.type === RecordType.Entry);
    const victim = entryRecords[Math.floor(entryRecords.length / 2)]!;
    const cases: [number, string][] = [
      [victim.start + 30, WalErrorCode.CrcMismatch], // payload
      [victim.start + 1, WalErrorCode.CrcMismatch], // the stored CRC
      [victim.start + 6, WalErrorCode.Corrupt], // the length: the header no longer fits
      [victim.start + 8, WalErrorCode.Corrupt], // the record type
    ];
    for (const [offset, code] of cases) {
      await restore();
      const damaged = flipBit(pristine.get(lastName)!, offset, offset === victim.start + 8 ? 6 : 3);
      await writeFile(join(dir, lastName), damaged);
      await assert.rejects(
        openAll(),
        rejectsWith(code, new RegExp(`record at byte ${victim.start} `), /valid record follows/, /corrupt/),
      );
      const after = await readFile(join(dir, lastName));
      assert.ok(after.equals(damaged), 'a refused open changes nothing');
    }
  });

  test('damage in a sealed segment is an error, even in its last record', async () => {
    const sealed = names[0]!;
    for (const record of [firstRecords[Math.floor(firstRecords.length / 2)]!, firstRecords[firstRecords.length - 1]!]) {
      await restore();
      await writeFile(join(dir, sealed), flipBit(pristine.get(sealed)!, record.start + 20));
      await assert.rejects(
        openAll(),
        rejectsWith(WalErrorCode.CrcMismatch, new RegExp(sealed.replace('.', '\\.')), /later segments follow/),
      );
    }
    await restore();
    await writeFile(
      join(dir, sealed),
      pristine.get(sealed)!.subarray(0, firstRecords[firstRecords.length - 1]!.end - 3),
    );
    await assert.rejects(openAll(), rejectsWith(WalErrorCode.Corrupt));
  });

  test('zeros followed by valid records are corruption, not a tail', async () => {
    await restore();
    const bytes = Buffer.from(pristine.get(lastName)!);
    const victim = lastRecords[4]!;
    bytes.fill(0, victim.start, victim.end);
    await writeFile(join(dir, lastName), bytes);
    await assert.rejects(openAll(), rejectsWith(WalErrorCode.Corrupt, /is zeros but a valid record follows/));
  });

  test('opening past the damage at a later snapshot still reads only what it needs', async () => {
    await restore();
    const sealed = names[0]!;
    await writeFile(join(dir, sealed), flipBit(pristine.get(sealed)!, firstRecords[3]!.start + 20));
    // The first segment is not read when the marker lies in a later one; the marker itself is
    // not in the log here, so the open reports that instead of the damage.
    const start = Number.parseInt(names[1]!.slice(17, 33), 16);
    await assert.rejects(Wal.open(dir, { index: start + 1, term: 1 }), rejectsWith(WalErrorCode.SnapshotNotFound));
    await restore();
  });
});

describe('wal structural damage', () => {
  async function writeSegment(dir: string, build: (writer: RecordWriter) => void): Promise<void> {
    const writer = new RecordWriter();
    build(writer);
    await writeFile(join(dir, segmentName(0, 0)), writer.bytes());
  }

  test('a gap between entries is reported', async () => {
    const root = await tempDir('wal-gap');
    try {
      await writeSegment(root.path, (w) => {
        w.metadata(META);
        w.hardState({ term: 1, vote: 0n, commit: 0 });
        for (const entry of [makeEntry(1, 1), makeEntry(2, 1), makeEntry(4, 1)]) w.entry(entry);
      });
      await assert.rejects(
        Wal.open(root.path, { index: 0, term: 0 }),
        rejectsWith(WalErrorCode.Corrupt, /entry 4 follows entry 2/),
      );
    } finally {
      await root.remove();
    }
  });

  test('a segment that does not begin with metadata is reported', async () => {
    const root = await tempDir('wal-nometa');
    try {
      await writeSegment(root.path, (w) => {
        w.hardState({ term: 1, vote: 0n, commit: 0 });
        w.metadata(META);
      });
      await assert.rejects(
        Wal.open(root.path, { index: 0, term: 0 }),
        rejectsWith(WalErrorCode.Corrupt, /does not begin with a metadata record/),
      );
      await writeFile(join(root.path, segmentName(0, 0)), Buffer.alloc(4096));
      await assert.rejects(
        Wal.open(root.path, { index: 0, term: 0 }),
        rejectsWith(WalErrorCode.Corrupt, /not even its metadata/),
      );
    } finally {
      await root.remove();
    }
  });
});
