/**
 * Defragmentation stall, etcd-ts beside the real etcd (not a test: run it by hand).
 *
 *   node --import tsx test/ops/defrag-bench.ts [--mib=1024] [--kind=etcd-ts,etcd]
 *
 * For each server: fill the backend with `--mib` MiB of values (4 KiB each, 100 puts per
 * transaction), overwrite a quarter of them and compact, so that the file holds free pages;
 * flush the page cache to disk (`sync`) and let the disk settle; then run readers and writers
 * (closed loop, each waits for its answer) and, after a baseline window, ask for
 * Maintenance.Defragment. Reported: the defrag's duration, the file size before and after, and
 * the latencies of the requests that ended before the defrag began (baseline) and of those that
 * were in flight at any time during it (a request blocked by the defrag counts there, however
 * long it waited).
 */
import { execFileSync } from 'node:child_process';
import { Client } from '../../src/client/index.ts';
import { KVService, TxnRequest } from '../../src/proto/index.ts';
import { type Kind, startCluster } from './helpers.ts';

const VALUE_BYTES = 4096;
const PUTS_PER_TXN = 100;
const READERS = 4;
const WRITERS = 2;
const BASELINE_MS = 5000;
const OVERWRITE_FRACTION = 4;
const SETTLE_MS = 5000;

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

interface Request {
  kind: 'read' | 'write';
  startMs: number;
  endMs: number;
  failed: boolean;
}

function summary(requests: readonly Request[]): string {
  const sorted = requests.map((r) => r.endMs - r.startMs).sort((a, b) => a - b);
  const failed = requests.filter((r) => r.failed).length;
  const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return `${sorted.length} requests, ${failed} failed, p50 ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms, longest ${(sorted.at(-1) ?? 0).toFixed(1)} ms`;
}

async function fill(client: Client, keys: number, from: number, to: number, round: number): Promise<void> {
  for (let start = from; start < to; start += PUTS_PER_TXN) {
    const success = [];
    for (let i = start; i < Math.min(to, start + PUTS_PER_TXN); i++) {
      const value = Buffer.alloc(VALUE_BYTES, (i * 7 + round) % 251);
      success.push({
        request: { $case: 'requestPut' as const, value: { key: Buffer.from(`fill/${i % keys}`), value } },
      });
    }
    await client.call(KVService.Txn, TxnRequest.fromPartial({ success }), { idempotent: false, timeoutMs: 60_000 });
  }
}

async function bench(kind: Kind, mib: number): Promise<void> {
  const cluster = await startCluster(kind, ['bench'], { extraArgs: ['--quota-backend-bytes=8589934592'] });
  const client = new Client({ endpoints: cluster.endpoints, callTimeoutMs: 120_000 });
  try {
    const keys = Math.ceil((mib * 1024 * 1024) / VALUE_BYTES);
    let t0 = performance.now();
    await fill(client, keys, 0, keys, 0);
    await fill(client, keys, 0, Math.floor(keys / OVERWRITE_FRACTION), 1);
    const rev = (await client.get('fill/0')).header.revision;
    await client.compact(rev, { physical: true });
    const before = await client.status();
    execFileSync('sync');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    console.log(
      `${kind}: ${keys} keys written in ${((performance.now() - t0) / 1000).toFixed(1)} s; file ${before.dbSize} bytes, in use ${before.dbSizeInUse}`,
    );

    const requests: Request[] = [];
    let stop = false;
    const timed = async (kind: Request['kind'], fn: () => Promise<unknown>) => {
      const startMs = performance.now();
      let failed = false;
      try {
        await fn();
      } catch {
        failed = true;
      }
      requests.push({ kind, startMs, endMs: performance.now(), failed });
    };
    const loops = [
      ...Array.from({ length: READERS }, async (_, r) => {
        for (let i = 0; !stop; i++) await timed('read', () => client.get(`fill/${(i * 7919 + r) % keys}`));
      }),
      ...Array.from({ length: WRITERS }, async (_, w) => {
        for (let i = 0; !stop; i++)
          await timed('write', () => client.put(`load/${w}/${i % 1000}`, Buffer.alloc(256, i % 251)));
      }),
    ];
    await new Promise((r) => setTimeout(r, BASELINE_MS));
    t0 = performance.now();
    await client.defragment({ timeoutMs: 600_000 });
    const t1 = performance.now();
    const defragMs = t1 - t0;
    stop = true;
    await Promise.all(loops);
    const baseline = requests.filter((r) => r.endMs < t0);
    const during = requests.filter((r) => r.endMs >= t0 && r.startMs <= t1);
    const after = await client.status();
    console.log(`${kind}: defrag took ${defragMs.toFixed(0)} ms, file ${before.dbSize} -> ${after.dbSize} bytes`);
    for (const what of ['read', 'write'] as const) {
      console.log(`${kind}: ${what}s, baseline ${BASELINE_MS} ms: ${summary(baseline.filter((r) => r.kind === what))}`);
      console.log(`${kind}: ${what}s, during defrag:   ${summary(during.filter((r) => r.kind === what))}`);
    }
  } finally {
    client.close();
    await cluster.stop();
  }
}

const mib = Number(arg('mib', '1024'));
for (const kind of arg('kind', 'etcd-ts,etcd').split(',') as Kind[]) await bench(kind, mib);
process.exit(0);
