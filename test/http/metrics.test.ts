/**
 * `/metrics` of a two-member etcd-ts cluster (in this process), read with a strict parser of
 * the text format and held against a scrape of the real etcd: the metrics dashboards use are
 * there, with etcd's help texts, types, label names and histogram buckets, and they move when
 * the cluster works (puts commit proposals, fsync the WAL, commit the backend, count gRPC calls);
 * and etcd-ts's own range-cache metrics count what ranges find there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { EtcdService } from '../../src/api/etcd-service.ts';
import { Channel } from '../../src/client/channel.ts';
import { type Member as EmbeddedMember, startMember } from '../../src/embed/index.ts';
import { KVService, RangeRequest } from '../../src/proto/index.ts';
import { createSilentLogger } from '../../src/server/logger.ts';
import { formatGoFloat } from '../../src/server/metrics.ts';
import { Member, MemberKind } from '../helpers/member.ts';
import { freePort } from '../helpers/ports.ts';
import { b64, post, send } from './http-client.ts';
import { type Family, histogramSeries, parsePrometheusText, sampleValue } from './prom-text.ts';

/** The metrics etcd's dashboards and alerts read. */
const NAMED_METRICS = [
  'etcd_server_has_leader',
  'etcd_server_is_leader',
  'etcd_server_leader_changes_seen_total',
  'etcd_server_proposals_committed_total',
  'etcd_server_proposals_applied_total',
  'etcd_server_proposals_pending',
  'etcd_server_proposals_failed_total',
  'etcd_disk_wal_fsync_duration_seconds',
  'etcd_disk_backend_commit_duration_seconds',
  'etcd_mvcc_db_total_size_in_bytes',
  'etcd_mvcc_db_total_size_in_use_in_bytes',
  'etcd_network_peer_round_trip_time_seconds',
  'etcd_debugging_mvcc_keys_total',
  'grpc_server_started_total',
  'grpc_server_handled_total',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'process_start_time_seconds',
  'process_open_fds',
  'process_max_fds',
  'etcd_server_version',
] as const;

/** etcd's buckets for the peer round-trip time (rafthttp: ExponentialBuckets(0.0001, 2, 16)). */
const RTT_BOUNDS = [...Array.from({ length: 16 }, (_, i) => 0.0001 * 2 ** i), Number.POSITIVE_INFINITY];

const WAIT_MS = 20_000;
const PUTS = 40;

async function scrape(url: string): Promise<Map<string, Family>> {
  const answer = await send(`${url}/metrics`, null);
  assert.equal(answer.status, 200);
  assert.equal(answer.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(answer.body);
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function value(f: ReadonlyMap<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const v = sampleValue(f, name, labels);
  assert.notEqual(v, undefined, `${name}${JSON.stringify(labels)} is missing`);
  return v as number;
}

/** The label names of a family's samples (without `le`). */
function labelNames(f: Family): string[] {
  const names = new Set<string>();
  for (const s of f.samples) for (const k of Object.keys(s.labels)) if (k !== 'le') names.add(k);
  return [...names].sort();
}

describe('/metrics', { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  const members: EmbeddedMember[] = [];
  let etcd: Member;
  let metricsUrl: string;

  before(async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const [c1, c2, p1, p2, m1] = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string, string, string, string];
    const initialCluster = `m1=${p1},m2=${p2}`;
    const start = (name: string, client: string, peer: string, extra: object) => {
      const dataDir = mkdtempSync(join(tmpdir(), `etcd-ts-metrics-${name}-`));
      dirs.push(dataDir);
      return startMember(
        {
          name,
          dataDir,
          listenClientUrls: [client],
          advertiseClientUrls: [client],
          listenPeerUrls: [peer],
          initialAdvertisePeerUrls: [peer],
          initialCluster,
          ...extra,
        },
        { logger: createSilentLogger(name), services: [new EtcdService()] },
      );
    };
    const [a, b, e] = await Promise.all([
      start('m1', c1, p1, { listenMetricsUrls: [m1] }),
      start('m2', c2, p2, {}),
      Member.start({ kind: MemberKind.ETCD, name: 'metrics-etcd' }),
    ]);
    members.push(a, b);
    etcd = e;
    metricsUrl = m1;
    for (const m of members) {
      await waitFor(
        `${m.name} to have a leader`,
        async () => (await send(`${m.clientUrls[0]}/health`, null)).status === 200,
      );
    }
  });

  after(async () => {
    await Promise.all([...members.map((m) => m.close()), etcd?.stop()]);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test("etcd's own scrape parses, and its numbers print as we print them", async () => {
    const reference = await scrape(etcd.clientUrl);
    assert.ok(reference.size > 50);
    assert.equal(value(reference, 'etcd_server_has_leader'), 1);
    const text = (await send(`${etcd.clientUrl}/metrics`, null)).body;
    let numbers = 0;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const written = line.slice(line.lastIndexOf(' ') + 1);
      assert.equal(formatGoFloat(Number(written)), written, line);
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le !== undefined && le !== '+Inf') assert.equal(formatGoFloat(Number(le)), le, line);
      numbers++;
    }
    assert.ok(numbers > 500);
  });

  test("the named metrics are there, with etcd's help, type, labels and buckets", async () => {
    const [reference, ours] = await Promise.all([scrape(etcd.clientUrl), scrape(members[0]!.clientUrls[0]!)]);
    for (const name of NAMED_METRICS) {
      const f = ours.get(name);
      assert.ok(f !== undefined && f.samples.length > 0, `${name} is missing`);
      const r = reference.get(name);
      if (r === undefined) continue; // a single etcd has no peers to time
      assert.equal(f.help, r.help, `${name} help`);
      assert.equal(f.type, r.type, `${name} type`);
      assert.deepEqual(labelNames(f), labelNames(r), `${name} labels`);
      if (f.type === 'histogram') {
        const bounds = (x: Family) => [...histogramSeries(x).values()][0]?.bounds;
        assert.deepEqual(bounds(f), bounds(r), `${name} buckets`);
      }
    }
    const rtt = ours.get('etcd_network_peer_round_trip_time_seconds')!;
    assert.equal(rtt.help, 'Round-Trip-Time histogram between peers');
    assert.equal(rtt.type, 'histogram');
    assert.deepEqual(labelNames(rtt), ['To']);
    assert.deepEqual([...histogramSeries(rtt).values()][0]?.bounds, RTT_BOUNDS);
    assert.equal(value(ours, 'etcd_server_version', { server_version: '3.5.0' }), 1);
  });

  test('each member times its peer; one leader, both see it', async () => {
    const scrapes = await Promise.all(members.map((m) => scrape(m.clientUrls[0]!)));
    const leaders = scrapes.map((f) => value(f, 'etcd_server_is_leader'));
    assert.deepEqual([...leaders].sort(), [0, 1]);
    for (const f of scrapes) {
      assert.equal(value(f, 'etcd_server_has_leader'), 1);
      assert.ok(value(f, 'etcd_server_leader_changes_seen_total') >= 1);
      const rtt = histogramSeries(f.get('etcd_network_peer_round_trip_time_seconds')!);
      assert.equal(rtt.size, 1, 'one series per peer');
      const series = [...rtt.values()][0]!;
      assert.ok(series.count >= 1, 'at least one round trip measured');
      assert.ok(series.sum > 0 && series.sum < series.count * 3.3, `sum ${series.sum} of ${series.count} round trips`);
    }
  });

  test('puts commit proposals, fsync the WAL, commit the backend and count as gRPC calls', async () => {
    const url = members[0]!.clientUrls[0]!;
    const handled = { grpc_method: 'Put', grpc_code: 'OK', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' };
    const invalid = { ...handled, grpc_code: 'InvalidArgument' };
    const before = await scrape(url);
    const fsyncs = (f: Map<string, Family>) => value(f, 'etcd_disk_wal_fsync_duration_seconds_count');
    const commits = (f: Map<string, Family>) => value(f, 'etcd_disk_backend_commit_duration_seconds_count');
    for (let i = 0; i < PUTS; i++) {
      const put = await post(url, '/v3/kv/put', `{"key":"${b64(`metrics/${i}`)}","value":"${b64('v')}"}`);
      assert.equal(put.status, 200);
    }
    assert.equal((await post(url, '/v3/kv/put', '{}')).status, 400);
    let now = await scrape(url);
    await waitFor('a backend commit after the puts', async () => {
      now = await scrape(url);
      return commits(now) > commits(before);
    });
    const grew = (name: string) => value(now, name) - value(before, name);
    assert.ok(grew('etcd_server_proposals_committed_total') >= PUTS, 'committed');
    assert.ok(grew('etcd_server_proposals_applied_total') >= PUTS, 'applied');
    assert.ok(fsyncs(now) - fsyncs(before) >= 1, 'WAL fsyncs');
    assert.ok(value(now, 'etcd_disk_wal_fsync_duration_seconds_sum') > 0);
    assert.equal(value(now, 'etcd_debugging_mvcc_keys_total'), PUTS);
    assert.equal(
      value(now, 'grpc_server_handled_total', handled) - value(before, 'grpc_server_handled_total', handled),
      PUTS,
    );
    assert.equal(
      value(now, 'grpc_server_handled_total', invalid) - value(before, 'grpc_server_handled_total', invalid),
      1,
    );
    const started = { grpc_method: 'Put', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' };
    assert.equal(
      value(now, 'grpc_server_started_total', started) - value(before, 'grpc_server_started_total', started),
      PUTS + 1,
    );
    assert.ok(value(now, 'etcd_mvcc_db_total_size_in_bytes') >= value(now, 'etcd_mvcc_db_total_size_in_use_in_bytes'));
    assert.ok(value(now, 'etcd_mvcc_db_total_size_in_use_in_bytes') > 0);
    assert.equal(value(now, 'etcd_server_proposals_pending'), 0);
    assert.ok(value(now, 'process_cpu_seconds_total') > 0);
    assert.ok(value(now, 'process_start_time_seconds') * 1000 <= Date.now());
  });

  test("the range cache's counts: a range read again over gRPC is served from it", async () => {
    const url = members[0]!.clientUrls[0]!;
    // gRPC ranges are encoded through the cache (the JSON gateway's are not).
    const channel = new Channel(url);
    after(() => channel.close());
    const range = () =>
      channel.unary(
        KVService.Range,
        RangeRequest.fromPartial({ key: Buffer.from('cache/'), rangeEnd: Buffer.from('cache0'), serializable: true }),
        { timeoutMs: 5_000 },
      );
    for (let i = 0; i < 5; i++) {
      assert.equal((await post(url, '/v3/kv/put', `{"key":"${b64(`cache/${i}`)}","value":"${b64('v')}"}`)).status, 200);
    }
    const before = await scrape(url);
    const grew = (now: Map<string, Family>, name: string) => value(now, name) - value(before, name);
    assert.equal((await range()).kvs.length, 5);
    const first = await scrape(url);
    // The first read finds none of the five and caches them; the second finds all five.
    assert.equal(grew(first, 'etcd_ts_range_cache_misses_total'), 5);
    assert.equal(grew(first, 'etcd_ts_range_cache_hits_total'), 0);
    assert.equal((await range()).kvs.length, 5);
    const second = await scrape(url);
    assert.equal(grew(second, 'etcd_ts_range_cache_hits_total'), 5);
    assert.equal(grew(second, 'etcd_ts_range_cache_misses_total'), 5);
    assert.equal(value(second, 'etcd_ts_range_cache_evictions_total'), 0);
    assert.ok(value(second, 'etcd_ts_range_cache_entries') >= 5);
    assert.ok(value(second, 'etcd_ts_range_cache_allocated_bytes') > 0);
    assert.equal(value(second, 'etcd_ts_range_cache_capacity_bytes'), 64 * 1024 * 1024);
    for (const name of ['etcd_ts_range_cache_hits_total', 'etcd_ts_range_cache_entries']) {
      assert.match(second.get(name)?.help ?? '', /range cache/, name);
    }
    assert.equal(second.get('etcd_ts_range_cache_hits_total')?.type, 'counter');
    assert.equal(second.get('etcd_ts_range_cache_entries')?.type, 'gauge');
  });

  test('the metrics URL serves the same families; gzip when asked', async () => {
    const direct = await scrape(metricsUrl);
    const client = await scrape(members[0]!.clientUrls[0]!);
    assert.deepEqual([...direct.keys()].sort(), [...client.keys()].sort());
    const zipped = await new Promise<Buffer>((resolve, reject) => {
      import('node:http').then(({ get }) => {
        get(`${metricsUrl}/metrics`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          assert.equal(res.headers['content-encoding'], 'gzip');
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        }).on('error', reject);
      }, reject);
    });
    assert.ok(parsePrometheusText(gunzipSync(zipped).toString('utf8')).has('etcd_server_has_leader'));
  });
});
