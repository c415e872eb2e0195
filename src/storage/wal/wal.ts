// The write-ahead log: raft's entries, hard state and snapshot markers, appended to segment
// files and fsynced before a save is acknowledged. See README.md for the on-disk format.

import assert from 'node:assert/strict';
import { constants, fdatasyncSync } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  WalClosedError,
  WalCorruptError,
  WalExistsError,
  WalFailedError,
  WalInvalidArgumentError,
  type WalLocation,
  WalMetadataConflictError,
  WalNotFoundError,
  WalOverloadedError,
  WalSnapshotMismatchError,
  WalSnapshotNotFoundError,
} from './errors.ts';
import {
  ALIGN_BYTES,
  decodeEntry,
  decodeHardState,
  decodeMetadata,
  decodeSnapshot,
  ENTRY_HEADER_BYTES,
  entryRecordBytes,
  HARD_STATE_RECORD_BYTES,
  METADATA_BYTES_MAX,
  PAYLOAD_BYTES_MAX,
  RecordType,
  RecordWriter,
  SNAPSHOT_RECORD_BYTES,
} from './record.ts';
import { scanSegment } from './scan.ts';
import {
  checkContiguous,
  hasSegments,
  isNotFound,
  listSegments,
  preallocate,
  removeTempFiles,
  type SegmentInfo,
  SegmentPipeline,
  segmentName,
  syncDir,
  writeAll,
  writeAllSync,
} from './segment.ts';
import {
  EMPTY_HARD_STATE,
  Preallocation,
  type WalEntry,
  type WalHardState,
  type WalOptions,
  type WalSnapshotMarker,
  type WalStats,
  WalSyncMode,
} from './types.ts';

export const SEGMENT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024;
export const SEGMENT_SIZE_BYTES_MIN = 1024;
export const GROUP_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;
export const PENDING_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;
const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;

interface ResolvedOptions {
  readonly segmentSizeBytes: number;
  readonly preallocate: Preallocation;
  readonly groupBytesMax: number;
  readonly pendingBytesMax: number;
  readonly unsafeNoFsync: boolean;
  readonly syncMode: WalSyncMode;
  readonly onFsync: ((durationMs: number) => void) | null;
}

/** What `Wal.open` read back. */
export interface WalOpenResult {
  wal: Wal;
  metadata: Uint8Array;
  hardState: WalHardState;
  /** The entries after the snapshot marker, consecutive, overwrites applied. */
  entries: WalEntry[];
  /** Where a torn tail was cut off the newest segment, or null when it ended cleanly. */
  repairedTail: WalLocation | null;
}

/**
 * One call to `save` or `saveSnapshot` waiting for its group commit, or a hard state queued by
 * `deferHardState` (`sync` false: nobody waits for it, and it makes no group sync by itself).
 */
class Pending {
  readonly hardState: WalHardState | null;
  readonly entries: readonly WalEntry[];
  readonly marker: WalSnapshotMarker | null;
  readonly bytes: number;
  readonly sync: boolean;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;

  constructor(
    hardState: WalHardState | null,
    entries: readonly WalEntry[],
    marker: WalSnapshotMarker | null,
    bytes: number,
    sync: boolean,
    resolve: () => void,
    reject: (err: unknown) => void,
  ) {
    this.hardState = hardState;
    this.entries = entries;
    this.marker = marker;
    this.bytes = bytes;
    this.sync = sync;
    this.resolve = resolve;
    this.reject = reject;
  }
}

function ignore(): void {}

/** Segment handles of the write path: O_DSYNC in `dsync` mode (unless fsync is off altogether). */
function appendFlags(options: ResolvedOptions): number {
  const dsync = options.syncMode === WalSyncMode.Dsync && !options.unsafeNoFsync;
  return constants.O_RDWR | (dsync ? constants.O_DSYNC : 0);
}

const State = { Open: 0, Closing: 1, Closed: 2 } as const;
type State = (typeof State)[keyof typeof State];

export class Wal {
  private readonly dir: string;
  private readonly options: ResolvedOptions;
  private readonly metadata: Uint8Array;
  /** Segment files on disk, oldest first; the last one is being written. */
  private readonly segments: SegmentInfo[];
  private readonly pipeline: SegmentPipeline;
  private readonly writer: RecordWriter;
  private readonly queue: Pending[];
  private readonly counters: WalStats;
  private handle: FileHandle;
  /** Write position in the last segment; always a multiple of ALIGN_BYTES. */
  private offset: number;
  /** The last hard state written; a new segment starts with it. */
  private hardState: WalHardState;
  /** Index of the last entry written (or of a later snapshot marker); names the next segment. */
  private lastIndex: number;
  /** `lastIndex` as it will be once everything queued is written; checks that saves leave no gap. */
  private queuedLastIndex: number;
  private queuedBytes: number;
  /** Queued saves that wait for a sync (deferred hard states do not count). */
  private queuedSyncs: number;
  /** Set by close: deferred hard states are written and synced too. */
  private flushAll: boolean;
  /** The running write loop, or null when idle. */
  private draining: Promise<void> | null;
  private state: State;
  private failure: unknown;
  private closing: Promise<void> | null;

  private constructor(
    dir: string,
    options: ResolvedOptions,
    metadata: Uint8Array,
    segments: SegmentInfo[],
    handle: FileHandle,
    offset: number,
    hardState: WalHardState,
    lastIndex: number,
  ) {
    this.dir = dir;
    this.options = options;
    this.metadata = metadata;
    this.segments = segments;
    this.pipeline = new SegmentPipeline(dir, options.segmentSizeBytes, options.preallocate);
    this.writer = new RecordWriter();
    this.queue = [];
    this.counters = { writes: 0, syncs: 0, batches: 0, deferredWritten: 0, bytesWritten: 0, segmentsCut: 0 };
    this.handle = handle;
    this.offset = offset;
    this.hardState = hardState;
    this.lastIndex = lastIndex;
    this.queuedLastIndex = lastIndex;
    this.queuedBytes = 0;
    this.queuedSyncs = 0;
    this.flushAll = false;
    this.draining = null;
    this.state = State.Open;
    this.failure = null;
    this.closing = null;
    this.pipeline.warm();
  }

  /** True when `dir` holds a WAL (at least one segment file). */
  static exists(dir: string): boolean {
    return hasSegments(dir);
  }

  /**
   * Creates a WAL in `dir` (made if missing) whose segments all carry `metadata`. The first
   * segment appears under its final name only once its header is durable.
   */
  static async create(dir: string, metadata: Uint8Array, opts?: WalOptions): Promise<Wal> {
    const options = resolveOptions(opts);
    checkMetadata(metadata);
    if (hasSegments(dir)) throw new WalExistsError(`wal: ${dir} already holds a write-ahead log`);
    await mkdir(dir, { recursive: true });
    await syncDir(dirname(dir));
    await removeTempFiles(dir);
    const own = new Uint8Array(metadata);
    const pipeline = new SegmentPipeline(dir, options.segmentSizeBytes, options.preallocate);
    const file = await pipeline.take();
    const writer = new RecordWriter();
    writer.metadata(own);
    writer.hardState(EMPTY_HARD_STATE);
    const headerBytes = writer.byteLength;
    try {
      await writeAll(file.handle, writer.bytes(), 0);
      await file.handle.sync();
      const info = { seq: 0, index: 0, name: segmentName(0, 0) };
      await rename(file.path, join(dir, info.name));
      await syncDir(dir);
      const handle = await reopenForAppend(file.handle, join(dir, info.name), options);
      return new Wal(dir, options, own, [info], handle, headerBytes, { ...EMPTY_HARD_STATE }, 0);
    } catch (err) {
      await file.handle.close().catch(() => {});
      await rm(file.path, { force: true });
      throw err;
    }
  }

  /**
   * Opens the WAL in `dir` at a snapshot marker and reads everything after it. An entry with the
   * index of an earlier one replaces it and everything after it (a new leader's overwrite). A torn
   * tail of the newest segment is truncated; damage anywhere before the last valid record throws
   * WalCorruptError / WalCrcMismatchError. `from` = {index: 0, term: 0} reads from the beginning.
   */
  static async open(dir: string, from: WalSnapshotMarker, opts?: WalOptions): Promise<WalOpenResult> {
    const options = resolveOptions(opts);
    checkMarker(from, 'from');
    let segments: SegmentInfo[];
    try {
      segments = await listSegments(dir);
    } catch (err) {
      if (isNotFound(err)) throw new WalNotFoundError(`wal: ${dir} does not exist`, { cause: err });
      throw err;
    }
    if (segments.length === 0) throw new WalNotFoundError(`wal: ${dir} holds no write-ahead log`);
    await removeTempFiles(dir);

    // The newest segment that starts at or before the marker holds the entries after it.
    let first = -1;
    for (let i = 0; i < segments.length; i++) if (segments[i]!.index <= from.index) first = i;
    if (first < 0) {
      throw new WalNotFoundError(
        `wal: no segment holds index ${from.index}; the oldest segment starts at ${segments[0]!.index}`,
      );
    }
    // Older segments are not read: a hole among them (a release cut short) does not matter.
    const live = segments.slice(first);
    checkContiguous(live);
    const reader = new LogReader(from);
    let validEnd = 0;
    let dirtyTail = false;
    for (let i = 0; i < live.length; i++) {
      const segment = live[i]!;
      const isLast = i === live.length - 1;
      const bytes = await readFile(join(dir, segment.name));
      const result = reader.readSegment(bytes, segment.name, isLast);
      validEnd = result.validEnd;
      dirtyTail = result.dirtyTail;
    }
    const { metadata, hardState, entries } = reader.finish();

    const last = live[live.length - 1]!;
    const handle = await open(join(dir, last.name), appendFlags(options));
    try {
      if (dirtyTail) {
        // Clear the torn tail: records left after it could otherwise be read back later, after
        // new records shorter than the old ones are written over the start of it.
        await handle.truncate(validEnd);
      }
      await preallocate(handle, options.segmentSizeBytes, options.preallocate);
      if (dirtyTail) await handle.sync();
    } catch (err) {
      await handle.close();
      throw err;
    }
    const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : from.index;
    // All segments, not just those read: releaseTo removes the older ones too.
    const wal = new Wal(dir, options, metadata, segments, handle, validEnd, hardState, lastIndex);
    const repairedTail = dirtyTail ? { file: last.name, offset: validEnd } : null;
    return { wal, metadata, hardState, entries, repairedTail };
  }

  /**
   * Appends `entries`, then `hardState` (when not null), with one durable write for the whole
   * batch (a write and an fdatasync, or one O_DSYNC write); resolves only after the sync. Calls made while earlier ones are in flight are
   * queued in order and share a write + fdatasync when they can (group commit). The first entry
   * may repeat an earlier index (an overwrite) but must not leave a gap. The entries' data must
   * not change until the promise settles.
   */
  async save(hardState: WalHardState | null, entries: readonly WalEntry[]): Promise<void> {
    this.checkUsable();
    const bytes = this.checkSave(hardState, entries);
    this.checkRoom(bytes);
    const promise = this.enqueue(hardState, entries, null, bytes);
    if (entries.length > 0) this.queuedLastIndex = entries[entries.length - 1]!.index;
    return promise;
  }

  /**
   * As save, but written (and synced) on the calling thread before it returns, for a caller
   * with nothing else to do meanwhile: it saves the trip through the thread pool and back.
   * Returns false, having done nothing, when the batch cannot be written at once (a group
   * commit is in flight, the segment is full, or the write would pass `bytesMax`); then save.
   * Deferred hard states queued before it go out with it, in order.
   */
  saveNow(hardState: WalHardState | null, entries: readonly WalEntry[], bytesMax: number): boolean {
    this.checkUsable();
    if (this.draining !== null || this.offset >= this.options.segmentSizeBytes) return false;
    const bytes = this.checkSave(hardState, entries);
    if (this.queuedBytes + bytes > bytesMax) return false;
    const group = this.queue.splice(0);
    group.push(new Pending(hardState, entries, null, bytes, true, ignore, ignore));
    this.queuedBytes += bytes;
    this.queuedSyncs++;
    if (entries.length > 0) this.queuedLastIndex = entries[entries.length - 1]!.index;
    const options = this.options;
    try {
      const groupBytes = this.encode(group);
      const out = this.writer.bytes();
      const startedMs = performance.now();
      writeAllSync(this.handle, out, this.offset);
      if (!options.unsafeNoFsync && options.syncMode !== WalSyncMode.Dsync) fdatasyncSync(this.handle.fd);
      this.wrote(out.length, true, startedMs);
      this.settle(group, groupBytes);
    } catch (err) {
      this.failure = err;
      this.queuedBytes = 0;
      this.queuedSyncs = 0;
      throw new WalFailedError(err);
    }
    return true;
  }

  /** Checks a batch given to save and returns its size in bytes. */
  private checkSave(hardState: WalHardState | null, entries: readonly WalEntry[]): number {
    if (hardState !== null) checkHardState(hardState);
    if (!Array.isArray(entries)) throw new WalInvalidArgumentError('wal: entries must be an array');
    let bytes = hardState === null ? 0 : HARD_STATE_RECORD_BYTES;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      checkEntry(entry, i);
      if (i > 0 && entry.index !== entries[i - 1]!.index + 1) {
        throw new WalInvalidArgumentError(
          `wal: entries[${i}] has index ${entry.index} after ${entries[i - 1]!.index}; a batch must be consecutive`,
        );
      }
      bytes += entryRecordBytes(entry);
    }
    const firstIndex = entries[0]?.index;
    if (firstIndex !== undefined && firstIndex > this.queuedLastIndex + 1) {
      throw new WalInvalidArgumentError(
        `wal: entry ${firstIndex} would leave a gap after the last entry ${this.queuedLastIndex}`,
      );
    }
    return bytes;
  }

  /**
   * Queues a hard state that need not be durable yet: raft's `mustSync` is false for it (only the
   * commit index moved; no entry, term or vote changed). It costs no write and no sync of its own:
   * it goes out in order with the next `save` or `saveSnapshot` (or at `close`), as etcd's WAL
   * buffers such a record until its next sync. A crash before then loses it, which raft
   * tolerates: the commit index is learned again from the log and the leader. A deferred hard
   * state still queued is replaced by a newer one.
   */
  deferHardState(hardState: WalHardState): void {
    this.checkUsable();
    checkHardState(hardState);
    const own = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    const last = this.queue.length - 1;
    const queued = this.queue[last];
    if (queued !== undefined && !queued.sync) {
      this.queue[last] = new Pending(own, [], null, HARD_STATE_RECORD_BYTES, false, ignore, ignore);
      return;
    }
    this.checkRoom(HARD_STATE_RECORD_BYTES);
    this.queue.push(new Pending(own, [], null, HARD_STATE_RECORD_BYTES, false, ignore, ignore));
    this.queuedBytes += HARD_STATE_RECORD_BYTES;
  }

  /** Appends a snapshot marker and fsyncs it, in order with the saves queued before it. */
  async saveSnapshot(marker: WalSnapshotMarker): Promise<void> {
    this.checkUsable();
    checkMarker(marker, 'marker');
    this.checkRoom(SNAPSHOT_RECORD_BYTES);
    const promise = this.enqueue(null, [], { index: marker.index, term: marker.term }, SNAPSHOT_RECORD_BYTES);
    if (marker.index > this.queuedLastIndex) this.queuedLastIndex = marker.index;
    return promise;
  }

  /**
   * Removes the segment files whose every entry is below `index`: all segments before the newest
   * one that starts at or before `index`. The segment holding `index`, and the one being written,
   * are kept.
   */
  async releaseTo(index: number): Promise<void> {
    this.checkUsable();
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new WalInvalidArgumentError(`wal: releaseTo index must be a non-negative integer, got ${index}`);
    }
    let keep = 0;
    for (let i = 0; i < this.segments.length; i++) if (this.segments[i]!.index <= index) keep = i;
    keep = Math.min(keep, this.segments.length - 1);
    if (keep === 0) return;
    const removed = this.segments.splice(0, keep);
    assert.ok(this.segments.length >= 1, 'the segment being written is never released');
    for (const segment of removed) await rm(join(this.dir, segment.name), { force: true });
    await syncDir(this.dir);
  }

  /**
   * Waits for queued saves, writes and syncs a deferred hard state still queued, then closes the
   * files. Later calls are refused with WalClosedError.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      this.state = State.Closing;
      this.flushAll = true;
      if (this.draining === null && this.queue.length > 0 && this.failure === null) this.draining = this.drain();
      this.closing = this.closeFiles();
    }
    return this.closing;
  }

  private async closeFiles(): Promise<void> {
    while (this.draining !== null) await this.draining;
    try {
      await this.pipeline.close();
      await this.handle.close();
    } catch (err) {
      // After a failure the handle may already be closed; the failure was reported to the saves.
      if (this.failure === null) throw err;
    } finally {
      this.state = State.Closed;
    }
  }

  /** Counters since the WAL was opened. */
  get stats(): Readonly<WalStats> {
    return { ...this.counters };
  }

  /** Names of the segment files, oldest first; the last one is being written. */
  segmentNames(): string[] {
    return this.segments.map((segment) => segment.name);
  }

  private checkUsable(): void {
    if (this.failure !== null) throw new WalFailedError(this.failure);
    if (this.state !== State.Open) throw new WalClosedError();
  }

  private checkRoom(bytes: number): void {
    if (bytes > this.options.pendingBytesMax) {
      throw new WalInvalidArgumentError(
        `wal: a batch of ${bytes} bytes is larger than pendingBytesMax (${this.options.pendingBytesMax})`,
      );
    }
    if (this.queuedBytes + bytes > this.options.pendingBytesMax) {
      throw new WalOverloadedError(
        `wal: ${this.queuedBytes} bytes are already queued; another ${bytes} would pass pendingBytesMax (${this.options.pendingBytesMax})`,
      );
    }
  }

  private enqueue(
    hardState: WalHardState | null,
    entries: readonly WalEntry[],
    marker: WalSnapshotMarker | null,
    bytes: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push(new Pending(hardState, entries, marker, bytes, true, resolve, reject));
      this.queuedBytes += bytes;
      this.queuedSyncs++;
      if (this.draining === null) this.draining = this.drain();
    });
  }

  /**
   * The write loop: one group commit per turn while a queued save waits for a sync. Deferred
   * hard states left at the end of the queue stay there for the next save (or close).
   */
  private async drain(): Promise<void> {
    let group: Pending[] = [];
    const options = this.options;
    const dsync = options.syncMode === WalSyncMode.Dsync;
    try {
      while (this.queue.length > 0 && (this.queuedSyncs > 0 || this.flushAll)) {
        if (this.offset >= options.segmentSizeBytes) await this.cut();
        group = this.takeGroup();
        const sync = this.flushAll || group.some((pending) => pending.sync);
        const groupBytes = this.encode(group);
        if (groupBytes > 0) {
          const bytes = this.writer.bytes();
          const startedMs = performance.now();
          await writeAll(this.handle, bytes, this.offset);
          if (sync && !options.unsafeNoFsync && !dsync) await this.handle.datasync();
          this.wrote(bytes.length, sync, startedMs);
        }
        this.settle(group, groupBytes);
        for (const pending of group) pending.resolve();
        group = [];
      }
    } catch (err) {
      // What reached the disk is unknown (and after a failed fsync, the page cache may lie):
      // nothing more is written.
      this.failure = err;
      const error = new WalFailedError(err);
      for (const pending of group) pending.reject(error);
      for (const pending of this.queue.splice(0)) pending.reject(error);
      this.queuedBytes = 0;
      this.queuedSyncs = 0;
    } finally {
      this.draining = null;
    }
  }

  /** Counts a group's write at the end of the log, and its sync (`sync` and fsync not off). */
  private wrote(bytes: number, sync: boolean, startedMs: number): void {
    this.offset += bytes;
    this.counters.writes++;
    this.counters.bytesWritten += bytes;
    if (sync && !this.options.unsafeNoFsync) {
      this.counters.syncs++;
      this.options.onFsync?.(performance.now() - startedMs);
    }
  }

  /** A written group leaves the queue's accounting: its bytes, its saves, its deferred records. */
  private settle(group: readonly Pending[], groupBytes: number): void {
    let saves = 0;
    for (const pending of group) if (pending.sync) saves++;
    this.queuedBytes -= groupBytes;
    this.queuedSyncs -= saves;
    this.counters.batches += saves;
    this.counters.deferredWritten += group.length - saves;
  }

  /** Takes queued saves in order up to `groupBytesMax` (always at least one). */
  private takeGroup(): Pending[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length) {
      const next = this.queue[count]!;
      if (count > 0 && bytes + next.bytes > this.options.groupBytesMax) break;
      bytes += next.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /** Encodes a group into the writer and returns its size in bytes. */
  private encode(group: readonly Pending[]): number {
    const writer = this.writer;
    writer.reset();
    let expectedBytes = 0;
    for (const pending of group) {
      for (const entry of pending.entries) writer.entry(entry);
      if (pending.entries.length > 0) this.lastIndex = pending.entries[pending.entries.length - 1]!.index;
      if (pending.hardState !== null) {
        writer.hardState(pending.hardState);
        this.hardState = { ...pending.hardState };
      }
      if (pending.marker !== null) {
        writer.snapshot(pending.marker);
        if (pending.marker.index > this.lastIndex) this.lastIndex = pending.marker.index;
      }
      expectedBytes += pending.bytes;
    }
    assert.equal(writer.byteLength, expectedBytes, 'encoded size matches the size reserved at save');
    assert.equal(this.offset % ALIGN_BYTES, 0, 'records start on an aligned offset');
    return writer.byteLength;
  }

  /**
   * Seals the current segment (trimmed to its data, fsynced) and continues in a new one that
   * begins with the metadata and the last hard state, so that it can be read on its own.
   */
  private async cut(): Promise<void> {
    await this.handle.truncate(this.offset);
    await this.handle.sync();
    await this.handle.close();
    const file = await this.pipeline.take();
    this.handle = file.handle;
    const previous = this.segments[this.segments.length - 1]!;
    const info: SegmentInfo = {
      seq: previous.seq + 1,
      index: this.lastIndex + 1,
      name: segmentName(previous.seq + 1, this.lastIndex + 1),
    };
    const writer = this.writer;
    writer.reset();
    writer.metadata(this.metadata);
    writer.hardState(this.hardState);
    await writeAll(file.handle, writer.bytes(), 0);
    await file.handle.sync();
    await rename(file.path, join(this.dir, info.name));
    await syncDir(this.dir);
    this.handle = await reopenForAppend(file.handle, join(this.dir, info.name), this.options);
    this.segments.push(info);
    this.offset = writer.byteLength;
    this.counters.segmentsCut++;
    this.pipeline.warm();
  }
}

/** Accumulates what `open` reads, segment by segment. */
class LogReader {
  private readonly from: WalSnapshotMarker;
  private readonly entries: WalEntry[];
  private metadata: Uint8Array | null;
  private hardState: WalHardState;
  private markerFound: boolean;

  constructor(from: WalSnapshotMarker) {
    this.from = from;
    this.entries = [];
    this.metadata = null;
    this.hardState = { ...EMPTY_HARD_STATE };
    this.markerFound = from.index === 0 && from.term === 0;
  }

  readSegment(bytes: Buffer, file: string, isLast: boolean): { validEnd: number; dirtyTail: boolean } {
    let records = 0;
    const result = scanSegment(bytes, file, isLast, (view, offset) => {
      const where = { file, offset };
      if (records++ === 0 && view.type !== RecordType.Metadata) {
        throw new WalCorruptError('wal: segment does not begin with a metadata record', where);
      }
      switch (view.type) {
        case RecordType.Metadata:
          this.checkMetadata(decodeMetadata(bytes, view), file);
          break;
        case RecordType.Entry:
          this.addEntry(decoded(decodeEntry(bytes, view), where), where);
          break;
        case RecordType.HardState:
          this.hardState = decoded(decodeHardState(bytes, view), where);
          break;
        case RecordType.Snapshot:
          this.checkMarker(decoded(decodeSnapshot(bytes, view), where));
          break;
      }
    });
    if (records === 0) {
      throw new WalCorruptError('wal: segment holds no valid record, not even its metadata', { file, offset: 0 });
    }
    return result;
  }

  finish(): { metadata: Uint8Array; hardState: WalHardState; entries: WalEntry[] } {
    if (!this.markerFound) {
      throw new WalSnapshotNotFoundError(
        `wal: no snapshot marker at index ${this.from.index} term ${this.from.term} in the log`,
      );
    }
    assert.ok(this.metadata !== null, 'every segment read began with metadata');
    for (let i = 0; i < this.entries.length; i++) {
      assert.equal(this.entries[i]!.index, this.from.index + 1 + i, 'entries are consecutive after the marker');
    }
    return { metadata: this.metadata, hardState: this.hardState, entries: this.entries };
  }

  private checkMetadata(metadata: Uint8Array, file: string): void {
    if (this.metadata === null) {
      this.metadata = metadata;
      return;
    }
    if (!Buffer.from(metadata).equals(Buffer.from(this.metadata))) {
      throw new WalMetadataConflictError(`wal: segment ${file} carries metadata different from earlier segments`);
    }
  }

  private addEntry(entry: WalEntry, where: { file: string; offset: number }): void {
    const entries = this.entries;
    if (entry.index <= this.from.index) {
      // At or below the snapshot: not returned, but it overwrites whatever followed it.
      entries.length = 0;
      return;
    }
    const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : this.from.index;
    if (entry.index > lastIndex + 1) {
      throw new WalCorruptError(
        `wal: entry ${entry.index} follows entry ${lastIndex}; the entries between them are missing`,
        where,
      );
    }
    entries.length = entry.index - this.from.index - 1;
    entries.push(entry);
  }

  private checkMarker(marker: WalSnapshotMarker): void {
    if (marker.index !== this.from.index) return;
    if (marker.term !== this.from.term) {
      throw new WalSnapshotMismatchError(
        `wal: the snapshot marker at index ${marker.index} has term ${marker.term}, not ${this.from.term}`,
      );
    }
    this.markerFound = true;
  }
}

function decoded<T>(value: T | string | null, where: { file: string; offset: number }): T {
  if (typeof value === 'string') throw new WalCorruptError(`wal: ${value}`, where);
  assert.ok(value !== null);
  return value;
}

function resolveOptions(opts: WalOptions | undefined): ResolvedOptions {
  const options: ResolvedOptions = {
    segmentSizeBytes: opts?.segmentSizeBytes ?? SEGMENT_SIZE_BYTES_DEFAULT,
    preallocate: opts?.preallocate ?? Preallocation.Sparse,
    groupBytesMax: opts?.groupBytesMax ?? GROUP_BYTES_MAX_DEFAULT,
    pendingBytesMax: opts?.pendingBytesMax ?? PENDING_BYTES_MAX_DEFAULT,
    unsafeNoFsync: opts?.unsafeNoFsync ?? false,
    syncMode: opts?.syncMode ?? WalSyncMode.Dsync,
    onFsync: opts?.onFsync ?? null,
  };
  if (!Number.isSafeInteger(options.segmentSizeBytes) || options.segmentSizeBytes < SEGMENT_SIZE_BYTES_MIN) {
    throw new WalInvalidArgumentError(
      `wal: segmentSizeBytes must be an integer of at least ${SEGMENT_SIZE_BYTES_MIN}, got ${options.segmentSizeBytes}`,
    );
  }
  if (!Object.values(Preallocation).includes(options.preallocate)) {
    throw new WalInvalidArgumentError(`wal: unknown preallocate mode ${String(options.preallocate)}`);
  }
  if (!Object.values(WalSyncMode).includes(options.syncMode)) {
    throw new WalInvalidArgumentError(`wal: unknown sync mode ${String(options.syncMode)}`);
  }
  for (const key of ['groupBytesMax', 'pendingBytesMax'] as const) {
    if (!Number.isSafeInteger(options[key]) || options[key] < 1) {
      throw new WalInvalidArgumentError(`wal: ${key} must be a positive integer, got ${options[key]}`);
    }
  }
  return options;
}

/**
 * The handle that appends to a segment whose header is durable: the one it was prepared with,
 * or (in `dsync` mode) the same file opened again with O_DSYNC, the first handle closed.
 */
async function reopenForAppend(handle: FileHandle, path: string, options: ResolvedOptions): Promise<FileHandle> {
  const flags = appendFlags(options);
  if ((flags & constants.O_DSYNC) === 0) return handle;
  const again = await open(path, flags);
  await handle.close();
  return again;
}

function checkMetadata(metadata: Uint8Array): void {
  if (!(metadata instanceof Uint8Array)) throw new WalInvalidArgumentError('wal: metadata must be a Uint8Array');
  if (metadata.length > METADATA_BYTES_MAX) {
    throw new WalInvalidArgumentError(
      `wal: metadata of ${metadata.length} bytes is larger than ${METADATA_BYTES_MAX} bytes`,
    );
  }
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function checkMarker(marker: WalSnapshotMarker, what: string): void {
  if (typeof marker !== 'object' || marker === null || !isIndex(marker.index) || !isIndex(marker.term)) {
    throw new WalInvalidArgumentError(`wal: ${what} must have a non-negative integer index and term`);
  }
}

function checkHardState(state: WalHardState): void {
  if (typeof state !== 'object' || !isIndex(state.term) || !isIndex(state.commit)) {
    throw new WalInvalidArgumentError('wal: hard state term and commit must be non-negative integers');
  }
  if (typeof state.vote !== 'bigint' || state.vote < 0n || state.vote > UINT64_MAX) {
    throw new WalInvalidArgumentError('wal: hard state vote must be a bigint in the unsigned 64-bit range');
  }
}

function checkEntry(entry: WalEntry, position: number): void {
  if (typeof entry !== 'object' || entry === null) {
    throw new WalInvalidArgumentError(`wal: entries[${position}] is not an entry`);
  }
  if (!isIndex(entry.index) || entry.index < 1 || !isIndex(entry.term)) {
    throw new WalInvalidArgumentError(
      `wal: entries[${position}] needs a positive integer index and a non-negative integer term`,
    );
  }
  if (!Number.isInteger(entry.type) || entry.type < 0 || entry.type > UINT32_MAX) {
    throw new WalInvalidArgumentError(`wal: entries[${position}] type must be an unsigned 32-bit integer`);
  }
  if (!(entry.data instanceof Uint8Array)) {
    throw new WalInvalidArgumentError(`wal: entries[${position}] data must be a Uint8Array`);
  }
  if (entry.data.length > PAYLOAD_BYTES_MAX - ENTRY_HEADER_BYTES) {
    throw new WalInvalidArgumentError(`wal: entries[${position}] data of ${entry.data.length} bytes is too large`);
  }
}
