/** The Lease service (etcdserverpb.Lease) on a member. */
import { LeaseService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';
import type { HttpRouter } from './http.ts';

export function registerLeaseService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(LeaseService.LeaseGrant, (req) => server.leaseGrant(req));
  grpc.addMethod(LeaseService.LeaseRevoke, (req) => server.leaseRevoke(req));
  grpc.addMethod(LeaseService.LeaseTimeToLive, async (req) => {
    await server.linearizableReadNotify();
    return server.leaseTimeToLiveAnywhere(req);
  });
  grpc.addMethod(LeaseService.LeaseLeases, async () => {
    await server.linearizableReadNotify();
    return server.leaseLeases();
  });
  grpc.addMethod(LeaseService.LeaseKeepAlive, async (requests, call) => {
    for await (const req of requests) {
      const ttl = await server.leaseKeepAlive(req.ID);
      if (!call.write({ header: server.header(), ID: req.ID, TTL: ttl })) await call.drain();
    }
  });
}

/** The leader's side of lease requests forwarded by followers (etcd's peer `/leases`). */
export function servePeerLeases(peerHttp: HttpRouter, server: EtcdServer): void {
  const clusterMatches = (headers: Record<string, string | string[] | undefined>) =>
    headers['x-etcd-cluster-id'] === server.clusterId.toString(16);
  const leaseId = (body: Buffer): bigint | undefined => {
    const text = body.toString('utf8');
    return /^-?\d{1,20}$/.test(text) ? BigInt(text) : undefined;
  };
  const text = (status: number, body: string) => ({ status, headers: { 'content-type': 'text/plain' }, body });
  peerHttp.route('/leases/renew', ['POST'], (req) => {
    if (!clusterMatches(req.headers)) return text(412, 'cluster ID mismatch');
    const id = leaseId(req.body);
    if (id === undefined) return text(400, 'bad lease id');
    try {
      return text(200, server.leaseRenew(id).toString());
    } catch (err) {
      return text(503, String(err));
    }
  });
  peerHttp.route('/leases/ttl', ['POST'], (req) => {
    if (!clusterMatches(req.headers)) return text(412, 'cluster ID mismatch');
    const id = leaseId(req.body);
    if (id === undefined) return text(400, 'bad lease id');
    const resp = server.leaseTimeToLive({ ID: id, keys: false });
    return resp.TTL === -1n ? text(404, 'lease not found') : text(200, resp.TTL.toString());
  });
}
