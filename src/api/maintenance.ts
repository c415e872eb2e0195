/**
 * The Maintenance service (etcdserverpb.Maintenance) as etcd answers it: Status, HashKV, Hash,
 * Alarm, MoveLeader, Defragment, Snapshot (a bbolt file in etcd's format followed by its
 * SHA-256, see src/server/snapshot.ts) and Downgrade.
 */
import {
  AlarmRequest_AlarmAction,
  DowngradeRequest_DowngradeAction,
  MaintenanceService,
  type SnapshotResponse,
} from '../proto/index.ts';
import { CorruptionMonitor, PEER_HASHKV_PATH, peerHashBody } from '../server/corruption.ts';
import type { EtcdServer, MemberLog } from '../server/server.ts';
import { EtcdSnapshotStream, SNAPSHOT_CLUSTER_VERSION } from '../server/snapshot.ts';
import { Bucket } from '../storage/backend/index.ts';
import { etcdError, GrpcError, GrpcStatus } from './errors.ts';
import type { GrpcServer } from './grpc/index.ts';
import type { HttpRouter } from './http.ts';

/** Where etcd 3.5 keeps the downgrade job: bucket `cluster`, key `downgrade`, JSON. */
const DOWNGRADE_KEY = Buffer.from('downgrade');

export function registerMaintenanceService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(MaintenanceService.Status, () => server.status());
  grpc.addMethod(MaintenanceService.HashKV, async (req) => {
    await server.linearizableReadNotify();
    return server.hashKV(Number(req.revision));
  });
  grpc.addMethod(MaintenanceService.Hash, async () => {
    const { hash, revision } = await server.store.hash();
    return { header: server.header(revision), hash };
  });
  grpc.addMethod(MaintenanceService.MoveLeader, async (req) => {
    await server.moveLeader(req.targetID);
    return { header: server.header() };
  });
  grpc.addMethod(MaintenanceService.Alarm, async (req) => {
    switch (req.action) {
      case AlarmRequest_AlarmAction.GET:
        await server.linearizableReadNotify();
        return { header: server.header(), alarms: server.alarmList(req.alarm) };
      case AlarmRequest_AlarmAction.ACTIVATE:
      case AlarmRequest_AlarmAction.DEACTIVATE: {
        const activate = req.action === AlarmRequest_AlarmAction.ACTIVATE;
        const alarms = await server.proposeAlarm(activate, req.alarm, req.memberID);
        return { header: server.header(), alarms };
      }
      default:
        throw new GrpcError(GrpcStatus.INVALID_ARGUMENT, `etcdserver: unknown alarm action ${req.action}`);
    }
  });
  grpc.addMethod(MaintenanceService.Defragment, async () => {
    await server.currentBackend().defragment();
    return { header: server.header() };
  });
  grpc.addMethod(MaintenanceService.Snapshot, async (_req, call) => {
    const snapshot = await EtcdSnapshotStream.open(server.currentBackend());
    try {
      let first = true;
      for await (const chunk of snapshot.chunks()) {
        if (call.signal.aborted) return;
        const resp: SnapshotResponse = {
          header: first ? server.header(snapshot.revision) : undefined,
          remainingBytes: BigInt(chunk.remainingBytes),
          blob: chunk.blob,
        };
        first = false;
        if (!call.write(resp)) await call.drain();
      }
    } finally {
      await snapshot.close();
    }
  });
  grpc.addMethod(MaintenanceService.Downgrade, async (req) => {
    const target = clusterVersionOf(req.version);
    // etcd reads the downgrade state after a linearizable read: never a stale answer.
    await server.linearizableReadNotify();
    const version = `${CLUSTER_VERSION.major}.${CLUSTER_VERSION.minor}.0`;
    const job = downgradeJob(server);
    switch (req.action) {
      case DowngradeRequest_DowngradeAction.VALIDATE:
      case DowngradeRequest_DowngradeAction.ENABLE: {
        if (target === null) throw etcdError('WrongDowngradeVersionFormat');
        if (target.major !== CLUSTER_VERSION.major || target.minor !== CLUSTER_VERSION.minor - 1) {
          throw etcdError('InvalidDowngradeTargetVersion');
        }
        if (job.enabled) throw etcdError('DowngradeInProcess');
        if (req.action === DowngradeRequest_DowngradeAction.ENABLE) {
          await server.proposeDowngrade(downgradeJson(true, `${target.major}.${target.minor}.0`));
        }
        return { header: server.header(), version };
      }
      case DowngradeRequest_DowngradeAction.CANCEL:
        if (!job.enabled) throw etcdError('NoInflightDowngrade');
        await server.proposeDowngrade(downgradeJson(false, ''));
        return { header: server.header(), version };
      default:
        throw new GrpcError(GrpcStatus.INVALID_ARGUMENT, 'etcdserver: unknown method');
    }
  });
}

const CLUSTER_VERSION = (() => {
  const [major, minor] = SNAPSHOT_CLUSTER_VERSION.split('.').map(Number);
  return { major: major!, minor: minor! };
})();

/** etcd's convertToClusterVersion: a semantic version, or major.minor; only major.minor count. */
function clusterVersionOf(text: string): { major: number; minor: number } | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)?$/.exec(text);
  if (m === null) return null;
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** etcd's membership.DowngradeInfo as it stores it. */
function downgradeJson(enabled: boolean, targetVersion: string): Uint8Array {
  return Buffer.from(JSON.stringify({ 'target-version': targetVersion, enabled }));
}

function downgradeJob(server: EtcdServer): { enabled: boolean; targetVersion: string } {
  const raw = server.currentBackend().get(Bucket.cluster, DOWNGRADE_KEY);
  if (raw === undefined) return { enabled: false, targetVersion: '' };
  const info = JSON.parse(Buffer.from(raw).toString('utf8')) as { enabled?: boolean; 'target-version'?: string };
  return { enabled: info.enabled === true, targetVersion: info['target-version'] ?? '' };
}

/**
 * The peer side of maintenance: etcd's `/members/hashkv` (a member's HashKV at the revision the
 * leader asks for), and the periodic corruption check when `corruptCheckTimeMs` > 0. Returns
 * the function that stops the check.
 */
export function serveMaintenancePeer(
  peerHttp: HttpRouter,
  server: EtcdServer,
  corruptCheckTimeMs: number,
  log: MemberLog,
): () => void {
  const text = (status: number, body: string) => ({
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: `${body}\n`,
  });
  peerHttp.route(PEER_HASHKV_PATH, ['GET', 'POST'], (req) => {
    if (req.headers['x-etcd-cluster-id'] !== server.clusterId.toString(16)) return text(412, 'clusterID mismatch');
    let revision: number;
    try {
      const body = JSON.parse(req.body.length === 0 ? '{}' : req.body.toString('utf8')) as { revision?: unknown };
      revision = Number(body.revision ?? 0);
      if (!Number.isSafeInteger(revision)) throw new RangeError('revision');
    } catch {
      return text(400, 'error unmarshalling request');
    }
    try {
      const h = server.store.hashKV(revision);
      return {
        status: 200,
        headers: { 'content-type': 'application/json', 'x-etcd-cluster-id': server.clusterId.toString(16) },
        body: peerHashBody(server.memberId, server.clusterId, h),
      };
    } catch (err) {
      return text(400, err instanceof Error ? err.message : String(err));
    }
  });
  if (!(corruptCheckTimeMs > 0)) return () => {};
  const monitor = new CorruptionMonitor(
    {
      memberId: server.memberId,
      clusterId: server.clusterId,
      leader: () => server.leader(),
      members: () => server.members(),
      hashKVAt: (revision) => {
        const h = server.store.hashKV(revision);
        return { hash: h.hash, revision: h.currentRevision, compactRevision: h.compactRevision };
      },
      linearizableReadNotify: () => server.linearizableReadNotify(),
      proposeAlarm: (activate, alarm, memberId) => server.proposeAlarm(activate, alarm, memberId),
    },
    corruptCheckTimeMs,
    log,
  );
  monitor.start();
  return () => monitor.stop();
}
