import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http2';
import type { H2Connection } from './connection.ts';
import { ErrorCode, MAX_WINDOW_BYTES } from './frames.ts';
import { encodeHeaders, type HeaderField } from './hpack.ts';
import { asBuffer } from './output.ts';

/** A stream's write returns false once this many of its bytes wait for flow-control window (by default). */
export const STREAM_WRITE_MARK_BYTES = 64 * 1024;
/** ... or once this much of the whole connection's output waits for the client to read it. */
export const CONNECTION_BACKLOG_MARK_BYTES = 16 * STREAM_WRITE_MARK_BYTES;

/** What `respond` takes besides the headers (the options of node:http2 that we serve). */
export interface RespondOptions {
  /** The response ends with these headers (a trailers-only response). */
  readonly endStream?: boolean;
  /** `end()` emits 'wantTrailers' instead of ending the stream; `sendTrailers` ends it. */
  readonly waitForTrailers?: boolean;
  /** Adds a `date` header (default true). */
  readonly sendDate?: boolean;
}

/**
 * The server side of one HTTP/2 stream, with the members of node:http2's `ServerHttp2Stream`
 * that the gRPC calls and the HTTP routes use, and the same events: 'data' (a Buffer, a view
 * of the received bytes), 'end', 'wantTrailers', 'drain' and 'close' (emitted on the next
 * tick). It never emits 'error': a reset or a lost connection is a 'close' with `rstCode` set.
 *
 * Writes are HTTP/2 DATA frames, sent at once while the flow-control windows allow and queued
 * on the stream after that; the connection writes the frames of one event-loop turn together.
 */
export class H2Stream extends EventEmitter {
  readonly id: number;
  readonly connection: H2Connection;
  headersSent = false;
  /** No frame can be sent or received any more. */
  closed = false;
  destroyed = false;
  /** The RST_STREAM code that ended the stream, or NO_ERROR when it ended normally. */
  rstCode: number | undefined = undefined;
  /** 'end' has been emitted: the client ended its side and all its data was delivered. */
  readableEnded = false;

  // ---- receiving ----
  #flowing = true;
  /** Data received while paused, delivered on resume. */
  #inbox: Buffer[] = [];
  #remoteDone = false;
  /** What the client may still send before we credit it. */
  #recvWindow: number;
  /** Bytes received and delivered but not yet credited back. */
  #recvUnacked = 0;
  readonly #recvWindowMax: number;

  // ---- sending ----
  /** What we may still send before the client credits us. */
  #sendWindow: number;
  /** Bytes waiting for window: pending[0] from pendingOffset on, then the rest. */
  #pending: Buffer[] = [];
  #pendingOffset = 0;
  #pendingBytes = 0;
  /** `end()` was called: END_STREAM goes out after the pending data (and the trailers). */
  #ending = false;
  #waitForTrailers = false;
  /** The trailers' header block, sent after the pending data. */
  #trailers: Buffer | null = null;
  /** END_STREAM (or RST_STREAM) has been written: nothing more goes out. */
  #localDone = false;
  #needDrain = false;
  /** `write` returns false once more than this waits for window (STREAM_WRITE_MARK_BYTES unless set). */
  writeMarkBytes = STREAM_WRITE_MARK_BYTES;
  /** Closed normally while paused with data not yet delivered: 'close' follows the delivery on resume. */
  #closeAfterInbox = false;

  constructor(connection: H2Connection, id: number, sendWindow: number, recvWindow: number) {
    super();
    this.connection = connection;
    this.id = id;
    this.#sendWindow = sendWindow;
    this.#recvWindow = recvWindow;
    this.#recvWindowMax = recvWindow;
  }

  // ---- the ServerHttp2Stream surface ----

  get writableLength(): number {
    return this.#pendingBytes + this.connection.backlogBytes;
  }

  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  respond(headers: OutgoingHttpHeaders = {}, options: RespondOptions = {}): void {
    if (this.headersSent) throw new Error('h2: response headers already sent');
    if (this.#localDone) return;
    this.headersSent = true;
    const endStream = options.endStream === true;
    this.#waitForTrailers = options.waitForTrailers === true;
    const block = encodeCached(headers, true, options.sendDate !== false);
    this.connection.writeHeaders(this.id, block, endStream);
    if (endStream) this.#finishLocal();
  }

  write(chunk: Uint8Array | string): boolean {
    if (this.#localDone || this.#ending) return false;
    if (!this.headersSent) this.respond({ ':status': 200 });
    this.#enqueue(chunk);
    this.pump();
    return this.#hasRoom();
  }

  end(chunk?: Uint8Array | string): void {
    if (this.#localDone || this.#ending) return;
    if (!this.headersSent) this.respond({ ':status': 200 });
    // Queued, not sent: the last DATA frame carries END_STREAM when no trailers follow.
    if (chunk !== undefined) this.#enqueue(chunk);
    this.#ending = true;
    // As on node:http2, the stream then stays open until sendTrailers() (or close()); with
    // nobody listening for 'wantTrailers' it ends with empty trailers.
    if (this.#waitForTrailers && !this.emit('wantTrailers')) this.sendTrailers({});
    this.pump();
  }

  sendTrailers(headers: OutgoingHttpHeaders): void {
    if (this.#localDone || this.#trailers !== null) return;
    this.#trailers = encodeCached(headers, false, false);
    this.#waitForTrailers = true;
    this.#ending = true;
    this.pump();
  }

  pause(): this {
    this.#flowing = false;
    return this;
  }

  resume(): this {
    if (this.#flowing) return this;
    this.#flowing = true;
    process.nextTick(deliverInbox, this);
    return this;
  }

  /** Resets the stream with `code` (RST_STREAM); pending data is dropped. */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (this.closed) return;
    if (!this.#localDone || !this.#remoteDone) this.connection.writeReset(this.id, code);
    this.#terminate(code);
  }

  destroy(): this {
    this.close(ErrorCode.CANCEL);
    return this;
  }

  // ---- called by the connection ----

  /** A DATA frame's payload (`frameBytes` counts its padding too, for flow control). */
  receiveData(data: Buffer, frameBytes: number, endStream: boolean): void {
    if (this.#remoteDone) {
      this.close(ErrorCode.STREAM_CLOSED);
      return;
    }
    this.#recvWindow -= frameBytes;
    if (this.#recvWindow < 0) {
      this.close(ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    this.#recvUnacked += frameBytes;
    if (data.length > 0) {
      if (this.#flowing && this.#inbox.length === 0) this.emit('data', data);
      else this.#inbox.push(data);
    }
    if (endStream) this.receiveEnd();
    else this.#creditIfDue();
  }

  /** END_STREAM from the client (on DATA or on trailers). */
  receiveEnd(): void {
    if (this.#remoteDone) return;
    this.#remoteDone = true;
    if (this.#flowing && this.#inbox.length === 0) this.#emitEnd();
    if (this.#localDone) this.#end(ErrorCode.NO_ERROR);
  }

  receiveReset(code: number): void {
    this.#terminate(code);
  }

  receiveWindowUpdate(increment: number): void {
    this.#sendWindow += increment;
    if (this.#sendWindow > MAX_WINDOW_BYTES) {
      this.close(ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    this.pump();
  }

  /** SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (may go negative, RFC 9113 6.9.2). */
  adjustSendWindow(delta: number): void {
    this.#sendWindow += delta;
  }

  /** The connection is gone: the stream closes without any more frames. */
  abort(): void {
    this.#terminate(ErrorCode.CANCEL);
  }

  /**
   * Emits 'drain' if the stream said it was full and is below its marks again. True when it
   * no longer waits (a 'drain' listener that wrote until full again makes it wait anew).
   */
  checkDrain(): boolean {
    if (!this.#needDrain) return true;
    if (!this.#hasRoomNow()) return false;
    this.#needDrain = false;
    this.emit('drain');
    return !this.#needDrain;
  }

  /** Sends pending data as far as both windows allow, then the trailers or END_STREAM. */
  pump(): void {
    if (this.#localDone) return;
    const conn = this.connection;
    while (this.#pendingBytes > 0) {
      const head = this.#pending[0] as Buffer;
      const left = head.length - this.#pendingOffset;
      const n = Math.min(left, conn.maxFrameBytes, this.#sendWindow, conn.sendWindow);
      if (n <= 0) {
        conn.waitForWindow(this);
        return;
      }
      const last = n === this.#pendingBytes && this.#ending && !this.#waitForTrailers;
      const start = this.#pendingOffset;
      conn.writeData(this.id, head.subarray(start, start + n), last);
      this.#sendWindow -= n;
      conn.sendWindow -= n;
      conn.queuedBytes -= n;
      this.#pendingBytes -= n;
      if (n === left) {
        this.#pending.shift();
        this.#pendingOffset = 0;
      } else {
        this.#pendingOffset += n;
      }
      if (last) {
        this.#finishLocal();
        return;
      }
    }
    if (!this.#ending) return;
    if (this.#waitForTrailers) {
      if (this.#trailers === null) return;
      conn.writeHeaders(this.id, this.#trailers, true);
    } else {
      conn.writeData(this.id, EMPTY, true);
    }
    this.#finishLocal();
  }

  // ---- internals ----

  #enqueue(chunk: Uint8Array | string): void {
    if (chunk.length === 0) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : asBuffer(chunk);
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
    this.connection.queuedBytes += buf.length;
  }

  #hasRoomNow(): boolean {
    return this.#pendingBytes <= this.writeMarkBytes && this.connection.backlogBytes <= CONNECTION_BACKLOG_MARK_BYTES;
  }

  #hasRoom(): boolean {
    if (this.#hasRoomNow()) return true;
    if (!this.#needDrain) {
      this.#needDrain = true;
      this.connection.waitForDrain(this);
    }
    return false;
  }

  /** Credits the client with what it sent once half the window is used (not while paused). */
  #creditIfDue(): void {
    if (!this.#flowing || this.#recvUnacked < this.#recvWindowMax / 2) return;
    const credit = this.#recvUnacked;
    this.#recvUnacked = 0;
    this.#recvWindow += credit;
    this.connection.writeWindowUpdate(this.id, credit);
  }

  /** Called on resume (next tick): what arrived while paused, then 'end' if the client ended. */
  deliverInbox(): void {
    while (this.#flowing && this.#inbox.length > 0) this.emit('data', this.#inbox.shift() as Buffer);
    if (!this.#flowing) return;
    if (this.#remoteDone) this.#emitEnd();
    else if (!this.closed) this.#creditIfDue();
    if (this.#closeAfterInbox) {
      this.#closeAfterInbox = false;
      this.emit('close');
    }
  }

  #emitEnd(): void {
    if (this.readableEnded) return;
    this.readableEnded = true;
    this.emit('end');
  }

  #finishLocal(): void {
    this.#localDone = true;
    this.#ending = true;
    if (this.#remoteDone) this.#end(ErrorCode.NO_ERROR);
  }

  /** Reset or lost: both sides are done, what was queued either way is dropped. */
  #terminate(code: number): void {
    if (this.closed) return;
    this.#localDone = true;
    this.#remoteDone = true;
    this.connection.queuedBytes -= this.#pendingBytes;
    this.#pending = [];
    this.#pendingOffset = 0;
    this.#pendingBytes = 0;
    this.#inbox = [];
    this.#end(code);
  }

  #end(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyed = true;
    this.rstCode = code;
    this.connection.streamClosed(this);
    // Data received before a normal end is still delivered (a reset dropped it), then 'close'.
    if (this.#inbox.length > 0 && !this.#flowing) this.#closeAfterInbox = true;
    else process.nextTick(emitClose, this);
  }
}

const EMPTY = Buffer.alloc(0);

function deliverInbox(stream: H2Stream): void {
  stream.deliverInbox();
}

function emitClose(stream: H2Stream): void {
  stream.emit('close');
}

/** Encoded blocks of frozen header objects (the gRPC layer's constant headers and trailers). */
const frozenBlocks = new WeakMap<object, Buffer>();

function encodeCached(headers: OutgoingHttpHeaders, response: boolean, sendDate: boolean): Buffer {
  const frozen = Object.isFrozen(headers) && !sendDate;
  if (frozen) {
    const cached = frozenBlocks.get(headers);
    if (cached !== undefined) return cached;
  }
  const block = encodeHeaders(headerFields(headers, response, sendDate));
  if (frozen) frozenBlocks.set(headers, block);
  return block;
}

/**
 * Header fields in the order HTTP/2 wants: pseudo-headers first (a response without `:status`
 * gets 200; trailers have none); names lowercased; arrays as repeated fields.
 */
export function headerFields(headers: OutgoingHttpHeaders, response: boolean, sendDate: boolean): HeaderField[] {
  const pseudo: HeaderField[] = [];
  const regular: HeaderField[] = [];
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    if (value === undefined || value === null) continue;
    const name = key.toLowerCase();
    const isPseudo = name.charCodeAt(0) === 0x3a;
    if (isPseudo && !response) continue;
    const into = isPseudo ? pseudo : regular;
    if (Array.isArray(value)) for (const v of value) into.push([name, String(v)]);
    else into.push([name, String(value)]);
  }
  if (response && pseudo.length === 0) pseudo.push([':status', '200']);
  if (sendDate && headers.date === undefined) regular.push(['date', new Date().toUTCString()]);
  return pseudo.concat(regular);
}
