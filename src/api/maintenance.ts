/**
 * The parts of the Maintenance and Cluster services a single member answers on its own:
 * Status, HashKV and Alarm (what `etcdctl endpoint status|hashkv` and `alarm list` need).
 */
import { AlarmRequest_AlarmAction, MaintenanceService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';

export function registerMaintenanceService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(MaintenanceService.Status, () => server.status());
  grpc.addMethod(MaintenanceService.HashKV, async (req) => {
    await server.linearizableReadNotify();
    return server.hashKV(Number(req.revision));
  });
  grpc.addMethod(MaintenanceService.MoveLeader, async (req) => {
    await server.moveLeader(req.targetID);
    return { header: server.header() };
  });
  grpc.addMethod(MaintenanceService.Alarm, async (req) => {
    if (req.action === AlarmRequest_AlarmAction.ACTIVATE || req.action === AlarmRequest_AlarmAction.DEACTIVATE) {
      if (req.alarm !== 0) await server.proposeAlarm(req.action === AlarmRequest_AlarmAction.ACTIVATE, req.alarm);
    }
    return { header: server.header(), alarms: server.alarmList() };
  });
}
