/**
 * The Watch service (etcdserverpb.Watch): one bidirectional stream carries any number of
 * watches. The stream lives until the client cancels it; a client that only half-closes its
 * side keeps receiving events, as with etcd.
 */
import { WatchService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';

export function registerWatchService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(WatchService.Watch, async (requests, call) => {
    let draining = false;
    const stream = server.watchHub.openStream({
      write(response) {
        const ok = call.write(response);
        if (!ok && !draining) {
          draining = true;
          call.drain().then(
            () => {
              draining = false;
              stream.drained();
            },
            () => stream.close(),
          );
        }
        return ok;
      },
    });
    try {
      for await (const req of requests) {
        const u = req.requestUnion;
        if (u === undefined) continue;
        if (u.$case === 'createRequest') stream.create(u.value);
        else if (u.$case === 'cancelRequest') stream.cancel(u.value.watchId);
        else stream.progress();
      }
      if (!call.signal.aborted) {
        await new Promise<void>((resolve) => call.signal.addEventListener('abort', () => resolve(), { once: true }));
      }
    } finally {
      stream.close();
    }
  });
}
