/**
 * readChunks (src/api/h2/server-stream.ts): a request body read chunk by chunk by a consumer
 * that awaits between chunks, on our own HTTP/2 server streams (the peer listener's snapshot
 * receiver reads this way), with node:http2's client on the other end.
 */
import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from 'node:http2';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { H2Connection, type H2Stream, readChunks } from '../../src/api/h2/index.ts';
import { readAnswer } from '../helpers/h2-answer.ts';

const TIMEOUT = { timeout: 20_000 };
const cleanups: (() => void)[] = [];
after(() => {
  for (const cleanup of cleanups) cleanup();
});

/** A server on 127.0.0.1 whose streams go to `onStream`, and a client session to it. */
async function serve(onStream: (stream: H2Stream, headers: IncomingHttpHeaders) => void): Promise<ClientHttp2Session> {
  const connections: H2Connection[] = [];
  const server = createNetServer((socket) => {
    connections.push(
      new H2Connection(socket, {
        maxConcurrentStreams: 10,
        streamWindowBytes: 64 * 1024,
        connectionWindowBytes: 1024 * 1024,
        onStream,
      }),
    );
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('error', () => {});
  cleanups.push(() => {
    session.destroy();
    for (const connection of connections) connection.destroy();
    server.close();
  });
  return session;
}

describe('readChunks', () => {
  test(
    'nothing sent before the consumer starts reading is lost; chunks come in order until the end',
    TIMEOUT,
    async () => {
      const parts = Array.from({ length: 40 }, (_, i) => Buffer.alloc(3000, i));
      const read: Promise<Buffer> = new Promise((resolve, reject) => {
        void serve((stream) => {
          const chunks = readChunks(stream);
          void (async () => {
            // The body arrives meanwhile: it must wait on the paused stream.
            await sleep(100);
            const received: Buffer[] = [];
            for await (const chunk of chunks) {
              received.push(Buffer.from(chunk));
              await sleep(1);
            }
            stream.respond({ ':status': 200 });
            stream.end('done');
            resolve(Buffer.concat(received));
          })().catch(reject);
        }).then((session) => {
          const request = session.request({ ':method': 'POST', ':path': '/body' });
          for (const part of parts) request.write(part);
          request.end();
          void readAnswer(request);
        });
      });
      assert.deepEqual(await read, Buffer.concat(parts));
    },
  );

  test('a stream that closes before its end (the connection lost) is an error', TIMEOUT, async () => {
    let failure: Error | null = null;
    const failed = new Promise<void>((resolve) => {
      void serve((stream) => {
        void (async () => {
          try {
            for await (const _ of readChunks(stream)) {
              // Reading until the client gives up.
            }
          } catch (err) {
            failure = err as Error;
          }
          resolve();
        })();
      }).then((session) => {
        const request = session.request({ ':method': 'POST', ':path': '/body' });
        request.on('error', () => {});
        request.write(Buffer.alloc(100));
        // node:http2's request.close() ends the body first; a lost connection does not.
        setTimeout(() => session.destroy(), 50);
      });
    });
    await failed;
    assert.match(String(failure), /stream closed before its end \(RST_STREAM code 8\)/);
  });

  test('a consumer that stops early can still answer on the stream', TIMEOUT, async () => {
    const session = await serve((stream) => {
      void (async () => {
        for await (const chunk of readChunks(stream)) {
          if (chunk.length > 0) break;
        }
        stream.respond({ ':status': 400 });
        stream.end('refused after the first chunk');
        stream.resume();
      })();
    });
    const request = session.request({ ':method': 'POST', ':path': '/body' });
    request.on('error', () => {});
    request.write(Buffer.alloc(1000, 1));
    const answered = readAnswer(request);
    request.end(Buffer.alloc(1000, 2));
    assert.deepEqual(await answered, { status: 400, body: 'refused after the first chunk' });
  });
});
