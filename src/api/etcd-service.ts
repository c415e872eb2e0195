/**
 * The etcd server as a part of a member: starts the raft member on the member's data dir and
 * serves its gRPC services and health check.
 */
import type { MemberContext, MemberService } from '../embed/index.ts';
import { autoCompactionOf, parseInitialCluster, quotaBackendBytesOf } from '../server/config.ts';
import { EtcdServer } from '../server/server.ts';
import { authLayer, registerAuthService } from './auth.ts';
import { registerClusterService, servePeerMembers } from './cluster.ts';
import { registerConcurrencyServices } from './concurrency.ts';
import { MethodTable, serveGateway } from './gateway/index.ts';
import { registerGrpcHealthService } from './grpc-health.ts';
import { registerKvService } from './kv.ts';
import { learnerLayer } from './learner.ts';
import { registerLeaseService, servePeerLeases } from './lease.ts';
import { registerMaintenanceService, serveMaintenancePeer } from './maintenance.ts';
import {
  EtcdHealth,
  GrpcMetrics,
  MetricsRegistry,
  registerMemberMetrics,
  registerProcessMetrics,
  serveMetrics,
} from './metrics/index.ts';
import { RequireLeader } from './require-leader.ts';
import { registerWatchService } from './watch.ts';

/** etcd's request timeout (5 s plus two election timeouts), which bounds the health checks' reads. */
const REQUEST_TIMEOUT_BASE_MS = 5000;

export class EtcdService implements MemberService {
  readonly name = 'etcd';
  server: EtcdServer | undefined = undefined;
  private stopCorruptionCheck: () => void = () => {};
  private requireLeader: RequireLeader | undefined = undefined;

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
      rangeCacheBytes: config.rangeCacheBytes,
      maxTxnOps: config.maxTxnOps,
      autoCompactionMode: compaction.mode === 'off' ? '' : compaction.mode,
      progressNotifyIntervalMs: config.experimentalWatchProgressNotifyIntervalMs,
      autoCompactionRetention:
        compaction.mode === 'periodic'
          ? compaction.retentionMs
          : compaction.mode === 'revision'
            ? compaction.retentionRevisions
            : 0,
      auth: { token: config.authToken, tokenTtlSec: config.authTokenTtlSec, bcryptCost: config.bcryptCost },
      ...(ctx.peerDialTls === null ? {} : { peerTls: ctx.peerDialTls }),
      log: logger,
    });
    server.onFatal = (err) => {
      logger.error({ error: err.message }, 'member stopped after a fatal error');
      process.exitCode = 1;
    };
    this.server = server;
    // Handlers are registered through `grpc`: counted for grpc_server_* and reachable from the
    // JSON gateway, which calls them in-process.
    const registry = new MetricsRegistry();
    const grpcMetrics = new GrpcMetrics(registry, { extensive: config.metrics === 'extensive' });
    // The auth layer sits inside the metrics: refused calls are counted with their status. A
    // learner's refusals come before all, then those of calls that require a leader, as in etcd.
    const auth = authLayer(server, { clientCertAuth: config.clientCertAuth });
    const learner = learnerLayer(server);
    const requireLeader = new RequireLeader(server, config.electionTimeoutMs);
    this.requireLeader = requireLeader;
    const methods = new MethodTable(ctx.grpc, (desc, handler) =>
      learner(desc, requireLeader.layer(desc, grpcMetrics.wrap(desc, auth(desc, handler)))),
    );
    const grpc = methods.grpc;
    registerKvService(grpc, server);
    registerMaintenanceService(grpc, server);
    registerClusterService(grpc, server);
    servePeerMembers(ctx.peerHttp, server);
    servePeerLeases(ctx.peerHttp, server);
    this.stopCorruptionCheck = serveMaintenancePeer(
      ctx.peerHttp,
      server,
      config.experimentalCorruptCheckTimeMs,
      logger,
    );
    ctx.addPeerStreamHook((stream, headers) => server.peerStreamHandler(stream, headers));
    registerWatchService(grpc, server);
    registerLeaseService(grpc, server);
    registerConcurrencyServices(grpc, server);
    registerAuthService(grpc, server);
    registerGrpcHealthService(grpc);

    registry.registerAll(server.metrics.registry);
    registerMemberMetrics(registry, server, {
      quotaBackendBytes: quotaBackendBytesOf(config) ?? config.quotaBackendBytes,
    });
    registerProcessMetrics(registry);
    const health = new EtcdHealth(server, registry, REQUEST_TIMEOUT_BASE_MS + 2 * config.electionTimeoutMs);
    ctx.setHealthCheck(health.check);
    ctx.http.setCorsOrigins(['*']);
    serveMetrics(ctx.http, registry);
    serveGateway(ctx.http, methods, {
      onHandlerError: (error, path) => logger.warn({ method: path, error: String(error) }, 'gRPC handler failed'),
    });
  }

  async stop(): Promise<void> {
    this.stopCorruptionCheck();
    this.requireLeader?.close();
    await this.server?.close();
  }
}
