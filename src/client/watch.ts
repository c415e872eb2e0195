/**
 * Watches. Every watcher of a client shares one bidirectional Watch stream. When the stream
 * breaks (the member died, the connection dropped, the member lost its leader), a new stream is
 * opened on the next healthy endpoint and every watcher is created again from the revision after
 * the last one it delivered: no event is lost and none is delivered twice. A watcher whose next
 * revision was compacted away fails with `CompactedError` (with the compaction revision).
 *
 * The server answers create requests in the order it receives them; as etcd's Go client does,
 * one create is in flight at a time, so each `created` answer belongs to the oldest pending one.
 */
import { EventEmitter } from 'node:events';
import {
  Event_EventType,
  type Event as PbEvent,
  REQUIRE_LEADER_METADATA,
  type WatchCreateRequest,
  WatchCreateRequest_FilterType,
  type WatchRequest,
  type WatchResponse,
  WatchService,
} from '../proto/index.ts';
import { type Bytes, keyRange, type RangeOptions, toInt64 } from './bytes.ts';
import { GrpcCallError, Status } from './channel.ts';
import type { ClientCore } from './core.ts';
import type { Endpoint } from './endpoints.ts';
import { ClientClosedError, CompactedError, EtcdError, fromGrpcError } from './errors.ts';
import { header, type KeyValue, keyValue, type ResponseHeader } from './kv.ts';

export interface WatchOptions extends RangeOptions {
  /** First revision to report (inclusive); default: changes after the watch is created. */
  startRevision?: bigint | number;
  /** Include each key's previous state in its events. */
  prevKv?: boolean;
  /** Leave out put events. */
  noPut?: boolean;
  /** Leave out delete events. */
  noDelete?: boolean;
  /** Ask the server for periodic progress notifications while nothing changes. */
  progressNotify?: boolean;
  /** Aborting closes the watcher. */
  signal?: AbortSignal;
}

export const EventType = { PUT: 'put', DELETE: 'delete' } as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export interface WatchEvent {
  type: EventType;
  /** For a delete, the key with its deletion's revision as modRevision and an empty value. */
  kv: KeyValue;
  prevKv: KeyValue | undefined;
}

/** What one watch response delivered. */
export interface WatchBatch {
  header: ResponseHeader;
  /** Events in revision order; empty for a progress notification. */
  events: WatchEvent[];
  /** A progress notification: every change up to `header.revision` was delivered. */
  progressNotify: boolean;
}

/** Batches an iterating consumer may lag behind before the watcher fails. */
export const WATCH_BUFFER_BATCHES_MAX = 10_000;
/** Watchers one client may have open at once. */
export const WATCHERS_MAX = 10_000;
const RECONNECT_BACKOFF_MS_BASE = 50;
const RECONNECT_BACKOFF_MS_MAX = 2_000;
/** etcd's watch id for responses that belong to no single watcher. */
const INVALID_WATCH_ID = -1n;

/** An iterating consumer fell too far behind; the watcher stopped rather than lose events silently. */
export class WatchOverflowError extends EtcdError {
  override name = 'WatchOverflowError';
  constructor() {
    super(
      'ETCD_WATCH_OVERFLOW',
      Status.RESOURCE_EXHAUSTED,
      `watch consumer fell more than ${WATCH_BUFFER_BATCHES_MAX} batches behind`,
    );
  }
}

const WatcherState = { PENDING: 0, CREATING: 1, ACTIVE: 2, CLOSED: 3 } as const;
type WatcherState = (typeof WatcherState)[keyof typeof WatcherState];

/**
 * One watch: an async iterable of batches (`for await (const batch of watcher)`), and an event
 * emitter: 'batch' (WatchBatch), 'put' and 'delete' (WatchEvent), 'progress' (WatchBatch),
 * 'created' (the server accepted it, also after each resume), 'error' (EtcdError, then it is
 * closed), 'close'. An iteration that fails throws the error; a watcher used through callbacks
 * reports a failure only through 'error' (and 'close'), so listen for it.
 */
export class Watcher extends EventEmitter implements AsyncIterable<WatchBatch> {
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  private readonly manager: WatchManager;
  private readonly request: WatchCreateRequest;
  private readonly buffering: boolean;
  /** The revision to resume from: one past the last revision delivered; 0n: not known yet. */
  private next: bigint;
  /** @internal */ state: WatcherState = WatcherState.PENDING;
  /** @internal */ watchId = INVALID_WATCH_ID;
  private readonly buffer: WatchBatch[] = [];
  private waiter: { resolve: (r: IteratorResult<WatchBatch>) => void; reject: (e: unknown) => void } | undefined;
  private failure: EtcdError | undefined = undefined;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (err: unknown) => void;
  private createdOnce = false;

  /** @internal */
  constructor(manager: WatchManager, key: Bytes, options: WatchOptions, buffering: boolean) {
    super();
    const range = keyRange(key, options);
    this.key = range.key;
    this.rangeEnd = range.rangeEnd;
    this.manager = manager;
    this.buffering = buffering;
    this.next = options.startRevision === undefined ? 0n : toInt64(options.startRevision, 'startRevision');
    if (this.next < 0n) throw new RangeError('startRevision must not be negative');
    const filters: WatchCreateRequest_FilterType[] = [];
    if (options.noPut === true) filters.push(WatchCreateRequest_FilterType.NOPUT);
    if (options.noDelete === true) filters.push(WatchCreateRequest_FilterType.NODELETE);
    this.request = {
      key: range.key,
      rangeEnd: range.rangeEnd,
      startRevision: 0n,
      progressNotify: options.progressNotify === true,
      filters,
      prevKv: options.prevKv === true,
      watchId: 0n,
      fragment: false,
    };
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // A watcher that fails before anyone awaited ready() must not be an unhandled rejection.
    this.readyPromise.catch(() => {});
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) queueMicrotask(() => void this.close());
      else signal.addEventListener('abort', () => void this.close(), { once: true });
    }
  }

  /** Resolves once the server created the watch (so later changes are certain to be seen). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** The revision the watcher would resume from: one past the last revision it delivered (0n: not known yet). */
  get nextRevision(): bigint {
    return this.next;
  }

  get closed(): boolean {
    return this.state === WatcherState.CLOSED;
  }

  /** @internal The create request for (re)creating the watch from where it stopped. */
  createRequest(): WatchRequest {
    return { requestUnion: { $case: 'createRequest', value: { ...this.request, startRevision: this.next } } };
  }

  /** @internal */
  onCreated(response: WatchResponse): void {
    this.state = WatcherState.ACTIVE;
    this.watchId = response.watchId;
    // Created without a start revision: the watch begins after the store's revision at creation.
    if (this.next === 0n) this.next = (response.header?.revision ?? 0n) + 1n;
    if (!this.createdOnce) {
      this.createdOnce = true;
      this.resolveReady();
    }
    this.emit('created');
  }

  /** @internal Events and progress for this watcher. */
  onResponse(response: WatchResponse): void {
    if (this.state === WatcherState.CLOSED) return;
    const h = header(response.header);
    const events: WatchEvent[] = [];
    for (const ev of response.events) {
      const e = watchEvent(ev);
      // After a resume the server starts at `next`; anything older was delivered already.
      if (e.kv.modRevision < this.next) continue;
      events.push(e);
    }
    const progressNotify = response.events.length === 0;
    if (!progressNotify && events.length === 0) return;
    if (events.length > 0) this.next = events[events.length - 1]!.kv.modRevision + 1n;
    else if (response.watchId !== INVALID_WATCH_ID && h.revision + 1n > this.next) {
      // A progress notification for this watcher is sent only when it is in sync: every change
      // up to the header's revision was delivered. etcd 3.4's broadcast answer to a progress
      // request (watch id -1) carries no such promise and does not move the resume point.
      this.next = h.revision + 1n;
    }
    this.deliver({ header: h, events, progressNotify });
  }

  private deliver(batch: WatchBatch): void {
    if (this.buffering) {
      if (this.waiter !== undefined) {
        const waiter = this.waiter;
        this.waiter = undefined;
        waiter.resolve({ value: batch, done: false });
      } else if (this.buffer.length >= WATCH_BUFFER_BATCHES_MAX) {
        this.fail(new WatchOverflowError());
        return;
      } else {
        this.buffer.push(batch);
      }
    }
    this.emit('batch', batch);
    if (batch.progressNotify) this.emit('progress', batch);
    for (const event of batch.events) this.emit(event.type, event);
  }

  /** @internal The watcher cannot go on. */
  fail(error: EtcdError): void {
    if (this.state === WatcherState.CLOSED) return;
    this.failure = error;
    this.rejectReady(error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.finish();
  }

  /** Stops the watch. Batches already buffered can still be iterated. */
  async close(): Promise<void> {
    if (this.state === WatcherState.CLOSED) return;
    this.rejectReady(new ClientClosedError('watcher closed'));
    this.finish();
  }

  private finish(): void {
    const wasActive = this.state === WatcherState.ACTIVE;
    this.state = WatcherState.CLOSED;
    this.manager.remove(this, wasActive);
    if (this.waiter !== undefined) {
      const waiter = this.waiter;
      this.waiter = undefined;
      if (this.failure !== undefined) waiter.reject(this.failure);
      else waiter.resolve({ value: undefined, done: true });
    }
    this.emit('close');
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    if (!this.buffering) throw new TypeError('a watcher created with a callback is not iterable');
    return {
      next: () => {
        const batch = this.buffer.shift();
        if (batch !== undefined) return Promise.resolve({ value: batch, done: false });
        if (this.failure !== undefined) return Promise.reject(this.failure);
        if (this.state === WatcherState.CLOSED) return Promise.resolve({ value: undefined, done: true });
        if (this.waiter !== undefined) return Promise.reject(new TypeError('one iteration of a watcher at a time'));
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function watchEvent(ev: PbEvent): WatchEvent {
  const kv = ev.kv === undefined ? emptyKeyValue() : keyValue(ev.kv);
  return {
    type: ev.type === Event_EventType.DELETE ? EventType.DELETE : EventType.PUT,
    kv,
    prevKv: ev.prevKv === undefined ? undefined : keyValue(ev.prevKv),
  };
}

function emptyKeyValue(): KeyValue {
  const empty = Buffer.alloc(0);
  return { key: empty, value: empty, createRevision: 0n, modRevision: 0n, version: 0n, lease: 0n };
}

/** The client's watch stream and its watchers. */
export class WatchManager {
  private readonly core: ClientCore;
  private readonly watchers = new Set<Watcher>();
  private readonly byId = new Map<bigint, Watcher>();
  /** Watchers waiting to be created on the current stream, oldest first. */
  private readonly pending: Watcher[] = [];
  private creating: Watcher | undefined = undefined;
  private stream: { write(r: WatchRequest): boolean; cancel(): void } | undefined = undefined;
  private endpoint: Endpoint | undefined = undefined;
  private opening = false;
  private reconnectTimer: NodeJS.Timeout | undefined = undefined;
  private failures = 0;
  /** Increases with every stream, so answers of an old stream are told apart. */
  private generation = 0;

  constructor(core: ClientCore) {
    this.core = core;
  }

  watch(key: Bytes, options: WatchOptions, onBatch: ((batch: WatchBatch) => void) | undefined): Watcher {
    if (this.core.closed) throw new ClientClosedError();
    if (this.watchers.size >= WATCHERS_MAX) throw new RangeError(`at most ${WATCHERS_MAX} watchers per client`);
    const watcher = new Watcher(this, key, options, onBatch === undefined);
    if (onBatch !== undefined) watcher.on('batch', onBatch);
    this.watchers.add(watcher);
    this.pending.push(watcher);
    if (this.stream === undefined) this.open();
    else this.sendNextCreate();
    return watcher;
  }

  /** Asks the server for a progress notification (answered to every watcher of the stream). */
  requestProgress(): void {
    this.stream?.write({ requestUnion: { $case: 'progressRequest', value: {} } });
  }

  /** @internal A watcher closed or failed. */
  remove(watcher: Watcher, wasActive: boolean): void {
    this.watchers.delete(watcher);
    const i = this.pending.indexOf(watcher);
    if (i >= 0) this.pending.splice(i, 1);
    if (wasActive && this.byId.get(watcher.watchId) === watcher) {
      this.byId.delete(watcher.watchId);
      this.stream?.write({ requestUnion: { $case: 'cancelRequest', value: { watchId: watcher.watchId } } });
    }
    if (this.watchers.size === 0) this.shutdownStream();
  }

  /** Fails every watcher (the client is closing). */
  closeAll(): void {
    for (const w of [...this.watchers]) w.fail(new ClientClosedError());
    this.shutdownStream();
  }

  private shutdownStream(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    this.endpoint = undefined;
    this.creating = undefined;
    this.byId.clear();
    this.generation++;
    stream?.cancel();
  }

  private open(): void {
    if (this.opening || this.stream !== undefined || this.core.closed || this.watchers.size === 0) return;
    this.opening = true;
    const generation = ++this.generation;
    this.core
      .openStream(
        WatchService.Watch,
        {
          onMessage: (response) => {
            if (generation === this.generation) this.onResponse(response);
          },
          onClose: (error) => {
            if (generation === this.generation) this.onStreamClosed(error);
          },
        },
        REQUIRE_LEADER_METADATA,
      )
      .then(
        (opened) => {
          this.opening = false;
          if (generation !== this.generation) {
            opened.stream.cancel();
            return;
          }
          this.stream = opened.stream;
          this.endpoint = opened.endpoint;
          // Every live watcher is created again on the new stream, in the order they were made.
          this.creating = undefined;
          this.byId.clear();
          this.pending.length = 0;
          for (const w of this.watchers) {
            w.state = WatcherState.PENDING;
            this.pending.push(w);
          }
          this.sendNextCreate();
        },
        (err: unknown) => {
          this.opening = false;
          if (generation !== this.generation) return;
          const error = fromGrpcError(err);
          if (error instanceof ClientClosedError || this.core.closed) {
            this.closeAll();
            return;
          }
          // The token could not be had (wrong password...): nothing will change by retrying.
          if (error.grpcCode !== Status.UNAVAILABLE && error.grpcCode !== Status.DEADLINE_EXCEEDED) {
            for (const w of [...this.watchers]) w.fail(error);
            return;
          }
          this.scheduleReconnect();
        },
      );
  }

  private sendNextCreate(): void {
    if (this.stream === undefined || this.creating !== undefined) return;
    const next = this.pending.shift();
    if (next === undefined) return;
    this.creating = next;
    next.state = WatcherState.CREATING;
    this.stream.write(next.createRequest());
  }

  private onResponse(response: WatchResponse): void {
    if (this.endpoint !== undefined) this.core.streamSucceeded(this.endpoint);
    this.failures = 0;
    if (response.created) {
      const watcher = this.creating;
      this.creating = undefined;
      if (watcher !== undefined && !watcher.closed) {
        if (response.canceled || response.watchId === INVALID_WATCH_ID) {
          watcher.fail(cancelError(response));
        } else {
          this.byId.set(response.watchId, watcher);
          watcher.onCreated(response);
        }
      } else if (watcher !== undefined && !response.canceled) {
        // Closed while being created: cancel it on the server too.
        this.stream?.write({ requestUnion: { $case: 'cancelRequest', value: { watchId: response.watchId } } });
      }
      this.sendNextCreate();
      return;
    }
    if (response.watchId === INVALID_WATCH_ID) {
      for (const w of this.byId.values()) w.onResponse(response);
      return;
    }
    const watcher = this.byId.get(response.watchId);
    if (watcher === undefined) return;
    if (response.canceled) {
      this.byId.delete(response.watchId);
      watcher.fail(cancelError(response));
      return;
    }
    watcher.onResponse(response);
  }

  private onStreamClosed(error: GrpcCallError | undefined): void {
    const endpoint = this.endpoint;
    this.stream = undefined;
    this.endpoint = undefined;
    this.creating = undefined;
    this.byId.clear();
    this.generation++;
    if (this.core.closed) {
      this.closeAll();
      return;
    }
    if (this.watchers.size === 0) return;
    if (error !== undefined && endpoint !== undefined) this.core.streamFailed(endpoint, error);
    if (error !== undefined && isPermanent(error)) {
      const failure = fromGrpcError(error);
      for (const w of [...this.watchers]) w.fail(failure);
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined || this.core.closed) return;
    const delayMs = Math.min(RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_BASE * 2 ** Math.min(this.failures, 8));
    this.failures++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open();
    }, delayMs);
  }
}

/** Stream failures that reopening will not cure. */
function isPermanent(error: GrpcCallError): boolean {
  return (
    error.code === Status.UNIMPLEMENTED ||
    error.code === Status.PERMISSION_DENIED ||
    error.code === Status.INVALID_ARGUMENT ||
    (error.code === Status.UNAUTHENTICATED && error.details !== 'etcdserver: invalid auth token')
  );
}

/** Why the server canceled a watch: compaction (typed, with the revision) or its reason. */
function cancelError(response: WatchResponse): EtcdError {
  if (response.compactRevision > 0n) {
    return new CompactedError(Status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted', {
      compactRevision: response.compactRevision,
    });
  }
  const reason = response.cancelReason === '' ? 'watch canceled by the server' : response.cancelReason;
  return fromGrpcError(new GrpcCallError(Status.CANCELLED, reason));
}
