/**
 * An etcd member: the raft loop, the MVCC store it applies to, linearizable reads, the
 * waiters of proposed requests, alarms and automatic compaction.
 *
 * The life of a write: the API hands a validated request (and its wire bytes) to `put`/`txn`/
 * ...; it is proposed with a fresh request id; the raft loop persists it (group commit) and,
 * once committed, `applyEntries` applies it to the store in one write transaction, records the
 * applied index in the same backend transaction, and resolves the waiter with the response.
 */
import { join } from 'node:path';
import {
  type AlarmMember,
  AlarmType,
  type CompactionRequest,
  CompactionRequest as CompactionRequestCodec,
  type CompactionResponse,
  type DeleteRangeRequest,
  DeleteRangeRequest as DeleteRangeRequestCodec,
  type DeleteRangeResponse,
  Event_EventType,
  type HashKVResponse,
  type LeaseGrantRequest,
  LeaseGrantRequest as LeaseGrantRequestCodec,
  type LeaseGrantResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeRequest,
  LeaseRevokeRequest as LeaseRevokeRequestCodec,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  type PutRequest,
  PutRequest as PutRequestCodec,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
  type TxnRequest,
  TxnRequest as TxnRequestCodec,
  type TxnResponse,
} from '../proto/index.ts';
import {
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  ErrProposalDropped,
  type Message,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from '../raft/index.ts';
import { Backend, Bucket, putConsistentIndex, readConsistentIndex } from '../storage/backend/index.ts';
import { MvccStore } from '../storage/mvcc/index.ts';
import { VERSION } from '../version.ts';
import { ServerError, ServerErrorCode } from './errors.ts';
import { clusterIdFromMemberIds, memberIdFromPeerUrls } from './ids.ts';
import {
  applyDeleteRange,
  applyPut,
  applyRange,
  applyReadOnlyTxn,
  applyTxn,
  checkDeleteRange,
  checkPut,
  checkRange,
  checkTxn,
  isTxnReadOnly,
  isTxnSerializable,
} from './kv-apply.ts';
import { LEASE_REVOKE_PER_SEC, Lessor, MAX_LEASE_TTL_SEC } from './lessor.ts';
import { RaftLoop } from './raft-loop.ts';
import { decodeRaftRequest, encodeRaftRequest, RequestIdGenerator, RequestKind } from './raft-request.ts';
import { DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS, WatchHub } from './watch.ts';

export interface MemberOptions {
  name: string;
  walDir: string;
  snapDir: string;
  /** Peer URLs of this member as advertised (they determine the member id). */
  initialAdvertisePeerUrls: readonly string[];
  advertiseClientUrls: readonly string[];
  /** name -> peer URLs of every member of a new cluster. */
  initialCluster: ReadonlyMap<string, readonly string[]>;
  initialClusterToken: string;
  heartbeatMs: number;
  electionMs: number;
  snapshotCount: number;
  snapshotCatchUpEntries: number;
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  autoCompactionMode: 'periodic' | 'revision' | '';
  /** periodic: milliseconds of history to keep; revision: number of revisions to keep. 0 = off. */
  autoCompactionRetention: number;
  progressNotifyIntervalMs?: number;
  log: MemberLog;
}

export interface MemberLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** etcd's default quota when --quota-backend-bytes is 0. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
/** How often the leader looks for expired leases (etcd: every 500 ms). */
const LEASE_CHECK_INTERVAL_MS = 500;
/** An expired lease whose revoke did not apply within this long is proposed again. */
const LEASE_REVOKE_RETRY_MS = 5000;
/** A request waits this long for its proposal to apply before timing out (etcd: 5 s + 2 x election). */
const REQUEST_TIMEOUT_BASE_MS = 5000;

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
  /** The decoded request when this member proposed it, so the apply need not decode again. */
  request: unknown;
  timer: NodeJS.Timeout;
}

interface ReadWaiter {
  resolve(): void;
  reject(err: Error): void;
}

export interface MemberInfo {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export class EtcdServer {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly name: string;
  private readonly opts: MemberOptions;
  private readonly backend: Backend;
  readonly store: MvccStore;
  private raft!: RaftLoop;
  private readonly ids: RequestIdGenerator;
  private readonly waiters = new Map<bigint, Waiter>();
  private appliedIndex: number;
  private snapshotIndex: number;
  private term = 0;
  private leaderId = 0n;
  private readonly alarms = new Set<number>();
  readonly lessor: Lessor;
  readonly watchHub: WatchHub;
  private leaseTimer: NodeJS.Timeout | undefined = undefined;
  /** Leases whose revoke this leader proposed, with when, so an expiry is proposed once. */
  private readonly revoking = new Map<bigint, number>();
  /** Cancels of in-process waits for changes, failed when the member stops. */
  private readonly waiting = new Set<() => void>();
  readonly members = new Map<bigint, MemberInfo>();

  // Linearizable reads: waiting for the next read index; one read index in flight at a time.
  private pendingReads: ReadWaiter[] = [];
  private inflightReads: ReadWaiter[] = [];
  private inflightReadCtx = 0n;
  private readCounter = 0n;
  /** Read waiters whose read index is known, waiting for the applied index to reach it. */
  private readonly readsAwaitingApply: { index: number; waiters: ReadWaiter[] }[] = [];

  private compactionTimer: NodeJS.Timeout | undefined = undefined;
  private readonly revisionSamples: { atMs: number; rev: number }[] = [];
  private snapshotInProgress = false;
  private stopped = false;
  private fatalError: Error | undefined = undefined;
  onFatal: (err: Error) => void = () => {};

  private constructor(
    opts: MemberOptions,
    backend: Backend,
    store: MvccStore,
    lessor: Lessor,
    memberId: bigint,
    clusterId: bigint,
  ) {
    this.opts = opts;
    this.name = opts.name;
    this.backend = backend;
    this.store = store;
    this.lessor = lessor;
    this.watchHub = new WatchHub(store, backend, {
      maxResponseBytes: opts.maxRequestBytes,
      progressNotifyIntervalMs: opts.progressNotifyIntervalMs ?? DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS,
      header: (rev) => this.header(rev),
    });
    this.memberId = memberId;
    this.clusterId = clusterId;
    this.ids = new RequestIdGenerator(memberId, Date.now());
    const applied = readConsistentIndex(backend);
    this.appliedIndex = applied.index;
    this.term = applied.term;
    this.snapshotIndex = this.appliedIndex;
  }

  static async start(opts: MemberOptions): Promise<EtcdServer> {
    const { walDir, snapDir } = opts;
    const backend = Backend.open({ dir: join(snapDir, 'db') });
    // etcd's minimum lease TTL: 1.5 election timeouts, in whole seconds.
    const electionTicks = Math.round(opts.electionMs / opts.heartbeatMs);
    const minTtlSec = Math.ceil((Math.floor((3 * electionTicks) / 2) * opts.heartbeatMs) / 1000);
    const lessor = new Lessor(backend, { minTtlSec });
    const store = MvccStore.open(backend, { onRestoreLease: (key, lease) => lessor.restoreKey(key, lease) });
    const memberId = memberIdFromPeerUrls(opts.initialAdvertisePeerUrls, opts.initialClusterToken);
    const peers = [...opts.initialCluster.entries()].map(([name, urls]) => ({
      name,
      urls,
      id: memberIdFromPeerUrls(urls, opts.initialClusterToken),
    }));
    if (!peers.some((p) => p.id === memberId)) {
      throw new ServerError(
        ServerErrorCode.InvalidArgument,
        `couldn't find local name "${opts.name}" in the initial cluster configuration`,
      );
    }
    const clusterId = clusterIdFromMemberIds(peers.map((p) => p.id));
    const server = new EtcdServer(opts, backend, store, lessor, memberId, clusterId);
    for (const p of peers) {
      server.members.set(p.id, {
        id: p.id,
        name: p.name,
        peerUrls: [...p.urls],
        clientUrls: p.id === memberId ? [...opts.advertiseClientUrls] : [],
        isLearner: false,
      });
    }
    for (const key of backend.range(Bucket.alarm, new Uint8Array(0), null).keys) server.alarms.add(key[0] ?? 0);
    const metadata = Buffer.alloc(16);
    metadata.writeBigUInt64BE(memberId, 0);
    metadata.writeBigUInt64BE(clusterId, 8);
    const { loop, restored } = await RaftLoop.open(
      {
        memberId,
        walDir,
        snapDir,
        heartbeatMs: opts.heartbeatMs,
        electionMs: opts.electionMs,
        walMetadata: metadata,
        bootstrapPeers: peers.map((p) => ({ id: p.id })),
        appliedIndex: server.appliedIndex,
      },
      {
        apply: (entries, confState) => server.applyEntries(entries, confState),
        applySnapshot: (snap) => server.applySnapshot(snap),
        readStates: (states) => server.onReadStates(states),
        send: (messages) => server.send(messages),
        softState: (state) => server.onSoftState(state),
        afterReady: () => server.afterReady(),
      },
    );
    if (!restored.isNew && restored.metadata.length >= 16) {
      const storedMember = Buffer.from(restored.metadata).readBigUInt64BE(0);
      if (storedMember !== memberId) {
        await loop.close();
        await backend.close();
        throw new ServerError(
          ServerErrorCode.InvalidArgument,
          `the data dir belongs to member ${storedMember.toString(16)}, not ${memberId.toString(16)} (check --initial-advertise-peer-urls and --initial-cluster-token)`,
        );
      }
    }
    if (restored.snapshot !== undefined) server.snapshotIndex = restored.snapshot.metadata.index;
    server.raft = loop;
    loop.onFatal = (err) => server.fail(err);
    server.startAutoCompaction();
    server.leaseTimer = setInterval(() => server.revokeExpiredLeases(), LEASE_CHECK_INTERVAL_MS);
    server.leaseTimer.unref();
    opts.log.info(
      {
        'member-id': memberId.toString(16),
        'cluster-id': clusterId.toString(16),
        'applied-index': server.appliedIndex,
      },
      restored.isNew ? 'started a new member' : 'restarted member',
    );
    return server;
  }

  // -------------------------------------------------------------------------------------------
  // Headers and status

  header(revision: number = this.store.rev()): ResponseHeader {
    return {
      clusterId: this.clusterId,
      memberId: this.memberId,
      revision: BigInt(revision),
      raftTerm: BigInt(this.term),
    };
  }

  private fillHeader(h: ResponseHeader | undefined, revision?: bigint): ResponseHeader {
    const out = h ?? this.header();
    out.clusterId = this.clusterId;
    out.memberId = this.memberId;
    out.raftTerm = BigInt(this.term);
    if (revision !== undefined) out.revision = revision;
    return out;
  }

  leader(): bigint {
    return this.leaderId;
  }

  hasLeader(): boolean {
    return this.leaderId !== 0n;
  }

  alarmList(): AlarmMember[] {
    return [...this.alarms].map((alarm) => ({ memberID: this.memberId, alarm: alarm as AlarmType }));
  }

  status(): StatusResponse {
    const size = this.backend.size();
    const st = this.raft.node.status();
    return {
      header: this.header(),
      version: VERSION.server,
      dbSize: BigInt(size.sizeBytes),
      leader: this.leaderId,
      raftIndex: BigInt(st.hardState.commit),
      raftTerm: BigInt(st.hardState.term),
      raftAppliedIndex: BigInt(this.appliedIndex),
      errors: [...this.alarms].map((a) => `memberID:${this.memberId} alarm:${alarmName(a)} `),
      dbSizeInUse: BigInt(size.sizeInUseBytes),
      isLearner: false,
    };
  }

  hashKV(revision: number): HashKVResponse {
    const h = this.store.hashKV(revision);
    return {
      header: this.header(),
      hash: h.hash,
      compactRevision: BigInt(h.compactRevision),
      hashRevision: BigInt(h.revision),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Waiting for changes (locks and elections)

  /** Resolves when `key` is deleted at or after revision `fromRev`. */
  waitDeleted(key: Uint8Array, fromRev: number, signal?: AbortSignal): Promise<void> {
    return this.waitEvent(key, new Uint8Array(0), fromRev, (type) => type === Event_EventType.DELETE, signal);
  }

  /** Resolves at the first change in [key, end) at or after revision `fromRev`. */
  waitChange(key: Uint8Array, end: Uint8Array, fromRev: number, signal?: AbortSignal): Promise<void> {
    return this.waitEvent(key, end, fromRev, () => true, signal);
  }

  private waitEvent(
    key: Uint8Array,
    end: Uint8Array,
    fromRev: number,
    wanted: (type: number) => boolean,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.stopped) {
        reject(new ServerError(ServerErrorCode.Stopped));
        return;
      }
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        this.waiting.delete(cancel);
        queueMicrotask(() => stream.close());
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = () => finish(new ServerError(ServerErrorCode.Stopped, 'etcdserver: request cancelled'));
      const cancel = () => finish(new ServerError(ServerErrorCode.Stopped));
      const stream = this.watchHub.openStream({
        write: (resp) => {
          if (resp.compactRevision > 0n) finish();
          else if (resp.events.some((e) => wanted(e.type))) finish();
          return true;
        },
      });
      this.waiting.add(cancel);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) {
        onAbort();
        return;
      }
      stream.create({
        key,
        rangeEnd: end,
        startRevision: BigInt(fromRev),
        progressNotify: false,
        filters: [],
        prevKv: false,
        watchId: 0n,
        fragment: false,
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Leases

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    if (req.TTL > BigInt(MAX_LEASE_TTL_SEC)) throw new ServerError(ServerErrorCode.LeaseTTLTooLarge);
    // etcd chooses a positive 63-bit id from the request id generator when the client gives none.
    const request = req.ID === 0n ? { ...req, ID: this.ids.id() & 0x7fff_ffff_ffff_ffffn } : req;
    this.checkQuota(0);
    return this.propose<LeaseGrantResponse>(
      RequestKind.LeaseGrant,
      request,
      LeaseGrantRequestCodec.encode(request).finish(),
    );
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.propose<LeaseRevokeResponse>(
      RequestKind.LeaseRevoke,
      req,
      LeaseRevokeRequestCodec.encode(req).finish(),
    );
  }

  /** A keep-alive: the lease's TTL, or 0 when it does not exist (etcd answers so, no error). */
  leaseRenew(id: bigint): bigint {
    if (this.stopped) throw new ServerError(ServerErrorCode.Stopped);
    if (!this.raft.isLeader()) throw new ServerError(ServerErrorCode.NotLeader);
    return BigInt(this.lessor.renew(id));
  }

  leaseTimeToLive(req: LeaseTimeToLiveRequest): LeaseTimeToLiveResponse {
    const lease = this.lessor.get(req.ID);
    if (lease === undefined) {
      return { header: this.header(), ID: req.ID, TTL: -1n, grantedTTL: 0n, keys: [] };
    }
    return {
      header: this.header(),
      ID: req.ID,
      TTL: BigInt(this.lessor.remaining(lease)),
      grantedTTL: BigInt(lease.ttlSec),
      keys: req.keys ? [...lease.keys].sort().map((k) => Buffer.from(k, 'latin1')) : [],
    };
  }

  leaseLeases(): LeaseLeasesResponse {
    return { header: this.header(), leases: this.lessor.ids().map((ID) => ({ ID })) };
  }

  /** Leader only: proposes the revoke of expired leases, at etcd's rate. */
  private revokeExpiredLeases(): void {
    if (this.stopped || !this.raft.isLeader()) return;
    const now = Date.now();
    for (const [id, at] of this.revoking) if (now - at > LEASE_REVOKE_RETRY_MS) this.revoking.delete(id);
    const budget = Math.ceil((LEASE_REVOKE_PER_SEC * LEASE_CHECK_INTERVAL_MS) / 1000);
    for (const id of this.lessor.expired(budget + this.revoking.size)) {
      if (this.revoking.has(id)) continue;
      this.revoking.set(id, now);
      this.leaseRevoke({ ID: id }).catch((err: unknown) => {
        if (!(err instanceof ServerError && err.code === ServerErrorCode.LeaseNotFound)) {
          this.opts.log.warn({ lease: id.toString(16), err: String(err) }, 'failed to revoke an expired lease');
        }
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // KV

  async range(req: RangeRequest): Promise<RangeResponse> {
    checkRange(req);
    if (!req.serializable) await this.linearizableReadNotify();
    const resp = this.translateStoreErrors(() => applyRange(this.store, req));
    this.fillHeader(resp.header);
    return resp;
  }

  async put(req: PutRequest, wire?: Uint8Array): Promise<PutResponse> {
    checkPut(req);
    this.checkQuota(req.value.length + req.key.length);
    return this.propose<PutResponse>(RequestKind.Put, req, wire ?? PutRequestCodec.encode(req).finish());
  }

  async deleteRange(req: DeleteRangeRequest, wire?: Uint8Array): Promise<DeleteRangeResponse> {
    checkDeleteRange(req);
    return this.propose<DeleteRangeResponse>(
      RequestKind.DeleteRange,
      req,
      wire ?? DeleteRangeRequestCodec.encode(req).finish(),
    );
  }

  async txn(req: TxnRequest, wire?: Uint8Array): Promise<TxnResponse> {
    checkTxn(req, this.opts.maxTxnOps);
    if (isTxnReadOnly(req)) {
      if (!isTxnSerializable(req)) await this.linearizableReadNotify();
      const resp = this.translateStoreErrors(() => applyReadOnlyTxn(this.store, req));
      this.fillHeader(resp.header);
      return resp;
    }
    this.checkQuota(wire?.length ?? 0);
    return this.propose<TxnResponse>(RequestKind.Txn, req, wire ?? TxnRequestCodec.encode(req).finish());
  }

  async compact(req: CompactionRequest, wire?: Uint8Array): Promise<CompactionResponse> {
    const resp = await this.propose<CompactionResponse & { done?: Promise<void> }>(
      RequestKind.Compaction,
      req,
      wire ?? CompactionRequestCodec.encode(req).finish(),
    );
    if (req.physical && resp.done !== undefined) await resp.done;
    return { header: resp.header };
  }

  // -------------------------------------------------------------------------------------------
  // Proposals and their waiters

  private propose<T>(kind: RequestKind, request: unknown, wire: Uint8Array): Promise<T> {
    if (this.stopped) return Promise.reject(new ServerError(ServerErrorCode.Stopped));
    if (wire.length > this.opts.maxRequestBytes) {
      return Promise.reject(new ServerError(ServerErrorCode.RequestTooLarge));
    }
    if (!this.hasLeader()) return Promise.reject(new ServerError(ServerErrorCode.NoLeader));
    const id = this.ids.id();
    const data = encodeRaftRequest(kind, id, wire);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (this.waiters.delete(id)) reject(new ServerError(ServerErrorCode.Timeout));
        },
        REQUEST_TIMEOUT_BASE_MS + 2 * this.opts.electionMs,
      );
      this.waiters.set(id, { resolve: resolve as (v: unknown) => void, reject, request, timer });
      try {
        this.raft.node.propose(data);
      } catch (err) {
        clearTimeout(timer);
        this.waiters.delete(id);
        reject(err instanceof ErrProposalDropped ? new ServerError(ServerErrorCode.NoLeader) : err);
        return;
      }
      this.raft.schedule();
    });
  }

  private settle(id: bigint, result: unknown, error: Error | undefined): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    this.waiters.delete(id);
    clearTimeout(w.timer);
    if (error !== undefined) w.reject(error);
    else w.resolve(result);
  }

  // -------------------------------------------------------------------------------------------
  // Apply

  private applyEntries(entries: readonly Entry[], confState: () => ConfState): void {
    let last = this.appliedIndex;
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue; // already in the backend before a restart
      if (e.type === EntryType.ConfChange) {
        this.raft.node.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.length > 0) {
        this.applyRequest(e);
      }
      last = e.index;
      if (e.term > this.term) this.term = e.term;
    }
    if (last === this.appliedIndex) return;
    this.appliedIndex = last;
    // Same backend transaction as the data just applied: written synchronously after it.
    putConsistentIndex(this.backend, this.appliedIndex, this.term);
    void confState;
  }

  private applyRequest(e: Entry): void {
    let decoded: ReturnType<typeof decodeRaftRequest>;
    try {
      decoded = decodeRaftRequest(e.data);
    } catch (err) {
      this.opts.log.error({ index: e.index, err: String(err) }, 'skipping an entry that does not decode');
      return;
    }
    const { kind, id, payload } = decoded;
    const local = this.waiters.get(id)?.request;
    try {
      const result = this.applyKind(kind, local, payload);
      this.settle(id, result, undefined);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (!(error instanceof ServerError)) {
        this.opts.log.error({ index: e.index, kind, err: error.message }, 'apply failed');
      }
      this.settle(id, undefined, error);
    }
  }

  private applyKind(kind: number, local: unknown, payload: Uint8Array): unknown {
    switch (kind) {
      case RequestKind.Put: {
        const req = (local as PutRequest | undefined) ?? PutRequestCodec.decode(payload);
        if (this.alarms.has(AlarmType.NOSPACE)) throw new ServerError(ServerErrorCode.NoSpace);
        return this.write((w) => applyPut(w, req, this.lessor));
      }
      case RequestKind.DeleteRange: {
        const req = (local as DeleteRangeRequest | undefined) ?? DeleteRangeRequestCodec.decode(payload);
        return this.write((w) => applyDeleteRange(w, req));
      }
      case RequestKind.Txn: {
        const req = (local as TxnRequest | undefined) ?? TxnRequestCodec.decode(payload);
        if (this.alarms.has(AlarmType.NOSPACE) && !isTxnReadOnly(req) && txnHasPut(req)) {
          throw new ServerError(ServerErrorCode.NoSpace);
        }
        return this.write((w) => applyTxn(w, req, this.lessor));
      }
      case RequestKind.Compaction: {
        const req = (local as CompactionRequest | undefined) ?? CompactionRequestCodec.decode(payload);
        const { done } = this.translateStoreErrors(() => this.store.compact(Number(req.revision)));
        done.catch((err: unknown) => this.opts.log.error({ err: String(err) }, 'compaction failed'));
        return { header: this.header(), done };
      }
      case RequestKind.LeaseGrant: {
        const req = (local as LeaseGrantRequest | undefined) ?? LeaseGrantRequestCodec.decode(payload);
        if (this.alarms.has(AlarmType.NOSPACE)) throw new ServerError(ServerErrorCode.NoSpace);
        const lease = this.lessor.grant(req.ID, Number(req.TTL));
        return { header: this.header(), ID: lease.id, TTL: BigInt(lease.ttlSec), error: '' };
      }
      case RequestKind.LeaseRevoke: {
        const req = (local as LeaseRevokeRequest | undefined) ?? LeaseRevokeRequestCodec.decode(payload);
        const keys = this.lessor.revoke(req.ID);
        this.revoking.delete(req.ID);
        // Every key of the lease goes in one revision.
        return this.write((w) => {
          for (const key of keys) w.deleteRange(key, new Uint8Array(0), { prevKv: false });
          return { header: this.header() };
        });
      }
      case RequestKind.Alarm: {
        const alarm = payload[1] ?? 0;
        if (payload[0] === 1) {
          this.alarms.add(alarm);
          this.backend.put(Bucket.alarm, Uint8Array.of(alarm), u64(this.memberId));
        } else {
          this.alarms.delete(alarm);
          this.backend.delete(Bucket.alarm, Uint8Array.of(alarm));
        }
        return { header: this.header() };
      }
      default:
        throw new ServerError(ServerErrorCode.InvalidArgument, `unknown request kind ${kind}`);
    }
  }

  /** Runs `fn` in one store write transaction and gives every header the resulting revision. */
  private write<T extends { header?: ResponseHeader | undefined }>(fn: (w: ReturnType<MvccStore['write']>) => T): T {
    const w = this.store.write();
    let resp: T;
    try {
      resp = this.translateStoreErrors(() => fn(w));
    } catch (err) {
      // Nothing was written: every check runs before the first write of a request.
      w.end();
      throw err;
    }
    const { rev, events } = w.end();
    if (events.length > 0) {
      this.lessor.observe(events);
      this.watchHub.notify(rev, events);
    }
    resp.header = this.fillHeader(resp.header, BigInt(rev));
    return resp;
  }

  private translateStoreErrors<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toServerError(err);
    }
  }

  private applySnapshot(snapshot: Snapshot): void {
    // A single member never receives a snapshot; a follower installing one needs the backend
    // transfer of the cluster transport.
    throw new Error(`snapshot install at index ${snapshot.metadata.index} needs the peer transport`);
  }

  // -------------------------------------------------------------------------------------------
  // Linearizable reads: one ReadIndex round serves every read that arrived before it started.

  linearizableReadNotify(): Promise<void> {
    if (this.stopped) return Promise.reject(new ServerError(ServerErrorCode.Stopped));
    return new Promise<void>((resolve, reject) => {
      this.pendingReads.push({ resolve, reject });
      this.startReadIndex();
    });
  }

  private startReadIndex(): void {
    if (this.inflightReads.length > 0 || this.pendingReads.length === 0) return;
    if (!this.hasLeader()) {
      const failed = this.pendingReads;
      this.pendingReads = [];
      for (const w of failed) w.reject(new ServerError(ServerErrorCode.NoLeader));
      return;
    }
    this.inflightReads = this.pendingReads;
    this.pendingReads = [];
    this.readCounter += 1n;
    this.inflightReadCtx = this.readCounter;
    const ctx = Buffer.allocUnsafe(8);
    ctx.writeBigUInt64BE(this.readCounter);
    try {
      this.raft.node.readIndex(ctx);
    } catch {
      const failed = this.inflightReads;
      this.inflightReads = [];
      for (const w of failed) w.reject(new ServerError(ServerErrorCode.NoLeader));
      return;
    }
    this.raft.schedule();
  }

  private onReadStates(states: readonly ReadState[]): void {
    for (const rs of states) {
      if (rs.requestCtx.length !== 8) continue;
      const ctx = Buffer.from(rs.requestCtx.buffer, rs.requestCtx.byteOffset, 8).readBigUInt64BE(0);
      if (ctx !== this.inflightReadCtx || this.inflightReads.length === 0) continue;
      const waiters = this.inflightReads;
      this.inflightReads = [];
      if (this.appliedIndex >= rs.index) for (const w of waiters) w.resolve();
      else this.readsAwaitingApply.push({ index: rs.index, waiters });
    }
    this.startReadIndex();
  }

  private afterReady(): void {
    while (this.readsAwaitingApply.length > 0 && this.readsAwaitingApply[0]!.index <= this.appliedIndex) {
      for (const w of this.readsAwaitingApply.shift()!.waiters) w.resolve();
    }
    this.maybeSnapshot();
  }

  private onSoftState(state: SoftState): void {
    const previous = this.leaderId;
    this.leaderId = state.lead;
    if (state.lead !== previous) {
      this.opts.log.info(
        { leader: state.lead.toString(16), term: this.raft?.node.status().hardState.term },
        state.lead === 0n ? 'lost leader' : 'elected leader',
      );
    }
    if (state.raftState === StateType.Leader && !this.lessor.isPrimary()) this.lessor.promote();
    else if (state.raftState !== StateType.Leader && this.lessor.isPrimary()) this.lessor.demote();
    if (state.raftState === StateType.Leader || state.lead !== 0n) {
      this.term = Math.max(this.term, this.raft?.node.status().hardState.term ?? 0);
    }
    if (state.lead === 0n) {
      // Reads waiting on a read index from a leader that is gone are failed; clients retry.
      const failed = this.inflightReads;
      this.inflightReads = [];
      for (const w of failed) w.reject(new ServerError(ServerErrorCode.LeaderChanged));
    } else {
      this.startReadIndex();
    }
  }

  private send(messages: readonly Message[]): void {
    // A single member has no one to talk to; the cluster transport replaces this.
    void messages;
  }

  // -------------------------------------------------------------------------------------------
  // Log compaction

  private maybeSnapshot(): void {
    if (this.snapshotInProgress || this.appliedIndex - this.snapshotIndex < this.opts.snapshotCount) return;
    this.snapshotInProgress = true;
    const index = this.appliedIndex;
    void (async () => {
      try {
        // The backend is the state machine of the snapshot: it must be durable before the WAL
        // before it is released.
        this.backend.forceCommit();
        await this.backend.sync();
        await this.raft.snapshot(index, new Uint8Array(0), this.opts.snapshotCatchUpEntries);
        this.snapshotIndex = index;
        this.opts.log.info({ index }, 'saved snapshot');
      } catch (err) {
        this.opts.log.error({ err: String(err) }, 'failed to save snapshot');
      } finally {
        this.snapshotInProgress = false;
      }
    })();
  }

  // -------------------------------------------------------------------------------------------
  // Quota and alarms

  private checkQuota(costBytes: number): void {
    if (this.alarms.has(AlarmType.NOSPACE)) throw new ServerError(ServerErrorCode.NoSpace);
    const quota = this.opts.quotaBackendBytes > 0 ? this.opts.quotaBackendBytes : DEFAULT_QUOTA_BYTES;
    if (this.backend.size().sizeBytes + costBytes <= quota) return;
    void this.proposeAlarm(true, AlarmType.NOSPACE).catch((err: unknown) =>
      this.opts.log.warn({ err: String(err) }, 'failed to raise the NOSPACE alarm'),
    );
    throw new ServerError(ServerErrorCode.NoSpace);
  }

  proposeAlarm(activate: boolean, alarm: number): Promise<unknown> {
    if (activate && this.alarms.has(alarm)) return Promise.resolve();
    return this.propose(RequestKind.Alarm, undefined, Uint8Array.of(activate ? 1 : 0, alarm));
  }

  // -------------------------------------------------------------------------------------------
  // Auto compaction

  private startAutoCompaction(): void {
    const { autoCompactionMode: mode, autoCompactionRetention: retention } = this.opts;
    if (mode === '' || retention <= 0) return;
    // periodic: sample the revision every tenth of the retention (at most hourly) and compact to
    // the revision seen one retention ago; revision: every 5 minutes keep `retention` revisions.
    const intervalMs = mode === 'periodic' ? Math.max(100, Math.min(retention, 3_600_000) / 10) : 300_000;
    this.compactionTimer = setInterval(() => {
      let target = 0;
      if (mode === 'periodic') {
        const now = Date.now();
        this.revisionSamples.push({ atMs: now, rev: this.store.rev() });
        while (this.revisionSamples.length > 0 && now - this.revisionSamples[0]!.atMs >= retention) {
          target = this.revisionSamples.shift()!.rev;
        }
      } else {
        target = this.store.rev() - retention;
      }
      if (target <= 0 || target <= this.store.compactRev() || !this.raft.isLeader()) return;
      this.compact({ revision: BigInt(target), physical: false }).then(
        () => this.opts.log.info({ revision: target }, 'completed auto compaction'),
        (err: unknown) => this.opts.log.warn({ revision: target, err: String(err) }, 'auto compaction failed'),
      );
    }, intervalMs);
    this.compactionTimer.unref();
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown

  private fail(err: Error): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = err;
    this.opts.log.error({ err: err.message }, 'raft loop failed; stopping the member');
    this.onFatal(err);
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.compactionTimer !== undefined) clearInterval(this.compactionTimer);
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    for (const cancel of [...this.waiting]) cancel();
    this.watchHub.close();
    await this.raft.idle().catch(() => {});
    await this.raft.close();
    for (const [id] of this.waiters) this.settle(id, undefined, new ServerError(ServerErrorCode.Stopped));
    for (const w of [...this.pendingReads, ...this.inflightReads]) w.reject(new ServerError(ServerErrorCode.Stopped));
    for (const r of this.readsAwaitingApply)
      for (const w of r.waiters) w.reject(new ServerError(ServerErrorCode.Stopped));
    await this.backend.close();
  }
}

function txnHasPut(r: TxnRequest): boolean {
  const any = (ops: TxnRequest['success']) =>
    ops.some(
      (op) => op.request?.$case === 'requestPut' || (op.request?.$case === 'requestTxn' && txnHasPut(op.request.value)),
    );
  return any(r.success) || any(r.failure);
}

function alarmName(alarm: number): string {
  return alarm === AlarmType.NOSPACE ? 'NOSPACE' : alarm === AlarmType.CORRUPT ? 'CORRUPT' : 'NONE';
}

function u64(n: number | bigint): Uint8Array {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Maps storage errors (compacted, future revision) to the server's catalogue. */
function toServerError(err: unknown): unknown {
  if (err instanceof ServerError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_MVCC_COMPACTED' || code === 'MVCC_COMPACTED') return new ServerError(ServerErrorCode.Compacted);
  if (code === 'ERR_MVCC_FUTURE_REV' || code === 'MVCC_FUTURE_REV') return new ServerError(ServerErrorCode.FutureRev);
  return err;
}
