// Model-based test of the MVCC store: seeded random histories of write transactions (puts,
// single and range deletes, reads inside the transaction), historic ranges with limits,
// compactions (awaited or left running), restarts (store and backend closed and reopened),
// online defragmentation and moves to a backend restored from a snapshot stream, each checked
// against a plain in-memory model that keeps every revision's full state.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Backend, type BackendOptions } from '../../src/storage/backend/index.ts';
import { type KeyValue, MvccErrorCode, MvccStore, type RangeOptions } from '../../src/storage/mvcc/index.ts';
import { isTombstoneKey, revisionMain, revisionSub } from '../../src/storage/mvcc/revision.ts';

const RUNS = 300;
const STEPS = 30;
const PARALLEL_HISTORIES = 4;
const KEYS = ['a', 'ab', 'abc', 'b', 'b\x00', 'c', 'z', '\x00', '\xff', '\xff\xff'];
const EMPTY = new Uint8Array(0);
const FROM_KEY = new Uint8Array([0]);

const root = mkdtempSync(join(tmpdir(), 'etcd-ts-mvcc-model-'));
after(() => rmSync(root, { recursive: true, force: true }));

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const str = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  next(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.int(1000) < p * 1000;
  }
}

interface ModelKv {
  value: string;
  create: number;
  mod: number;
  sub: number;
  version: number;
  lease: bigint;
}

type State = Map<string, ModelKv>;

/** Every revision's full state; history[rev] for rev >= 1. */
class Model {
  readonly history: State[] = [new Map(), new Map()];
  compactRev = -1;
  get rev(): number {
    return this.history.length - 1;
  }
}

interface Range {
  key: string;
  end: Uint8Array;
  describe: string;
}

function randomRange(rng: Rng): Range {
  const key = rng.pick(KEYS);
  switch (rng.int(4)) {
    case 0:
      return { key, end: EMPTY, describe: `[${JSON.stringify(key)}]` };
    case 1: {
      const from = rng.chance(0.3) ? '\x00' : key;
      return { key: from, end: FROM_KEY, describe: `[${JSON.stringify(from)}, \\0)` };
    }
    case 2: {
      const end = Buffer.from(key, 'latin1');
      if (end[end.length - 1]! < 0xff) end[end.length - 1]!++;
      return { key, end: new Uint8Array(end), describe: `prefix ${JSON.stringify(key)}` };
    }
    default: {
      const end = rng.pick(KEYS);
      return { key, end: bytes(end), describe: `[${JSON.stringify(key)}, ${JSON.stringify(end)})` };
    }
  }
}

function inRange(k: string, r: Range): boolean {
  if (r.end.length === 0) return k === r.key;
  if (r.end.length === 1 && r.end[0] === 0) return k >= r.key;
  return k >= r.key && k < str(r.end);
}

function expectedRange(state: State, r: Range): [string, ModelKv][] {
  return [...state.entries()].filter(([k]) => inRange(k, r)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function sameKv(actual: KeyValue, key: string, m: ModelKv, keysOnly: boolean, where: string): void {
  assert.equal(str(actual.key), key, `${where}: key`);
  assert.equal(str(actual.value), keysOnly ? '' : m.value, `${where}: value of ${JSON.stringify(key)}`);
  assert.deepEqual(
    [actual.createRevision, actual.modRevision, actual.version, actual.lease],
    [m.create, m.mod, m.version, m.lease],
    `${where}: revisions of ${JSON.stringify(key)}`,
  );
}

/** Checks a range answer (or its error) against the model state. */
function checkRange(
  run: () => { kvs: KeyValue[]; count: number; rev: number },
  states: State[],
  curRev: number,
  compactRev: number,
  r: Range,
  opts: RangeOptions,
  where: string,
): void {
  const rev = opts.rev ?? 0;
  if (rev > curRev) {
    assert.throws(run, { code: MvccErrorCode.futureRevision }, where);
    return;
  }
  const at = rev <= 0 ? curRev : rev;
  if (at < compactRev) {
    assert.throws(run, { code: MvccErrorCode.compacted }, where);
    return;
  }
  const got = run();
  const want = expectedRange(states[at]!, r);
  assert.equal(got.count, want.length, `${where}: count`);
  assert.equal(got.rev, curRev, `${where}: header revision`);
  const limit = opts.countOnly ? 0 : opts.limit && opts.limit > 0 ? Math.min(opts.limit, want.length) : want.length;
  assert.equal(got.kvs.length, limit, `${where}: number of kvs`);
  for (let i = 0; i < limit; i++) sameKv(got.kvs[i]!, want[i]![0], want[i]![1], opts.keysOnly === true, where);
}

function randomRangeOptions(rng: Rng, curRev: number, compactRev: number): RangeOptions {
  const opts: RangeOptions = {};
  const r = rng.int(10);
  if (r < 3) opts.rev = 0;
  else if (r < 9) opts.rev = Math.max(1, compactRev - 1) + rng.int(curRev - Math.max(1, compactRev - 1) + 2);
  else opts.rev = -rng.int(3);
  if (rng.chance(0.4)) opts.limit = rng.pick([-1, 0, 1, 2, 5]);
  if (rng.chance(0.15)) opts.countOnly = true;
  if (rng.chance(0.15)) opts.keysOnly = true;
  return opts;
}

async function* replay(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

interface Harness {
  dir: string;
  backend: Backend;
  store: MvccStore;
}

function backendOptions(dir: string, rng: Rng): BackendOptions {
  return { dir, batchLimit: rng.pick([1, 3, 10_000]), batchIntervalMs: rng.pick([0, 1, 100]) };
}

function openHarness(dir: string, rng: Rng, restored?: Backend): Harness {
  const backend = restored ?? Backend.open(backendOptions(dir, rng));
  const store = MvccStore.open(backend, {
    compactionBatchLimit: rng.pick([3, 1000]),
    compactionSleepIntervalMs: rng.pick([0, 1]),
  });
  return { dir, backend, store };
}

async function closeHarness(h: Harness): Promise<void> {
  await h.store.close();
  await h.backend.close();
}

/** After every compaction has finished, the backend holds at or below the compacted revision
 * exactly the latest revision of each key alive then. */
function checkCompactedBackend(h: Harness, model: Model, where: string): void {
  if (model.compactRev < 1) return;
  const got: string[] = [];
  for (const k of h.backend.range('key', EMPTY, null).keys) {
    if (revisionMain(k) > model.compactRev) break;
    got.push(`${revisionMain(k)}.${revisionSub(k)}${isTombstoneKey(k) ? 't' : ''}`);
  }
  const want = [...model.history[model.compactRev]!.values()]
    .map((kv) => [kv.mod, kv.sub] as const)
    .sort((x, y) => x[0] - y[0] || x[1] - y[1])
    .map(([m, s]) => `${m}.${s}`);
  assert.deepEqual(got, want, `${where}: backend after compaction`);
}

function writeTxn(h: Harness, model: Model, rng: Rng, log: string[], where: string): void {
  const w = h.store.write();
  const base = model.history[model.rev]!;
  const next: State = new Map(base);
  const newRev = model.rev + 1;
  let changes = 0;
  const events: string[] = [];
  const putKvs: ModelKv[] = [];
  const ops = 1 + rng.int(4);
  for (let i = 0; i < ops; i++) {
    const kind = rng.int(10);
    if (kind < 5) {
      const key = rng.pick(KEYS);
      const value = `v${rng.int(1000)}`;
      const lease = rng.chance(0.2) ? BigInt(rng.int(5)) - 1n : 0n;
      log.push(`  put ${JSON.stringify(key)}=${value} lease ${lease}`);
      assert.equal(w.put(bytes(key), bytes(value), lease), newRev, `${where}: put revision`);
      const prev = next.get(key);
      const kv: ModelKv = {
        value,
        create: prev ? prev.create : newRev,
        mod: newRev,
        sub: changes,
        version: prev ? prev.version + 1 : 1,
        lease,
      };
      next.set(key, kv);
      putKvs.push(kv);
      events.push(`put ${JSON.stringify(key)}`);
      changes++;
    } else if (kind < 8) {
      const r = randomRange(rng);
      const prevKv = rng.chance(0.7);
      log.push(`  deleteRange ${r.describe} prevKv ${prevKv}`);
      const doomed = expectedRange(next, r);
      const res = w.deleteRange(bytes(r.key), r.end, { prevKv });
      assert.equal(res.deleted, doomed.length, `${where}: deleted`);
      assert.equal(res.prevKvs.length, prevKv ? doomed.length : 0, `${where}: prevKvs`);
      if (prevKv) {
        for (let j = 0; j < doomed.length; j++) {
          sameKv(res.prevKvs[j]!, doomed[j]![0], doomed[j]![1], false, `${where}: prevKv`);
        }
      }
      for (const [k] of doomed) {
        next.delete(k);
        events.push(`delete ${JSON.stringify(k)}`);
        changes++;
      }
    } else {
      const r = randomRange(rng);
      const opts = randomRangeOptions(rng, newRev, model.compactRev);
      log.push(`  txn range ${r.describe} ${JSON.stringify(opts)}`);
      const states = [...model.history];
      if (changes > 0) states.push(next);
      const curRev = changes > 0 ? newRev : model.rev;
      checkRange(() => w.range(bytes(r.key), r.end, opts), states, curRev, model.compactRev, r, opts, `${where} txn`);
    }
  }
  const result = w.end();
  assert.deepEqual(
    result.events.map((e) => `${e.type} ${JSON.stringify(str(e.kv.key))}`),
    events,
    `${where}: events`,
  );
  let puts = 0;
  for (const e of result.events) {
    assert.equal(e.kv.modRevision, newRev, `${where}: event revision`);
    if (e.type === 'put') sameKv(e.kv, str(e.kv.key), putKvs[puts++]!, false, `${where}: put event`);
    else assert.deepEqual([e.kv.createRevision, e.kv.version, e.kv.value.length], [0, 0, 0], `${where}: delete event`);
  }
  if (changes > 0) model.history.push(next);
  assert.equal(result.rev, model.rev, `${where}: revision after the transaction`);
}

async function runHistory(seed: number): Promise<void> {
  const rng = new Rng(seed * 2654435761);
  const dir = join(root, `run-${seed}`);
  const model = new Model();
  const log: string[] = [];
  let h = openHarness(dir, rng);
  let step = 0;
  try {
    for (; step < STEPS; step++) {
      const where = `seed ${seed} step ${step}`;
      const op = rng.int(100);
      if (op < 45) {
        log.push(`txn`);
        writeTxn(h, model, rng, log, where);
      } else if (op < 75) {
        const r = randomRange(rng);
        const opts = randomRangeOptions(rng, model.rev, model.compactRev);
        log.push(`range ${r.describe} ${JSON.stringify(opts)}`);
        checkRange(
          () => h.store.range(bytes(r.key), r.end, opts),
          model.history,
          model.rev,
          model.compactRev,
          r,
          opts,
          where,
        );
      } else if (op < 85) {
        const rev = Math.max(0, model.compactRev - 1) + rng.int(model.rev - Math.max(0, model.compactRev - 1) + 2);
        const wait = rng.chance(0.5);
        log.push(`compact ${rev} wait ${wait}`);
        if (rev <= model.compactRev) {
          assert.throws(() => h.store.compact(rev), { code: MvccErrorCode.compacted }, where);
        } else if (rev > model.rev) {
          assert.throws(() => h.store.compact(rev), { code: MvccErrorCode.futureRevision }, where);
        } else {
          const { done } = h.store.compact(rev);
          model.compactRev = rev;
          assert.equal(h.store.compactRev(), rev);
          if (wait) {
            await done;
            checkCompactedBackend(h, model, where);
          }
        }
      } else if (op < 89 || (op >= 93 && op < 95)) {
        // A restart, or (less often) a move to a backend restored from a snapshot stream.
        const viaSnapshot = op >= 93;
        log.push(viaSnapshot ? 'restore from a snapshot stream' : 'restart');
        const hashRev = model.rev;
        const before = h.store.hashKV(hashRev);
        if (viaSnapshot) {
          const chunks: Uint8Array[] = [];
          for await (const chunk of h.backend.snapshotStream(1024)) chunks.push(chunk);
          await closeHarness(h);
          rmSync(h.dir, { recursive: true, force: true });
          const next = `${dir}-s${step}`;
          const restored = await Backend.restoreSnapshot(backendOptions(next, rng), replay(chunks));
          h = openHarness(next, rng, restored);
        } else {
          await closeHarness(h);
          h = openHarness(h.dir, rng);
        }
        assert.equal(h.store.rev(), model.rev, `${where}: revision after restart`);
        assert.equal(h.store.compactRev(), model.compactRev, `${where}: compacted revision after restart`);
        assert.deepEqual(h.store.hashKV(hashRev), before, `${where}: hashKV across restart`);
        assert.deepEqual(await h.store.hashKVAsync(hashRev), before, `${where}: hashKVAsync across restart`);
        await h.store.waitCompactions();
        checkCompactedBackend(h, model, where);
      } else if (op < 91) {
        log.push('defragment');
        await h.backend.defragment();
      } else if (op < 93) {
        log.push('forceCommit');
        h.backend.forceCommit();
      } else {
        log.push('tick');
        await yieldToLoop();
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    // Every revision that is still readable reads as the model says.
    for (let rev = Math.max(1, model.compactRev); rev <= model.rev; rev++) {
      checkRange(
        () => h.store.range(FROM_KEY, FROM_KEY, { rev }),
        model.history,
        model.rev,
        model.compactRev,
        { key: '\x00', end: FROM_KEY, describe: 'all' },
        { rev },
        `seed ${seed} final rev ${rev}`,
      );
    }
  } catch (err) {
    (err as Error).message += `\nseed ${seed}, failed at step ${step}; history:\n${log.join('\n')}`;
    throw err;
  } finally {
    await closeHarness(h).catch(() => {});
    rmSync(h.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

test(`MVCC store agrees with an in-memory model over ${RUNS} seeded histories`, { timeout: 120_000 }, async () => {
  const only = Number(process.env.MVCC_MODEL_SEED ?? 0);
  if (only > 0) return runHistory(only);
  // Histories are independent and mostly wait for fsyncs: run a few side by side.
  let next = 1;
  const worker = async (): Promise<void> => {
    while (next <= RUNS) await runHistory(next++);
  };
  await Promise.all(Array.from({ length: PARALLEL_HISTORIES }, worker));
});
