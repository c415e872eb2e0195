/**
 * The etcd server as a part of a member: starts the raft member on the member's data dir and
 * serves its gRPC services and health check.
 */
import type { MemberContext, MemberService } from '../embed/index.ts';
import { autoCompactionOf, parseInitialCluster, quotaBackendBytesOf } from '../server/config.ts';
import { EtcdServer } from '../server/server.ts';
import { registerClusterService, servePeerMembers } from './cluster.ts';
import { registerConcurrencyServices } from './concurrency.ts';
import { registerKvService } from './kv.ts';
import { registerLeaseService, servePeerLeases } from './lease.ts';
import { registerMaintenanceService } from './maintenance.ts';
import { registerWatchService } from './watch.ts';

export class EtcdService implements MemberService {
  readonly name = 'etcd';
  server: EtcdServer | undefined = undefined;

  async start(ctx: MemberContext): Promise<void> {
    const { config, dataDir, logger } = ctx;
    const compaction = autoCompactionOf(config);
    const server = await EtcdServer.start({
      name: config.name,
      walDir: dataDir.walDir,
      snapDir: dataDir.snapDir,
      initialAdvertisePeerUrls: config.initialAdvertisePeerUrls,
      advertiseClientUrls: config.advertiseClientUrls,
      initialCluster: parseInitialCluster(config.initialCluster),
      initialClusterToken: config.initialClusterToken,
      initialClusterState: config.initialClusterState,
      heartbeatMs: config.heartbeatIntervalMs,
      electionMs: config.electionTimeoutMs,
      snapshotCount: config.snapshotCount,
      snapshotCatchUpEntries: config.snapshotCatchupEntries,
      quotaBackendBytes: quotaBackendBytesOf(config) ?? Number.MAX_SAFE_INTEGER,
      maxRequestBytes: config.maxRequestBytes,
      maxTxnOps: config.maxTxnOps,
      autoCompactionMode: compaction.mode === 'off' ? '' : compaction.mode,
      progressNotifyIntervalMs: config.experimentalWatchProgressNotifyIntervalMs,
      autoCompactionRetention:
        compaction.mode === 'periodic'
          ? compaction.retentionMs
          : compaction.mode === 'revision'
            ? compaction.retentionRevisions
            : 0,
      log: logger,
    });
    server.onFatal = (err) => {
      logger.error({ error: err.message }, 'member stopped after a fatal error');
      process.exitCode = 1;
    };
    this.server = server;
    registerKvService(ctx.grpc, server);
    registerMaintenanceService(ctx.grpc, server);
    registerClusterService(ctx.grpc, server);
    servePeerMembers(ctx.peerHttp, server);
    servePeerLeases(ctx.peerHttp, server);
    ctx.addPeerStreamHook((stream, headers) => server.peerStreamHandler(stream, headers));
    registerWatchService(ctx.grpc, server);
    registerLeaseService(ctx.grpc, server);
    registerConcurrencyServices(ctx.grpc, server);
    ctx.setHealthCheck(() => {
      if (!server.hasLeader()) return { healthy: false, reason: 'RAFT NO LEADER' };
      if (server.alarmList().length > 0) return { healthy: false, reason: 'ALARM NOSPACE' };
      return { healthy: true, reason: '' };
    });
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }
}
