/** The KV service (etcdserverpb.KV): Range, Put, DeleteRange, Txn, Compact on a member. */
import { KVService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';

export function registerKvService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(KVService.Range, (req) => server.range(req));
  grpc.addMethod(KVService.Put, (req) => server.put(req));
  grpc.addMethod(KVService.DeleteRange, (req) => server.deleteRange(req));
  grpc.addMethod(KVService.Txn, (req) => server.txn(req));
  grpc.addMethod(KVService.Compact, (req) => server.compact(req));
}
