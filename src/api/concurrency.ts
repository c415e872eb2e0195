/** The Lock (v3lockpb.Lock) and Election (v3electionpb.Election) services on a member. */
import { ElectionService, LockService } from '../proto/index.ts';
import { Concurrency } from '../server/concurrency.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';

export function registerConcurrencyServices(grpc: GrpcServer, server: EtcdServer): void {
  const c = new Concurrency(server);
  grpc.addMethod(LockService.Lock, (req, call) => c.lock(req, call.signal));
  grpc.addMethod(LockService.Unlock, (req) => c.unlock(req.key));
  grpc.addMethod(ElectionService.Campaign, (req, call) => c.campaign(req, call.signal));
  grpc.addMethod(ElectionService.Proclaim, (req) => c.proclaim(req.leader, req.value));
  grpc.addMethod(ElectionService.Resign, (req) => c.resign(req.leader));
  grpc.addMethod(ElectionService.Leader, (req) => c.leader(req.name));
  grpc.addMethod(ElectionService.Observe, async (req, call) => {
    await c.observe(
      req.name,
      async (resp) => {
        if (!call.write(resp)) await call.drain();
      },
      call.signal,
    );
  });
}
