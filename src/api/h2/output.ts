import type { Socket } from 'node:net';
import { Flag, FRAME_HEADER_BYTES, FrameType } from './frames.ts';

/** Payloads up to this size are copied behind their frame header; larger ones are written as they are. */
export const COPY_MAX_BYTES = 4096;
const SLAB_BYTES = 64 * 1024;

/**
 * The frames a connection has produced since its last write, as few buffers as possible:
 * headers and small payloads are written into a slab at a moving offset (a sealed part of a
 * slab is never written again, so the socket may hold it); a large payload becomes a chunk of
 * its own, without a copy. `take()` hands the chunks to one corked socket write.
 */
export class FrameOutput {
  #slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  /** Start of the part of the slab not yet sealed into a chunk. */
  #start = 0;
  #pos = 0;
  #chunks: Buffer[] = [];
  /** Bytes in sealed chunks. */
  #sealedBytes = 0;

  /** Bytes waiting to be taken. */
  get bytes(): number {
    return this.#sealedBytes + this.#pos - this.#start;
  }

  /** A frame header; its `length` bytes of payload must follow (copy, attach, or the u32/u8 writers). */
  header(length: number, type: number, flags: number, streamId: number): void {
    const slab = this.#ensure(FRAME_HEADER_BYTES);
    let p = this.#pos;
    slab[p++] = length >>> 16;
    slab[p++] = (length >>> 8) & 0xff;
    slab[p++] = length & 0xff;
    slab[p++] = type;
    slab[p++] = flags;
    slab.writeUInt32BE(streamId, p);
    this.#pos = p + 4;
  }

  u16(value: number): void {
    const slab = this.#ensure(2);
    slab.writeUInt16BE(value & 0xffff, this.#pos);
    this.#pos += 2;
  }

  u32(value: number): void {
    const slab = this.#ensure(4);
    slab.writeUInt32BE(value >>> 0, this.#pos);
    this.#pos += 4;
  }

  /** Payload bytes: copied when small, else a chunk of their own (the caller must not change them). */
  payload(bytes: Uint8Array): void {
    if (bytes.length <= COPY_MAX_BYTES) {
      const slab = this.#ensure(bytes.length);
      slab.set(bytes, this.#pos);
      this.#pos += bytes.length;
      return;
    }
    this.#seal();
    const chunk = asBuffer(bytes);
    this.#chunks.push(chunk);
    this.#sealedBytes += chunk.length;
  }

  /**
   * A header block as a HEADERS frame and as many CONTINUATIONs as frames of `maxFrameBytes`
   * need; END_STREAM on the HEADERS when `endStream`.
   */
  headerBlock(streamId: number, block: Buffer, maxFrameBytes: number, endStream: boolean): void {
    let start = 0;
    do {
      const end = Math.min(block.length, start + maxFrameBytes);
      const first = start === 0;
      const flags = (first && endStream ? Flag.END_STREAM : 0) | (end === block.length ? Flag.END_HEADERS : 0);
      this.header(end - start, first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId);
      this.payload(block.subarray(start, end));
      start = end;
    } while (start < block.length);
  }

  /**
   * Writes everything produced since the last write to `socket`, in one corked write. False
   * when there was nothing to write or the socket is gone (what there was is dropped).
   */
  writeTo(socket: Socket): boolean {
    const chunks = this.take();
    if (chunks.length === 0 || socket.destroyed) return false;
    if (chunks.length === 1) {
      socket.write(chunks[0] as Buffer);
      return true;
    }
    socket.cork();
    for (const chunk of chunks) socket.write(chunk);
    socket.uncork();
    return true;
  }

  /** Everything written since the last take, in order; empty when nothing was. */
  take(): Buffer[] {
    this.#seal();
    const chunks = this.#chunks;
    if (chunks.length === 0) return chunks;
    this.#chunks = [];
    this.#sealedBytes = 0;
    return chunks;
  }

  #ensure(n: number): Buffer {
    if (this.#slab.length - this.#pos < n) {
      this.#seal();
      this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, n));
      this.#start = 0;
      this.#pos = 0;
    }
    return this.#slab;
  }

  #seal(): void {
    if (this.#pos === this.#start) return;
    const chunk = this.#slab.subarray(this.#start, this.#pos);
    this.#chunks.push(chunk);
    this.#sealedBytes += chunk.length;
    this.#start = this.#pos;
  }
}

/** The bytes as a Buffer, without a copy. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
