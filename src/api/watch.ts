/**
 * The Watch service (etcdserverpb.Watch): one bidirectional stream carries any number of
 * watches. The stream lives until the client cancels it; a client that only half-closes its
 * side keeps receiving events, as with etcd.
 */
import { WatchService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import type { GrpcServer } from './grpc/index.ts';

/**
 * What a watch stream may buffer before its watchers stop receiving live events and catch up
 * from history once it drains. The HTTP/2 stream's own mark (64 KiB) is a few puts' events for a
 * hundred watchers of one key: a burst of puts then sent every watcher back to history, to
 * read again what was just sent live.
 */
export const WATCH_SEND_BUFFER_BYTES = 1024 * 1024;

export function registerWatchService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(
    WatchService.Watch,
    async (requests, call) => {
      let draining = false;
      const congested = (): void => {
        if (draining) return;
        draining = true;
        call.drain().then(
          () => {
            draining = false;
            stream.drained();
          },
          () => stream.close(),
        );
      };
      const writeFrames = call.writeFrames?.bind(call);
      const stream = server.watchHub.openStream({
        write(response) {
          const ok = call.write(response);
          if (!ok) congested();
          return ok;
        },
        // Events of a put are framed once for all of a stream's watchers and sent in one write.
        writeFrames:
          writeFrames === undefined
            ? undefined
            : (frames, count) => {
                const ok = writeFrames(frames, count);
                if (!ok) congested();
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
    },
    { sendBufferBytes: WATCH_SEND_BUFFER_BYTES },
  );
}
