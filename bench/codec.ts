// Compares protobuf codecs on etcd's hottest messages: a PutRequest (16 B key, 256 B value) and a
// RangeResponse carrying 100 KeyValues. Each candidate generates its code from the same subset of
// etcd's .proto files into node_modules/.cache/ (nothing is committed), then every message is
// encoded and decoded in a loop; the median of several timed rounds is reported.
//
//   node --import tsx bench/codec.ts            # all codecs
//   BENCH_ROUNDS=9 node --import tsx bench/codec.ts
//
// Candidates: ts-proto (forceLong=bigint), protobuf-es (@bufbuild/protobuf, int64 as bigint),
// protobufjs static code (pbjs, int64 as Long). Besides speed, each is checked for exact 64-bit
// round trips, which etcd's lease, member and cluster ids need.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const cacheDir = join(repoRoot, 'node_modules', '.cache', 'etcd-ts-codec-bench');
const bin = (name: string): string => join(repoRoot, 'node_modules', '.bin', name);
const roundsCount = Number(process.env.BENCH_ROUNDS ?? '5');
const roundMs = Number(process.env.BENCH_ROUND_MS ?? '400');
const warmupMs = Number(process.env.BENCH_WARMUP_MS ?? '800');

const KV_PROTO = `syntax = "proto3";
package mvccpb;
message KeyValue {
  bytes key = 1;
  int64 create_revision = 2;
  int64 mod_revision = 3;
  int64 version = 4;
  bytes value = 5;
  int64 lease = 6;
}
`;

const RPC_PROTO = `syntax = "proto3";
package etcdserverpb;
import "mvccpb/kv.proto";
message ResponseHeader {
  uint64 cluster_id = 1;
  uint64 member_id = 2;
  int64 revision = 3;
  uint64 raft_term = 4;
}
message PutRequest {
  bytes key = 1;
  bytes value = 2;
  int64 lease = 3;
  bool prev_kv = 4;
  bool ignore_value = 5;
  bool ignore_lease = 6;
}
message RangeResponse {
  ResponseHeader header = 1;
  repeated mvccpb.KeyValue kvs = 2;
  bool more = 3;
  int64 count = 4;
}
`;

// Values shared by every codec: ids above 2^53 so that a lossy int64 mapping shows.
const CLUSTER_ID = 0xcdf818194e3a8c32n;
const MEMBER_ID = 0x8e9e05c52164694dn;
const LEASE_ID = 0x694d7f3a2b1c0d0en;
const U64_MAX = 2n ** 64n - 1n;
const I64_MAX = 2n ** 63n - 1n;
const I64_NEG = -(2n ** 62n) - 12345n;

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 31) & 0xff;
  return out;
}

const putKey = bytes(16, 1);
const putValue = bytes(256, 2);
const kvCount = 100;
const kvKeys = Array.from({ length: kvCount }, (_, i) => bytes(16, i));
const kvValues = Array.from({ length: kvCount }, (_, i) => bytes(256, i + 7));

type Codec = {
  name: string;
  int64AsBigint: boolean;
  putRoundTrip: () => number;
  rangeRoundTrip: () => number;
  putEncode: () => number;
  rangeDecode: () => number;
  /** Encodes and decodes extreme 64-bit values; returns the decoded values as bigint. */
  extremes: () => bigint[];
};

function generate(): void {
  rmSync(cacheDir, { recursive: true, force: true });
  const protoDir = join(cacheDir, 'proto');
  mkdirSync(join(protoDir, 'mvccpb'), { recursive: true });
  mkdirSync(join(protoDir, 'etcdserverpb'), { recursive: true });
  writeFileSync(join(protoDir, 'mvccpb', 'kv.proto'), KV_PROTO);
  writeFileSync(join(protoDir, 'etcdserverpb', 'rpc.proto'), RPC_PROTO);
  const files = ['mvccpb/kv.proto', 'etcdserverpb/rpc.proto'];
  for (const dir of ['ts-proto', 'es', 'pbjs']) mkdirSync(join(cacheDir, dir), { recursive: true });
  execFileSync('protoc', [
    `--plugin=protoc-gen-ts_proto=${bin('protoc-gen-ts_proto')}`,
    `--ts_proto_out=${join(cacheDir, 'ts-proto')}`,
    '--ts_proto_opt=forceLong=bigint,esModuleInterop=true,outputServices=false,importSuffix=.ts,outputJsonMethods=false',
    `-I${protoDir}`,
    ...files,
  ]);
  execFileSync('protoc', [
    `--plugin=protoc-gen-es=${bin('protoc-gen-es')}`,
    `--es_out=${join(cacheDir, 'es')}`,
    '--es_opt=target=ts,import_extension=ts',
    `-I${protoDir}`,
    ...files,
  ]);
  execFileSync(bin('pbjs'), [
    '-t',
    'static-module',
    '-w',
    'commonjs',
    '--no-verify',
    '--no-convert',
    '--no-delimited',
    '-p',
    protoDir,
    '-o',
    join(cacheDir, 'pbjs', 'etcd.cjs'),
    ...files.map((f) => join(protoDir, f)),
  ]);
}

// The generated modules are untyped from here (they live outside the project); each loader
// describes the few functions it uses.
type TsProtoMessage<T> = { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T };

async function tsProtoCodec(): Promise<Codec> {
  const rpc = await import(pathToFileURL(join(cacheDir, 'ts-proto', 'etcdserverpb', 'rpc.ts')).href);
  const PutRequest = rpc.PutRequest as TsProtoMessage<Record<string, unknown>>;
  const RangeResponse = rpc.RangeResponse as TsProtoMessage<{
    header: Record<string, bigint>;
    kvs: Record<string, unknown>[];
    more: boolean;
    count: bigint;
  }>;
  const put = { key: putKey, value: putValue, lease: LEASE_ID, prevKv: true, ignoreValue: false, ignoreLease: false };
  const range = {
    header: { clusterId: CLUSTER_ID, memberId: MEMBER_ID, revision: 123456n, raftTerm: 7n },
    kvs: kvKeys.map((key, i) => ({
      key,
      createRevision: 1000n + BigInt(i),
      modRevision: 2000n + BigInt(i),
      version: 3n,
      value: kvValues[i]!,
      lease: LEASE_ID,
    })),
    more: false,
    count: BigInt(kvCount),
  };
  const rangeBytes = RangeResponse.encode(range).finish();
  return {
    name: 'ts-proto',
    int64AsBigint: true,
    putRoundTrip: () => (PutRequest.decode(PutRequest.encode(put).finish()).key as Uint8Array).length,
    rangeRoundTrip: () => RangeResponse.decode(RangeResponse.encode(range).finish()).kvs.length,
    putEncode: () => PutRequest.encode(put).finish().length,
    rangeDecode: () => RangeResponse.decode(rangeBytes).kvs.length,
    extremes: () => {
      const m = RangeResponse.decode(
        RangeResponse.encode({
          header: { clusterId: U64_MAX, memberId: I64_MAX, revision: I64_NEG, raftTerm: 0n },
          kvs: [],
          more: false,
          count: 0n,
        }).finish(),
      );
      return [m.header.clusterId!, m.header.memberId!, m.header.revision!];
    },
  };
}

async function protobufEsCodec(): Promise<Codec> {
  const proto = await import('@bufbuild/protobuf');
  const rpc = await import(pathToFileURL(join(cacheDir, 'es', 'etcdserverpb', 'rpc_pb.ts')).href);
  const kv = await import(pathToFileURL(join(cacheDir, 'es', 'mvccpb', 'kv_pb.ts')).href);
  // biome-ignore lint/suspicious/noExplicitAny: generated schemas are loaded at run time
  const { create, toBinary, fromBinary } = proto as any;
  const put = create(rpc.PutRequestSchema, { key: putKey, value: putValue, lease: LEASE_ID, prevKv: true });
  const range = create(rpc.RangeResponseSchema, {
    header: { clusterId: CLUSTER_ID, memberId: MEMBER_ID, revision: 123456n, raftTerm: 7n },
    kvs: kvKeys.map((key, i) =>
      create(kv.KeyValueSchema, {
        key,
        createRevision: 1000n + BigInt(i),
        modRevision: 2000n + BigInt(i),
        version: 3n,
        value: kvValues[i]!,
        lease: LEASE_ID,
      }),
    ),
    count: BigInt(kvCount),
  });
  const rangeBytes = toBinary(rpc.RangeResponseSchema, range);
  return {
    name: 'protobuf-es',
    int64AsBigint: true,
    putRoundTrip: () => fromBinary(rpc.PutRequestSchema, toBinary(rpc.PutRequestSchema, put)).key.length,
    rangeRoundTrip: () => fromBinary(rpc.RangeResponseSchema, toBinary(rpc.RangeResponseSchema, range)).kvs.length,
    putEncode: () => toBinary(rpc.PutRequestSchema, put).length,
    rangeDecode: () => fromBinary(rpc.RangeResponseSchema, rangeBytes).kvs.length,
    extremes: () => {
      const m = fromBinary(
        rpc.RangeResponseSchema,
        toBinary(
          rpc.RangeResponseSchema,
          create(rpc.RangeResponseSchema, { header: { clusterId: U64_MAX, memberId: I64_MAX, revision: I64_NEG } }),
        ),
      );
      return [m.header.clusterId, m.header.memberId, m.header.revision];
    },
  };
}

function pbjsCodec(): Codec {
  const require = createRequire(import.meta.url);
  const root = require(join(cacheDir, 'pbjs', 'etcd.cjs'));
  const Long = require('protobufjs/minimal').util.Long;
  const toLong = (v: bigint, unsigned: boolean) => Long.fromString(v.toString(), unsigned);
  const PutRequest = root.etcdserverpb.PutRequest;
  const RangeResponse = root.etcdserverpb.RangeResponse;
  const put = PutRequest.create({ key: putKey, value: putValue, lease: toLong(LEASE_ID, false), prevKv: true });
  const range = RangeResponse.create({
    header: {
      clusterId: toLong(CLUSTER_ID, true),
      memberId: toLong(MEMBER_ID, true),
      revision: 123456,
      raftTerm: 7,
    },
    kvs: kvKeys.map((key, i) => ({
      key,
      createRevision: 1000 + i,
      modRevision: 2000 + i,
      version: 3,
      value: kvValues[i]!,
      lease: toLong(LEASE_ID, false),
    })),
    count: kvCount,
  });
  const rangeBytes: Uint8Array = RangeResponse.encode(range).finish();
  const asBigint = (v: unknown): bigint => BigInt(String(v));
  return {
    name: 'protobufjs static',
    int64AsBigint: false,
    putRoundTrip: () => PutRequest.decode(PutRequest.encode(put).finish()).key.length,
    rangeRoundTrip: () => RangeResponse.decode(RangeResponse.encode(range).finish()).kvs.length,
    putEncode: () => PutRequest.encode(put).finish().length,
    rangeDecode: () => RangeResponse.decode(rangeBytes).kvs.length,
    extremes: () => {
      const m = RangeResponse.decode(
        RangeResponse.encode({
          header: {
            clusterId: toLong(U64_MAX, true),
            memberId: toLong(I64_MAX, true),
            revision: toLong(I64_NEG, false),
          },
        }).finish(),
      );
      return [asBigint(m.header.clusterId), asBigint(m.header.memberId), asBigint(m.header.revision)];
    },
  };
}

type Result = { opsPerSec: number; nsPerOp: number };

/** Runs fn in batches until durationMs has passed; returns operations per second. */
function timeFor(fn: () => number, durationMs: number): number {
  let ops = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const limitNs = BigInt(durationMs) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < limitNs) {
    for (let i = 0; i < 200; i++) sink += fn();
    ops += 200;
    elapsed = process.hrtime.bigint() - start;
  }
  if (sink === -1) console.log('unreachable');
  return (ops * 1e9) / Number(elapsed);
}

function measure(fn: () => number): Result {
  timeFor(fn, warmupMs);
  const rounds: number[] = [];
  for (let r = 0; r < roundsCount; r++) rounds.push(timeFor(fn, roundMs));
  rounds.sort((a, b) => a - b);
  const median = rounds[Math.floor(rounds.length / 2)]!;
  return { opsPerSec: median, nsPerOp: 1e9 / median };
}

function fmt(r: Result): string {
  return `${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(11)} ops/s ${Math.round(r.nsPerOp).toLocaleString('en-US').padStart(9)} ns/op`;
}

async function main(): Promise<void> {
  generate();
  const codecs = [await tsProtoCodec(), await protobufEsCodec(), pbjsCodec()];
  const expected = [U64_MAX, I64_MAX, I64_NEG];
  console.log(`node ${process.version}; median of ${roundsCount} rounds x ${roundMs} ms after ${warmupMs} ms warm-up`);
  for (const codec of codecs) {
    const got = codec.extremes();
    const exact = got.every((v, i) => v === expected[i]);
    console.log(
      `\n${codec.name}: int64 as bigint: ${codec.int64AsBigint ? 'yes' : 'no'}; 64-bit extremes exact: ${exact}`,
    );
    console.log(`  PutRequest encode+decode      ${fmt(measure(codec.putRoundTrip))}`);
    console.log(`  PutRequest encode             ${fmt(measure(codec.putEncode))}`);
    console.log(`  RangeResponse(100) enc+dec    ${fmt(measure(codec.rangeRoundTrip))}`);
    console.log(`  RangeResponse(100) decode     ${fmt(measure(codec.rangeDecode))}`);
  }
}

await main();
