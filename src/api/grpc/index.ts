// The gRPC server framework: a GrpcServer that answers node:http2 streams.
export { COALESCE_RESPONSE_MAX_BYTES, INBOUND_QUEUE_MAX, untilCallEnds } from './call.ts';
export { COARSE_DEADLINE_MIN_MS, COARSE_DEADLINE_TICK_MS } from './deadline.ts';
export { EncodedResponse, encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, type FrameSink } from './framing.ts';
export { decodeGrpcMessage, encodeGrpcMessage, formatGrpcTimeout, parseGrpcTimeout } from './metadata.ts';
export {
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  GrpcServer,
  type GrpcServerOptions,
  type MethodOptions,
  splitPath,
} from './server.ts';
export type {
  AnyHandler,
  AnyMethodDescriptor,
  BidiStreamingHandler,
  ClientStreamingHandler,
  HandlerFor,
  MethodDescriptor,
  ServerCall,
  ServerStreamingHandler,
  ServerWritableCall,
  UnaryHandler,
} from './types.ts';
