// The hand-written codecs of src/proto/fast/ against the generated ones, on the messages of the
// benchmark scenarios: time per operation, median of rounds. See bench/README.md
// ("Performance work").
//
//   node --import tsx bench/profile-codec.ts     # BENCH_ROUNDS (7), BENCH_ROUND_MS (300)
//
// The codecs are measured as the server runs them: compiled by tsc (into PROFILE_DIST, built
// with `npm run build -- --outDir` unless it is given), not through tsx, whose CommonJS interop
// puts a getter on every call across modules.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type {
  PutRequest as PutRequestType,
  PutResponse as PutResponseType,
  RangeRequest as RangeRequestType,
  RangeResponse as RangeResponseType,
  ResponseHeader,
  TxnRequest as TxnRequestType,
  TxnResponse as TxnResponseType,
  WatchResponse as WatchResponseType,
} from '../src/proto/index.ts';

const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DIST = resolve(
  process.env.PROFILE_DIST ?? join(REPO_ROOT, 'node_modules', '.cache', 'etcd-ts-perf', 'codec-bench'),
);
if (process.env.PROFILE_DIST === undefined) {
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', DIST], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
  if (!existsSync(join(DIST, 'src', 'proto', 'fast', 'index.js')))
    throw new Error(`tsc (exit ${r.status}) wrote no build`);
}
const fast = (await import(
  pathToFileURL(join(DIST, 'src/proto/fast/index.js')).href
)) as typeof import('../src/proto/fast/index.ts');
const { PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchResponse } = (await import(
  pathToFileURL(join(DIST, 'src/proto/index.js')).href
)) as typeof import('../src/proto/index.ts');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '7');
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? '300');

const header: ResponseHeader = {
  clusterId: 0xcdef0123456789abn,
  memberId: 0x8e9e05c52164694dn,
  revision: 123_456n,
  raftTerm: 2n,
};
const value = Buffer.alloc(256, 'v');
const kv = (i: number) => ({
  key: Buffer.from(`key/${String(i).padStart(8, '0')}`),
  createRevision: 1000n + BigInt(i),
  modRevision: 2000n + BigInt(i),
  version: 3n,
  value,
  lease: 0n,
});
const put: PutRequestType = { ...PutRequest.create(), key: Buffer.from('01234567'), value };
const range: RangeRequestType = { ...RangeRequest.create(), key: Buffer.from('bench-range-key') };
const txn: TxnRequestType = { compare: [], success: [{ request: { $case: 'requestPut', value: put } }], failure: [] };
const putWire = PutRequest.encode(put).finish();
const rangeWire = RangeRequest.encode(range).finish();
const txnWire = TxnRequest.encode(txn).finish();
const putResponse: PutResponseType = { header, prevKv: undefined };
const range1: RangeResponseType = { header, kvs: [kv(1)], more: false, count: 1n };
const range100: RangeResponseType = {
  header,
  kvs: Array.from({ length: 100 }, (_, i) => kv(i)),
  more: true,
  count: 10_000n,
};
const txnResponse: TxnResponseType = {
  header,
  succeeded: true,
  responses: [{ response: { $case: 'responsePut', value: { header, prevKv: undefined } } }],
};
const watch: WatchResponseType = {
  ...WatchResponse.create(),
  header,
  watchId: 7n,
  events: [{ type: 0, kv: kv(1), prevKv: undefined }],
};

/** CPU time of this process in ms (not wall time: the host is shared, a preempted round would count). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU ns per call: the median of ROUNDS rounds of ROUND_MS of CPU time each. */
function time(fn: () => unknown): number {
  const warmUntil = cpuMs() + ROUND_MS;
  while (cpuMs() < warmUntil) for (let i = 0; i < 100; i++) fn();
  const perCall: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const t0 = cpuMs();
    let t = t0;
    while (t - t0 < ROUND_MS) {
      for (let i = 0; i < 200; i++) fn();
      n += 200;
      t = cpuMs();
    }
    perCall.push(((t - t0) * 1e6) / n);
  }
  perCall.sort((a, b) => a - b);
  return perCall[Math.floor(perCall.length / 2)]!;
}

const cases: [string, () => unknown, () => unknown][] = [
  ['PutRequest decode', () => PutRequest.decode(putWire), () => fast.decodePutRequest(putWire)],
  ['PutRequest encode', () => PutRequest.encode(put).finish(), () => fast.encodePutRequest(put)],
  ['RangeRequest decode', () => RangeRequest.decode(rangeWire), () => fast.decodeRangeRequest(rangeWire)],
  ['TxnRequest decode (one put)', () => TxnRequest.decode(txnWire), () => fast.decodeTxnRequest(txnWire)],
  ['PutResponse encode', () => PutResponse.encode(putResponse).finish(), () => fast.encodePutResponse(putResponse, 5)],
  [
    'RangeResponse encode (1 kv)',
    () => RangeResponse.encode(range1).finish(),
    () => fast.encodeRangeResponse(range1, 5),
  ],
  [
    'RangeResponse encode (100 kvs)',
    () => RangeResponse.encode(range100).finish(),
    () => fast.encodeRangeResponse(range100, 5),
  ],
  [
    'TxnResponse encode (one put)',
    () => TxnResponse.encode(txnResponse).finish(),
    () => fast.encodeTxnResponse(txnResponse, 5),
  ],
  [
    'WatchResponse encode (1 event)',
    () => WatchResponse.encode(watch).finish(),
    () => fast.encodeWatchResponse(watch, 5),
  ],
];

console.log(`# node ${process.version}; CPU time per call, median of ${ROUNDS} rounds of ${ROUND_MS} ms`);
console.log('| message | generated ns | fast ns | speed-up |');
console.log('| --- | --- | --- | --- |');
for (const [name, generated, hand] of cases) {
  const g = time(generated);
  const f = time(hand);
  console.log(`| ${name} | ${g.toFixed(0)} | ${f.toFixed(0)} | ${(g / f).toFixed(1)}x |`);
}
