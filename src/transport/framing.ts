// Length framing of the peer streams: every frame is a big-endian u32 byte count followed by
// that many bytes. On the message stream each frame body is one `encodeMessage` record; on the
// snapshot stream the frames carry the message, then the backend data, then a checksum
// (README.md, "Wire format").

import { ErrFrameTooLarge } from './errors.ts';

export const FRAME_HEADER_BYTES = 4;
/** The largest body a u32 length can announce. */
export const FRAME_BODY_BYTES_LIMIT = 0xffff_ffff;
/**
 * A reassembly buffer larger than this is released after its frame instead of being kept for
 * the next one: a rare large append does not pin its size for the life of the stream.
 */
const REASSEMBLY_KEEP_BYTES_MAX = 1024 * 1024;

/** Writes the header of a frame with a body of `sizeBytes` at `pos`; returns the position after it. */
export function writeFrameHeader(buf: Uint8Array, pos: number, sizeBytes: number): number {
  if (!Number.isInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > FRAME_BODY_BYTES_LIMIT) {
    throw new RangeError(`frame body size ${sizeBytes} out of range`);
  }
  buf[pos] = sizeBytes >>> 24;
  buf[pos + 1] = (sizeBytes >>> 16) & 0xff;
  buf[pos + 2] = (sizeBytes >>> 8) & 0xff;
  buf[pos + 3] = sizeBytes & 0xff;
  return pos + FRAME_HEADER_BYTES;
}

/** One frame: header and body in a new buffer. */
export function encodeFrame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.byteLength);
  const pos = writeFrameHeader(out, 0, body.byteLength);
  out.set(body, pos);
  return out;
}

/** The frame header alone (for a body written separately, without copying it). */
export function encodeFrameHeader(sizeBytes: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(out, 0, sizeBytes);
  return out;
}

function readU32(buf: Uint8Array, pos: number): number {
  return ((buf[pos]! << 24) >>> 0) + (buf[pos + 1]! << 16) + (buf[pos + 2]! << 8) + buf[pos + 3]!;
}

/**
 * Splits a byte stream, arriving in chunks of any size, into frames. A frame that lies whole in
 * a chunk is handed out as a view of that chunk (no copy); one that spans chunks is reassembled
 * in a buffer reused from frame to frame. Either way the view is valid only during the
 * `onFrame` call: copy what must outlive it (`decodeMessage` copies).
 */
export class FrameDecoder {
  readonly #bodyBytesMax: number;
  readonly #onFrame: (body: Uint8Array) => void;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerHave = 0;
  /** The announced body size of the frame being reassembled; -1 while its header is incomplete. */
  #bodySize = -1;
  #body: Uint8Array = new Uint8Array(0);
  #bodyHave = 0;

  constructor(bodyBytesMax: number, onFrame: (body: Uint8Array) => void) {
    if (!Number.isInteger(bodyBytesMax) || bodyBytesMax < 0 || bodyBytesMax > FRAME_BODY_BYTES_LIMIT) {
      throw new RangeError(`frame body limit ${bodyBytesMax} out of range`);
    }
    this.#bodyBytesMax = bodyBytesMax;
    this.#onFrame = onFrame;
  }

  /** Whether the bytes pushed so far end exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.#headerHave === 0;
  }

  /**
   * Feeds the next chunk; calls `onFrame` for every frame it completes, in order. Throws
   * ErrFrameTooLarge. Frames are handed out as plain Uint8Array views even when the chunk is a
   * Buffer: `Buffer#slice` makes views where `Uint8Array#slice` copies, and decoders rely on
   * the copy (`decodeMessage` slices out entry data that must not pin the network buffer).
   */
  push(input: Uint8Array): void {
    const chunk = Buffer.isBuffer(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : input;
    let pos = 0;
    const end = chunk.byteLength;
    while (pos < end) {
      if (this.#headerHave === 0 && end - pos >= FRAME_HEADER_BYTES) {
        // Fast path: the frame starts in this chunk; hand it out in place if it ends here too.
        const size = this.#checkSize(readU32(chunk, pos));
        if (end - pos - FRAME_HEADER_BYTES >= size) {
          const bodyStart = pos + FRAME_HEADER_BYTES;
          pos = bodyStart + size;
          this.#onFrame(chunk.subarray(bodyStart, pos));
          continue;
        }
      }
      pos = this.#reassemble(chunk, pos);
    }
  }

  /** Copies bytes of a frame that spans chunks; returns the position after what it took. */
  #reassemble(chunk: Uint8Array, pos: number): number {
    if (this.#headerHave < FRAME_HEADER_BYTES) {
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerHave, chunk.byteLength - pos);
      this.#header.set(chunk.subarray(pos, pos + take), this.#headerHave);
      this.#headerHave += take;
      pos += take;
      if (this.#headerHave < FRAME_HEADER_BYTES) return pos;
      this.#bodySize = this.#checkSize(readU32(this.#header, 0));
      this.#bodyHave = 0;
      if (this.#body.byteLength < this.#bodySize) this.#body = new Uint8Array(this.#bodySize);
    }
    const take = Math.min(this.#bodySize - this.#bodyHave, chunk.byteLength - pos);
    this.#body.set(chunk.subarray(pos, pos + take), this.#bodyHave);
    this.#bodyHave += take;
    pos += take;
    if (this.#bodyHave === this.#bodySize) {
      const body = this.#body.subarray(0, this.#bodySize);
      this.#headerHave = 0;
      this.#bodySize = -1;
      this.#bodyHave = 0;
      if (this.#body.byteLength > REASSEMBLY_KEEP_BYTES_MAX) this.#body = new Uint8Array(0);
      this.#onFrame(body);
    }
    return pos;
  }

  #checkSize(size: number): number {
    if (size > this.#bodyBytesMax) throw new ErrFrameTooLarge(size, this.#bodyBytesMax);
    return size;
  }
}
