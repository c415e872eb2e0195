/**
 * The Cluster service (etcdserverpb.Cluster): MemberList, MemberAdd, MemberRemove, MemberUpdate,
 * MemberPromote; and the peer port's `/members` (the member list a joining member asks for).
 */
import { ClusterService, type Member as ProtoMember } from '../proto/index.ts';
import { encodeMember, type Member } from '../server/membership.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';
import type { HttpRouter } from './http.ts';

function toProto(m: Member): ProtoMember {
  return { ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

export function registerClusterService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(ClusterService.MemberList, async (req) => {
    if (req.linearizable) await server.linearizableReadNotify();
    return { header: server.header(), members: server.members().map(toProto) };
  });
  grpc.addMethod(ClusterService.MemberAdd, async (req) => {
    const { member, members } = await server.memberAdd(req.peerURLs, req.isLearner);
    return { header: server.header(), member: toProto(member), members: members.map(toProto) };
  });
  grpc.addMethod(ClusterService.MemberRemove, async (req) => {
    const members = await server.memberRemove(req.ID);
    return { header: server.header(), members: members.map(toProto) };
  });
  grpc.addMethod(ClusterService.MemberUpdate, async (req) => {
    const members = await server.memberUpdate(req.ID, req.peerURLs);
    return { header: server.header(), members: members.map(toProto) };
  });
  grpc.addMethod(ClusterService.MemberPromote, async (req) => {
    const members = await server.memberPromote(req.ID);
    return { header: server.header(), members: members.map(toProto) };
  });
}

/** etcd's peer `/members`: the member list as JSON, the cluster id in `X-Etcd-Cluster-ID`. */
export function servePeerMembers(peerHttp: HttpRouter, server: EtcdServer): void {
  peerHttp.route('/members', ['GET'], () => ({
    status: 200,
    headers: { 'content-type': 'application/json', 'x-etcd-cluster-id': server.clusterId.toString(16) },
    body: `[${server
      .members()
      .map((m) => Buffer.from(encodeMember(m)).toString())
      .join(',')}]`,
  }));
}
