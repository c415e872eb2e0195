// The MVCC store (etcd's server/storage/mvcc kvstore): every change gets a revision, the
// backend's `key` bucket keeps every revision of every key until a compaction, and an ordered
// in-memory index maps each key to its revisions.
//
// One write transaction at a time; everything inside it is synchronous, and its changes share
// one main revision (sub revisions 0, 1, 2, ...). Reads at the current revision never see an
// open transaction's changes: they carry the next main revision.

import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Backend } from '../backend/backend.ts';
import { Bucket } from '../backend/buckets.ts';
import { fromLatin1, latin1 } from '../backend/bytes.ts';
import { crc32c } from '../backend/crc32c.ts';
import { etcdHashIgnores, MetaKey } from '../backend/meta.ts';
import { deletedKeyValue, EMPTY, encodeKeyValue, KvView } from './codec.ts';
import {
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  MvccClosedError,
  MvccCorruptError,
  TxnEndedError,
  TxnInProgressError,
} from './errors.ts';
import { etcdKeyValueBytes } from './etcd-format.ts';
import { IndexHit, KeyIndex } from './key-index.ts';
import type {
  DeleteResult,
  HashKVResult,
  HashResult,
  KeyValue,
  MvccEvent,
  RangeOptions,
  RangeResult,
  TxnResult,
} from './kv.ts';
import {
  checkRevisionKey,
  isTombstoneKey,
  REV_BYTES,
  RevisionSet,
  revisionKey,
  revisionMain,
  revisionSub,
  writeRevision,
} from './revision.ts';
import { IndexCursor, TreeIndex } from './tree-index.ts';

/** etcd's --experimental-compaction-batch-limit default: revisions deleted per backend batch. */
export const DEFAULT_COMPACTION_BATCH_LIMIT = 1000;
/** etcd's --experimental-compaction-sleep-interval default. */
export const DEFAULT_COMPACTION_SLEEP_INTERVAL_MS = 10;
/** Entries of the key bucket read per step while rebuilding the index or hashing. */
const SCAN_CHUNK_ENTRIES = 10_000;
/** Keys compacted in the index per event-loop turn. */
const INDEX_COMPACT_SLICE_KEYS = 10_000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const ALL_KEYS_END = 0x00;
const noop = (): void => {};

export interface MvccStoreOptions {
  /** Called once per live key that has a lease, while open() rebuilds the index. */
  onRestoreLease?: (key: Uint8Array, lease: bigint) => void;
  /** Revisions deleted per backend batch during compaction (default 1000). */
  compactionBatchLimit?: number;
  /** Pause between two compaction batches (default 10 ms). */
  compactionSleepIntervalMs?: number;
}

/** State shared by the store and its write transactions. */
export class Core {
  readonly backend: Backend;
  index: TreeIndex;
  currentRev: number;
  /** The newest revision in the index: currentRev, or the next one while a transaction writes. */
  indexRev: number;
  /** -1 until the first compaction, as in etcd. */
  compactMainRev: number;
  writing: WriteTxn | null;
  closed: boolean;
  private readonly hit: IndexHit;
  private readonly cursor: IndexCursor;
  private readonly revKey: Uint8Array;

  constructor(backend: Backend) {
    this.backend = backend;
    this.index = new TreeIndex();
    this.currentRev = 1;
    this.indexRev = 1;
    this.compactMainRev = -1;
    this.writing = null;
    this.closed = false;
    this.hit = new IndexHit();
    this.cursor = new IndexCursor();
    this.revKey = new Uint8Array(REV_BYTES);
  }

  assertOpen(): void {
    if (this.closed) throw new MvccClosedError();
  }

  /** etcd's rangeKeys: the keys in [key, end) (range_end rules) as of opts.rev, read at curRev. */
  rangeKeys(key: Uint8Array, end: Uint8Array, opts: RangeOptions | undefined, curRev: number): RangeResult {
    const kvs: KeyValue[] = [];
    const keysOnly = opts?.keysOnly === true;
    const count = this.walkRange(key, end, opts, curRev, (main, sub) => {
      kvs.push(this.readRevision(main, sub, keysOnly));
    });
    return { kvs, count, rev: curRev };
  }

  /**
   * The same range as rangeKeys, each stored KeyValue handed to `visit` as the backend holds it
   * (`kv` parsed from `stored`) instead of being copied out: `stored` is valid only during the
   * call. Returns the count of matching keys.
   */
  rangeStored(
    key: Uint8Array,
    end: Uint8Array,
    opts: RangeOptions | undefined,
    curRev: number,
    visit: StoredKvVisitor,
    known?: KnownRevision,
  ): number {
    const revKey = this.revKey;
    const backend = this.backend;
    return this.walkRange(key, end, opts, curRev, (main, sub) => {
      if (known?.(main, sub) === true) return;
      writeRevision(revKey, main, sub);
      const buf = backend.getTransient(Bucket.key, revKey);
      if (buf === undefined) throw missingRevision(main, sub);
      visit(buf, kvView.parse(buf), main, sub);
    });
  }

  /**
   * Walks the keys of a range: `emit` is called with the revision of each of the first `limit`
   * matches (none for countOnly), in key order; returns how many keys match in all.
   */
  private walkRange(
    key: Uint8Array,
    end: Uint8Array,
    opts: RangeOptions | undefined,
    curRev: number,
    emit: (main: number, sub: number) => void,
  ): number {
    checkBytes(key, 'key');
    checkBytes(end, 'range end');
    let rev = optionInt(opts?.rev, 'rev');
    const limitOpt = optionInt(opts?.limit, 'limit');
    if (rev > curRev) throw new FutureRevisionError();
    if (rev <= 0) rev = curRev;
    if (rev < this.compactMainRev) throw new CompactedError();
    const limit = opts?.countOnly === true ? 0 : limitOpt > 0 ? limitOpt : Number.POSITIVE_INFINITY;
    const hit = this.hit;
    const start = latin1(key);
    if (end.length === 0) {
      const ki = this.index.get(start);
      if (ki === undefined || !ki.get(rev, hit)) return 0;
      if (limit > 0) emit(hit.main, hit.sub);
      return 1;
    }
    const endStr = end.length === 1 && end[0] === ALL_KEYS_END ? null : latin1(end);
    let count = 0;
    const cur = this.cursor;
    this.index.seek(start, cur);
    if (rev >= this.indexRev) {
      // Reading the newest state: a key matches when it is alive, at its last revision.
      for (let ki = this.index.next(cur); ki !== undefined; ki = this.index.next(cur)) {
        if (endStr !== null && ki.key >= endStr) break;
        if (ki.lastMain === 0) continue;
        if (count++ < limit) emit(ki.lastMain, ki.lastSub);
      }
      return count;
    }
    for (let ki = this.index.next(cur); ki !== undefined; ki = this.index.next(cur)) {
      if (endStr !== null && ki.key >= endStr) break;
      if (!ki.get(rev, hit)) continue;
      if (count++ < limit) emit(hit.main, hit.sub);
    }
    return count;
  }

  /** The KeyIndexes of the keys live now in [key, end) (range_end rules). */
  liveKeys(key: Uint8Array, end: Uint8Array): KeyIndex[] {
    const out: KeyIndex[] = [];
    const start = latin1(key);
    if (end.length === 0) {
      const ki = this.index.get(start);
      if (ki?.isLive()) out.push(ki);
      return out;
    }
    const endStr = end.length === 1 && end[0] === ALL_KEYS_END ? null : latin1(end);
    const cur = this.cursor;
    this.index.seek(start, cur);
    for (let ki = this.index.next(cur); ki !== undefined; ki = this.index.next(cur)) {
      if (endStr !== null && ki.key >= endStr) break;
      if (ki.isLive()) out.push(ki);
    }
    return out;
  }

  /** The KeyValue stored at (main, sub); the index guarantees it exists. */
  readRevision(main: number, sub: number, keysOnly: boolean): KeyValue {
    writeRevision(this.revKey, main, sub);
    const buf = this.backend.get(Bucket.key, this.revKey);
    if (buf === undefined) throw missingRevision(main, sub);
    const view = kvView.parse(buf);
    return {
      key: view.key(buf),
      createRevision: view.createRevision,
      modRevision: main,
      version: view.version,
      value: keysOnly ? EMPTY : view.value(buf),
      lease: view.lease,
    };
  }
}

const kvView = new KvView();

/**
 * A stored KeyValue of a range, at revision main_sub (main is its mod revision): `kv` parsed
 * from `stored`, which is valid only during the call.
 */
export type StoredKvVisitor = (stored: Uint8Array, kv: KvView, main: number, sub: number) => void;

/** True when the caller of rangeStored already has the KeyValue at revision main_sub: it is not read. */
export type KnownRevision = (main: number, sub: number) => boolean;

function missingRevision(main: number, sub: number): MvccCorruptError {
  return new MvccCorruptError(`revision ${main}_${sub} is in the index but not in the backend`);
}

/**
 * A write transaction: see its own changes, put, delete, then end(). Obtained from
 * MvccStore.write(); every method is synchronous, and nothing else writes until end().
 */
export class WriteTxn {
  private readonly core: Core;
  private readonly beginRev: number;
  private readonly events: MvccEvent[];
  private ended: boolean;

  constructor(core: Core) {
    this.core = core;
    this.beginRev = core.currentRev;
    this.events = [];
    this.ended = false;
  }

  /** The revision as seen inside the transaction: the next revision once it changed something. */
  rev(): number {
    return this.events.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  compactRev(): number {
    return this.core.compactMainRev;
  }

  /** As MvccStore.range, including this transaction's changes. */
  range(key: Uint8Array, end: Uint8Array, opts?: RangeOptions): RangeResult {
    this.assertActive();
    return this.core.rangeKeys(key, end, opts, this.rev());
  }

  /**
   * Puts `value` under `key` with `lease` (0n for none) and returns the revision. The key keeps
   * its create revision while it lives; its version counts puts from 1 since its creation.
   */
  put(key: Uint8Array, value: Uint8Array, lease = 0n): number {
    this.assertActive();
    checkBytes(key, 'key');
    if (key.length === 0) throw new InvalidArgumentError('key is empty');
    checkBytes(value, 'value');
    if (typeof lease !== 'bigint' || lease < INT64_MIN || lease > INT64_MAX) {
      throw new InvalidArgumentError('lease must be an int64 bigint');
    }
    const core = this.core;
    const rev = this.beginRev + 1;
    const sub = this.events.length;
    const id = latin1(key);
    const existing = core.index.get(id);
    let createRevision = rev;
    let version = 1;
    if (existing?.isLive()) {
      createRevision = existing.createdMain;
      version = existing.ver + 1;
    }
    const encoded = encodeKeyValue(key, createRevision, version, lease, value);
    core.backend.put(Bucket.key, revisionKey(rev, sub, false), encoded);
    (existing ?? core.index.getOrCreate(id)).put(rev, sub);
    core.indexRev = rev;
    const view = kvView.parse(encoded);
    this.events.push({
      type: 'put',
      kv: { key: view.key(encoded), createRevision, modRevision: rev, version, value: view.value(encoded), lease },
    });
    return rev;
  }

  /**
   * Deletes the keys in [key, end) (range_end rules), writing a tombstone for each. With
   * prevKv (the default) the deleted key-values are returned.
   */
  deleteRange(key: Uint8Array, end: Uint8Array, opts?: { prevKv?: boolean }): DeleteResult {
    this.assertActive();
    checkBytes(key, 'key');
    checkBytes(end, 'range end');
    const core = this.core;
    const doomed = core.liveKeys(key, end);
    const prevKvs: KeyValue[] = [];
    if (opts?.prevKv !== false) {
      for (const ki of doomed) {
        prevKvs.push(core.readRevision(ki.lastMain, ki.lastSub, false));
      }
    }
    const rev = this.beginRev + 1;
    for (const ki of doomed) {
      const sub = this.events.length;
      const keyBytes = fromLatin1(ki.key);
      core.backend.put(Bucket.key, revisionKey(rev, sub, true), encodeKeyValue(keyBytes, 0, 0, 0n, EMPTY));
      ki.tombstone(rev, sub);
      core.indexRev = rev;
      this.events.push({ type: 'delete', kv: deletedKeyValue(keyBytes, rev) });
    }
    return { deleted: doomed.length, prevKvs };
  }

  /** Ends the transaction: its changes become the store's new revision (if there are any). */
  end(): TxnResult {
    this.assertActive();
    this.ended = true;
    const core = this.core;
    if (core.writing !== this || core.currentRev !== this.beginRev) {
      throw new Error('mvcc: the store changed revision during a write transaction');
    }
    core.writing = null;
    if (this.events.length > 0) core.currentRev = this.beginRev + 1;
    return { rev: core.currentRev, events: this.events };
  }

  private assertActive(): void {
    if (this.ended) throw new TxnEndedError();
    this.core.assertOpen();
  }
}

/** The MVCC key-value store over a backend. The caller keeps ownership of the backend. */
export class MvccStore {
  private readonly core: Core;
  private readonly onRestoreLease: ((key: Uint8Array, lease: bigint) => void) | undefined;
  private readonly compactionBatchLimit: number;
  private readonly compactionSleepIntervalMs: number;
  /** Compactions run one after another in this chain. */
  private jobs: Promise<void>;

  private constructor(backend: Backend, options: MvccStoreOptions) {
    this.core = new Core(backend);
    this.onRestoreLease = options.onRestoreLease;
    this.compactionBatchLimit = options.compactionBatchLimit ?? DEFAULT_COMPACTION_BATCH_LIMIT;
    this.compactionSleepIntervalMs = options.compactionSleepIntervalMs ?? DEFAULT_COMPACTION_SLEEP_INTERVAL_MS;
    if (!Number.isSafeInteger(this.compactionBatchLimit) || this.compactionBatchLimit < 1) {
      throw new InvalidArgumentError(`compactionBatchLimit ${this.compactionBatchLimit} is not a positive integer`);
    }
    if (!Number.isFinite(this.compactionSleepIntervalMs) || this.compactionSleepIntervalMs < 0) {
      throw new InvalidArgumentError(`compactionSleepIntervalMs ${this.compactionSleepIntervalMs} is not a delay`);
    }
    this.jobs = Promise.resolve();
  }

  /**
   * Opens the store on `backend`: rebuilds the index from the key bucket and, if a compaction
   * was scheduled but not finished (a crash), starts it again.
   */
  static open(backend: Backend, options: MvccStoreOptions = {}): MvccStore {
    const store = new MvccStore(backend, options);
    store.restore();
    return store;
  }

  /** The current revision: 1 for an empty store, +1 per write transaction that changed something. */
  rev(): number {
    return this.core.currentRev;
  }

  /** The revision of the last compaction (-1 if none). Reads below it fail with CompactedError. */
  compactRev(): number {
    return this.core.compactMainRev;
  }

  /**
   * The keys in a range as of a revision. Range end rules (etcd's): `end` empty = just `key`;
   * `end` = [0x00] = every key >= `key`; otherwise key <= k < end. `rev` 0 reads the current
   * revision; a future revision throws FutureRevisionError, one below the compacted revision
   * CompactedError. `count` counts every matching key whatever the limit; `rev` of the result
   * is the current revision. Results are in key order; their buffers are read-only.
   */
  range(key: Uint8Array, end: Uint8Array, opts?: RangeOptions): RangeResult {
    this.core.assertOpen();
    return this.core.rangeKeys(key, end, opts, this.core.currentRev);
  }

  /**
   * The same range, each KeyValue handed to `visit` as stored (no copy: for a caller that
   * encodes it at once), in key order, except those at a revision `known` says the caller
   * already has. Returns the count of matching keys; the revision is `rev()`.
   */
  rangeStored(
    key: Uint8Array,
    end: Uint8Array,
    opts: RangeOptions | undefined,
    visit: StoredKvVisitor,
    known?: KnownRevision,
  ): number {
    this.core.assertOpen();
    return this.core.rangeStored(key, end, opts, this.core.currentRev, visit, known);
  }

  /** Starts a write transaction; end() it before the next write(). */
  write(): WriteTxn {
    const core = this.core;
    core.assertOpen();
    if (core.writing !== null) throw new TxnInProgressError();
    const txn = new WriteTxn(core);
    core.writing = txn;
    return txn;
  }

  /**
   * Compacts history up to `rev`: reads below `rev` fail from now on; the latest revision of
   * each key at or below `rev` stays. The index and then the backend are compacted in slices
   * that let other work run in between; `done` settles when the backend is compacted (it
   * rejects with MvccClosedError if the store closes first; the next open() finishes the job).
   */
  compact(rev: number): { done: Promise<void> } {
    const core = this.core;
    core.assertOpen();
    if (!Number.isSafeInteger(rev)) throw new InvalidArgumentError(`revision ${rev} is not an integer`);
    if (core.writing !== null) throw new TxnInProgressError();
    if (rev <= core.compactMainRev) throw new CompactedError();
    if (rev > core.currentRev) throw new FutureRevisionError();
    return { done: this.schedule(rev) };
  }

  /**
   * etcd's HashKV: CRC-32C of "key" and of every entry of the key bucket up to `rev` (0 = the
   * current revision), where entries at or below the compacted revision count only if they are
   * the latest of their key at `rev`, so that members agree whether or not their compaction has
   * finished. Synchronous: it reads the key bucket up to `rev` in one go.
   *
   * etcd hashes every entry when no key is alive at `rev` (an empty keep set turns the filter
   * off), which makes the hash depend on compaction progress; here the filter always applies.
   */
  hashKV(rev = 0): HashKVResult {
    const hasher = this.startHashKV(rev);
    while (!hasher.step(Number.POSITIVE_INFINITY));
    return hasher.result();
  }

  /**
   * hashKV without holding the event loop: the same hash (as of the call: revision and
   * compacted revision are taken then), computed in slices of 10 000 keys and entries. It runs
   * after the compactions scheduled before it, and compactions scheduled meanwhile wait for it,
   * so the entries it hashes do not change under it.
   */
  hashKVAsync(rev = 0): Promise<HashKVResult> {
    let hasher: KvHasher;
    try {
      hasher = this.startHashKV(rev);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.jobs.then(async () => {
      while (!hasher.step(SCAN_CHUNK_ENTRIES)) {
        await yieldToLoop();
        this.core.assertOpen();
      }
      return hasher.result();
    });
    this.jobs = run.then(noop, noop);
    return run;
  }

  private startHashKV(rev: number): KvHasher {
    const core = this.core;
    core.assertOpen();
    if (!Number.isSafeInteger(rev)) throw new InvalidArgumentError(`revision ${rev} is not an integer`);
    const compactRev = core.compactMainRev;
    const currentRev = core.currentRev;
    if (rev > 0 && rev < compactRev) throw new CompactedError();
    if (rev > 0 && rev > currentRev) throw new FutureRevisionError();
    return new KvHasher(core, rev <= 0 ? currentRev : rev, compactRev, currentRev);
  }

  /** etcd's Hash: CRC-32C of the whole backend but the meta keys that differ between members. */
  async hash(): Promise<HashResult> {
    this.core.assertOpen();
    const revision = this.core.currentRev;
    const hash = await this.core.backend.hash(etcdHashIgnores);
    return { hash, revision };
  }

  /** Settles when every compaction scheduled so far (including one resumed by open()) has ended. */
  waitCompactions(): Promise<void> {
    return this.jobs;
  }

  /** Stops compaction (resumed by the next open) and refuses further use. Does not close the backend. */
  async close(): Promise<void> {
    if (this.core.closed) return;
    this.core.closed = true;
    await this.jobs;
  }

  private schedule(rev: number): Promise<void> {
    const core = this.core;
    core.compactMainRev = rev;
    core.backend.put(Bucket.meta, MetaKey.scheduledCompactRev, revisionKey(rev, 0, false));
    // Commits are ordered: the schedule reaches the disk before any deletion of the compaction.
    void core.backend.forceCommit();
    const run = this.jobs.then(() => this.runCompaction(rev));
    this.jobs = run.catch(noop);
    // `done` may be left unobserved; a rejection then must not crash the process.
    run.catch(noop);
    return run;
  }

  private async runCompaction(rev: number): Promise<void> {
    const core = this.core;
    const keep = new RevisionSet();
    const cur = new IndexCursor();
    let after: string | null = null;
    for (;;) {
      if (core.closed) throw new MvccClosedError();
      core.index.seek(after ?? '', cur, after !== null);
      const emptied: string[] = [];
      let n = 0;
      for (; n < INDEX_COMPACT_SLICE_KEYS; n++) {
        const ki = core.index.next(cur);
        if (ki === undefined) break;
        after = ki.key;
        if (ki.isEmpty()) continue;
        ki.compact(rev, keep);
        if (ki.isEmpty()) emptied.push(ki.key);
      }
      for (const key of emptied) core.index.delete(key);
      if (n < INDEX_COMPACT_SLICE_KEYS) break;
      await yieldToLoop();
    }
    const end = revisionKey(rev + 1, 0, false);
    let start: Uint8Array = EMPTY;
    for (;;) {
      if (core.closed) throw new MvccClosedError();
      const { keys } = core.backend.range(Bucket.key, start, end, this.compactionBatchLimit);
      for (const k of keys) {
        if (!keep.has(revisionMain(k), revisionSub(k))) core.backend.delete(Bucket.key, k);
      }
      if (keys.length < this.compactionBatchLimit) {
        core.backend.put(Bucket.meta, MetaKey.finishedCompactRev, revisionKey(rev, 0, false));
        return;
      }
      const last = keys[keys.length - 1]!;
      start = revisionKey(revisionMain(last), revisionSub(last) + 1, false);
      await core.backend.forceCommit();
      await sleep(this.compactionSleepIntervalMs);
    }
  }

  /** etcd's restore: the index from the key bucket, revisions and an unfinished compaction from meta. */
  private restore(): void {
    const core = this.core;
    const backend = core.backend;
    const finished = readCompactRev(backend.get(Bucket.meta, MetaKey.finishedCompactRev));
    const scheduled = readCompactRev(backend.get(Bucket.meta, MetaKey.scheduledCompactRev));
    if (finished !== null) core.compactMainRev = finished;
    const byKey = new Map<string, KeyIndex>();
    const leases = this.onRestoreLease === undefined ? null : new Map<string, bigint>();
    const view = new KvView();
    let currentRev = 1;
    let start: Uint8Array = EMPTY;
    for (;;) {
      const { keys, values } = backend.range(Bucket.key, start, null, SCAN_CHUNK_ENTRIES);
      for (let i = 0; i < keys.length; i++) {
        const rk = keys[i]!;
        const value = values[i]!;
        checkRevisionKey(rk);
        const main = revisionMain(rk);
        const sub = revisionSub(rk);
        const tombstone = isTombstoneKey(rk);
        view.parse(value);
        const key = view.keyString(value);
        currentRev = main;
        const ki = byKey.get(key);
        if (ki !== undefined) {
          if (tombstone) ki.tombstone(main, sub);
          else ki.put(main, sub);
        } else if (!tombstone) {
          const created = new KeyIndex(key);
          created.restore(view.createRevision, main, sub, view.version);
          byKey.set(key, created);
        }
        if (leases !== null) {
          if (tombstone || view.lease === 0n) leases.delete(key);
          else leases.set(key, view.lease);
        }
      }
      if (keys.length < SCAN_CHUNK_ENTRIES) break;
      const last = keys[keys.length - 1]!;
      start = revisionKey(revisionMain(last), revisionSub(last) + 1, false);
    }
    core.index = TreeIndex.fromMap(byKey);
    // The newest revisions may all have been compacted away (a delete at the compacted
    // revision): the current revision never goes below a compaction (etcd issue 17780).
    core.currentRev = Math.max(currentRev, core.compactMainRev, scheduled ?? 0);
    core.indexRev = core.currentRev;
    if (leases !== null) for (const [key, lease] of leases) this.onRestoreLease!(fromLatin1(key), lease);
    if (scheduled !== null && scheduled > core.compactMainRev) this.schedule(scheduled);
  }
}

const KEY_BUCKET_NAME = Buffer.from(Bucket.key, 'latin1');

/**
 * etcd's kvHasher, resumable: first the keep set (from the index, key by key), then the key
 * bucket up to the revision, both in steps of at most `maxItems`. Steps resume by key and by
 * revision, so index inserts between steps (all above the hashed revision) change nothing.
 */
class KvHasher {
  private readonly core: Core;
  private readonly rev: number;
  private readonly compactRev: number;
  private readonly currentRev: number;
  private readonly keep: RevisionSet;
  private readonly cursor: IndexCursor;
  private readonly end: Uint8Array;
  /** Last key visited in the index, or null before the first step. */
  private afterKey: string | null;
  private indexDone: boolean;
  private start: Uint8Array;
  private crc: number;
  private done: boolean;

  constructor(core: Core, rev: number, compactRev: number, currentRev: number) {
    this.core = core;
    this.rev = rev;
    this.compactRev = compactRev;
    this.currentRev = currentRev;
    this.keep = new RevisionSet();
    this.cursor = new IndexCursor();
    this.end = revisionKey(rev + 1, 0, false);
    this.afterKey = null;
    this.indexDone = false;
    this.start = EMPTY;
    this.crc = crc32c(KEY_BUCKET_NAME);
    this.done = false;
  }

  /** Does up to `maxItems` of work; true when the hash is complete. */
  step(maxItems: number): boolean {
    if (this.done) return true;
    const index = this.core.index;
    if (!this.indexDone) {
      const cur = this.cursor;
      index.seek(this.afterKey ?? '', cur, this.afterKey !== null);
      let n = 0;
      for (let ki = index.next(cur); ki !== undefined; ki = index.next(cur)) {
        ki.keep(this.rev, this.keep);
        this.afterKey = ki.key;
        if (++n >= maxItems) return false;
      }
      this.indexDone = true;
      return false;
    }
    const limit = Number.isFinite(maxItems) ? maxItems : SCAN_CHUNK_ENTRIES;
    for (;;) {
      const { keys, values } = this.core.backend.range(Bucket.key, this.start, this.end, limit);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const main = revisionMain(k);
        if (main <= this.compactRev && !this.keep.has(main, revisionSub(k))) continue;
        this.crc = crc32c(etcdKeyValueBytes(k, values[i]!), crc32c(k, this.crc));
      }
      if (keys.length < limit) {
        this.done = true;
        return true;
      }
      const last = keys[keys.length - 1]!;
      this.start = revisionKey(revisionMain(last), revisionSub(last) + 1, false);
      if (Number.isFinite(maxItems)) return false;
    }
  }

  result(): HashKVResult {
    if (!this.done) throw new Error('mvcc: hash not complete');
    return { hash: this.crc, compactRevision: this.compactRev, revision: this.rev, currentRevision: this.currentRev };
  }
}

function readCompactRev(v: Uint8Array | undefined): number | null {
  if (v === undefined) return null;
  checkRevisionKey(v);
  return revisionMain(v);
}

function checkBytes(b: unknown, what: string): void {
  if (!(b instanceof Uint8Array)) throw new InvalidArgumentError(`${what} is not a Uint8Array`);
}

function optionInt(v: number | undefined, what: string): number {
  if (v === undefined) return 0;
  if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`${what} ${v} is not an integer`);
  return v;
}
