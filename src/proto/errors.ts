/**
 * Bytes that do not decode as the expected message: truncated or corrupt protobuf, a wrong
 * wire type for a known field, or nesting deeper than the decoder allows. The server answers
 * such a request the way grpc-go does (status INTERNAL, "grpc: error unmarshalling request").
 */
export class ProtoDecodeError extends Error {
  override readonly name = 'ProtoDecodeError';
  readonly code = 'ERR_PROTO_DECODE';
  /** The gRPC path of the method, e.g. `/etcdserverpb.KV/Range`. */
  readonly path: string;
  /** Which side of the method failed to decode. */
  readonly kind: 'request' | 'response';

  constructor(path: string, kind: 'request' | 'response', cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot decode ${kind} of ${path}: ${reason}`, { cause });
    this.path = path;
    this.kind = kind;
  }
}
