// Hand-written codecs of the hottest messages (KV requests and responses, WatchResponse):
// the same bytes and values as the generated ones in src/proto/gen/, at a fraction of the cost.
// See README.md.
export {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeResponseHeader,
  decodeTxnRequest,
  encodeDeleteRangeRequest,
  encodeDeleteRangeResponse,
  encodePutRequest,
  encodePutResponse,
  encodeRangeRequest,
  encodeRangeResponse,
  encodeResponseHeader,
  encodeTxnRequest,
  encodeTxnResponse,
} from './kv.ts';
export { encodeEvent, encodeWatchResponse } from './watch.ts';
export { DECODE_DEPTH_MAX, NO_BYTES, safeVarintSize, writeSafeVarint } from './wire.ts';
