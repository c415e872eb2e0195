// Snapshot transfer: a MsgSnap and the backend data behind it, streamed in chunks on a
// connection of its own (a large transfer does not delay heartbeats on the message stream),
// never held whole in memory on either side.
//
// Body of `POST /raft/snapshot`, in frames (framing.ts):
//   1. encodeMessage(MsgSnap)
//   2. the backend data, in frames of 1 to SNAPSHOT_CHUNK_BYTES_MAX bytes
//   3. an empty frame: the end of the data
//   4. a 32-byte frame: the SHA-256 of the data
// The receiver writes the data to a file as it arrives, checks the size and the checksum,
// fsyncs, hands the message and the file to the application, then answers 204. Any other
// answer, or none, is a failure.

import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readChunks, type ServerStream } from '../api/h2/index.ts';
import { decodeMessage, encodeMessage, type Message, MessageType } from '../raft/index.ts';
import { VERSION } from '../version.ts';
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, writeFrameHeader } from './framing.ts';
import {
  CONTENT_TYPE_STREAM,
  dial,
  formatId,
  HEADER_CLUSTER_ID,
  HEADER_FROM,
  HEADER_SERVER_VERSION,
  HEADER_TO,
  PATH_SNAPSHOT,
  type PeerTlsOptions,
  RST_CANCEL,
  STATUS_SNAPSHOT_OK,
} from './protocol.ts';

/** The largest data frame; bigger chunks of the sender's iterable are split. */
export const SNAPSHOT_CHUNK_BYTES_MAX = 256 * 1024;
/** The receiver writes to its file once this much data has arrived (or at the end). */
export const SNAPSHOT_WRITE_BATCH_BYTES = 1024 * 1024;
const SHA256_BYTES = 32;

/** A snapshot as the receiving application gets it. */
export interface ReceivedSnapshot {
  /** The backend data, complete, checksummed and fsynced. The application owns the file from now on. */
  readonly path: string;
  readonly sizeBytes: number;
}

/** The file a snapshot at `index` is stored in, as etcd names it (`%016x.snap.db`). */
export function snapshotFileName(index: number): string {
  return `${index.toString(16).padStart(16, '0')}.snap.db`;
}

// ---------------------------------------------------------------------------------------------
// Sending

export interface SnapshotSendOptions {
  readonly origin: string;
  readonly tls: PeerTlsOptions | null;
  readonly dialTimeoutMs: number;
  /** The transfer fails when nothing moves for this long (including waiting for the answer). */
  readonly idleTimeoutMs: number;
  readonly localId: bigint;
  readonly clusterId: bigint;
  readonly message: Message;
  readonly data: AsyncIterable<Uint8Array>;
  /** Aborting it fails the transfer at the next chunk. */
  readonly signal: AbortSignal;
}

export interface SnapshotSendResult {
  readonly sizeBytes: number;
  readonly status: number;
}

/** Lets an iterable that will not be read release what it holds (a file, a read transaction). */
export async function closeData(data: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    await data[Symbol.asyncIterator]().return?.();
  } catch {
    // Nothing more to release.
  }
}

/**
 * Streams one snapshot; resolves when the peer answered 204, rejects with the reason
 * otherwise. The data iterable is always finished (read to the end, or closed).
 */
export async function sendSnapshotStream(opts: SnapshotSendOptions): Promise<SnapshotSendResult> {
  let reading = false;
  try {
    return await streamSnapshot(opts, () => {
      reading = true;
    });
  } finally {
    if (!reading) await closeData(opts.data);
  }
}

async function streamSnapshot(opts: SnapshotSendOptions, onRead: () => void): Promise<SnapshotSendResult> {
  const session = await dial(opts.origin, opts.tls, opts.dialTimeoutMs);
  try {
    const stream = session.request(
      {
        ':method': 'POST',
        ':path': PATH_SNAPSHOT,
        'content-type': CONTENT_TYPE_STREAM,
        [HEADER_CLUSTER_ID]: formatId(opts.clusterId),
        [HEADER_FROM]: formatId(opts.localId),
        [HEADER_TO]: formatId(opts.message.to),
        [HEADER_SERVER_VERSION]: VERSION.server,
      },
      { endStream: false },
    );
    let status = 0;
    let failure: Error | null = null;
    let wake: (() => void) | null = null;
    const fail = (err: Error): void => {
      failure ??= err;
      wake?.();
    };
    const answered = new Promise<void>((resolve) => {
      stream.once('response', (headers) => {
        status = Number(headers[':status']);
        resolve();
        wake?.();
      });
      stream.once('close', () => {
        fail(new Error(`stream closed (RST_STREAM code ${stream.rstCode ?? 0})`));
        resolve();
      });
    });
    stream.on('error', fail);
    stream.resume();
    stream.setTimeout(opts.idleTimeoutMs, () => {
      fail(new Error(`no progress for ${opts.idleTimeoutMs} ms`));
      stream.close(RST_CANCEL);
    });
    const onAbort = (): void => {
      fail(new Error('aborted'));
      stream.close(RST_CANCEL);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });

    /** Writes with back-pressure; throws once the transfer failed or the peer answered early. */
    const write = async (buf: Uint8Array): Promise<void> => {
      if (failure !== null) throw failure;
      if (status !== 0) throw new Error(`peer answered HTTP ${status} before the end of the snapshot`);
      if (stream.write(buf)) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        stream.once('drain', resolve);
      });
      wake = null;
      stream.removeAllListeners('drain');
      if (failure !== null) throw failure;
    };

    try {
      await write(encodeFrame(encodeMessage(opts.message)));
      const hash = createHash('sha256');
      let sizeBytes = 0;
      onRead();
      for await (const chunk of opts.data) {
        if (!(chunk instanceof Uint8Array)) throw new TypeError('snapshot data must yield Uint8Array chunks');
        for (let pos = 0; pos < chunk.byteLength; pos += SNAPSHOT_CHUNK_BYTES_MAX) {
          const piece = chunk.subarray(pos, Math.min(chunk.byteLength, pos + SNAPSHOT_CHUNK_BYTES_MAX));
          // Copied: the iterable may reuse its buffer once it is asked for the next chunk.
          const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + piece.byteLength);
          frame.set(piece, writeFrameHeader(frame, 0, piece.byteLength));
          hash.update(piece);
          sizeBytes += piece.byteLength;
          await write(frame);
        }
      }
      await write(encodeFrame(new Uint8Array(0)));
      await write(encodeFrame(hash.digest()));
      stream.end();
      await answered;
      if (status === 0 && failure !== null) throw failure;
      if (status !== STATUS_SNAPSHOT_OK) throw new Error(`peer answered HTTP ${status}`);
      return { sizeBytes, status };
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      if (!stream.closed) stream.close(RST_CANCEL);
    }
  } finally {
    session.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Receiving

export interface SnapshotReceiveOptions {
  readonly localId: bigint;
  /** The sender, as its stream headers named it. */
  readonly from: bigint;
  readonly dir: string;
  readonly frameBytesMax: number;
  readonly sizeBytesMax: number;
  readonly signal: AbortSignal;
}

export interface SnapshotReceived {
  readonly message: Message;
  readonly snapshot: ReceivedSnapshot;
}

/** An error the receiver answers with a status: 4xx for a bad stream, 5xx for its own trouble. */
export class SnapshotReceiveError extends Error {
  readonly status: number;
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SnapshotReceiveError';
    this.status = status;
  }
}

const Phase = { Message: 0, Data: 1, Digest: 2, Done: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * Follows the frames of a snapshot stream: the message, the data (hashed and collected for the
 * next file write), the end mark, the checksum.
 */
class SnapshotStreamParser {
  readonly #opts: SnapshotReceiveOptions;
  readonly #hash = createHash('sha256');
  readonly decoder: FrameDecoder;
  #phase: Phase = Phase.Message;
  #message: Message | null = null;
  #digest: Buffer | null = null;
  sizeBytes = 0;
  /** Data received and not yet written (copies: frames are views of reused buffers). */
  pending: Buffer[] = [];
  pendingBytes = 0;

  constructor(opts: SnapshotReceiveOptions) {
    this.#opts = opts;
    this.decoder = new FrameDecoder(opts.frameBytesMax, (body) => this.#onFrame(body));
  }

  #onFrame(body: Uint8Array): void {
    switch (this.#phase) {
      case Phase.Message:
        this.#message = checkSnapshotMessage(body, this.#opts);
        this.#phase = Phase.Data;
        return;
      case Phase.Data:
        if (body.byteLength === 0) {
          this.#phase = Phase.Digest;
          return;
        }
        this.sizeBytes += body.byteLength;
        if (this.sizeBytes > this.#opts.sizeBytesMax) {
          throw new SnapshotReceiveError(413, `snapshot larger than ${this.#opts.sizeBytesMax} bytes`);
        }
        this.#hash.update(body);
        this.pending.push(Buffer.from(body));
        this.pendingBytes += body.byteLength;
        return;
      case Phase.Digest:
        if (body.byteLength !== SHA256_BYTES) throw new SnapshotReceiveError(400, 'malformed snapshot checksum');
        this.#digest = Buffer.from(body);
        this.#phase = Phase.Done;
        return;
      default:
        throw new SnapshotReceiveError(400, 'data after the snapshot checksum');
    }
  }

  takePending(): Buffer[] {
    const out = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }

  /** The message, once the stream ended complete and its checksum matched. */
  finish(): Message {
    if (this.#phase !== Phase.Done || this.#message === null || this.#digest === null) {
      throw new SnapshotReceiveError(400, 'snapshot stream ended early');
    }
    if (!this.#digest.equals(this.#hash.digest())) throw new SnapshotReceiveError(400, 'snapshot checksum mismatch');
    return this.#message;
  }
}

/**
 * Reads one snapshot stream into `<dir>/<index>.snap.db`, through a temporary file that is
 * removed on any failure. Throws SnapshotReceiveError.
 */
export async function receiveSnapshotStream(
  stream: ServerStream,
  opts: SnapshotReceiveOptions,
): Promise<SnapshotReceived> {
  const tmpPath = join(opts.dir, `.${formatId(opts.from)}-${randomBytes(6).toString('hex')}.snap.db.part`);
  // Paused before the first await: what arrives meanwhile waits on the stream.
  const chunks = readChunks(stream);
  let fh: FileHandle | null = null;
  let done = false;
  try {
    try {
      fh = await open(tmpPath, 'wx');
    } catch (err) {
      throw new SnapshotReceiveError(500, `cannot create ${tmpPath}: ${(err as Error).message}`, { cause: err });
    }
    const parser = new SnapshotStreamParser(opts);
    // The stream stays open when reading stops early: the error is answered on it.
    for await (const chunk of chunks) {
      if (opts.signal.aborted) throw new SnapshotReceiveError(503, 'transport closed');
      try {
        parser.decoder.push(chunk);
      } catch (err) {
        if (err instanceof SnapshotReceiveError) throw err;
        throw new SnapshotReceiveError(400, (err as Error).message, { cause: err });
      }
      if (parser.pendingBytes >= SNAPSHOT_WRITE_BATCH_BYTES) await fh.writev(parser.takePending());
    }
    if (opts.signal.aborted) throw new SnapshotReceiveError(503, 'transport closed');
    if (parser.pendingBytes > 0) await fh.writev(parser.takePending());
    const message = parser.finish();
    await fh.sync();
    await fh.close();
    fh = null;
    const path = join(opts.dir, snapshotFileName(message.snapshot!.metadata.index));
    await rename(tmpPath, path);
    done = true;
    return { message, snapshot: { path, sizeBytes: parser.sizeBytes } };
  } catch (err) {
    if (err instanceof SnapshotReceiveError) throw err;
    throw new SnapshotReceiveError(500, `cannot store the snapshot: ${(err as Error).message}`, { cause: err });
  } finally {
    if (fh !== null) await fh.close().catch(() => {});
    if (!done) await rm(tmpPath, { force: true }).catch(() => {});
  }
}

function checkSnapshotMessage(body: Uint8Array, opts: SnapshotReceiveOptions): Message {
  let msg: Message;
  try {
    msg = decodeMessage(body);
  } catch (err) {
    throw new SnapshotReceiveError(400, `malformed snapshot message: ${(err as Error).message}`, { cause: err });
  }
  if (msg.type !== MessageType.MsgSnap || msg.snapshot === undefined) {
    throw new SnapshotReceiveError(400, 'the snapshot stream does not start with a MsgSnap');
  }
  if (msg.to !== opts.localId || msg.from !== opts.from) {
    throw new SnapshotReceiveError(
      400,
      `MsgSnap from ${formatId(msg.from)} to ${formatId(msg.to)} on a stream from ${formatId(opts.from)} to ${formatId(opts.localId)}`,
    );
  }
  return msg;
}

/** Answers a snapshot stream (nothing if the stream is gone). */
export function answerSnapshot(stream: ServerStream, status: number, text: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(status === STATUS_SNAPSHOT_OK ? undefined : `${text}\n`);
}
