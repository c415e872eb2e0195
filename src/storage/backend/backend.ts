// The backend: one LMDB environment with etcd's buckets, written through a batch transaction.
// See README.md in this folder for the file layout, the batching contract and defragmentation.

import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { type Database, open, type RootDatabase } from 'lmdb';
import { BUCKET_COUNT, BUCKET_IDS_BY_NAME, BUCKET_NAMES, type BucketName, bucketId } from './buckets.ts';
import { latin1 } from './bytes.ts';
import { crc32c } from './crc32c.ts';
import {
  BackendClosedError,
  BackendCorruptError,
  BackendNotEmptyError,
  CommitFailedError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidValueError,
  UnknownBucketError,
} from './errors.ts';
import { PendingBatch, type PendingBucket, type PendingEntry } from './pending.ts';
import { SNAPSHOT_CHUNK_BYTES, SnapshotReader, SnapshotWriter } from './snapshot.ts';

/** etcd's --backend-batch-interval default. */
export const DEFAULT_BATCH_INTERVAL_MS = 100;
/** etcd's --backend-batch-limit default. */
export const DEFAULT_BATCH_LIMIT = 10_000;
/** The longest key LMDB (as built by the lmdb package) accepts. */
export const MAX_KEY_BYTES = 1978;

const CURRENT_FILE = 'CURRENT';
const DATA_FILE_PATTERN = /^data-(\d{1,15})\.mdb$/;
/** LMDB flags for transactionSync: commit now, let the fsync of the commit overlap (lmdb's overlappingSync). */
const TXN_COMMIT_ASYNC_FLUSH = 0x10002;
/** Entries read per slice when iterating a snapshot; the event loop runs between slices. */
const ITERATE_SLICE_ENTRIES = 4096;
/** A snapshot restore commits at least every this many bytes of stream... */
const RESTORE_TXN_BYTES = 8 * 1024 * 1024;
/** ...or this many entries. */
const RESTORE_TXN_ENTRIES = 50_000;
/** Catch-up rounds of a defragmentation before it switches files regardless of the tail's size. */
const DEFRAG_CATCH_UP_ROUNDS_MAX = 8;
/** A defragmentation switches files once at most this many batches remain to replay. */
const DEFRAG_SWITCH_BATCHES_MAX = 2;

export interface BackendOptions {
  /** Directory of the backend; created if missing. Holds CURRENT and data-<generation>.mdb. */
  dir: string;
  /** Commit the pending batch this long after its first write (default 100 ms). */
  batchIntervalMs?: number;
  /** Commit the pending batch once it holds this many writes (default 10 000). */
  batchLimit?: number;
}

export interface BackendSize {
  /** Size of the data file on disk. */
  sizeBytes: number;
  /** Bytes of the pages that hold data (the rest is free pages LMDB reuses; defragment() returns them). */
  sizeInUseBytes: number;
}

export interface BackendStats {
  commits: number;
  pendingOps: number;
  inflightOps: number;
}

/** What a defragmentation did and how long each part took. */
export interface DefragmentResult {
  sizeBeforeBytes: number;
  sizeAfterBytes: number;
  durationMs: number;
  /** LMDB's compacting copy, on a background thread. */
  copyMs: number;
  /** Replays of batches committed during the copy, before the last step. */
  catchUpRounds: number;
  /** The last step: commits wait (reads and writes do not). */
  commitsPausedMs: number;
}

/** Parallel arrays of keys and values in key order. */
export interface BucketEntries {
  keys: Uint8Array[];
  values: Uint8Array[];
}

/** Decides whether hash() leaves a key out. */
export type HashIgnore = (bucket: BucketName, key: Uint8Array) => boolean;

/** An open LMDB environment and its bucket handles. */
class EnvHandle {
  readonly file: string;
  readonly env: RootDatabase;
  readonly dbs: Database<Uint8Array, Uint8Array>[];
  /** Snapshot readers (streams, hashes) using this environment. */
  refs = 0;
  /** Replaced by a defragmented copy: close once the last reader is done. */
  retired = false;

  constructor(file: string) {
    this.file = file;
    this.env = open({
      path: file,
      noSubdir: true,
      maxDbs: BUCKET_COUNT + 4,
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    // One write transaction for all buckets: creating them costs one commit, not ten.
    this.dbs = this.env.transactionSync(
      () =>
        BUCKET_NAMES.map((name) =>
          this.env.openDB<Uint8Array, Uint8Array>(name, { keyEncoding: 'binary', encoding: 'binary' }),
        ),
      TXN_COMMIT_ASYNC_FLUSH as never,
    );
  }

  async close(): Promise<void> {
    // lmdb's close() does not wait for an overlapping fsync by itself.
    await this.env.flushed;
    await this.env.close();
  }
}

type BackendState = 'open' | 'closing' | 'closed';

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The storage backend. Writes go to a pending batch; a batch reaches LMDB as one transaction,
 * committed `batchIntervalMs` after its first write, once it holds `batchLimit` writes (on the
 * next microtask, never in the middle of synchronous code), or on forceCommit(). Writes made one
 * after another without an await therefore always share an LMDB transaction.
 *
 * A commit applies the batch in an LMDB write transaction and then commits and fsyncs it on
 * lmdb's write thread, so the event loop never waits for the disk. Until then the batch stays
 * "in flight"; at most one batch is in flight, the next one waits for it. Reads see the pending
 * batch merged over the in-flight one over the committed data.
 *
 * The backend keeps the keys and values given to put() until they are committed: callers
 * must not modify them afterwards. Returned buffers must be treated as read-only.
 */
export class Backend {
  readonly dir: string;
  private readonly batchIntervalMs: number;
  private readonly batchLimit: number;
  private handle: EnvHandle;
  private generation: number;
  private pending: PendingBatch;
  /** The batch being committed, or null. */
  private inflight: PendingBatch | null;
  private inflightDone: Promise<void>;
  /** Settles when the current pending batch is committed (when someone waits for it). */
  private nextCommit: Deferred | null;
  /** A commit was asked for while another was in flight or commits were paused. */
  private commitWanted: boolean;
  /** Set during the last step of a defragmentation: batches stay pending. */
  private commitsPaused: boolean;
  private timer: NodeJS.Timeout | null;
  private commitQueued: boolean;
  private state: BackendState;
  private commits: number;
  private failure: CommitFailedError | null;
  /** Batches committed while a defragmentation copies the file; replayed into the copy. */
  private defragLog: PendingBatch[] | null;
  private defragRun: Promise<DefragmentResult> | null;
  private closeRun: Promise<void> | null;
  private readonly streams: Set<AsyncGenerator<Uint8Array, void, undefined>>;
  private readonly readers: Set<Promise<unknown>>;
  private readonly envCloses: Set<Promise<void>>;
  private readonly onTimer: () => void;
  private readonly onBatchFull: () => void;
  /** Told the duration of every commit (etcd_disk_backend_commit_duration_seconds). */
  onCommit: ((durationMs: number) => void) | null;

  private constructor(dir: string, file: string, generation: number, batchIntervalMs: number, batchLimit: number) {
    this.dir = dir;
    this.batchIntervalMs = batchIntervalMs;
    this.batchLimit = batchLimit;
    this.handle = new EnvHandle(file);
    this.generation = generation;
    this.pending = new PendingBatch();
    this.inflight = null;
    this.inflightDone = RESOLVED;
    this.nextCommit = null;
    this.commitWanted = false;
    this.commitsPaused = false;
    this.timer = null;
    this.commitQueued = false;
    this.state = 'open';
    this.commits = 0;
    this.failure = null;
    this.defragLog = null;
    this.defragRun = null;
    this.closeRun = null;
    this.streams = new Set();
    this.readers = new Set();
    this.envCloses = new Set();
    this.onCommit = null;
    // A commit started by the timer or the size trigger has no caller to report to: if LMDB
    // fails to commit, the rejection is unhandled and stops the process, as etcd stops when
    // bbolt cannot commit.
    this.onTimer = () => {
      this.timer = null;
      if (this.state === 'open') void this.commit();
    };
    this.onBatchFull = () => {
      this.commitQueued = false;
      if (this.state === 'open' && this.pending.ops >= this.batchLimit) void this.commit();
    };
  }

  /** Opens (or creates) the backend in `options.dir` (a string is taken as the directory). */
  static open(options: BackendOptions | string): Backend {
    const { dir, batchIntervalMs, batchLimit } = checkOptions(typeof options === 'string' ? { dir: options } : options);
    mkdirSync(dir, { recursive: true });
    let current = readCurrent(dir);
    if (current === null) {
      const stray = dataFiles(dir);
      if (stray.length > 0) {
        throw new BackendCorruptError(`${dir} holds ${stray.join(', ')} but no ${CURRENT_FILE} (interrupted restore?)`);
      }
      current = dataFileName(0);
      writeCurrent(dir, current);
    }
    for (const name of dataFiles(dir)) if (name !== current) removeDataFile(join(dir, name));
    const generation = Number(DATA_FILE_PATTERN.exec(current)![1]);
    return new Backend(dir, join(dir, current), generation, batchIntervalMs, batchLimit);
  }

  /**
   * Creates a backend in `options.dir` from a snapshot stream (see snapshotStream()). The
   * directory must not hold a backend yet. Nothing is left behind if the stream is corrupt.
   */
  static async restoreSnapshot(options: BackendOptions, source: AsyncIterable<Uint8Array>): Promise<Backend> {
    const { dir } = checkOptions(options);
    mkdirSync(dir, { recursive: true });
    if (readCurrent(dir) !== null) throw new BackendNotEmptyError(dir);
    for (const name of dataFiles(dir)) removeDataFile(join(dir, name));
    const name = dataFileName(0);
    const handle = new EnvHandle(join(dir, name));
    try {
      const reader = new SnapshotReader();
      let bytes = 0;
      const flush = async (): Promise<void> => {
        await handle.env.transaction(() => {
          for (let i = 0; i < reader.keys.length; i++) {
            handle.dbs[reader.buckets[i]!]!.put(reader.keys[i]!, reader.values[i]!);
          }
        });
        reader.drain();
        bytes = 0;
      };
      for await (const chunk of source) {
        reader.push(chunk);
        bytes += chunk.length;
        // One LMDB transaction per few MiB: decoded entries are views into the chunks, so
        // this also bounds the memory held.
        if (bytes >= RESTORE_TXN_BYTES || reader.keys.length >= RESTORE_TXN_ENTRIES) await flush();
      }
      reader.end();
      if (reader.keys.length > 0) await flush();
      await handle.close();
    } catch (err) {
      await handle.close().catch(() => {});
      removeDataFile(handle.file);
      throw err;
    }
    writeCurrent(dir, name);
    return Backend.open(options);
  }

  /** The value of `key` in `bucket`, pending writes included. */
  get(bucket: BucketName, key: Uint8Array): Uint8Array | undefined {
    return this.read(bucket, key, false);
  }

  /**
   * As get, without the copy: the result may be lmdb's shared read buffer, valid only until the
   * next read of this backend. For a caller that consumes the value at once.
   */
  getTransient(bucket: BucketName, key: Uint8Array): Uint8Array | undefined {
    return this.read(bucket, key, true);
  }

  private read(bucket: BucketName, key: Uint8Array, transient: boolean): Uint8Array | undefined {
    const id = this.bucketOf(bucket);
    if (!(key instanceof Uint8Array)) throw new InvalidKeyError('not a Uint8Array');
    this.assertReadable();
    if (key.length === 0 || key.length > MAX_KEY_BYTES) return undefined;
    const pb = this.pending.buckets[id]!;
    const fb = this.inflight?.buckets[id];
    if (pb.size > 0 || (fb !== undefined && fb.size > 0)) {
      const keyId = latin1(key);
      const entry = pb.get(keyId) ?? fb?.get(keyId);
      if (entry !== undefined) return entry.value ?? undefined;
    }
    const db = this.handle.dbs[id]!;
    return transient ? db.getBinaryFast(key) : db.getBinary(key);
  }

  /**
   * Keys and values of `bucket` in key order, pending writes included: with `end` undefined
   * just `start`; with `end` null every key >= start; otherwise start <= key < end. At most
   * `limit` entries when limit > 0.
   */
  range(bucket: BucketName, start: Uint8Array, end?: Uint8Array | null, limit = 0): BucketEntries {
    const id = this.bucketOf(bucket);
    if (!(start instanceof Uint8Array)) throw new InvalidKeyError('range start is not a Uint8Array');
    if (end !== undefined && end !== null && !(end instanceof Uint8Array)) {
      throw new InvalidKeyError('range end is not a Uint8Array');
    }
    this.assertReadable();
    const keys: Uint8Array[] = [];
    const values: Uint8Array[] = [];
    if (end === undefined) {
      const value = this.get(bucket, start);
      if (value !== undefined) {
        keys.push(start);
        values.push(value);
      }
      return { keys, values };
    }
    if (end !== null && Buffer.compare(start, end) >= 0) return { keys, values };
    const max = limit > 0 ? limit : Number.POSITIVE_INFINITY;
    const db = this.handle.dbs[id]!;
    const opts: { start?: Uint8Array; end?: Uint8Array; limit?: number } = {};
    if (start.length > 0) opts.start = start;
    if (end !== null) opts.end = end;
    const overlay = overlayRange(this.pending.buckets[id]!, this.inflight?.buckets[id], start, end);
    if (overlay.length === 0) {
      if (limit > 0) opts.limit = limit;
      for (const entry of db.getRange(opts)) {
        keys.push(entry.key);
        values.push(entry.value);
      }
      return { keys, values };
    }
    let pi = 0;
    const pEnd = overlay.length;
    outer: for (const entry of db.getRange(opts)) {
      let cmp = 1;
      while (pi < pEnd) {
        const p = overlay[pi]!;
        cmp = Buffer.compare(p.key, entry.key);
        if (cmp > 0) break;
        pi++;
        if (p.value !== null) {
          keys.push(p.key);
          values.push(p.value);
          if (keys.length >= max) break outer;
        }
        if (cmp === 0) break;
      }
      if (cmp !== 0) {
        keys.push(entry.key);
        values.push(entry.value);
        if (keys.length >= max) break;
      }
    }
    while (pi < pEnd && keys.length < max) {
      const p = overlay[pi++]!;
      if (p.value !== null) {
        keys.push(p.key);
        values.push(p.value);
      }
    }
    return { keys, values };
  }

  put(bucket: BucketName, key: Uint8Array, value: Uint8Array): void {
    const id = this.bucketOf(bucket);
    checkKey(key);
    if (!(value instanceof Uint8Array)) throw new InvalidValueError('not a Uint8Array');
    this.assertWritable();
    this.pending.buckets[id]!.set(latin1(key), key, value);
    this.noteWrite();
  }

  delete(bucket: BucketName, key: Uint8Array): void {
    const id = this.bucketOf(bucket);
    checkKey(key);
    this.assertWritable();
    this.pending.buckets[id]!.set(latin1(key), key, null);
    this.noteWrite();
  }

  /**
   * Starts committing the pending batch now (after the one in flight, if any). Resolves when
   * everything written before the call is committed: visible in the LMDB file, its fsync under
   * way (see sync()).
   */
  forceCommit(): Promise<void> {
    this.assertWritable();
    return this.commit();
  }

  /** Resolves once everything committed so far is on disk. */
  async sync(): Promise<void> {
    this.assertReadable();
    await this.handle.env.flushed;
  }

  /** Commits to LMDB so far, writes waiting in the pending batch and writes being committed. */
  stats(): BackendStats {
    return { commits: this.commits, pendingOps: this.pending.ops, inflightOps: this.inflight?.ops ?? 0 };
  }

  size(): BackendSize {
    this.assertReadable();
    const handle = this.handle;
    const stats = handle.env.getStats() as LmdbStats;
    let pages = 2 + statPages(stats.root) + statPages(stats.free);
    for (const db of handle.dbs) pages += statPages(db.getStats() as LmdbStats);
    const sizeBytes = statSync(handle.file).size;
    return { sizeBytes, sizeInUseBytes: Math.min(sizeBytes, pages * stats.pageSize) };
  }

  /**
   * Compacts the data file online. LMDB copies the file with compaction on a background thread
   * while reads, writes and commits go on against the current file; batches committed
   * meanwhile are replayed into the copy in catch-up rounds. For the last step commits pause
   * (writes keep landing in the pending batch, reads keep working): the last batches are
   * replayed, the copy is fsynced, CURRENT is switched to it, and the backend uses it. See
   * README.md for what waits and for how long. Concurrent calls share one run.
   */
  defragment(): Promise<DefragmentResult> {
    this.assertWritable();
    if (this.defragRun === null) {
      this.defragRun = this.runDefragment().finally(() => {
        this.defragRun = null;
      });
    }
    return this.defragRun;
  }

  /**
   * A consistent snapshot of every bucket as a byte stream (format in snapshot.ts), in chunks
   * of `chunkBytes`. When iteration starts the pending batch is committed and an LMDB read
   * transaction is taken; it is held until the stream ends, so memory stays bounded by a few
   * chunks whatever the size of the backend. Consume it to the end or call return().
   */
  snapshotStream(chunkBytes = SNAPSHOT_CHUNK_BYTES): AsyncIterable<Uint8Array> {
    this.assertWritable();
    const self: { stream: AsyncGenerator<Uint8Array, void, undefined> | null } = { stream: null };
    const stream = this.streamSnapshot(chunkBytes, self);
    self.stream = stream;
    this.streams.add(stream);
    return stream;
  }

  /**
   * CRC-32C of every bucket, as etcd's backend hash: buckets in name order, each its name then
   * its keys and values, except the keys `ignore` leaves out. Commits the pending batch and
   * hashes that state under a read transaction, yielding to the event loop between slices.
   */
  hash(ignore?: HashIgnore): Promise<number> {
    this.assertWritable();
    const run = this.runHash(ignore).finally(() => this.readers.delete(run));
    this.readers.add(run);
    return run;
  }

  /** Commits what is pending, waits for it to reach the disk and closes LMDB. */
  close(): Promise<void> {
    if (this.closeRun === null) this.closeRun = this.runClose();
    return this.closeRun;
  }

  private async runClose(): Promise<void> {
    this.state = 'closing';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.defragRun !== null) await this.defragRun.catch(() => {});
    for (const stream of this.streams) await stream.return(undefined).catch(() => {});
    await Promise.allSettled(this.readers);
    if (this.failure === null) await this.commit().catch(() => {});
    await this.inflightDone.catch(() => {});
    this.state = 'closed';
    await this.handle.close();
    await Promise.allSettled(this.envCloses);
  }

  /** Starts committing the pending batch; resolves when it is committed. */
  private commit(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.pending.ops === 0) return this.inflightDone;
    if (this.inflight !== null || this.commitsPaused) {
      this.commitWanted = true;
      if (this.nextCommit === null) this.nextCommit = new Deferred();
      return this.nextCommit.promise;
    }
    const batch = this.pending;
    const waiter = this.nextCommit;
    this.pending = new PendingBatch();
    this.nextCommit = null;
    this.commitWanted = false;
    this.inflight = batch;
    const handle = this.handle;
    const startedMs = performance.now();
    const done = handle.env
      .transaction(() => writeBatch(handle, batch))
      .then(
        () => {
          this.onCommit?.(performance.now() - startedMs);
          this.inflight = null;
          this.commits++;
          if (this.defragLog !== null) this.defragLog.push(batch);
          waiter?.resolve();
          this.afterCommit();
        },
        (err: unknown) => {
          // The batch stays in flight: reads still see it; writes stop.
          this.failure = new CommitFailedError(err);
          waiter?.reject(this.failure);
          this.nextCommit?.reject(this.failure);
          this.nextCommit = null;
          throw this.failure;
        },
      );
    this.inflightDone = done;
    return done;
  }

  /** After a commit: start the next one if it was asked for or is due. */
  private afterCommit(): void {
    if (this.pending.ops === 0 || this.commitsPaused) return;
    if (this.commitWanted || this.pending.ops >= this.batchLimit || this.state !== 'open') void this.commit();
    else if (this.timer === null) {
      this.timer = setTimeout(this.onTimer, this.batchIntervalMs);
      this.timer.unref();
    }
  }

  private noteWrite(): void {
    const ops = ++this.pending.ops;
    if (this.timer === null) {
      this.timer = setTimeout(this.onTimer, this.batchIntervalMs);
      this.timer.unref();
    }
    if (ops >= this.batchLimit && !this.commitQueued) {
      this.commitQueued = true;
      queueMicrotask(this.onBatchFull);
    }
  }

  private async runDefragment(): Promise<DefragmentResult> {
    const startedAt = performance.now();
    const sizeBeforeBytes = statSync(this.handle.file).size;
    const name = dataFileName(this.generation + 1);
    const file = join(this.dir, name);
    removeDataFile(file);
    await this.commit();
    this.defragLog = [];
    let copy: EnvHandle | null = null;
    try {
      await this.handle.env.backup(file, true);
      const copyMs = performance.now() - startedAt;
      this.assertDefragCanGoOn();
      copy = new EnvHandle(file);
      const target = copy;
      let catchUpRounds = 0;
      while (catchUpRounds < DEFRAG_CATCH_UP_ROUNDS_MAX && this.defragLog.length > DEFRAG_SWITCH_BATCHES_MAX) {
        const log = this.defragLog;
        this.defragLog = [];
        await target.env.transaction(() => writeBatches(target, log));
        this.assertDefragCanGoOn();
        catchUpRounds++;
      }
      // Flushing the copy now keeps the fsync of the last step short.
      await target.env.flushed;
      this.assertDefragCanGoOn();
      // Last step: commits pause, so the current file and the log stop changing.
      const pausedAt = performance.now();
      this.commitsPaused = true;
      while (this.inflight !== null) await this.inflightDone;
      const tail = this.defragLog;
      await target.env.transaction(() => writeBatches(target, tail));
      await target.env.flushed;
      this.assertDefragCanGoOn();
      await writeCurrentAsync(this.dir, name);
      // From here on nothing fails: the copy is the backend.
      this.defragLog = null;
      const old = this.handle;
      this.handle = target;
      this.generation++;
      old.retired = true;
      if (old.refs === 0) this.closeRetired(old);
      const now = performance.now();
      return {
        sizeBeforeBytes,
        sizeAfterBytes: statSync(target.file).size,
        durationMs: now - startedAt,
        copyMs,
        catchUpRounds,
        commitsPausedMs: now - pausedAt,
      };
    } catch (err) {
      this.defragLog = null;
      if (copy !== null) await copy.close().catch(() => {});
      removeDataFile(file);
      throw err;
    } finally {
      this.commitsPaused = false;
      this.afterCommit();
    }
  }

  private assertDefragCanGoOn(): void {
    if (this.state !== 'open') throw new BackendClosedError();
    if (this.failure !== null) throw this.failure;
  }

  /**
   * Closes a data file a defragmentation replaced and deletes it. The deletion runs on the
   * thread pool: unlinking a file of gigabytes blocks its thread for hundreds of milliseconds.
   */
  private closeRetired(handle: EnvHandle): void {
    const run = handle
      .close()
      .then(() => removeDataFileAsync(handle.file))
      .finally(() => this.envCloses.delete(run));
    this.envCloses.add(run);
  }

  private acquire(): EnvHandle {
    const handle = this.handle;
    handle.refs++;
    return handle;
  }

  private release(handle: EnvHandle): void {
    handle.refs--;
    if (handle.refs === 0 && handle.retired) this.closeRetired(handle);
  }

  private async *streamSnapshot(
    chunkBytes: number,
    self: { stream: AsyncGenerator<Uint8Array, void, undefined> | null },
  ): AsyncGenerator<Uint8Array, void, undefined> {
    let handle: EnvHandle | null = null;
    let txn: { done(): void } | null = null;
    try {
      this.assertWritable();
      await this.commit();
      this.assertWritable();
      handle = this.acquire();
      txn = handle.env.useReadTransaction();
      const writer = new SnapshotWriter(chunkBytes);
      for (let id = 0; id < BUCKET_COUNT; id++) {
        const db = handle.dbs[id]!;
        let after: Uint8Array | null = null;
        for (;;) {
          after = readSlice(db, txn, after, (key, value) => writer.writeEntry(id, key, value), chunkBytes);
          while (writer.ready.length > 0) yield writer.ready.shift()!;
          if (this.state !== 'open') throw new BackendClosedError();
          if (after === null) break;
        }
      }
      writer.finish();
      while (writer.ready.length > 0) yield writer.ready.shift()!;
    } finally {
      if (txn !== null) txn.done();
      if (handle !== null) this.release(handle);
      if (self.stream !== null) this.streams.delete(self.stream);
    }
  }

  private async runHash(ignore: HashIgnore | undefined): Promise<number> {
    await this.commit();
    this.assertWritable();
    const handle = this.acquire();
    const txn = handle.env.useReadTransaction();
    try {
      let crc = 0;
      for (const id of BUCKET_IDS_BY_NAME) {
        const name = BUCKET_NAMES[id]!;
        crc = crc32c(Buffer.from(name, 'latin1'), crc);
        let after: Uint8Array | null = null;
        for (;;) {
          after = readSlice(
            handle.dbs[id]!,
            txn,
            after,
            (key, value) => {
              if (ignore?.(name, key)) return;
              crc = crc32c(value, crc32c(key, crc));
            },
            Number.POSITIVE_INFINITY,
          );
          if (after === null) break;
          await yieldToLoop();
          if (this.state !== 'open') throw new BackendClosedError();
        }
      }
      return crc;
    } finally {
      txn.done();
      this.release(handle);
    }
  }

  private bucketOf(bucket: BucketName): number {
    const id = bucketId(bucket);
    if (id < 0) throw new UnknownBucketError(bucket);
    return id;
  }

  private assertReadable(): void {
    if (this.state === 'closed') throw new BackendClosedError();
  }

  private assertWritable(): void {
    if (this.state !== 'open') throw new BackendClosedError();
    if (this.failure !== null) throw this.failure;
  }
}

class Deferred {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (err: unknown) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody may be waiting: a failure is reported through the commit that failed.
    this.promise.catch(() => {});
  }
}

/**
 * The overlay entries (pending over in-flight, deletions included) with start <= key < end
 * (end null: unbounded), in key order.
 */
function overlayRange(
  pending: PendingBucket,
  inflight: PendingBucket | undefined,
  start: Uint8Array,
  end: Uint8Array | null,
): PendingEntry[] {
  const startId = start.length > 0 ? latin1(start) : '';
  const endId = end === null ? null : latin1(end);
  const p = slice(pending, startId, endId);
  if (inflight === undefined || inflight.size === 0) return p;
  const f = slice(inflight, startId, endId);
  if (p.length === 0) return f;
  if (f.length === 0) return p;
  const out: PendingEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < p.length && j < f.length) {
    const a = p[i]!;
    const b = f[j]!;
    if (a.id < b.id) {
      out.push(a);
      i++;
    } else if (a.id > b.id) {
      out.push(b);
      j++;
    } else {
      out.push(a);
      i++;
      j++;
    }
  }
  while (i < p.length) out.push(p[i++]!);
  while (j < f.length) out.push(f[j++]!);
  return out;
}

function slice(pb: PendingBucket, startId: string, endId: string | null): PendingEntry[] {
  if (pb.size === 0) return NO_ENTRIES;
  const sorted = pb.sorted();
  const from = startId === '' ? 0 : pb.lowerBound(startId);
  const to = endId === null ? sorted.length : pb.lowerBound(endId);
  if (from === 0 && to === sorted.length) return sorted;
  return from < to ? sorted.slice(from, to) : NO_ENTRIES;
}

const NO_ENTRIES: PendingEntry[] = [];

interface LmdbStats {
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
  root: LmdbStats;
  free: LmdbStats;
}

function statPages(s: LmdbStats): number {
  return s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
}

/**
 * Feeds entries of `db` after `after` (from the start when null) under `txn` to `onEntry`, up
 * to ITERATE_SLICE_ENTRIES entries or `budgetBytes` of keys and values. Returns the last key
 * fed, or null when the bucket is exhausted.
 */
function readSlice(
  db: Database<Uint8Array, Uint8Array>,
  txn: { done(): void },
  after: Uint8Array | null,
  onEntry: (key: Uint8Array, value: Uint8Array) => void,
  budgetBytes: number,
): Uint8Array | null {
  const opts =
    after === null
      ? { transaction: txn as never, limit: ITERATE_SLICE_ENTRIES }
      : { transaction: txn as never, start: after, exclusiveStart: true, limit: ITERATE_SLICE_ENTRIES };
  let last: Uint8Array | null = null;
  let n = 0;
  let bytes = 0;
  for (const { key, value } of db.getRange(opts)) {
    onEntry(key, value);
    last = key;
    n++;
    bytes += key.length + value.length;
    if (bytes >= budgetBytes) return last;
  }
  return n < ITERATE_SLICE_ENTRIES ? null : last;
}

/** Writes batches, oldest first, inside the caller's LMDB write transaction. */
function writeBatches(handle: EnvHandle, batches: PendingBatch[]): void {
  for (const batch of batches) writeBatch(handle, batch);
}

function writeBatch(handle: EnvHandle, batch: PendingBatch): void {
  for (let id = 0; id < BUCKET_COUNT; id++) writeBucket(handle.dbs[id]!, batch.buckets[id]!);
}

function writeBucket(db: Database<Uint8Array, Uint8Array>, pb: PendingBucket): void {
  if (pb.size === 0) return;
  const entries: Iterable<PendingEntry> = pb.entries.values();
  for (const e of entries) {
    if (e.value === null) db.remove(e.key);
    else db.put(e.key, e.value);
  }
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new InvalidKeyError('not a Uint8Array');
  if (key.length === 0) throw new InvalidKeyError('empty');
  if (key.length > MAX_KEY_BYTES) throw new InvalidKeyError(`${key.length} bytes, more than ${MAX_KEY_BYTES}`);
}

function checkOptions(options: BackendOptions): Required<BackendOptions> {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options must be an object');
  const { dir } = options;
  if (typeof dir !== 'string' || dir.length === 0) throw new InvalidOptionError('dir must be a non-empty string');
  const batchIntervalMs = options.batchIntervalMs ?? DEFAULT_BATCH_INTERVAL_MS;
  const batchLimit = options.batchLimit ?? DEFAULT_BATCH_LIMIT;
  if (!Number.isFinite(batchIntervalMs) || batchIntervalMs < 0 || batchIntervalMs > 2 ** 31 - 1) {
    throw new InvalidOptionError(`batchIntervalMs ${batchIntervalMs} is not a delay in milliseconds`);
  }
  if (!Number.isSafeInteger(batchLimit) || batchLimit < 1) {
    throw new InvalidOptionError(`batchLimit ${batchLimit} is not a positive integer`);
  }
  return { dir, batchIntervalMs, batchLimit };
}

function dataFileName(generation: number): string {
  return `data-${generation}.mdb`;
}

function dataFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => DATA_FILE_PATTERN.test(name));
}

function readCurrent(dir: string): string | null {
  let text: string;
  try {
    text = readFileSync(join(dir, CURRENT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const name = text.trim();
  if (!DATA_FILE_PATTERN.test(name)) throw new BackendCorruptError(`${CURRENT_FILE} names ${JSON.stringify(name)}`);
  return name;
}

/** Points CURRENT at `name` atomically and durably (write, fsync, rename, fsync the directory). */
function writeCurrent(dir: string, name: string): void {
  const tmp = join(dir, `${CURRENT_FILE}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeFileSync(fd, `${name}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, CURRENT_FILE));
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** writeCurrent without blocking the event loop on the fsyncs. */
async function writeCurrentAsync(dir: string, name: string): Promise<void> {
  const tmp = join(dir, `${CURRENT_FILE}.tmp`);
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(`${name}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, join(dir, CURRENT_FILE));
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** A data file and the lock file LMDB keeps beside it. */
function dataFileAndLock(file: string): [string, string] {
  return [file, `${file}-lock`];
}

function removeDataFile(file: string): void {
  for (const path of dataFileAndLock(file)) rmSync(path, { force: true });
}

async function removeDataFileAsync(file: string): Promise<void> {
  await Promise.all(dataFileAndLock(file).map((path) => fsp.rm(path, { force: true })));
}
