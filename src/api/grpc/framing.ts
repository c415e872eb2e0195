/**
 * gRPC length-prefixed messages (gRPC over HTTP/2, "Length-Prefixed-Message"):
 *
 *   +------------+---------------------------+------------------+
 *   | flag: u8   | length: u32 big-endian    | message: length  |
 *   +------------+---------------------------+------------------+
 *
 * flag 0 = uncompressed, 1 = compressed with the call's `grpc-encoding`. HTTP/2 DATA chunks
 * do not follow message boundaries: a message may span chunks and a chunk may hold several.
 */

export const FRAME_HEADER_BYTES = 5;

/**
 * A unary response its handler encoded itself (see `ServerCall.acceptsEncoded`): the message is
 * `chunks` in order, after FRAME_HEADER_BYTES free at the start of the first one, where the
 * call writes the frame header.
 */
export class EncodedResponse {
  readonly chunks: readonly Buffer[];

  constructor(chunks: readonly Buffer[]) {
    const first = chunks[0];
    if (first === undefined || first.length < FRAME_HEADER_BYTES) {
      throw new RangeError('an encoded response has no room for its frame header');
    }
    this.chunks = chunks;
  }

  /** The whole frame, in order: the header written into the first chunk's headroom. */
  toFrame(): readonly Buffer[] {
    let length = -FRAME_HEADER_BYTES;
    for (const c of this.chunks) length += c.length;
    const first = this.chunks[0]!;
    first[0] = 0;
    first.writeUInt32BE(length, 1);
    return this.chunks;
  }
}

/** Receives what a FrameDecoder finds; called synchronously from `push`. */
export interface FrameSink {
  /** One whole message. `payload` is a view into the chunk when the message fit in it. */
  onFrame(payload: Buffer, compressed: boolean): void;
  /** A frame header announced `lengthBytes` > the limit, or a flag other than 0/1; nothing more is decoded. */
  onFrameError(reason: FrameErrorReason, lengthBytes: number): void;
}

export const FrameErrorReason = {
  TooLarge: 'too-large',
  BadFlag: 'bad-flag',
} as const;
export type FrameErrorReason = (typeof FrameErrorReason)[keyof typeof FrameErrorReason];

/**
 * Splits a byte stream into messages without copying when a message lies inside one chunk;
 * a message split across chunks is assembled once into a buffer of its exact size. One
 * decoder per call; no allocation per message beyond that assembly buffer.
 */
export class FrameDecoder {
  readonly #sink: FrameSink;
  readonly #maxMessageBytes: number;
  /** Bytes of a header split across chunks (allocated only when that happens). */
  #header: Buffer | null = null;
  #headerFilled = 0;
  /** Payload being assembled across chunks; null while reading a header. */
  #payload: Buffer | null = null;
  #payloadFilled = 0;
  #compressed = false;
  #stopped = false;

  constructor(maxMessageBytes: number, sink: FrameSink) {
    if (!(Number.isInteger(maxMessageBytes) && maxMessageBytes >= 0)) {
      throw new RangeError(`maxMessageBytes must be a non-negative integer, got ${maxMessageBytes}`);
    }
    this.#maxMessageBytes = maxMessageBytes;
    this.#sink = sink;
  }

  /** No more messages are delivered (the call is over). */
  stop(): void {
    this.#stopped = true;
    this.#payload = null;
  }

  /** True when the bytes seen so far end in the middle of a message. */
  get partial(): boolean {
    return this.#headerFilled > 0 || this.#payload !== null;
  }

  push(chunk: Buffer): void {
    const end = chunk.length;
    let offset = 0;
    while (offset < end && !this.#stopped) {
      const payload = this.#payload;
      if (payload !== null) {
        // Continue a message that began in an earlier chunk.
        const take = Math.min(payload.length - this.#payloadFilled, end - offset);
        chunk.copy(payload, this.#payloadFilled, offset, offset + take);
        this.#payloadFilled += take;
        offset += take;
        if (this.#payloadFilled === payload.length) {
          this.#payload = null;
          this.#sink.onFrame(payload, this.#compressed);
        }
        continue;
      }

      let flag: number;
      let length: number;
      if (this.#headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        flag = chunk[offset]!;
        length = chunk.readUInt32BE(offset + 1);
        offset += FRAME_HEADER_BYTES;
      } else {
        const header = (this.#header ??= Buffer.allocUnsafe(FRAME_HEADER_BYTES));
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, end - offset);
        chunk.copy(header, this.#headerFilled, offset, offset + take);
        this.#headerFilled += take;
        offset += take;
        if (this.#headerFilled < FRAME_HEADER_BYTES) return;
        this.#headerFilled = 0;
        flag = header[0]!;
        length = header.readUInt32BE(1);
      }

      if (flag > 1) {
        this.#stopped = true;
        this.#sink.onFrameError(FrameErrorReason.BadFlag, length);
        return;
      }
      if (length > this.#maxMessageBytes) {
        this.#stopped = true;
        this.#sink.onFrameError(FrameErrorReason.TooLarge, length);
        return;
      }
      this.#compressed = flag === 1;
      if (end - offset >= length) {
        const message = chunk.subarray(offset, offset + length);
        offset += length;
        this.#sink.onFrame(message, this.#compressed);
      } else {
        this.#payload = Buffer.allocUnsafe(length);
        this.#payloadFilled = 0;
      }
    }
  }
}

/**
 * One framed message: header and payload in a single buffer, so that a small response goes
 * out in one write. Buffers under 4 KiB come from Node's shared pool.
 */
export function encodeFrame(message: Uint8Array): Buffer {
  const length = message.length;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame[0] = 0;
  frame.writeUInt32BE(length, 1);
  frame.set(message, FRAME_HEADER_BYTES);
  return frame;
}

/** The 5-byte header alone, for a large message written without copying it. */
export function encodeFrameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = 0;
  header.writeUInt32BE(length, 1);
  return header;
}
