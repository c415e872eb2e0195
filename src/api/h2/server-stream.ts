import type { OutgoingHttpHeaders } from 'node:http2';

/**
 * What the gRPC calls and the HTTP routes use of a server-side HTTP/2 stream. Our own
 * `H2Stream` has it, and so has node:http2's `ServerHttp2Stream` (the tests' servers and the
 * peer port use node:http2): the same names, arguments and events ('data', 'end', 'close',
 * 'error', 'wantTrailers', 'drain').
 */
export interface ServerStream {
  readonly destroyed: boolean;
  readonly closed: boolean;
  readonly headersSent: boolean;
  readonly readableEnded: boolean;
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
