/**
 * The member's gauges that dashboards read, with etcd's names and help texts, read off the
 * server's state at each scrape: leadership, raft progress, database size, keys, versions and
 * the round-trip times to peers.
 */
import type { StatusResponse } from '../../proto/index.ts';
import type { RangeCacheStats } from '../../server/kv-field-cache.ts';
import { Counter, Gauge, Histogram, type MetricsRegistry } from '../../server/metrics.ts';
import { type RoundTripStats, RTT_BUCKETS_SECONDS } from '../../transport/index.ts';
import { VERSION } from '../../version.ts';

/** What the gauges read of a member (EtcdServer provides it). */
export interface MemberMetricsSource {
  readonly memberId: bigint;
  hasLeader(): boolean;
  leader(): bigint;
  isLearner(): boolean;
  status(): Pick<StatusResponse, 'raftIndex' | 'raftAppliedIndex' | 'dbSize' | 'dbSizeInUse'>;
  /** Proposals made by this member and not yet applied. */
  pendingProposals(): number;
  /** The round-trip times to each peer, by member id. */
  peerRoundTrips(): ReadonlyMap<bigint, RoundTripStats>;
  rangeCacheStats(): RangeCacheStats;
  readonly store: {
    rev(): number;
    compactRev(): number;
    range(key: Uint8Array, end: Uint8Array, opts: { countOnly: boolean }): { count: number };
  };
}

const ALL_KEYS_FROM = Uint8Array.of(0);

/** `3.5.0` -> `3.5`, as etcd labels its cluster version. */
function majorMinor(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

export function registerMemberMetrics(
  registry: MetricsRegistry,
  server: MemberMetricsSource,
  options: { readonly quotaBackendBytes: number },
): void {
  const gauge = (name: string, help: string, labelNames?: readonly string[]): Gauge =>
    registry.register(new Gauge({ name, help, labelNames }));
  const hasLeader = gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.');
  const isLeader = gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.');
  const isLearner = gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.');
  const committed = gauge(
    'etcd_server_proposals_committed_total',
    'The total number of consensus proposals committed.',
  );
  const applied = gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.');
  const pending = gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.');
  const quota = gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.');
  const dbSize = gauge(
    'etcd_mvcc_db_total_size_in_bytes',
    'Total size of the underlying database physically allocated in bytes.',
  );
  const dbSizeInUse = gauge(
    'etcd_mvcc_db_total_size_in_use_in_bytes',
    'Total size of the underlying database logically in use in bytes.',
  );
  const keys = gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.');
  const currentRevision = gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.');
  const compactRevision = gauge(
    'etcd_debugging_mvcc_compact_revision',
    'The revision of the last compaction in store.',
  );
  const serverVersion = gauge(
    'etcd_server_version',
    "Which version is running. 1 for 'server_version' label with current version.",
    ['server_version'],
  );
  const clusterVersion = gauge(
    'etcd_cluster_version',
    "Which version is running. 1 for 'cluster_version' label with current cluster version",
    ['cluster_version'],
  );
  const serverId = gauge(
    'etcd_server_id',
    "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
    ['server_id'],
  );
  const roundTrip = registry.register(
    new Histogram({
      name: 'etcd_network_peer_round_trip_time_seconds',
      help: 'Round-Trip-Time histogram between peers',
      labelNames: ['To'],
      buckets: RTT_BUCKETS_SECONDS,
    }),
  );

  // The range cache (--range-cache-bytes) is etcd-ts's own: its metrics carry our prefix.
  const counter = (name: string, help: string): Counter => registry.register(new Counter({ name, help }));
  const cacheHits = counter(
    'etcd_ts_range_cache_hits_total',
    'Key-values of range responses copied from the range cache.',
  );
  const cacheMisses = counter(
    'etcd_ts_range_cache_misses_total',
    'Key-values of range responses read from the store because the range cache did not hold them.',
  );
  const cacheEvictions = counter(
    'etcd_ts_range_cache_evictions_total',
    'Key-values dropped from the range cache to make room for others.',
  );
  const cacheEntries = gauge('etcd_ts_range_cache_entries', 'Key-values held in the range cache.');
  const cacheBytes = gauge('etcd_ts_range_cache_allocated_bytes', 'Memory the range cache has allocated, in bytes.');
  const cacheCapacity = gauge(
    'etcd_ts_range_cache_capacity_bytes',
    'The most memory the range cache may allocate, in bytes (--range-cache-bytes, in whole slabs).',
  );

  serverVersion.labels(VERSION.server).set(1);
  clusterVersion.labels(majorMinor(VERSION.cluster)).set(1);
  quota.set(options.quotaBackendBytes);

  registry.addCollector(() => {
    const leader = server.leader();
    hasLeader.set(server.hasLeader() ? 1 : 0);
    isLeader.set(leader !== 0n && leader === server.memberId ? 1 : 0);
    isLearner.set(server.isLearner() ? 1 : 0);
    pending.set(server.pendingProposals());
    serverId.reset();
    serverId.labels(server.memberId.toString(16)).set(1);
    const store = server.store;
    currentRevision.set(store.rev());
    compactRevision.set(Math.max(0, store.compactRev()));
    keys.set(store.range(ALL_KEYS_FROM, ALL_KEYS_FROM, { countOnly: true }).count);
    roundTrip.reset();
    for (const [id, stats] of server.peerRoundTrips()) {
      roundTrip.labels(id.toString(16)).setCumulative(stats.cumulativeCounts, stats.sumSeconds, stats.count);
    }
    const cache = server.rangeCacheStats();
    cacheHits.labels().value = cache.hits;
    cacheMisses.labels().value = cache.misses;
    cacheEvictions.labels().value = cache.evictions;
    cacheEntries.set(cache.entries);
    cacheBytes.set(cache.allocatedBytes);
    cacheCapacity.set(cache.capacityBytes);
    const status = server.status();
    committed.set(Number(status.raftIndex));
    applied.set(Number(status.raftAppliedIndex));
    dbSize.set(Number(status.dbSize));
    dbSizeInUse.set(Number(status.dbSizeInUse));
  });
}
