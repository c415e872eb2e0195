/** The Lease service (etcdserverpb.Lease) on a member. */
import { LeaseService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';

export function registerLeaseService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(LeaseService.LeaseGrant, (req) => server.leaseGrant(req));
  grpc.addMethod(LeaseService.LeaseRevoke, (req) => server.leaseRevoke(req));
  grpc.addMethod(LeaseService.LeaseTimeToLive, async (req) => {
    await server.linearizableReadNotify();
    return server.leaseTimeToLive(req);
  });
  grpc.addMethod(LeaseService.LeaseLeases, async () => {
    await server.linearizableReadNotify();
    return server.leaseLeases();
  });
  grpc.addMethod(LeaseService.LeaseKeepAlive, async (requests, call) => {
    for await (const req of requests) {
      const ttl = server.leaseRenew(req.ID);
      if (!call.write({ header: server.header(), ID: req.ID, TTL: ttl })) await call.drain();
    }
  });
}
