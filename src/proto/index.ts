// etcd's v3 wire API for the rest of the code: every message type with its codec object
// (`PutRequest.encode(m).finish()`, `PutRequest.decode(bytes)`, `PutRequest.create({...})`,
// `PutRequest.toJSON(m)` with etcd's gateway field names), the enums as `as const` objects, and
// the method table of every service.
//
// Conventions of the generated types (src/proto/gen/, produced by `npm run proto:gen`):
// - int64/uint64 fields are `bigint`; bytes fields are `Uint8Array`, and a decoded bytes field
//   is a view into the decoded buffer (copy it to keep it past the buffer's lifetime).
// - Field names are lowerCamelCase (`range_end` -> `rangeEnd`, `TTL` stays `TTL`).
// - A oneof is a discriminated union `{ $case: 'requestPut', value: PutRequest } | undefined`.
// - Message fields are `T | undefined`; scalars default to 0, 0n, '', false, empty bytes.
export * from './errors.ts';
export * from './gen/authpb/auth.ts';
export * from './gen/etcdserverpb/rpc.ts';
export * from './gen/grpc/health/v1/health.ts';
export * from './gen/mvccpb/kv.ts';
export * from './gen/v3electionpb/v3election.ts';
export * from './gen/v3lockpb/v3lock.ts';
export * from './metadata.ts';
export * from './services.ts';
