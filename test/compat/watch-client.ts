/**
 * Streaming gRPC calls for the watch and lease tests, on node:http2 directly: one HTTP/2
 * connection per stream, every response kept in arrival order, and reading that can be paused
 * (HTTP/2 flow control then stops the server), which a client library would hide.
 */
import http2 from 'node:http2';
import { frameMessage } from '../../src/client/channel.ts';
import {
  type Event,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  LeaseService,
  type Method,
  WatchCreateRequest,
  type WatchRequest,
  type WatchResponse,
  WatchService,
} from '../../src/proto/index.ts';

/** How a stream ended: its gRPC status (UNAVAILABLE when it closed without one). */
export interface StreamEnd {
  code: number;
  message: string;
}

const STATUS_UNAVAILABLE = 14;
/** The gRPC frame header: compressed flag, then the message length (u32, big-endian). */
const FRAME_HEADER_BYTES = 5;

/**
 * Splits the response bytes into messages. The chunks of a large message are joined once, when
 * it is complete (joining at every chunk would copy a message of n chunks n times).
 */
class Deframer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Length of the message being received, once its header is in. */
  private expected = -1;

  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.bytes < FRAME_HEADER_BYTES) return;
        const head = this.join(FRAME_HEADER_BYTES);
        if (head[0] !== 0) throw new Error('compressed gRPC messages are not supported');
        this.expected = head.readUInt32BE(1);
      }
      if (this.bytes < FRAME_HEADER_BYTES + this.expected) return;
      const all = this.join(this.bytes);
      onMessage(all.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + this.expected));
      const rest = all.subarray(FRAME_HEADER_BYTES + this.expected);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.bytes = rest.length;
      this.expected = -1;
    }
  }

  /** The buffered bytes as one buffer of at least `atLeast` bytes (chunks joined as needed). */
  private join(atLeast: number): Buffer {
    if (this.chunks[0]!.length < atLeast) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}
const WAIT_TIMEOUT_MS_DEFAULT = 5_000;

function decodeMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** One bidirectional (or server-streaming) call on its own HTTP/2 connection. */
export class GrpcStream<Req, Res> {
  /** Every response received so far, in order. */
  readonly received: Res[] = [];
  /** Set once the call is over. */
  ended: StreamEnd | undefined = undefined;
  private readonly method: Method<Req, Res>;
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private readonly framer = new Deframer();
  private readonly wakers = new Set<() => void>();
  private status: StreamEnd | undefined = undefined;

  constructor(endpoint: string, method: Method<Req, Res>) {
    this.method = method;
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on('error', () => {});
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': method.path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const readStatus = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] === undefined) return;
      this.status = {
        code: Number(headers['grpc-status']),
        message: decodeMessage(String(headers['grpc-message'] ?? '')),
      };
    };
    this.stream.on('response', readStatus);
    this.stream.on('trailers', readStatus);
    this.stream.on('data', (chunk: Buffer) => {
      this.framer.push(chunk, (bytes) => {
        this.received.push(method.decodeResponse(bytes));
        this.wake();
      });
    });
    this.stream.on('error', () => {});
    this.stream.on('close', () => {
      this.ended = this.status ?? { code: STATUS_UNAVAILABLE, message: 'stream closed without status' };
      this.session.destroy();
      this.wake();
    });
  }

  write(request: Req): void {
    if (this.ended !== undefined) throw new Error(`${this.method.path}: write after the stream ended`);
    this.stream.write(frameMessage(this.method.encodeRequest(request)));
  }

  /** Half-closes: no more requests. */
  end(): void {
    if (!this.stream.writableEnded) this.stream.end();
  }

  /** Stops reading: once the flow-control windows are full the server can send no more. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Cancels the call and closes its connection. */
  close(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }

  /**
   * Waits until `done(received)` holds. Fails after `timeoutMs`, or when the stream ends before,
   * with `what` and the last responses in the message.
   */
  async until(done: (received: readonly Res[]) => boolean, what: string, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT) {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.received)) {
      if (this.ended !== undefined) {
        throw new Error(`${what}: the stream ended first (${this.ended.code}: ${this.ended.message})`);
      }
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) {
        throw new Error(`${what}: not within ${timeoutMs} ms; ${this.received.length} responses received`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, leftMs);
        function finish() {
          clearTimeout(timer);
          resolve();
        }
        this.wakers.add(finish);
      });
    }
  }

  private wake(): void {
    const wakers = [...this.wakers];
    this.wakers.clear();
    for (const w of wakers) w();
  }
}

/** A Watch stream: create, cancel and progress requests, and the responses per watch id. */
export class WatchClient {
  readonly stream: GrpcStream<WatchRequest, WatchResponse>;

  constructor(endpoint: string) {
    this.stream = new GrpcStream(endpoint, WatchService.Watch);
  }

  /** Sends a create request and waits for its answer; returns that answer. */
  async createRaw(request: Partial<WatchCreateRequest>, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<WatchResponse> {
    const before = this.stream.received.filter((r) => r.created).length;
    this.stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial(request) } });
    let answer: WatchResponse | undefined;
    await this.stream.until(
      (received) => {
        answer = received.filter((r) => r.created)[before];
        return answer !== undefined;
      },
      'watch created',
      timeoutMs,
    );
    return answer!;
  }

  /** Creates a watch that must succeed; returns its id. */
  async create(request: Partial<WatchCreateRequest>, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<bigint> {
    const answer = await this.createRaw(request, timeoutMs);
    if (answer.canceled) throw new Error(`watch create refused: ${answer.cancelReason}`);
    return answer.watchId;
  }

  cancel(watchId: bigint): void {
    this.stream.write({ requestUnion: { $case: 'cancelRequest', value: { watchId } } });
  }

  progress(): void {
    this.stream.write({ requestUnion: { $case: 'progressRequest', value: {} } });
  }

  /** Responses that carry events (or a cancel) for one watch, created answers excluded. */
  responses(watchId: bigint): WatchResponse[] {
    return this.stream.received.filter((r) => r.watchId === watchId && !r.created);
  }

  events(watchId: bigint): Event[] {
    return this.responses(watchId).flatMap((r) => r.events);
  }

  /** Waits until the watch has received at least `count` events. */
  async waitEvents(watchId: bigint, count: number, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<Event[]> {
    await this.stream.until(
      (received) => {
        let n = 0;
        for (const r of received) if (r.watchId === watchId && !r.created) n += r.events.length;
        return n >= count;
      },
      `${count} events on watch ${watchId}`,
      timeoutMs,
    );
    return this.events(watchId);
  }

  close(): void {
    this.stream.close();
  }
}

/** A LeaseKeepAlive stream. */
export class KeepAliveClient {
  readonly stream: GrpcStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;

  constructor(endpoint: string) {
    this.stream = new GrpcStream(endpoint, LeaseService.LeaseKeepAlive);
  }

  /** Sends one keep-alive and waits for its answer. */
  async keepAlive(id: bigint, timeoutMs = WAIT_TIMEOUT_MS_DEFAULT): Promise<LeaseKeepAliveResponse> {
    const before = this.stream.received.length;
    this.stream.write({ ID: id });
    await this.stream.until((received) => received.length > before, `keep-alive of lease ${id}`, timeoutMs);
    return this.stream.received[before]!;
  }

  close(): void {
    this.stream.close();
  }
}
