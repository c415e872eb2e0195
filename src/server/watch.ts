/**
 * Watches: etcd's watchable store. Every applied write transaction is announced with
 * `notify(rev, events)`; watchers whose range matches receive the events of that revision in
 * one response, in revision order, never twice and never skipping one.
 *
 * A watcher is either synced (it has everything up to the current revision and receives live
 * events) or unsynced (it needs history from `nextRev` on: it started in the past, or its
 * stream could not keep up). Unsynced watchers catch up from the store's history in batches,
 * then become synced. A stream whose transport is full stops receiving live events: its
 * watchers fall back to unsynced and catch up once the transport drains, so memory stays
 * bounded whatever the number of watchers or the write rate.
 */
import assert from 'node:assert/strict';
import { encodeEvent, encodeResponseHeader, safeVarintSize, writeSafeVarint } from '../proto/fast/index.ts';
import {
  type Event,
  Event_EventType,
  type KeyValue,
  type ResponseHeader,
  type WatchCreateRequest,
  WatchCreateRequest_FilterType,
  type WatchResponse,
} from '../proto/index.ts';
import type { Backend } from '../storage/backend/index.ts';
import { type HistoryBatch, type MvccEvent, type MvccStore, readHistory } from '../storage/mvcc/index.ts';
import { toProtoKv } from './kv-apply.ts';

/** Events of the store's history scanned for one catch-up response of one watcher. */
export const HISTORY_BATCH_EVENTS_MAX = 1000;
/** Events read from the backend per read of a catch-up (adapted down when events are large). */
const HISTORY_READ_EVENTS_MAX = 256;
const HISTORY_READ_EVENTS_FIRST = 16;
/** History batches one catch-up pass keeps for the other watchers that need the same revisions. */
const CATCH_UP_BATCHES_MAX = 64;
/** How often unsynced watchers are caught up when nothing else triggers it. */
export const SYNC_INTERVAL_MS = 100;
/** Watchers one stream may hold (etcd has no limit; a bound keeps a client from exhausting memory). */
export const WATCHERS_PER_STREAM_MAX = 100_000;
/** What etcd allows on top of --max-request-bytes for gRPC framing (its grpcOverheadBytes). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/**
 * What a stream may hold of live events while its client is slow to read (see
 * WatchStream.hold); past it, its watchers catch up from history once the stream drains.
 */
export const WATCH_HELD_BYTES_MAX = 1024 * 1024;
/** About what a WatchResponse costs besides its events (header, watch id, flags). */
const RESPONSE_OVERHEAD_BYTES = 64;
/** etcd's default --experimental-watch-progress-notify-interval. */
export const DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;

/** What a watch stream writes to; `write` returns false when the transport is full. */
export interface WatchSink {
  write(response: WatchResponse): boolean;
  /**
   * Sends `count` responses already encoded as whole gRPC frames, back to back, in one write;
   * returns false when the transport is full. Absent: every response goes through `write`.
   */
  writeFrames?: ((frames: Uint8Array, count: number) => boolean) | undefined;
  /**
   * True while what was written waits for the client to read it (the transport is above its
   * own write mark). Live events are then held, merged per watcher, until the sink calls
   * `stream.drained()`. Absent: events are never held.
   */
  backlogged?: (() => boolean) | undefined;
  /** Asks for one call of `stream.drained()` once the transport is below its write mark. */
  waitForRoom?: (() => void) | undefined;
}

export interface WatchHubOptions {
  /**
   * The member's --max-request-bytes. A catch-up response holds about this much; a response to
   * a watcher that asked for fragments is split when it reaches this plus GRPC_OVERHEAD_BYTES
   * (the limit of etcd's watch server).
   */
  maxResponseBytes: number;
  progressNotifyIntervalMs: number;
  header(revision: number): ResponseHeader;
}

const EMPTY = new Uint8Array(0);
const SMALLEST_KEY = Uint8Array.of(0);

/** An empty key is the smallest key, `\x00`, as in etcd. */
function watchedKey(key: Uint8Array): Uint8Array {
  return key.length === 0 ? SMALLEST_KEY : key;
}
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

class Watcher {
  readonly id: bigint;
  readonly stream: WatchStream;
  readonly key: string;
  /** Exclusive end of the range; null = every key >= key; undefined = the single key. */
  readonly end: string | null | undefined;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly fragment: boolean;
  readonly progressNotify: boolean;
  /** The first revision this watcher has not received. */
  nextRev: number;
  synced = false;
  /** Events were sent since the last progress notification. */
  sentSinceProgress = false;
  /** Live events held while the stream's client is slow to read (encoded event fields), in order. */
  held: Buffer[] | null = null;
  /** The revision of the first held event: where the watcher resumes if they are dropped. */
  heldFromRev = 0;

  constructor(id: bigint, stream: WatchStream, req: WatchCreateRequest, startRev: number) {
    this.id = id;
    this.stream = stream;
    this.key = latin1(watchedKey(req.key));
    if (req.rangeEnd.length === 0) this.end = undefined;
    else if (req.rangeEnd.length === 1 && req.rangeEnd[0] === 0) this.end = null;
    else this.end = latin1(req.rangeEnd);
    this.prevKv = req.prevKv;
    this.noPut = req.filters.includes(WatchCreateRequest_FilterType.NOPUT);
    this.noDelete = req.filters.includes(WatchCreateRequest_FilterType.NODELETE);
    this.fragment = req.fragment;
    this.progressNotify = req.progressNotify;
    this.nextRev = startRev;
  }

  matches(key: string): boolean {
    if (this.end === undefined) return key === this.key;
    return key >= this.key && (this.end === null || key < this.end);
  }

  accepts(e: MvccEvent): boolean {
    return e.type === 'put' ? !this.noPut : !this.noDelete;
  }
}

export class WatchHub {
  private store: MvccStore;
  private backend: Backend;
  private readonly opts: WatchHubOptions;
  /** Synced single-key watchers by key, and synced range watchers. */
  private readonly keyWatchers = new Map<string, Set<Watcher>>();
  private readonly rangeWatchers = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  /** Running average size of the history events catch-ups read, to size the next read. */
  private historyEventBytes = 0;
  private readonly streams = new Set<WatchStream>();
  /** Streams with frames queued during the notification or catch-up pass being delivered. */
  private readonly framedStreams: WatchStream[] = [];
  /** The catch-up pass running, if any: history and encodings its watchers share. */
  private catchUp: CatchUpPass | null = null;
  private readonly syncTimer: NodeJS.Timeout;
  private readonly progressTimer: NodeJS.Timeout;

  constructor(store: MvccStore, backend: Backend, opts: WatchHubOptions) {
    this.store = store;
    this.backend = backend;
    this.opts = opts;
    this.syncTimer = setInterval(() => this.syncAll(), SYNC_INTERVAL_MS);
    this.syncTimer.unref();
    this.progressTimer = setInterval(() => this.notifyProgress(), opts.progressNotifyIntervalMs);
    this.progressTimer.unref();
  }

  /**
   * The member installed a snapshot: its store is a new one. Every watcher catches up from the
   * new store's history (or learns that it was compacted).
   */
  replaceStore(store: MvccStore, backend: Backend): void {
    this.store = store;
    this.backend = backend;
    for (const w of [...this.rangeWatchers]) this.unsync(w);
    for (const set of [...this.keyWatchers.values()]) for (const w of [...set]) this.unsync(w);
    this.syncAll();
  }

  openStream(sink: WatchSink): WatchStream {
    const stream = new WatchStream(this, sink);
    this.streams.add(stream);
    return stream;
  }

  watcherCount(): number {
    let n = 0;
    for (const s of this.streams) n += s.watchers.size;
    return n;
  }

  header(revision: number): ResponseHeader {
    return this.opts.header(revision);
  }

  currentRev(): number {
    return this.store.rev();
  }

  /** Announces the events of one applied write transaction (all of revision `rev`). */
  notify(rev: number, events: readonly MvccEvent[]): void {
    if (events.length === 0) return;
    let perWatcher: Map<Watcher, MvccEvent[]> | undefined;
    const add = (w: Watcher, e: MvccEvent) => {
      if (w.nextRev > rev || !w.accepts(e)) return;
      perWatcher ??= new Map();
      const list = perWatcher.get(w);
      if (list === undefined) perWatcher.set(w, [e]);
      else list.push(e);
    };
    for (const e of events) {
      const key = latin1(e.kv.key);
      const exact = this.keyWatchers.get(key);
      if (exact !== undefined) for (const w of exact) add(w, e);
      for (const w of this.rangeWatchers) if (w.matches(key)) add(w, e);
    }
    if (perWatcher === undefined) return;
    // Every watcher gets the same converted events and header: converted once, not per watcher.
    const shared = new SharedConversions(this.opts.header(rev));
    for (const [w, list] of perWatcher) {
      const stream = w.stream;
      if (stream.congested) {
        this.unsync(w);
        continue;
      }
      if (stream.holds(w)) {
        if (!stream.hold(w, this.eventFields(w, list, shared), rev, shared.headerField(), this.heldBytesMax())) {
          // The client is too far behind to keep its events here: the stream's watchers read
          // them from history once it drains.
          this.overflow(stream);
          this.unsync(w);
          continue;
        }
      } else {
        this.sendEvents(w, list, rev, shared);
      }
      w.nextRev = rev + 1;
    }
    this.flushFramed();
  }

  private heldBytesMax(): number {
    return Math.min(WATCH_HELD_BYTES_MAX, this.opts.maxResponseBytes);
  }

  /** The stream's held events are dropped: its held watchers catch up from history once it drains. */
  private overflow(stream: WatchStream): void {
    for (const w of [...stream.heldWatchers]) this.unsync(w);
    stream.congested = true;
    stream.sink.waitForRoom?.();
  }

  private flushFramed(): void {
    const framed = this.framedStreams;
    for (let i = 0; i < framed.length; i++) framed[i]!.flushFrames();
    framed.length = 0;
  }

  /**
   * Runs catch-ups as one pass: watchers that need the same revisions (a stream's watchers
   * that fell behind together) share the history read and the encoded events, and their
   * responses leave together at the end.
   */
  private catchingUp(run: (pass: CatchUpPass) => void): void {
    if (this.catchUp !== null) {
      run(this.catchUp);
      return;
    }
    const pass = new CatchUpPass(this.backend, this.store.rev(), (rev) => this.opts.header(rev));
    this.catchUp = pass;
    try {
      run(pass);
    } finally {
      this.catchUp = null;
      this.flushFramed();
    }
  }

  // -------------------------------------------------------------------------------------------

  /** Adds a watcher; it starts unsynced when it starts in the past, and catches up at once. */
  add(w: Watcher): void {
    if (w.nextRev <= this.store.rev()) {
      this.unsynced.add(w);
      this.catchingUp((pass) => this.syncWatcher(w, pass));
    } else {
      this.markSynced(w);
    }
  }

  remove(w: Watcher): void {
    w.stream.dropHeld(w);
    this.unsynced.delete(w);
    this.removeSynced(w);
  }

  private markSynced(w: Watcher): void {
    this.unsynced.delete(w);
    w.synced = true;
    if (w.end === undefined) {
      let set = this.keyWatchers.get(w.key);
      if (set === undefined) {
        set = new Set();
        this.keyWatchers.set(w.key, set);
      }
      set.add(w);
    } else {
      this.rangeWatchers.add(w);
    }
  }

  private removeSynced(w: Watcher): void {
    if (!w.synced) return;
    w.synced = false;
    if (w.end === undefined) {
      const set = this.keyWatchers.get(w.key);
      set?.delete(w);
      if (set?.size === 0) this.keyWatchers.delete(w.key);
    } else {
      this.rangeWatchers.delete(w);
    }
  }

  private unsync(w: Watcher): void {
    // Held events were never sent: the watcher reads them again from history.
    if (w.held !== null) {
      w.nextRev = w.heldFromRev;
      w.stream.dropHeld(w);
    }
    this.removeSynced(w);
    this.unsynced.add(w);
  }

  /** Catches up the unsynced watchers of streams that can take more. */
  syncAll(): void {
    if (this.unsynced.size === 0) return;
    this.catchingUp((pass) => {
      for (const w of [...this.unsynced]) {
        if (!w.stream.congested) this.syncWatcher(w, pass);
      }
    });
  }

  syncStream(stream: WatchStream): void {
    this.catchingUp((pass) => {
      for (const w of stream.watchers.values()) {
        if (this.unsynced.has(w) && !stream.congested) this.syncWatcher(w, pass);
      }
    });
  }

  /** Replays history to one watcher until it is current or its stream is full. */
  private syncWatcher(w: Watcher, pass: CatchUpPass): void {
    const compactRev = this.store.compactRev();
    if (w.nextRev < compactRev) {
      // History is gone: tell the watcher and cancel it (etcd's compacted watch response).
      w.stream.removeWatcher(w.id);
      w.stream.flushFrames();
      w.stream.sink.write({
        header: this.opts.header(0),
        watchId: w.id,
        created: false,
        canceled: true,
        compactRevision: BigInt(compactRev),
        cancelReason: '',
        fragment: false,
        events: [],
      });
      return;
    }
    for (;;) {
      const current = this.store.rev();
      if (w.nextRev > current) {
        this.markSynced(w);
        return;
      }
      if (w.stream.congested) return;
      const { events, nextRev } = this.readCatchUp(w, current, pass);
      assert.ok(nextRev > w.nextRev, 'a catch-up step makes progress');
      if (events.length > 0) this.sendEvents(w, events, nextRev - 1, pass.shared(nextRev - 1));
      w.nextRev = nextRev;
      // More to read: what was queued goes out now, so that a full stream stops the loop.
      if (nextRev <= current) w.stream.flushFrames();
    }
  }

  /**
   * The next catch-up response of `w`: its events of whole revisions from `w.nextRev` on, until
   * HISTORY_BATCH_EVENTS_MAX events were scanned or the response holds about `maxResponseBytes`
   * (a single revision may hold more: it is never split). The history is read in small steps,
   * sized from the events seen so far, so a history of large values is never read at once.
   */
  private readCatchUp(w: Watcher, current: number, pass: CatchUpPass): { events: MvccEvent[]; nextRev: number } {
    const budgetBytes = this.opts.maxResponseBytes;
    const events: MvccEvent[] = [];
    let bytes = 0;
    let scanned = 0;
    let nextRev = w.nextRev;
    while (nextRev <= current && scanned < HISTORY_BATCH_EVENTS_MAX && bytes < budgetBytes) {
      const averageBytes = this.historyEventBytes;
      const step =
        averageBytes === 0
          ? HISTORY_READ_EVENTS_FIRST
          : Math.max(1, Math.min(HISTORY_READ_EVENTS_MAX, Math.floor((budgetBytes - bytes) / averageBytes)));
      const batch = pass.history(nextRev, current, Math.min(step, HISTORY_BATCH_EVENTS_MAX - scanned));
      assert.ok(batch.nextRev > nextRev, 'a history read makes progress');
      let readBytes = 0;
      for (const e of batch.events) {
        const size = mvccEventBytes(e);
        readBytes += size;
        if (w.matches(latin1(e.kv.key)) && w.accepts(e)) {
          events.push(e);
          // With its previous value an event costs about twice as much.
          bytes += w.prevKv ? 2 * size : size;
        }
      }
      if (batch.events.length > 0) {
        const average = readBytes / batch.events.length;
        this.historyEventBytes = averageBytes === 0 ? average : (3 * averageBytes + average) / 4;
      }
      scanned += batch.events.length;
      nextRev = batch.nextRev;
    }
    return { events, nextRev };
  }

  /** The events as `w` receives them (with or without previous values), encoded once per notification. */
  private eventFields(w: Watcher, events: readonly MvccEvent[], shared: SharedConversions): Buffer[] {
    return events.map((e) => shared.eventField(e, w.prevKv, () => this.toProtoEvent(e, w.prevKv)));
  }

  private sendEvents(w: Watcher, events: readonly MvccEvent[], rev: number, shared?: SharedConversions): void {
    const stream = w.stream;
    const framed = shared !== undefined && stream.sink.writeFrames !== undefined && w.id <= MAX_FRAMED_ID;
    if (framed && (events.length === 1 || !w.fragment)) {
      // The usual case: framed from the shared encodings, sent with the stream's other frames
      // of this notification or catch-up pass in one write (no fragments to cut).
      w.sentSinceProgress = true;
      const fields = joinFields(this.eventFields(w, events, shared));
      if (stream.queueFrame(Number(w.id), shared.headerField(), fields)) this.framedStreams.push(stream);
      return;
    }
    const protoEvents =
      shared === undefined
        ? events.map((e) => this.toProtoEvent(e, w.prevKv))
        : events.map((e) => shared.event(e, w.prevKv, () => this.toProtoEvent(e, w.prevKv)));
    w.sentSinceProgress = true;
    const limit = this.opts.maxResponseBytes + GRPC_OVERHEAD_BYTES;
    if (!w.fragment || protoEvents.length < 2 || RESPONSE_OVERHEAD_BYTES + approximateSize(protoEvents) < limit) {
      w.stream.send(this.eventsResponse(w.id, rev, protoEvents, false, shared?.header));
      return;
    }
    // etcd's sendFragments: events are added while the response stays below the limit (each
    // fragment holds at least one); all but the last fragment carry fragment = true.
    let start = 0;
    while (start < protoEvents.length) {
      let size = RESPONSE_OVERHEAD_BYTES;
      let end = start;
      while (end < protoEvents.length) {
        size += eventSize(protoEvents[end]!);
        if (end > start && size >= limit) break;
        end++;
      }
      w.stream.send(
        this.eventsResponse(w.id, rev, protoEvents.slice(start, end), end < protoEvents.length, shared?.header),
      );
      start = end;
    }
  }

  private eventsResponse(
    watchId: bigint,
    rev: number,
    events: Event[],
    fragment: boolean,
    header: ResponseHeader = this.opts.header(rev),
  ): WatchResponse {
    return {
      header,
      watchId,
      created: false,
      canceled: false,
      compactRevision: 0n,
      cancelReason: '',
      fragment,
      events,
    };
  }

  private toProtoEvent(e: MvccEvent, withPrev: boolean): Event {
    const kv = toProtoKv(e.kv);
    let prevKv: KeyValue | undefined;
    if (withPrev) {
      try {
        prevKv = this.store.range(e.kv.key, EMPTY, { rev: e.kv.modRevision - 1 }).kvs.map((p) => toProtoKv(p))[0];
      } catch {
        prevKv = undefined; // compacted: etcd sends the event without its previous value
      }
    }
    return { type: e.type === 'put' ? Event_EventType.PUT : Event_EventType.DELETE, kv, prevKv };
  }

  private notifyProgress(): void {
    const rev = this.store.rev();
    for (const stream of this.streams) {
      for (const w of stream.watchers.values()) {
        if (!w.progressNotify || !w.synced) continue;
        if (!w.sentSinceProgress) stream.send(this.eventsResponse(w.id, rev, [], false));
        w.sentSinceProgress = false;
      }
    }
  }

  closeStream(stream: WatchStream): void {
    for (const w of stream.watchers.values()) this.remove(w);
    stream.watchers.clear();
    this.streams.delete(stream);
  }

  close(): void {
    clearInterval(this.syncTimer);
    clearInterval(this.progressTimer);
    for (const s of [...this.streams]) this.closeStream(s);
  }

  newWatcher(id: bigint, stream: WatchStream, req: WatchCreateRequest, startRev: number): Watcher {
    return new Watcher(id, stream, req, startRev);
  }
}

/**
 * What the watchers caught up in one pass share: history batches by first revision (read
 * while the store is at `rev`; a batch ends on a whole revision, so any watcher starting there
 * may use it) and the encodings of each response revision's header and events.
 */
class CatchUpPass {
  private readonly backend: Backend;
  private readonly rev: number;
  private readonly header: (rev: number) => ResponseHeader;
  private readonly batches = new Map<number, HistoryBatch>();
  private readonly conversions = new Map<number, SharedConversions>();

  constructor(backend: Backend, rev: number, header: (rev: number) => ResponseHeader) {
    this.backend = backend;
    this.rev = rev;
    this.header = header;
  }

  /** readHistory(fromRev, toRev, maxEvents), read once per first revision in this pass. */
  history(fromRev: number, toRev: number, maxEvents: number): HistoryBatch {
    if (toRev !== this.rev) return readHistory(this.backend, fromRev, toRev, maxEvents);
    let batch = this.batches.get(fromRev);
    if (batch === undefined) {
      batch = readHistory(this.backend, fromRev, toRev, maxEvents);
      if (this.batches.size >= CATCH_UP_BATCHES_MAX) this.batches.clear();
      this.batches.set(fromRev, batch);
    }
    return batch;
  }

  /** The conversions of responses at revision `rev`. */
  shared(rev: number): SharedConversions {
    let shared = this.conversions.get(rev);
    if (shared === undefined) {
      if (this.conversions.size >= CATCH_UP_BATCHES_MAX) this.conversions.clear();
      shared = new SharedConversions(this.header(rev));
      this.conversions.set(rev, shared);
    }
    return shared;
  }
}

/**
 * The conversions of one notification, shared by the watchers it reaches: the header and each
 * event as sent without and with its previous value. Responses are encoded as they are sent, so
 * sharing these read-only objects between them is safe.
 */
class SharedConversions {
  readonly header: ResponseHeader;
  private readonly plain = new Map<MvccEvent, Event>();
  private readonly withPrev = new Map<MvccEvent, Event>();
  private header1: Buffer | null = null;
  private readonly plainField = new Map<MvccEvent, Buffer>();
  private readonly withPrevField = new Map<MvccEvent, Buffer>();

  constructor(header: ResponseHeader) {
    this.header = header;
  }

  /** The header as a WatchResponse's field 1 (tag, length, message), encoded once. */
  headerField(): Buffer {
    this.header1 ??= lengthDelimited(TAG_HEADER, encodeResponseHeader(this.header));
    return this.header1;
  }

  /** An event as a WatchResponse's field 11 (tag, length, message), encoded once. */
  eventField(e: MvccEvent, prevKv: boolean, convert: () => Event): Buffer {
    const cache = prevKv ? this.withPrevField : this.plainField;
    let field = cache.get(e);
    if (field === undefined) {
      field = lengthDelimited(TAG_EVENTS, encodeEvent(this.event(e, prevKv, convert)));
      cache.set(e, field);
    }
    return field;
  }

  event(e: MvccEvent, prevKv: boolean, convert: () => Event): Event {
    const cache = prevKv ? this.withPrev : this.plain;
    let converted = cache.get(e);
    if (converted === undefined) {
      converted = convert();
      cache.set(e, converted);
    }
    return converted;
  }
}

/** WatchResponse field tags (field number << 3 | wire type): header, watch_id, events. */
const TAG_HEADER = 10;
const TAG_WATCH_ID = 16;
const TAG_EVENTS = 90;
/** gRPC frame header: flag byte and 32-bit length (as src/api/grpc/framing.ts; the member does not import the API layer). */
const FRAME_HEADER_BYTES = 5;
/** Watch ids framed directly go through a number (larger ones, never allocated here, do not). */
const MAX_FRAMED_ID = BigInt(Number.MAX_SAFE_INTEGER);

/** The size of { header, watchId, events: [event] } from its encoded fields (watch id 0 is left out). */
function frameMessageBytes(headerField: Buffer, watchId: number, eventField: Buffer): number {
  return headerField.length + (watchId === 0 ? 0 : 1 + safeVarintSize(watchId)) + eventField.length;
}

/** Encoded fields back to back (a single one as it is, not copied). */
function joinFields(fields: readonly Buffer[]): Buffer {
  return fields.length === 1 ? (fields[0] as Buffer) : Buffer.concat(fields);
}

/** A length-delimited protobuf field: tag, length, bytes. */
function lengthDelimited(tag: number, message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + safeVarintSize(message.length) + message.length);
  out[0] = tag;
  out.set(message, writeSafeVarint(out, 1, message.length));
  return out;
}

function eventSize(e: Event): number {
  return (
    32 +
    (e.kv?.key.length ?? 0) +
    (e.kv?.value.length ?? 0) +
    (e.prevKv ? 32 + e.prevKv.key.length + e.prevKv.value.length : 0)
  );
}

/** About what an event costs in a response. */
function mvccEventBytes(e: MvccEvent): number {
  return 32 + e.kv.key.length + e.kv.value.length;
}

function approximateSize(events: readonly Event[]): number {
  let n = 0;
  for (const e of events) n += eventSize(e);
  return n;
}

/** One gRPC Watch stream: its watchers and its transport state. */
export class WatchStream {
  readonly hub: WatchHub;
  readonly sink: WatchSink;
  readonly watchers = new Map<bigint, Watcher>();
  /** The sink's `backlogged`, when its events can be held (it also frames and waits for room); else null. */
  private readonly backlogged: (() => boolean) | null;
  /** The transport refused more: live events for this stream's watchers go through history. */
  congested = false;
  private nextWatchId = 0n;
  private closed = false;

  constructor(hub: WatchHub, sink: WatchSink) {
    this.hub = hub;
    this.sink = sink;
    this.backlogged =
      sink.writeFrames !== undefined && sink.waitForRoom !== undefined ? (sink.backlogged ?? null) : null;
  }

  /** Watch ids and fields of the frames queued during a notification (see queueFrame). */
  private readonly frameIds: number[] = [];
  private readonly frameEvents: Buffer[] = [];
  private frameHeader: Buffer | null = null;

  /** Synced watchers with live events held (see hold), in the order they were first held. */
  readonly heldWatchers = new Set<Watcher>();
  private heldBytes = 0;
  /** The header of the latest revision held: the merged responses carry it. */
  private heldHeader: Buffer | null = null;

  send(response: WatchResponse): void {
    if (this.closed) return;
    // Responses leave in the order they were made: held events and queued frames first.
    this.releaseHeld();
    if (this.frameIds.length > 0) this.flushFrames();
    if (!this.sink.write(response)) this.congested = true;
  }

  /**
   * Queues the response of one watcher to one event, already encoded but for its watch id:
   * the same bytes as the codec gives for { header, watchId, events: [event] }. Returns true
   * when it is the first one queued since the last flushFrames.
   */
  queueFrame(watchId: number, headerField: Buffer, eventField: Buffer): boolean {
    // Frames queued together share one header: another revision's frames go out first.
    if (this.frameHeader !== null && this.frameHeader !== headerField) this.flushFrames();
    this.frameHeader = headerField;
    this.frameIds.push(watchId);
    this.frameEvents.push(eventField);
    return this.frameIds.length === 1;
  }

  /** Sends the queued frames in one write. */
  flushFrames(): void {
    const ids = this.frameIds;
    const events = this.frameEvents;
    const header = this.frameHeader;
    const count = ids.length;
    if (count === 0 || header === null) return;
    let total = 0;
    for (let i = 0; i < count; i++) total += FRAME_HEADER_BYTES + frameMessageBytes(header, ids[i]!, events[i]!);
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const id = ids[i]!;
      const event = events[i]!;
      out[at] = 0;
      out.writeUInt32BE(frameMessageBytes(header, id, event), at + 1);
      at += FRAME_HEADER_BYTES;
      out.set(header, at);
      at += header.length;
      if (id !== 0) {
        out[at++] = TAG_WATCH_ID;
        at = writeSafeVarint(out, at, id);
      }
      out.set(event, at);
      at += event.length;
    }
    ids.length = 0;
    events.length = 0;
    this.frameHeader = null;
    if (this.closed) return;
    if (!this.sink.writeFrames!(out, count)) this.congested = true;
  }

  /**
   * Whether `w`'s live events are held rather than sent: it has events held already, or the
   * client leaves what was sent unread. A slow client then gets one response per watcher with
   * all the events it missed, as a catch-up gives, instead of one response per event; etcd
   * merges the same way (a watcher whose stream is full waits as a "victim").
   */
  holds(w: Watcher): boolean {
    if (w.held !== null) return true;
    return this.backlogged !== null && !w.fragment && w.id <= MAX_FRAMED_ID && this.backlogged();
  }

  /**
   * Holds the events of revision `rev` for `w` (encoded WatchResponse event fields); false,
   * holding nothing, when the stream would hold more than `maxBytes`.
   */
  hold(w: Watcher, fields: readonly Buffer[], rev: number, headerField: Buffer, maxBytes: number): boolean {
    let bytes = 0;
    for (const f of fields) bytes += f.length;
    if (this.heldBytes + bytes > maxBytes) return false;
    // The first event held: the sink tells when the client has read enough to send them.
    if (this.heldWatchers.size === 0) this.sink.waitForRoom?.();
    if (w.held === null) {
      w.held = [];
      w.heldFromRev = rev;
      this.heldWatchers.add(w);
    }
    for (const f of fields) w.held.push(f);
    w.sentSinceProgress = true;
    this.heldBytes += bytes;
    this.heldHeader = headerField;
    return true;
  }

  /** Forgets what is held for `w` (it was removed, or reads it again from history). */
  dropHeld(w: Watcher): void {
    const held = w.held;
    if (held === null) return;
    for (const f of held) this.heldBytes -= f.length;
    w.held = null;
    this.heldWatchers.delete(w);
    if (this.heldWatchers.size === 0) this.heldHeader = null;
  }

  /** Sends what is held: one response per watcher with all its held events, in one write. */
  releaseHeld(): void {
    const header = this.heldHeader;
    if (this.heldWatchers.size === 0 || header === null) return;
    for (const w of this.heldWatchers) {
      const held = w.held as Buffer[];
      w.held = null;
      this.queueFrame(Number(w.id), header, joinFields(held));
    }
    this.heldWatchers.clear();
    this.heldBytes = 0;
    this.heldHeader = null;
    this.flushFrames();
  }

  /** The transport has room again. */
  drained(): void {
    this.congested = false;
    this.releaseHeld();
    this.hub.syncStream(this);
  }

  /** etcd's create: answers `created`, or `created` + `canceled` with the reason on error. */
  create(req: WatchCreateRequest): void {
    const rev = this.hub.currentRev();
    // Watch id 0 asks the server to choose one (clientv3.AutoWatchID).
    let id = req.watchId;
    let reason = '';
    // etcd checks the range before it allocates an id: a refused watch uses none.
    const fromKey = req.rangeEnd.length === 1 && req.rangeEnd[0] === 0;
    if (req.rangeEnd.length > 0 && !fromKey && Buffer.compare(watchedKey(req.key), req.rangeEnd) >= 0) {
      reason = 'mvcc: watcher range is empty';
    } else if (id <= 0n) id = this.allocateId();
    else if (this.watchers.has(id)) reason = 'mvcc: duplicate watch ID provided on the WatchStream';
    if (reason === '' && this.watchers.size >= WATCHERS_PER_STREAM_MAX)
      reason = 'etcdserver: too many watchers on one stream';
    const createdResponse: WatchResponse = {
      header: this.hub.header(rev),
      watchId: reason === '' ? id : -1n,
      created: true,
      canceled: reason !== '',
      compactRevision: 0n,
      cancelReason: reason,
      fragment: false,
      events: [],
    };
    if (reason !== '') {
      this.send(createdResponse);
      return;
    }
    const startRev = req.startRevision > 0n ? Number(req.startRevision) : rev + 1;
    const w = this.hub.newWatcher(id, this, req, startRev);
    this.watchers.set(id, w);
    // The created response goes first; the watcher then catches up from its start revision.
    this.send(createdResponse);
    this.hub.add(w);
  }

  cancel(watchId: bigint): void {
    // Events held for the watcher happened before the cancel: they go out first.
    if (this.watchers.has(watchId)) this.releaseHeld();
    if (!this.removeWatcher(watchId)) return;
    this.send({
      header: this.hub.header(this.hub.currentRev()),
      watchId,
      created: false,
      canceled: true,
      compactRevision: 0n,
      cancelReason: '',
      fragment: false,
      events: [],
    });
  }

  /** A progress request: the current revision, not tied to a watcher (watch id -1). */
  progress(): void {
    // Watchers of this stream still catching up get their events first, so that the progress
    // revision never runs ahead of events still owed on the stream.
    this.hub.syncStream(this);
    this.send({
      header: this.hub.header(this.hub.currentRev()),
      watchId: -1n,
      created: false,
      canceled: false,
      compactRevision: 0n,
      cancelReason: '',
      fragment: false,
      events: [],
    });
  }

  removeWatcher(watchId: bigint): boolean {
    const w = this.watchers.get(watchId);
    if (w === undefined) return false;
    this.watchers.delete(watchId);
    this.hub.remove(w);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.closeStream(this);
  }

  private allocateId(): bigint {
    while (this.watchers.has(this.nextWatchId)) this.nextWatchId++;
    return this.nextWatchId++;
  }
}
