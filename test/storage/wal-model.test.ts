// Random sequences of appends, overwrites, hard states, snapshots, releases and reopens, checked
// against a model of the log: after every reopen the WAL returns exactly what the model holds.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Wal, type WalHardState, type WalOptions, type WalSnapshotMarker } from '../../src/storage/wal/index.ts';
import { hasExpectedData, makeEntries, tempDir } from './fixtures/wal-helpers.ts';

type Op =
  | { kind: 'append'; count: number }
  | { kind: 'overwrite'; back: number; count: number }
  | { kind: 'hardState'; commitBack: number }
  | { kind: 'snapshot'; back: number }
  | { kind: 'reopen' };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 30 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('overwrite' as const),
      back: fc.integer({ min: 0, max: 12 }),
      count: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('hardState' as const), commitBack: fc.integer({ min: 0, max: 5 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), back: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

class Model {
  /** terms[i]: term of entry i; index 0 unused. */
  terms: number[] = [0];
  term = 1;
  marker: WalSnapshotMarker = { index: 0, term: 0 };
  hardState: WalHardState = { term: 0, vote: 0n, commit: 0 };

  get lastIndex(): number {
    return this.terms.length - 1;
  }
}

async function check(wal: Wal | null, dir: string, model: Model, options: WalOptions): Promise<Wal> {
  await wal?.close();
  const opened = await Wal.open(dir, model.marker, options);
  const expected = model.terms.slice(model.marker.index + 1);
  assert.equal(opened.entries.length, expected.length, 'entry count after the marker');
  opened.entries.forEach((entry, i) => {
    assert.equal(entry.index, model.marker.index + 1 + i);
    assert.equal(entry.term, expected[i], `term of entry ${entry.index}`);
    assert.ok(hasExpectedData(entry), `data of entry ${entry.index}`);
  });
  assert.deepEqual(opened.hardState, model.hardState);
  assert.equal(opened.repairedTail, null, 'a cleanly closed log needs no repair');
  return opened.wal;
}

test('the WAL agrees with a model of the log under random operations', async () => {
  const root = await tempDir('wal-model');
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 60, size: 'medium' }), async (ops) => {
        const dir = join(root.path, `run-${run++}`);
        // Small segments so that cuts and releases happen; no fsync to keep the runs quick.
        const options: WalOptions = { segmentSizeBytes: 4096, unsafeNoFsync: true };
        const model = new Model();
        let wal: Wal = await Wal.create(dir, new Uint8Array([1, 2, 3]), options);
        try {
          for (const op of ops) {
            switch (op.kind) {
              case 'append': {
                const first = model.lastIndex + 1;
                await wal.save(null, makeEntries(first, op.count, model.term));
                for (let i = 0; i < op.count; i++) model.terms.push(model.term);
                break;
              }
              case 'overwrite': {
                // A new leader replaces a suffix above the snapshot.
                const first = Math.max(model.marker.index + 1, model.lastIndex + 1 - op.back);
                model.term++;
                await wal.save(null, makeEntries(first, op.count, model.term));
                model.terms.length = first;
                for (let i = 0; i < op.count; i++) model.terms.push(model.term);
                break;
              }
              case 'hardState': {
                const commit = Math.max(model.hardState.commit, model.lastIndex - op.commitBack, 0);
                const hardState = { term: model.term, vote: BigInt(model.term) << 40n, commit };
                await wal.save(hardState, []);
                model.hardState = hardState;
                break;
              }
              case 'snapshot': {
                const index = model.lastIndex - op.back;
                if (index <= model.marker.index) break;
                const marker = { index, term: model.terms[index]! };
                await wal.saveSnapshot(marker);
                await wal.releaseTo(index);
                model.marker = marker;
                break;
              }
              case 'reopen':
                wal = await check(wal, dir, model, options);
                break;
            }
          }
          wal = await check(wal, dir, model, options);
        } finally {
          await wal.close();
        }
      }),
      { numRuns: 150, seed: 424242 },
    );
  } finally {
    await root.remove();
  }
});
