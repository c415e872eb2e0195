/**
 * The Watch service (etcdserverpb.Watch): one bidirectional stream carries any number of
 * watches. The stream lives until the client cancels it; a client that only half-closes its
 * side keeps receiving events, as with etcd.
 */
import { WatchService } from '../proto/index.ts';
import type { EtcdServer } from '../server/server.ts';
import { type GrpcServer, untilCallEnds } from './grpc/index.ts';

/**
 * What a watch stream may buffer before its watchers stop receiving live events and catch up
 * from history once it drains. Events are held and merged as soon as anything waits for the
 * client's window (the stream's write mark is 0 here, see below), so this is reached when a
 * release of held events or a catch-up finds the client still slow: with the HTTP/2 stream's
 * default mark (64 KiB), a few puts' events for a hundred watchers of one key, a burst of puts
 * sent every watcher back to history to read again what was just sent.
 */
export const WATCH_SEND_BUFFER_BYTES = 1024 * 1024;

export function registerWatchService(grpc: GrpcServer, server: EtcdServer): void {
  grpc.addMethod(
    WatchService.Watch,
    async (requests, call) => {
      // One wait at a time for room on the stream; stream.drained() when there is.
      let waiting = false;
      const belowMark = call.belowMark?.bind(call);
      const room = belowMark ?? call.drain.bind(call);
      const waitForRoom = (): void => {
        if (waiting) return;
        waiting = true;
        room().then(
          () => {
            waiting = false;
            stream.drained();
          },
          () => stream.close(),
        );
      };
      const writeFrames = call.writeFrames?.bind(call);
      const stream = server.watchHub.openStream({
        write(response) {
          const ok = call.write(response);
          if (!ok) waitForRoom();
          return ok;
        },
        // Events of a put are framed once for all of a stream's watchers and sent in one write.
        writeFrames:
          writeFrames === undefined
            ? undefined
            : (frames, count) => {
                const ok = writeFrames(frames, count);
                if (!ok) waitForRoom();
                return ok;
              },
        // A client slow to read gets the events it missed merged per watcher (WatchStream.holds).
        backlogged: belowMark === undefined ? undefined : () => call.backlogged === true,
        waitForRoom,
      });
      try {
        for await (const req of requests) {
          const u = req.requestUnion;
          if (u === undefined) continue;
          if (u.$case === 'createRequest') stream.create(u.value);
          else if (u.$case === 'cancelRequest') stream.cancel(u.value.watchId);
          else stream.progress();
        }
        await untilCallEnds(call);
      } finally {
        stream.close();
      }
    },
    // Backlogged as soon as responses wait for the client's window: the events that come then
    // are held and merged (WatchStream.holds) instead of queued one response per event.
    { sendBufferBytes: WATCH_SEND_BUFFER_BYTES, streamWriteMarkBytes: 0 },
  );
}
