/**
 * The hand-written codecs of src/proto/fast/ for the hottest methods, keyed by their entries in
 * the service table (`KVService.Put`...): a method registered with one of these descriptor
 * objects decodes its requests and encodes its responses with them. They give the same values
 * and bytes as the descriptor's own (generated) codecs; a hand-made descriptor with the same
 * path is not a key and keeps its own.
 */
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
  encodeWatchResponse,
} from '../../proto/fast/index.ts';
import { KVService, WatchService } from '../../proto/index.ts';
import { FRAME_HEADER_BYTES } from './framing.ts';
import type { AnyMethodDescriptor } from './types.ts';

export interface FastCodec {
  /** Decodes a request message; null: the descriptor's decoder. */
  readonly decodeRequest: ((bytes: Uint8Array) => unknown) | null;
  /** Encodes a response with `headroomBytes` free at the start of the buffer. */
  readonly encodeResponse: (message: never, headroomBytes: number) => Buffer;
}

export const FAST_CODECS: ReadonlyMap<AnyMethodDescriptor, FastCodec> = new Map<AnyMethodDescriptor, FastCodec>([
  [KVService.Range, { decodeRequest: decodeRangeRequest, encodeResponse: encodeRangeResponse }],
  [KVService.Put, { decodeRequest: decodePutRequest, encodeResponse: encodePutResponse }],
  [KVService.DeleteRange, { decodeRequest: decodeDeleteRangeRequest, encodeResponse: encodeDeleteRangeResponse }],
  [KVService.Txn, { decodeRequest: decodeTxnRequest, encodeResponse: encodeTxnResponse }],
  [WatchService.Watch, { decodeRequest: null, encodeResponse: encodeWatchResponse }],
]);

/** A whole gRPC frame (uncompressed flag, length, message) from an encoder that leaves headroom. */
export function frameEncoder(encode: (message: never, headroomBytes: number) => Buffer): (message: unknown) => Buffer {
  return (message: unknown): Buffer => {
    const frame = encode(message as never, FRAME_HEADER_BYTES);
    frame[0] = 0;
    frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 1);
    return frame;
  };
}
