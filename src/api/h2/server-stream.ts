import type { OutgoingHttpHeaders } from 'node:http2';

/**
 * What the gRPC calls and the HTTP routes use of a server-side HTTP/2 stream. Our own
 * `H2Stream` has it, and so has node:http2's `ServerHttp2Stream` (some tests' servers use
 * node:http2): the same names, arguments and events ('data', 'end', 'close', 'error',
 * 'wantTrailers', 'drain').
 */
export interface ServerStream {
  readonly destroyed: boolean;
  readonly closed: boolean;
  readonly headersSent: boolean;
  readonly readableEnded: boolean;
  /** The RST_STREAM code that ended the stream, once it has ended. */
  readonly rstCode?: number | undefined;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  /**
   * Our `H2Stream` only: how many bytes may wait for the flow-control window before `write`
   * returns false and `writableNeedDrain` turns true (settable per stream).
   */
  writeMarkBytes?: number;
  respond(
    headers?: OutgoingHttpHeaders,
    options?: { endStream?: boolean; waitForTrailers?: boolean; sendDate?: boolean },
  ): void;
  write(chunk: Uint8Array | string): boolean;
  end(chunk?: Uint8Array | string): unknown;
  sendTrailers(headers: OutgoingHttpHeaders): void;
  pause(): unknown;
  resume(): unknown;
  /** Resets the stream (RST_STREAM with `code`). */
  close(code?: number): void;
  destroy(): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: the listener shapes differ per event, as on EventEmitter.
  on(event: string, listener: (...args: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  once(event: string, listener: (...args: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * The body of `stream`, chunk by chunk, for a consumer that awaits between chunks: the stream
 * is paused from the call on (nothing received before the first `next()` is lost) and resumed
 * only while the consumer waits for the next chunk. Ends with the stream's 'end'; throws if
 * it closes or fails before that. The stream stays open when the consumer stops early, so an
 * answer can still be written on it.
 */
export function readChunks(stream: ServerStream): AsyncGenerator<Buffer> {
  stream.pause();
  return chunksOf(stream);
}

async function* chunksOf(stream: ServerStream): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    stream.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onClose = (): void => {
    if (!ended) failure ??= new Error(`stream closed before its end (RST_STREAM code ${stream.rstCode ?? 0})`);
    notify();
  };
  const onError = (err: Error): void => {
    failure ??= err;
    notify();
  };
  stream.on('data', onData);
  stream.on('end', onEnd);
  stream.on('close', onClose);
  stream.on('error', onError);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        yield chunk;
        continue;
      }
      if (failure !== null) throw failure;
      if (ended) return;
      const woken = new Promise<void>((ok) => {
        wake = ok;
      });
      stream.resume();
      await woken;
    }
  } finally {
    stream.removeListener('data', onData);
    stream.removeListener('end', onEnd);
    stream.removeListener('close', onClose);
    stream.removeListener('error', onError);
  }
}
