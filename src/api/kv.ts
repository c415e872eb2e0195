/**
 * The KV service (etcdserverpb.KV): Range, Put, DeleteRange, Txn, Compact on a member. Writes
 * are proposed with the request bytes the client sent (`call.requestBytes`), not re-encoded;
 * a Range sent over gRPC is answered with the response the member encodes as it reads.
 */
import { KVService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import { EncodedResponse, FRAME_HEADER_BYTES, type GrpcServer } from './grpc/index.ts';

export function registerKvService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(KVService.Range, async (req, call) =>
    call.acceptsEncoded === true
      ? new EncodedResponse(await server.rangeEncoded(req, FRAME_HEADER_BYTES))
      : server.range(req),
  );
  grpc.addMethod(KVService.Put, (req, call) => server.put(req, call.requestBytes));
  grpc.addMethod(KVService.DeleteRange, (req, call) => server.deleteRange(req, call.requestBytes));
  grpc.addMethod(KVService.Txn, (req, call) => server.txn(req, call.requestBytes));
  grpc.addMethod(KVService.Compact, (req, call) => server.compact(req, call.requestBytes));
}
