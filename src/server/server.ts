/**
 * An etcd member: the raft loop, the MVCC store it applies to, linearizable reads, the
 * waiters of proposed requests, alarms and automatic compaction.
 *
 * The life of a write: the API hands a validated request (and its wire bytes) to `put`/`txn`/
 * ...; it is proposed with a fresh request id; the raft loop persists it (group commit) and,
 * once committed, `applyEntries` applies it to the store in one write transaction, records the
 * applied index in the same backend transaction, and resolves the waiter with the response.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeTxnRequest,
  encodeDeleteRangeRequest,
  encodePutRequest,
  encodeTxnRequest,
} from '../proto/fast/index.ts';
import {
  AlarmMember,
  type AlarmRequest,
  AlarmRequest_AlarmAction,
  AlarmRequest as AlarmRequestCodec,
  AlarmType,
  type CompactionRequest,
  CompactionRequest as CompactionRequestCodec,
  type CompactionResponse,
  type DeleteRangeRequest,
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
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
} from '../proto/index.ts';
import {
  type ConfChange,
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  ErrProposalDropped,
  type Message,
  MessageType,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from '../raft/index.ts';
import { Backend, Bucket, putConsistentIndex, readConsistentIndex } from '../storage/backend/index.ts';
import { MvccStore } from '../storage/mvcc/index.ts';
import { Wal } from '../storage/wal/index.ts';
import { type PeerStreamHandler, type PeerTlsOptions, type RoundTripStats, Transport } from '../transport/index.ts';
import { VERSION } from '../version.ts';
import {
  AuthApplier,
  AuthError,
  AuthStore,
  checkTxnAuth,
  currentCaller,
  newTokenProvider,
  serializeRead,
  type TokenProvider,
} from './auth/index.ts';
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
import {
  DEFAULT_RANGE_CACHE_BYTES,
  DEFAULT_SLAB_BYTES,
  KvFieldCache,
  newRangeCacheCounters,
  type RangeCacheStats,
} from './kv-field-cache.ts';
import { LEASE_REVOKE_PER_SEC, Lessor, MAX_LEASE_TTL_SEC } from './lessor.ts';
import { decodeMember, encodeMember, healthyToAdd, healthyToRemove, type Member, Membership } from './membership.ts';
import { ServerMetrics } from './metrics.ts';
import { RaftLoop } from './raft-loop.ts';
import { decodeRaftRequest, encodeRaftRequest, RequestIdGenerator, RequestKind } from './raft-request.ts';
import { encodeRange } from './range-wire.ts';
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
  initialClusterState: 'new' | 'existing';
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
  /** Bytes of encoded KeyValues kept for Ranges read again (`--range-cache-bytes`; 0: none). */
  rangeCacheBytes?: number;
  /** For dialing https:// peers. */
  peerTls?: PeerTlsOptions;
  /** `--auth-token` (`simple`, or `jwt,...`), `--auth-token-ttl` (simple tokens) and `--bcrypt-cost`. */
  auth?: { token: string; tokenTtlSec: number; bcryptCost: number };
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
/** How stale the backend size used by the quota check may be. */
const QUOTA_SIZE_REFRESH_MS = 100;
/** etcd's quota costs: a put counts this much besides its key and value, a lease grant this much. */
const KV_QUOTA_OVERHEAD_BYTES = 256;
const LEASE_QUOTA_OVERHEAD_BYTES = 64;
/** A read index not answered within this long is asked again (etcd's readIndexRetryTime). */
const READ_INDEX_RETRY_MS = 500;
/** MoveLeader gives up after this many election timeouts. */
const LEADER_TRANSFER_TIMEOUT_FACTOR = 3;
/** etcd's maxLearners. */
const MAX_LEARNERS = 1;
/** A learner is promoted only once its log reaches this fraction of the leader's commit index. */
const LEARNER_READY_FRACTION = 0.9;
/** Retry interval of a member's attribute publication that failed. */
const PUBLISH_RETRY_MS = 2000;
/** How long a joining member waits for a peer's member list. */
const FETCH_MEMBERS_TIMEOUT_MS = 5000;
/** An expired lease whose revoke did not apply within this long is proposed again. */
const LEASE_REVOKE_RETRY_MS = 5000;
/** etcd 3.5 keeps the downgrade job under this key of the `cluster` bucket. */
const DOWNGRADE_KEY = Buffer.from('downgrade');
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
  /** Date.now() past which the read fails with a timeout. */
  deadlineMs: number;
}

interface Identity {
  memberId: bigint;
  clusterId: bigint;
  /** The members a new cluster starts with; empty when joining or restarting. */
  bootstrap: Member[];
  /** The members to connect to at first. */
  peers: Member[];
}

/** A restarted member reads its identity from its WAL. */
const RESTARTED: Identity = { memberId: 0n, clusterId: 0n, bootstrap: [], peers: [] };

/** The WAL's metadata: member id and cluster id, 8 bytes big endian each. */
export function encodeWalMetadata(memberId: bigint, clusterId: bigint): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(memberId, 0);
  b.writeBigUInt64BE(clusterId, 8);
  return b;
}

function decodeWalMetadata(md: Uint8Array): { memberId: bigint; clusterId: bigint } {
  if (md.length < 16) throw new ServerError(ServerErrorCode.InvalidArgument, 'the WAL metadata does not name a member');
  const b = Buffer.from(md.buffer, md.byteOffset, md.byteLength);
  return { memberId: b.readBigUInt64BE(0), clusterId: b.readBigUInt64BE(8) };
}

/**
 * The identity of a member without a WAL: for a new cluster, derived from --initial-cluster and
 * the token as etcd derives it; for one joining an existing cluster (after `member add`), asked
 * of the peers it names.
 */
async function resolveIdentity(opts: MemberOptions): Promise<Identity> {
  const token = opts.initialClusterToken;
  const peers: Member[] = [...opts.initialCluster.entries()].map(([name, urls]) => ({
    id: memberIdFromPeerUrls(urls, token),
    name,
    peerUrls: [...urls],
    clientUrls: [],
    isLearner: false,
  }));
  const self = peers.find((p) => p.name === opts.name);
  if (self === undefined) {
    throw new ServerError(
      ServerErrorCode.InvalidArgument,
      `couldn't find local name "${opts.name}" in the initial cluster configuration`,
    );
  }
  const advertised = [...opts.initialAdvertisePeerUrls].sort().join(',');
  if ([...self.peerUrls].sort().join(',') !== advertised) {
    throw new ServerError(
      ServerErrorCode.InvalidArgument,
      `--initial-cluster has ${opts.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${opts.initialAdvertisePeerUrls.join(',')}`,
    );
  }
  if (opts.initialClusterState === 'new') {
    return {
      memberId: self.id,
      clusterId: clusterIdFromMemberIds(peers.map((p) => p.id)),
      bootstrap: peers,
      peers,
    };
  }
  const others = peers.filter((p) => p !== self).flatMap((p) => p.peerUrls);
  const remote = await fetchClusterMembers(others);
  const me = remote.members.find((m) => m.peerUrls.some((u) => opts.initialAdvertisePeerUrls.includes(u)));
  if (me === undefined) {
    throw new ServerError(
      ServerErrorCode.InvalidArgument,
      `member with peer URLs ${opts.initialAdvertisePeerUrls.join(',')} has not been added to the cluster (run 'member add' first)`,
    );
  }
  return { memberId: me.id, clusterId: remote.clusterId, bootstrap: [], peers: remote.members };
}

/** etcd's member list JSON (ids are uint64 numbers: read as text so that they stay exact). */
export function parseMemberList(body: string): Member[] {
  const list = JSON.parse(body.replace(/"id"\s*:\s*(\d+)/g, '"id":"$1"')) as {
    id: string;
    name?: string;
    peerURLs?: string[];
    clientURLs?: string[];
    isLearner?: boolean;
  }[];
  return list.map((m) => ({
    id: BigInt(m.id),
    name: m.name ?? '',
    peerUrls: m.peerURLs ?? [],
    clientUrls: m.clientURLs ?? [],
    isLearner: m.isLearner === true,
  }));
}

/** GET <peer>/members of the first peer that answers: the members and the cluster id. */
async function fetchClusterMembers(peerUrls: readonly string[]): Promise<{ clusterId: bigint; members: Member[] }> {
  const errors: string[] = [];
  for (const url of peerUrls) {
    try {
      const res = await fetch(new URL('/members', url), { signal: AbortSignal.timeout(FETCH_MEMBERS_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const clusterHeader = res.headers.get('x-etcd-cluster-id');
      if (clusterHeader === null) throw new Error('no X-Etcd-Cluster-ID header');
      const body = await res.text();
      const members = parseMemberList(body);
      return { clusterId: BigInt(`0x${clusterHeader}`), members };
    } catch (err) {
      errors.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new ServerError(
    ServerErrorCode.Unhealthy,
    `could not retrieve the cluster's members from the peers in --initial-cluster (${errors.join('; ')})`,
  );
}

export class EtcdServer {
  /** Set once at start (from the flags, the peers, or the WAL of a restarted member). */
  memberId = 0n;
  clusterId = 0n;
  readonly name: string;
  private readonly opts: MemberOptions;
  private backend: Backend;
  store: MvccStore;
  /** Encoded KeyValues of this store's revisions, for Ranges (a new one with a new store). */
  private rangeCache: KvFieldCache;
  /** Lookups and evictions of every range cache this member has had (one is replaced with the store). */
  private readonly rangeCacheCounters = newRangeCacheCounters();
  private transport: Transport | undefined = undefined;
  /** The peer URLs the transport was last given, per member. */
  private readonly peerUrlsKnown = new Map<bigint, string>();
  /** The backend file the transport received with the snapshot message being installed. */
  private receivedSnapshot: { index: number; path: string } | undefined = undefined;
  private raft!: RaftLoop;
  private ids = new RequestIdGenerator(0n, Date.now());
  private readonly waiters = new Map<bigint, Waiter>();
  /** Waiters settled so far (applyEntries tells whether it answered any). */
  private settledCount = 0;
  private appliedIndex: number;
  private snapshotIndex: number;
  private term = 0;
  private leaderId = 0n;
  /** Active alarms, as etcd's alarm store keeps them: alarm type -> members that raised it. */
  private readonly alarms = new Map<number, Set<bigint>>();
  /**
   * etcd's applier in force: an alarm type's first activation switches to the capped (NOSPACE)
   * or corrupt (CORRUPT) applier, its last deactivation back to the plain one; a restart picks
   * capped, then corrupt, from the stored alarms.
   */
  private alarmApplier: 'plain' | 'capped' | 'corrupt' = 'plain';
  lessor: Lessor;
  /** Users, roles, permissions and tokens. */
  readonly auth: AuthStore;
  /** The auth layer of the apply path: checks each entry's caller, then runs applyKind. */
  private readonly authApplier: AuthApplier;
  readonly watchHub: WatchHub;
  /** What the member counts as it runs (leader changes, failed proposals, fsync and commit times). */
  readonly metrics = new ServerMetrics();
  private leaseTimer: NodeJS.Timeout | undefined = undefined;
  /** Leases whose revoke this leader proposed, with when, so an expiry is proposed once. */
  private readonly revoking = new Map<bigint, number>();
  /** Cancels of in-process waits for changes, failed when the member stops. */
  private readonly waiting = new Set<() => void>();
  membership: Membership;
  /** Told after every applied membership change (the transport follows it). */
  onMembershipChange: (members: readonly Member[]) => void = () => {};
  private attributesPublished = false;
  /** Members added in the log and not yet applied. */
  private readonly pendingMembers = new Map<bigint, Member>();

  // Linearizable reads: waiting for the next read index; one read index in flight at a time.
  private pendingReads: ReadWaiter[] = [];
  private inflightReads: ReadWaiter[] = [];
  private inflightReadCtx = 0n;
  private readCounter = 0n;
  /** Read waiters whose read index is known, waiting for the applied index to reach it. */
  private readonly readsAwaitingApply: { index: number; waiters: ReadWaiter[] }[] = [];
  private readRetryTimer: NodeJS.Timeout | undefined = undefined;
  private dbSizeCached = 0;
  private dbSizeReadAtMs = 0;
  /** Quota cost of the writes admitted since the size was last read. */
  private quotaAdmittedBytes = 0;

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
    membership: Membership,
    tokens: TokenProvider,
  ) {
    this.membership = membership;
    this.opts = opts;
    this.name = opts.name;
    this.backend = backend;
    backend.onCommit = this.metrics.onBackendCommit;
    this.store = store;
    this.rangeCache = this.newRangeCache();
    this.lessor = lessor;
    this.watchHub = new WatchHub(store, backend, {
      maxResponseBytes: opts.maxRequestBytes,
      progressNotifyIntervalMs: opts.progressNotifyIntervalMs ?? DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS,
      header: (rev) => this.header(rev),
    });
    this.auth = new AuthStore(backend, { tokens, bcryptCost: opts.auth?.bcryptCost ?? 10 });
    this.authApplier = new AuthApplier(this.auth, {
      leaseKeys: (id) => this.lessor.get(id)?.keys,
      header: () => this.header(),
    });
    const applied = readConsistentIndex(backend);
    this.appliedIndex = applied.index;
    this.term = applied.term;
    this.snapshotIndex = this.appliedIndex;
  }

  static async start(opts: MemberOptions): Promise<EtcdServer> {
    const { walDir, snapDir } = opts;
    // Bad --auth-token options (a JWT key that does not load) stop the member before it opens anything.
    const tokens = newTokenProvider(opts.auth?.token ?? 'simple', opts.auth?.tokenTtlSec ?? 300);
    const backend = Backend.open({ dir: join(snapDir, 'db') });
    // etcd's minimum lease TTL: 1.5 election timeouts, in whole seconds.
    const electionTicks = Math.round(opts.electionMs / opts.heartbeatMs);
    const minTtlSec = Math.ceil((Math.floor((3 * electionTicks) / 2) * opts.heartbeatMs) / 1000);
    const lessor = new Lessor(backend, { minTtlSec });
    const store = MvccStore.open(backend, { onRestoreLease: (key, lease) => lessor.restoreKey(key, lease) });
    const membership = new Membership(backend);
    let identity: Identity;
    try {
      identity = Wal.exists(walDir) ? RESTARTED : await resolveIdentity(opts);
    } catch (err) {
      await backend.close();
      throw err;
    }
    const server = new EtcdServer(opts, backend, store, lessor, membership, tokens);
    server.loadAlarms(backend);
    const { loop, restored } = await RaftLoop.open(
      {
        memberId: identity.memberId,
        memberIdFromMetadata: (md) => decodeWalMetadata(md).memberId,
        walDir,
        snapDir,
        heartbeatMs: opts.heartbeatMs,
        electionMs: opts.electionMs,
        walMetadata: encodeWalMetadata(identity.memberId, identity.clusterId),
        bootstrapPeers: identity.bootstrap.map((m) => ({ id: m.id, context: encodeMember(m) })),
        appliedIndex: server.appliedIndex,
        onFsync: server.metrics.onWalFsync,
      },
      {
        appended: (entries) => server.onAppended(entries),
        apply: (entries) => server.applyEntries(entries),
        applySnapshot: (snap) => server.applySnapshot(snap),
        readStates: (states) => server.onReadStates(states),
        send: (messages) => server.send(messages),
        softState: (state) => server.onSoftState(state),
        afterReady: () => server.afterReady(),
      },
    );
    const stored = decodeWalMetadata(restored.metadata);
    server.setIdentity(stored.memberId, stored.clusterId);
    if (restored.snapshot !== undefined) server.snapshotIndex = restored.snapshot.metadata.index;
    server.raft = loop;
    loop.onFatal = (err) => server.fail(err);
    server.startTransport(identity === RESTARTED ? server.members() : identity.peers);
    server.startAutoCompaction();
    server.leaseTimer = setInterval(() => server.revokeExpiredLeases(), LEASE_CHECK_INTERVAL_MS);
    server.leaseTimer.unref();
    opts.log.info(
      {
        'member-id': server.memberId.toString(16),
        'cluster-id': server.clusterId.toString(16),
        'applied-index': server.appliedIndex,
      },
      restored.isNew ? 'started a new member' : 'restarted member',
    );
    return server;
  }

  private setIdentity(memberId: bigint, clusterId: bigint): void {
    this.memberId = memberId;
    this.clusterId = clusterId;
    this.ids = new RequestIdGenerator(memberId, Date.now());
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

  /** Proposals of this member not yet applied (etcd_server_proposals_pending). */
  pendingProposals(): number {
    return this.waiters.size;
  }

  /** Round-trip times to each peer (etcd_network_peer_round_trip_time_seconds). */
  peerRoundTrips(): Map<bigint, RoundTripStats> {
    const out = new Map<bigint, RoundTripStats>();
    const t = this.transport;
    if (t === undefined) return out;
    for (const id of t.peerIds()) {
      const stats = t.roundTripTime(id);
      if (stats !== null) out.set(id, stats);
    }
    return out;
  }

  /** An empty range cache of --range-cache-bytes, counting into the member's counters. */
  private newRangeCache(): KvFieldCache {
    return new KvFieldCache(
      this.opts.rangeCacheBytes ?? DEFAULT_RANGE_CACHE_BYTES,
      DEFAULT_SLAB_BYTES,
      this.rangeCacheCounters,
    );
  }

  /** The range cache's counts since the member started, and what it holds now. */
  rangeCacheStats(): RangeCacheStats {
    const cache = this.rangeCache;
    return {
      ...this.rangeCacheCounters,
      entries: cache.size,
      allocatedBytes: cache.allocatedBytes,
      capacityBytes: cache.capacityBytes,
    };
  }

  /** Whether this member is a learner in the membership it has applied. */
  isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner === true;
  }

  hasLeader(): boolean {
    return this.leaderId !== 0n;
  }

  /** The active alarms (of type `alarm`, or all for NONE), by type, then member id. */
  alarmList(alarm: number = AlarmType.NONE): AlarmMember[] {
    const out: AlarmMember[] = [];
    for (const type of [...this.alarms.keys()].sort((a, b) => a - b)) {
      if (alarm !== AlarmType.NONE && type !== alarm) continue;
      const members = [...this.alarms.get(type)!].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const memberID of members) out.push({ memberID, alarm: type as AlarmType });
    }
    return out;
  }

  /** The backend in use (a snapshot from the leader replaces it): for maintenance (snapshot, defragment, hash). */
  currentBackend(): Backend {
    return this.backend;
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
      errors: this.alarmList().map((a) => `memberID:${a.memberID} alarm:${alarmName(a.alarm)} `),
      dbSizeInUse: BigInt(size.sizeInUseBytes),
      isLearner: this.isLearner(),
    };
  }

  /** etcd's HashKV, computed in slices so that a large store does not hold up the event loop. */
  async hashKV(revision: number): Promise<HashKVResponse> {
    const h = await this.store.hashKVAsync(revision);
    return {
      header: this.header(),
      hash: h.hash,
      compactRevision: BigInt(h.compactRevision),
      hashRevision: BigInt(h.revision),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Membership

  private proposeConfChange(type: ConfChangeType, nodeId: bigint, context: Uint8Array): Promise<Member[]> {
    if (this.stopped) return Promise.reject(new ServerError(ServerErrorCode.Stopped));
    if (!this.hasLeader()) return Promise.reject(new ServerError(ServerErrorCode.NoLeader));
    const id = this.ids.id();
    return new Promise<Member[]>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (this.waiters.delete(id)) reject(new ServerError(ServerErrorCode.Timeout));
        },
        REQUEST_TIMEOUT_BASE_MS + 2 * this.opts.electionMs,
      );
      this.waiters.set(id, { resolve: resolve as (v: unknown) => void, reject, request: undefined, timer });
      try {
        this.raft.node.proposeConfChange({ id, type, nodeId, context });
      } catch (err) {
        clearTimeout(timer);
        this.waiters.delete(id);
        reject(err instanceof ErrProposalDropped ? new ServerError(ServerErrorCode.NoLeader) : err);
        return;
      }
      this.raft.schedule();
    });
  }

  /** Since when the stream to a peer has been up (null: not up), for the health checks of reconfigurations. */
  private readonly peerActiveSince = (id: bigint): Date | null => this.transport?.activeSince(id) ?? null;

  /** etcd's strict reconfiguration check: after adding a voter, a quorum must already be serving. */
  private readyToAddVoter(): boolean {
    const voters = this.membership.voters();
    const started = voters.filter((m) => this.membership.isStarted(m.id)).length;
    const total = voters.length + 1;
    if (started === 1 && total === 2) return true; // growing a one-member cluster
    return started >= Math.floor(total / 2) + 1;
  }

  private readyToRemoveVoter(id: bigint): boolean {
    const voters = this.membership.voters().filter((m) => m.id !== id);
    const started = voters.filter((m) => this.membership.isStarted(m.id)).length;
    return started >= Math.floor(voters.length / 2) + 1;
  }

  async memberAdd(peerUrls: string[], isLearner: boolean): Promise<{ member: Member; members: Member[] }> {
    checkPeerUrls(peerUrls);
    if (!healthyToAdd(this.membership.voters(), this.memberId, this.peerActiveSince, Date.now())) {
      throw new ServerError(ServerErrorCode.Unhealthy);
    }
    if (this.membership.withPeerUrl(peerUrls) !== undefined) throw new ServerError(ServerErrorCode.PeerURLExist);
    if (isLearner) {
      const learners = this.membership.list().filter((m) => m.isLearner).length;
      if (learners >= MAX_LEARNERS) throw new ServerError(ServerErrorCode.TooManyLearners);
    } else if (!this.readyToAddVoter()) {
      throw new ServerError(ServerErrorCode.MemberNotEnoughStarted);
    }
    const id = memberIdFromPeerUrls(peerUrls, `${this.opts.initialClusterToken}${Math.floor(Date.now() / 1000)}`);
    if (this.membership.get(id) !== undefined) throw new ServerError(ServerErrorCode.MemberExist);
    const member: Member = { id, name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner };
    const type = isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
    const members = await this.proposeConfChange(type, id, encodeMember(member));
    return { member, members };
  }

  async memberRemove(id: bigint): Promise<Member[]> {
    const m = this.membership.get(id);
    if (m === undefined) throw new ServerError(ServerErrorCode.MemberNotFound);
    if (!m.isLearner && !this.readyToRemoveVoter(id)) throw new ServerError(ServerErrorCode.MemberNotEnoughStarted);
    const voters = this.membership.voters();
    if (!m.isLearner && !healthyToRemove(voters, this.memberId, id, this.peerActiveSince, Date.now())) {
      throw new ServerError(ServerErrorCode.Unhealthy);
    }
    return this.proposeConfChange(ConfChangeType.RemoveNode, id, new Uint8Array(0));
  }

  async memberUpdate(id: bigint, peerUrls: string[]): Promise<Member[]> {
    checkPeerUrls(peerUrls);
    const m = this.membership.get(id);
    if (m === undefined) throw new ServerError(ServerErrorCode.MemberNotFound);
    const other = this.membership.withPeerUrl(peerUrls);
    if (other !== undefined && other.id !== id) throw new ServerError(ServerErrorCode.PeerURLExist);
    return this.proposeConfChange(ConfChangeType.UpdateNode, id, encodeMember({ ...m, peerUrls: [...peerUrls] }));
  }

  async memberPromote(id: bigint): Promise<Member[]> {
    const m = this.membership.get(id);
    if (m === undefined) throw new ServerError(ServerErrorCode.MemberNotFound);
    if (!m.isLearner) throw new ServerError(ServerErrorCode.MemberNotLearner);
    if (this.raft.isLeader()) {
      // etcd promotes a learner only once it has 90% of the leader's log.
      const st = this.raft.node.status();
      const match = st.progress.get(id)?.match ?? 0;
      if (match < LEARNER_READY_FRACTION * st.hardState.commit) throw new ServerError(ServerErrorCode.LearnerNotReady);
    }
    return this.proposeConfChange(ConfChangeType.AddNode, id, encodeMember({ ...m, isLearner: false }));
  }

  /**
   * Hands leadership to `target` (MoveLeader). Only the leader can; resolves once the target
   * leads, fails with a timeout if it does not within a few election timeouts.
   */
  async moveLeader(target: bigint): Promise<void> {
    if (!this.raft.isLeader()) throw new ServerError(ServerErrorCode.NotLeader);
    const m = this.membership.get(target);
    if (m === undefined || m.isLearner) throw new ServerError(ServerErrorCode.BadLeaderTransferee);
    if (target === this.memberId) return;
    this.raft.node.transferLeader(target);
    this.raft.schedule();
    const deadline = Date.now() + LEADER_TRANSFER_TIMEOUT_FACTOR * this.opts.electionMs;
    while (this.leaderId !== target) {
      if (Date.now() > deadline || this.stopped) throw new ServerError(ServerErrorCode.Timeout);
      await new Promise((r) => setTimeout(r, this.opts.heartbeatMs));
    }
  }

  /** On a graceful stop, a leader hands over to the most caught-up voter first (as etcd does). */
  private async transferLeadershipOnStop(): Promise<void> {
    if (!this.raft.isLeader()) return;
    const st = this.raft.node.status();
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const [id, p] of st.progress) {
      if (id === this.memberId || p.isLearner) continue;
      if (p.match > bestMatch) {
        best = id;
        bestMatch = p.match;
      }
    }
    if (best === undefined) return;
    try {
      await this.moveLeader(best);
      this.opts.log.info({ transferee: best.toString(16) }, 'leadership transferred before stopping');
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'leadership transfer before stopping failed');
    }
  }

  /** Publishes this member's name and client URLs through raft, once, when a leader is known. */
  private publishAttributes(): void {
    if (this.attributesPublished || this.stopped || !this.hasLeader()) return;
    this.attributesPublished = true;
    const payload = Buffer.from(
      JSON.stringify({ id: this.memberId.toString(), name: this.opts.name, clientURLs: this.opts.advertiseClientUrls }),
    );
    this.propose(RequestKind.MemberAttributes, undefined, payload).catch((err: unknown) => {
      this.attributesPublished = false;
      if (!this.stopped) {
        this.opts.log.warn({ err: String(err) }, 'failed to publish local member to the cluster; retrying');
        setTimeout(() => this.publishAttributes(), PUBLISH_RETRY_MS).unref();
      }
    });
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
    this.checkQuota(LEASE_QUOTA_OVERHEAD_BYTES);
    return this.propose<LeaseGrantResponse>(
      RequestKind.LeaseGrant,
      request,
      LeaseGrantRequestCodec.encode(request).finish(),
    );
  }

  /** `asMember`: the leader revokes an expired lease (no caller to check). */
  async leaseRevoke(req: LeaseRevokeRequest, asMember = false): Promise<LeaseRevokeResponse> {
    return this.propose<LeaseRevokeResponse>(
      RequestKind.LeaseRevoke,
      req,
      LeaseRevokeRequestCodec.encode(req).finish(),
      asMember,
    );
  }

  /** A keep-alive on the leader: the lease's TTL, or 0 when it does not exist (etcd answers so). */
  leaseRenew(id: bigint): bigint {
    if (this.stopped) throw new ServerError(ServerErrorCode.Stopped);
    if (!this.raft.isLeader()) throw new ServerError(ServerErrorCode.NotLeader);
    return BigInt(this.lessor.renew(id));
  }

  /** A keep-alive from a client of any member: renewed by the leader, forwarded there if need be. */
  async leaseKeepAlive(id: bigint): Promise<bigint> {
    if (this.raft.isLeader()) return this.leaseRenew(id);
    const body = await this.askLeader('/leases/renew', id.toString());
    return BigInt(body);
  }

  /** TimeToLive as the leader sees it (only the leader knows the remaining time). */
  async leaseTimeToLiveAnywhere(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    if (this.raft.isLeader() || this.leaderId === 0n) return this.leaseTimeToLive(req);
    const ttl = BigInt(await this.askLeader('/leases/ttl', req.ID.toString()));
    const local = this.leaseTimeToLive(req);
    return { ...local, TTL: local.TTL === -1n ? -1n : ttl };
  }

  private async askLeader(path: string, body: string): Promise<string> {
    const urls = this.leaderPeerUrls();
    if (urls === undefined || urls.length === 0) throw new ServerError(ServerErrorCode.NoLeader);
    const errors: string[] = [];
    for (const url of urls) {
      try {
        const res = await fetch(new URL(path, url), {
          method: 'POST',
          body,
          headers: { 'x-etcd-cluster-id': this.clusterId.toString(16) },
          signal: AbortSignal.timeout(this.opts.electionMs * 2),
        });
        const text = await res.text();
        if (res.status === 200) return text;
        if (res.status === 404) throw new ServerError(ServerErrorCode.LeaseNotFound);
        errors.push(`${url}: HTTP ${res.status} ${text}`);
      } catch (err) {
        if (err instanceof ServerError) throw err;
        errors.push(`${url}: ${String(err)}`);
      }
    }
    this.opts.log.warn({ path, errors }, 'could not reach the leader');
    throw new ServerError(ServerErrorCode.NoLeader);
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
      this.leaseRevoke({ ID: id }, true).catch((err: unknown) => {
        if (!(err instanceof ServerError && err.code === ServerErrorCode.LeaseNotFound)) {
          this.opts.log.warn({ lease: id.toString(16), err: String(err) }, 'failed to revoke an expired lease');
        }
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // KV

  async range(req: RangeRequest): Promise<RangeResponse> {
    return this.readRange(req, () => {
      const resp = applyRange(this.store, req);
      this.fillHeader(resp.header);
      return resp;
    });
  }

  /**
   * As range, the response encoded as it is read: its bytes are the chunks in order, after
   * `headroomBytes` free at the start of the first one.
   */
  rangeEncoded(req: RangeRequest, headroomBytes: number): Promise<Buffer[]> {
    return this.readRange(req, () =>
      encodeRange(this.store, req, this.fillHeader(undefined), headroomBytes, this.rangeCache),
    );
  }

  /** A Range's checks, its linearizable wait and its permission, around `read`. */
  private async readRange<T>(req: RangeRequest, read: () => T): Promise<T> {
    checkRange(req);
    if (!req.serializable) await this.linearizableReadNotify();
    return serializeRead(
      this.auth,
      (ai) => this.auth.checkRange(ai, req.key, req.rangeEnd),
      () => this.translateStoreErrors(read),
    );
  }

  async put(req: PutRequest, wire?: Uint8Array): Promise<PutResponse> {
    checkPut(req);
    this.checkQuota(putQuotaCost(req));
    return this.propose<PutResponse>(RequestKind.Put, req, wire ?? encodePutRequest(req));
  }

  async deleteRange(req: DeleteRangeRequest, wire?: Uint8Array): Promise<DeleteRangeResponse> {
    checkDeleteRange(req);
    return this.propose<DeleteRangeResponse>(RequestKind.DeleteRange, req, wire ?? encodeDeleteRangeRequest(req));
  }

  async txn(req: TxnRequest, wire?: Uint8Array): Promise<TxnResponse> {
    checkTxn(req, this.opts.maxTxnOps);
    if (isTxnReadOnly(req)) {
      if (!isTxnSerializable(req)) await this.linearizableReadNotify();
      const resp = serializeRead(
        this.auth,
        (ai) => checkTxnAuth(this.auth, ai, req, null),
        () => this.translateStoreErrors(() => applyReadOnlyTxn(this.store, req)),
      );
      this.fillHeader(resp.header);
      return resp;
    }
    this.checkQuota(txnQuotaCost(req));
    return this.propose<TxnResponse>(RequestKind.Txn, req, wire ?? encodeTxnRequest(req));
  }

  /** `asMember`: automatic compaction (no caller to check). */
  async compact(req: CompactionRequest, wire?: Uint8Array, asMember = false): Promise<CompactionResponse> {
    const resp = await this.propose<CompactionResponse & { done?: Promise<void> }>(
      RequestKind.Compaction,
      req,
      wire ?? CompactionRequestCodec.encode(req).finish(),
      asMember,
    );
    if (req.physical && resp.done !== undefined) await resp.done;
    return { header: resp.header };
  }

  // -------------------------------------------------------------------------------------------
  // Proposals and their waiters

  /**
   * Proposes a request stamped with its caller (checked again when it applies); `asMember`
   * for the member's own requests, which carry no caller.
   */
  private propose<T>(kind: RequestKind, request: unknown, wire: Uint8Array, asMember = false): Promise<T> {
    if (this.stopped) return Promise.reject(new ServerError(ServerErrorCode.Stopped));
    if (wire.length > this.opts.maxRequestBytes) {
      return Promise.reject(new ServerError(ServerErrorCode.RequestTooLarge));
    }
    if (!this.hasLeader()) return Promise.reject(new ServerError(ServerErrorCode.NoLeader));
    const id = this.ids.id();
    const data = encodeRaftRequest(kind, id, wire, asMember ? undefined : currentCaller());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (!this.waiters.delete(id)) return;
          this.metrics.proposalsFailed.inc();
          reject(new ServerError(ServerErrorCode.Timeout));
        },
        REQUEST_TIMEOUT_BASE_MS + 2 * this.opts.electionMs,
      );
      this.waiters.set(id, { resolve: resolve as (v: unknown) => void, reject, request, timer });
      try {
        this.raft.node.propose(data);
      } catch (err) {
        clearTimeout(timer);
        this.waiters.delete(id);
        this.metrics.proposalsFailed.inc();
        reject(err instanceof ErrProposalDropped ? new ServerError(ServerErrorCode.NoLeader) : err);
        return;
      }
      this.raft.schedule();
    });
  }

  /** Proposes an auth change; an Authenticate carries no caller (the password was checked before). */
  proposeAuth<T>(kind: RequestKind, wire: Uint8Array): Promise<T> {
    return this.propose<T>(kind, undefined, wire, kind === RequestKind.Authenticate);
  }

  private settle(id: bigint, result: unknown, error: Error | undefined): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    this.waiters.delete(id);
    this.settledCount++;
    clearTimeout(w.timer);
    if (error !== undefined) w.reject(error);
    else w.resolve(result);
  }

  // -------------------------------------------------------------------------------------------
  // Apply

  /** Applies committed entries; returns whether that answered a proposal made on this member. */
  private applyEntries(entries: readonly Entry[]): boolean {
    const settledBefore = this.settledCount;
    let last = this.appliedIndex;
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue; // already in the backend before a restart
      if (e.type === EntryType.ConfChange) {
        this.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.length > 0) {
        this.applyRequest(e);
      }
      last = e.index;
      if (e.term > this.term) this.term = e.term;
    }
    if (last !== this.appliedIndex) {
      this.appliedIndex = last;
      // Same backend transaction as the data just applied: written synchronously after it.
      putConsistentIndex(this.backend, this.appliedIndex, this.term);
    }
    return this.settledCount !== settledBefore;
  }

  /**
   * Raft switches to a new configuration as soon as the conf change is in the log, so a member
   * being added must be reachable from then on (its entry commits with its help when the cluster
   * grows from one member to two), and `member add` answers once the change is durable in the
   * leader's log, as etcd answers before the new member has started.
   */
  private onAppended(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      if (cc.type !== ConfChangeType.AddNode && cc.type !== ConfChangeType.AddLearnerNode) continue;
      if (cc.context.length === 0 || this.membership.get(cc.nodeId) !== undefined) continue;
      const m = decodeMember(cc.context);
      this.pendingMembers.set(cc.nodeId, { ...m, id: cc.nodeId, isLearner: cc.type === ConfChangeType.AddLearnerNode });
      this.onMembershipChange(this.members());
      this.settle(cc.id, this.members(), undefined);
    }
  }

  /** The applied members and those whose addition is in the log but not yet applied. */
  members(): Member[] {
    if (this.pendingMembers.size === 0) return this.membership.list();
    const all = [
      ...this.membership.list(),
      ...[...this.pendingMembers.values()].filter((m) => this.membership.get(m.id) === undefined),
    ];
    return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private applyConfChange(cc: ConfChange): void {
    this.pendingMembers.delete(cc.nodeId);
    let error: Error | undefined;
    try {
      this.raft.node.applyConfChange(cc);
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    if (error === undefined) {
      const described = cc.context.length > 0 ? decodeMember(cc.context) : undefined;
      switch (cc.type) {
        case ConfChangeType.AddNode: {
          const existing = this.membership.get(cc.nodeId);
          if (existing?.isLearner) this.membership.promote(cc.nodeId);
          else if (existing === undefined && described !== undefined) {
            this.membership.add({ ...described, id: cc.nodeId, isLearner: false });
          }
          break;
        }
        case ConfChangeType.AddLearnerNode:
          if (described !== undefined) this.membership.add({ ...described, id: cc.nodeId, isLearner: true });
          break;
        case ConfChangeType.RemoveNode:
          this.membership.remove(cc.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          if (described !== undefined) this.membership.updatePeerUrls(cc.nodeId, described.peerUrls);
          break;
      }
      this.opts.log.info(
        { type: cc.type, member: cc.nodeId.toString(16), members: this.membership.size },
        'applied a membership change',
      );
      this.onMembershipChange(this.members());
      if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.memberId) {
        setImmediate(() => this.fail(new Error('the member has been permanently removed from the cluster')));
      }
    }
    this.settle(cc.id, this.members(), error);
  }

  private applyRequest(e: Entry): void {
    let decoded: ReturnType<typeof decodeRaftRequest>;
    try {
      decoded = decodeRaftRequest(e.data);
    } catch (err) {
      this.opts.log.error({ index: e.index, err: String(err) }, 'skipping an entry that does not decode');
      return;
    }
    const { kind, id, payload, caller } = decoded;
    const waiter = this.waiters.get(id);
    try {
      const result = this.authApplier.apply(
        { kind, caller, index: e.index, local: waiter?.request, proposedHere: waiter !== undefined, payload },
        (request) => this.applyKind(kind, request, payload),
      );
      this.settle(id, result, undefined);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (!(error instanceof ServerError || error instanceof AuthError)) {
        this.opts.log.error({ index: e.index, kind, err: error.message }, 'apply failed');
      }
      this.settle(id, undefined, error);
    }
  }

  private applyKind(kind: number, local: unknown, payload: Uint8Array): unknown {
    switch (kind) {
      case RequestKind.Put: {
        const req = (local as PutRequest | undefined) ?? decodePutRequest(payload);
        this.checkAlarmsOnApply(true);
        return this.write((w) => applyPut(w, req, this.lessor));
      }
      case RequestKind.DeleteRange: {
        const req = (local as DeleteRangeRequest | undefined) ?? decodeDeleteRangeRequest(payload);
        this.checkAlarmsOnApply(false);
        return this.write((w) => applyDeleteRange(w, req));
      }
      case RequestKind.Txn: {
        const req = (local as TxnRequest | undefined) ?? decodeTxnRequest(payload);
        this.checkAlarmsOnApply(!isTxnReadOnly(req) && txnHasPut(req));
        return this.write((w) => applyTxn(w, req, this.lessor));
      }
      case RequestKind.Compaction: {
        const req = (local as CompactionRequest | undefined) ?? CompactionRequestCodec.decode(payload);
        this.checkAlarmsOnApply(false);
        const { done } = this.translateStoreErrors(() => this.store.compact(Number(req.revision)));
        done.catch((err: unknown) => this.opts.log.error({ err: String(err) }, 'compaction failed'));
        return { header: this.header(), done };
      }
      case RequestKind.LeaseGrant: {
        const req = (local as LeaseGrantRequest | undefined) ?? LeaseGrantRequestCodec.decode(payload);
        this.checkAlarmsOnApply(true);
        const lease = this.lessor.grant(req.ID, Number(req.TTL));
        return { header: this.header(), ID: lease.id, TTL: BigInt(lease.ttlSec), error: '' };
      }
      case RequestKind.LeaseRevoke: {
        const req = (local as LeaseRevokeRequest | undefined) ?? LeaseRevokeRequestCodec.decode(payload);
        this.checkAlarmsOnApply(false);
        const keys = this.lessor.revoke(req.ID);
        this.revoking.delete(req.ID);
        // Every key of the lease goes in one revision.
        return this.write((w) => {
          for (const key of keys) w.deleteRange(key, new Uint8Array(0), { prevKv: false });
          return { header: this.header() };
        });
      }
      case RequestKind.MemberAttributes: {
        const attrs = JSON.parse(Buffer.from(payload).toString('utf8')) as {
          id: string;
          name: string;
          clientURLs: string[];
        };
        this.membership.setAttributes(BigInt(attrs.id), attrs.name, attrs.clientURLs);
        // members(), not the applied list: a member whose addition is in the log but not yet
        // applied must stay a transport peer (dropping it would answer its streams 410 Gone).
        this.onMembershipChange(this.members());
        return { header: this.header() };
      }
      case RequestKind.Alarm:
        return { header: this.header(), alarms: this.applyAlarm(AlarmRequestCodec.decode(payload)) };
      case RequestKind.DowngradeInfoSet: {
        const job = JSON.parse(Buffer.from(payload).toString('utf8')) as { enabled?: unknown };
        if (typeof job.enabled !== 'boolean') throw new ServerError(ServerErrorCode.InvalidArgument);
        this.backend.put(Bucket.cluster, DOWNGRADE_KEY, payload);
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

  /**
   * Installs a snapshot from the leader: the backend it sent (received by the transport into a
   * file) replaces this member's, and the store, leases and membership are rebuilt from it.
   */
  private async applySnapshot(snapshot: Snapshot): Promise<void> {
    const file = this.receivedSnapshot;
    if (file === undefined || file.index !== snapshot.metadata.index) {
      throw new Error(`no backend received for the snapshot at index ${snapshot.metadata.index}`);
    }
    this.receivedSnapshot = undefined;
    const dir = this.backend.dir;
    await this.store.close();
    await this.backend.close();
    await rm(dir, { recursive: true, force: true });
    const backend = await Backend.restoreSnapshot({ dir }, createReadStream(file.path));
    await rm(file.path, { force: true });
    const lessor = new Lessor(backend, { minTtlSec: this.lessor.minTtlSec });
    const store = MvccStore.open(backend, { onRestoreLease: (key, lease) => lessor.restoreKey(key, lease) });
    this.backend = backend;
    backend.onCommit = this.metrics.onBackendCommit;
    this.store = store;
    this.rangeCache = this.newRangeCache();
    this.lessor = lessor;
    this.membership = new Membership(backend);
    this.watchHub.replaceStore(store, backend);
    const applied = readConsistentIndex(backend);
    this.appliedIndex = Math.max(applied.index, snapshot.metadata.index);
    this.snapshotIndex = snapshot.metadata.index;
    this.loadAlarms(backend);
    this.auth.reload(backend);
    this.onMembershipChange(this.members());
    this.opts.log.info(
      { index: snapshot.metadata.index, 'applied-index': this.appliedIndex, revision: store.rev() },
      'installed a snapshot from the leader',
    );
  }

  // -------------------------------------------------------------------------------------------
  // Peers

  private startTransport(peers: readonly Member[]): void {
    const others = new Map<bigint, string[]>();
    for (const m of peers) {
      if (m.id === this.memberId) continue;
      others.set(m.id, m.peerUrls);
      this.peerUrlsKnown.set(m.id, m.peerUrls.join(','));
    }
    const log = this.opts.log;
    this.transport = new Transport({
      memberId: this.memberId,
      clusterId: this.clusterId,
      peers: others,
      tls: this.opts.peerTls,
      snapshotDir: this.opts.snapDir,
      onMessage: (m) => this.stepMessage(m),
      onSnapshot: (m, snap) => {
        this.receivedSnapshot = { index: m.snapshot?.metadata.index ?? -1, path: snap.path };
        this.stepMessage(m);
      },
      onUnreachable: (id) => this.raft.node.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => {
        this.raft.node.reportSnapshot(id, ok);
        this.raft.schedule();
      },
      onRemoved: () => this.fail(new Error('the member has been permanently removed from the cluster')),
      logger: {
        debug: () => {},
        info: (obj, msg) => log.info(obj, msg),
        warn: (obj, msg) => log.warn(obj, msg),
        error: (obj, msg) => log.error(obj, msg),
      },
    });
    this.onMembershipChange = (members) => this.syncPeers(members);
  }

  /** The transport's stream handler, mounted on the peer listener. */
  get peerStreamHandler(): PeerStreamHandler {
    const t = this.transport;
    return t === undefined ? () => false : t.handler;
  }

  private syncPeers(members: readonly Member[]): void {
    const t = this.transport;
    if (t === undefined) return;
    const want = new Map<bigint, string[]>();
    for (const m of members) if (m.id !== this.memberId) want.set(m.id, m.peerUrls);
    for (const id of t.peerIds()) if (!want.has(id)) t.removePeer(id);
    const have = new Set(t.peerIds());
    for (const [id, urls] of want) {
      if (!have.has(id)) t.addPeer(id, urls);
      else if (this.peerUrlsKnown.get(id) !== urls.join(',')) t.updatePeer(id, urls);
      this.peerUrlsKnown.set(id, urls.join(','));
    }
  }

  private stepMessage(m: Message): void {
    if (this.stopped) return;
    try {
      this.raft.stepPeer(m);
    } catch (err) {
      this.opts.log.warn({ from: m.from.toString(16), type: m.type, err: String(err) }, 'dropped a raft message');
    }
  }

  /** The peer URLs of the leader, when it is another member. */
  leaderPeerUrls(): string[] | undefined {
    if (this.leaderId === 0n || this.leaderId === this.memberId) return undefined;
    return this.members().find((m) => m.id === this.leaderId)?.peerUrls;
  }

  // -------------------------------------------------------------------------------------------
  // Linearizable reads: one ReadIndex round serves every read that arrived before it started.

  linearizableReadNotify(): Promise<void> {
    if (this.stopped) return Promise.reject(new ServerError(ServerErrorCode.Stopped));
    return new Promise<void>((resolve, reject) => {
      this.pendingReads.push({
        resolve,
        reject,
        deadlineMs: Date.now() + REQUEST_TIMEOUT_BASE_MS + 2 * this.opts.electionMs,
      });
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
    // A read index can be lost (a leader change, a dropped message): ask again, as etcd does.
    const asked = this.readCounter;
    clearTimeout(this.readRetryTimer);
    this.readRetryTimer = setTimeout(() => this.retryReadIndex(asked), READ_INDEX_RETRY_MS);
    this.raft.schedule();
  }

  private retryReadIndex(asked: bigint): void {
    if (this.inflightReadCtx !== asked || this.inflightReads.length === 0 || this.stopped) return;
    const now = Date.now();
    const waiting = this.inflightReads;
    this.inflightReads = [];
    const still: ReadWaiter[] = [];
    for (const w of waiting) {
      if (now >= w.deadlineMs) w.reject(new ServerError(ServerErrorCode.Timeout));
      else still.push(w);
    }
    this.pendingReads = [...still, ...this.pendingReads];
    this.startReadIndex();
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
      if (state.lead !== 0n) this.metrics.leaderChanges.inc();
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
    this.publishAttributes();
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
    const t = this.transport;
    if (t === undefined) return;
    let plain: Message[] | undefined;
    for (const m of messages) {
      if (m.type === MessageType.MsgSnap) {
        // The backend travels with the snapshot message: the follower replaces its own with it.
        // As etcd does, the message describes the state being sent (this member's applied index
        // and applied configuration), not the older snapshot raft picked: a member added since
        // that snapshot is in the new configuration, so it does not ignore the message.
        // The pending batch is committed first so that the stream holds everything applied.
        const committed = this.backend.forceCommit();
        const applied = this.appliedIndex;
        let snapMessage = m;
        try {
          const snapshot = {
            metadata: {
              index: applied,
              term: this.raft.storage.term(applied),
              confState: this.raft.node.status().appliedConfig,
            },
            data: new Uint8Array(0),
          };
          snapMessage = { ...m, snapshot };
        } catch (err) {
          this.opts.log.warn({ err: String(err) }, 'sending the snapshot raft chose');
        }
        const backend = this.backend;
        committed.then(
          () => t.sendSnapshot(snapMessage, backend.snapshotStream()),
          (err: unknown) => {
            this.opts.log.warn({ err: String(err) }, 'could not commit the backend for a snapshot');
            this.raft.node.reportSnapshot(m.to, false);
          },
        );
      } else {
        (plain ??= []).push(m);
      }
    }
    if (plain !== undefined) t.send(plain);
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
        await this.backend.forceCommit();
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

  /**
   * etcd's quota check before proposing: the backend's size only (an active alarm acts at
   * apply); a request that adds nothing (a transaction without puts) always passes.
   */
  private checkQuota(costBytes: number): void {
    if (costBytes === 0) return;
    const quota = this.opts.quotaBackendBytes > 0 ? this.opts.quotaBackendBytes : DEFAULT_QUOTA_BYTES;
    if (this.dbSizeBytes() + costBytes < quota) {
      this.quotaAdmittedBytes += costBytes;
      return;
    }
    void this.proposeAlarm(true, AlarmType.NOSPACE).catch((err: unknown) =>
      this.opts.log.warn({ err: String(err) }, 'failed to raise the NOSPACE alarm'),
    );
    throw new ServerError(ServerErrorCode.NoSpace);
  }

  /**
   * The backend's size for the quota check, read again at most every QUOTA_SIZE_REFRESH_MS:
   * asking LMDB for it costs far more than a put.
   */
  private dbSizeBytes(): number {
    const now = Date.now();
    if (now - this.dbSizeReadAtMs >= QUOTA_SIZE_REFRESH_MS) {
      this.dbSizeCached = this.backend.size().sizeBytes;
      this.dbSizeReadAtMs = now;
      this.quotaAdmittedBytes = 0;
    }
    // The writes admitted since the last read count too: a burst between two reads must not
    // all pass on the old size.
    return this.dbSizeCached + this.quotaAdmittedBytes;
  }

  /** Raises (or clears) `alarm` for `memberId` through raft; resolves to the alarms it changed. */
  async proposeAlarm(activate: boolean, alarm: number, memberId: bigint = this.memberId): Promise<AlarmMember[]> {
    const action = activate ? AlarmRequest_AlarmAction.ACTIVATE : AlarmRequest_AlarmAction.DEACTIVATE;
    const wire = AlarmRequestCodec.encode({ action, memberID: memberId, alarm: alarm as AlarmType }).finish();
    const resp = await this.propose<{ alarms: AlarmMember[] }>(RequestKind.Alarm, undefined, wire);
    return resp.alarms;
  }

  /**
   * etcd's applyAlarm: ACTIVATE adds (member, type) and answers with it (also when it was
   * already active); DEACTIVATE removes it and answers with it, or with nothing when it was
   * not active. Stored as etcd stores alarms: the AlarmMember protobuf as the key, no value.
   */
  private applyAlarm(req: AlarmRequest): AlarmMember[] {
    if (req.action === AlarmRequest_AlarmAction.GET) return this.alarmList(req.alarm);
    if (req.alarm === AlarmType.NONE) return [];
    const member: AlarmMember = { memberID: req.memberID, alarm: req.alarm };
    const key = AlarmMember.encode(member).finish();
    let members = this.alarms.get(req.alarm);
    if (req.action === AlarmRequest_AlarmAction.ACTIVATE) {
      if (members?.has(req.memberID)) return [member];
      if (members === undefined) this.alarms.set(req.alarm, (members = new Set()));
      members.add(req.memberID);
      if (members.size === 1 && req.alarm === AlarmType.NOSPACE) this.alarmApplier = 'capped';
      if (members.size === 1 && req.alarm === AlarmType.CORRUPT) this.alarmApplier = 'corrupt';
      this.backend.put(Bucket.alarm, key, new Uint8Array(0));
      this.opts.log.warn({ member: req.memberID.toString(16), alarm: alarmName(req.alarm) }, 'alarm raised');
      return [member];
    }
    if (req.action !== AlarmRequest_AlarmAction.DEACTIVATE || members?.has(req.memberID) !== true) return [];
    members.delete(req.memberID);
    if (members.size === 0) {
      this.alarms.delete(req.alarm);
      if (req.alarm === AlarmType.NOSPACE || req.alarm === AlarmType.CORRUPT) this.alarmApplier = 'plain';
    }
    this.backend.delete(Bucket.alarm, key);
    this.opts.log.warn({ member: req.memberID.toString(16), alarm: alarmName(req.alarm) }, 'alarm disarmed');
    return [member];
  }

  /** Sets (or clears) the downgrade job, `{"target-version":"3.4.0","enabled":true}`, through raft. */
  async proposeDowngrade(job: Uint8Array): Promise<void> {
    await this.propose(RequestKind.DowngradeInfoSet, undefined, job);
  }

  /** etcd's corrupt and capped appliers: the corrupt one refuses every write, the capped one those that add data. */
  private checkAlarmsOnApply(addsData: boolean): void {
    if (this.alarmApplier === 'corrupt') throw new ServerError(ServerErrorCode.Corrupt);
    if (addsData && this.alarmApplier === 'capped') throw new ServerError(ServerErrorCode.NoSpace);
  }

  private loadAlarms(backend: Backend): void {
    this.alarms.clear();
    for (const key of backend.range(Bucket.alarm, new Uint8Array(0), null).keys) {
      const m = AlarmMember.decode(key);
      let members = this.alarms.get(m.alarm);
      if (members === undefined) this.alarms.set(m.alarm, (members = new Set()));
      members.add(m.memberID);
    }
    this.alarmApplier = this.alarms.has(AlarmType.CORRUPT)
      ? 'corrupt'
      : this.alarms.has(AlarmType.NOSPACE)
        ? 'capped'
        : 'plain';
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
      this.compact({ revision: BigInt(target), physical: false }, undefined, true).then(
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
    if (this.membership.voters().length > 1) await this.transferLeadershipOnStop();
    this.stopped = true;
    if (this.compactionTimer !== undefined) clearInterval(this.compactionTimer);
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    clearTimeout(this.readRetryTimer);
    for (const cancel of [...this.waiting]) cancel();
    this.watchHub.close();
    this.auth.close();
    await this.raft.idle().catch(() => {});
    await this.raft.close();
    await this.transport?.close();
    for (const [id] of this.waiters) this.settle(id, undefined, new ServerError(ServerErrorCode.Stopped));
    for (const w of [...this.pendingReads, ...this.inflightReads]) w.reject(new ServerError(ServerErrorCode.Stopped));
    for (const r of this.readsAwaitingApply)
      for (const w of r.waiters) w.reject(new ServerError(ServerErrorCode.Stopped));
    await this.backend.close();
  }
}

function checkPeerUrls(urls: readonly string[]): void {
  if (urls.length === 0) throw new ServerError(ServerErrorCode.MemberBadURLs);
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new ServerError(ServerErrorCode.MemberBadURLs);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.port === '') {
      throw new ServerError(ServerErrorCode.MemberBadURLs);
    }
  }
}

function putQuotaCost(r: PutRequest): number {
  return KV_QUOTA_OVERHEAD_BYTES + r.key.length + r.value.length;
}

/** etcd's costTxn: the larger of the branches' put costs (deletes and ranges cost nothing). */
function txnQuotaCost(r: TxnRequest): number {
  const branch = (ops: TxnRequest['success']) => {
    let cost = 0;
    for (const op of ops) if (op.request?.$case === 'requestPut') cost += putQuotaCost(op.request.value);
    return cost;
  };
  return Math.max(branch(r.success), branch(r.failure));
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

/** Maps storage errors (compacted, future revision) to the server's catalogue. */
function toServerError(err: unknown): unknown {
  if (err instanceof ServerError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_MVCC_COMPACTED' || code === 'MVCC_COMPACTED') return new ServerError(ServerErrorCode.Compacted);
  if (code === 'ERR_MVCC_FUTURE_REV' || code === 'MVCC_FUTURE_REV') return new ServerError(ServerErrorCode.FutureRev);
  return err;
}
