/**
 * The metrics registry and its text format, without a server: numbers as Go prints them,
 * families and series in the Go client's order, escaping, histograms, and the bound on series.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Counter,
  exponentialBuckets,
  formatGoFloat,
  Gauge,
  Histogram,
  MetricsRegistry,
  SERIES_PER_FAMILY_MAX,
  ServerMetrics,
} from '../../src/server/metrics.ts';
import { histogramSeries, parsePrometheusText } from './prom-text.ts';

describe('metrics text format', () => {
  test("numbers as Go's strconv.FormatFloat(v, 'g', -1, 64)", () => {
    const cases: [number, string][] = [
      [0, '0'],
      [1, '1'],
      [-1, '-1'],
      [0.5, '0.5'],
      [100, '100'],
      [999999, '999999'],
      [123456, '123456'],
      [12345.678, '12345.678'],
      [1e6, '1e+06'],
      [1234567, '1.234567e+06'],
      [2147483648, '2.147483648e+09'],
      [2 ** 64, '1.8446744073709552e+19'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [0.03414779700000001, '0.03414779700000001'],
      [-0.25, '-0.25'],
      [1e21, '1e+21'],
      [Number.NaN, 'NaN'],
      [Number.POSITIVE_INFINITY, '+Inf'],
      [Number.NEGATIVE_INFINITY, '-Inf'],
    ];
    for (const [v, text] of cases) assert.equal(formatGoFloat(v), text, String(v));
  });

  test("etcd's buckets: ExponentialBuckets as Go computes them", () => {
    assert.deepEqual(exponentialBuckets(0.001, 2, 14).map(formatGoFloat), [
      '0.001',
      '0.002',
      '0.004',
      '0.008',
      '0.016',
      '0.032',
      '0.064',
      '0.128',
      '0.256',
      '0.512',
      '1.024',
      '2.048',
      '4.096',
      '8.192',
    ]);
    assert.throws(() => exponentialBuckets(0, 2, 3), RangeError);
  });

  test('families by name, series by label values, label names sorted, le last', () => {
    const r = new MetricsRegistry();
    const g = r.register(new Gauge({ name: 'b_gauge', help: 'A gauge.', labelNames: ['zone', 'app'] }));
    g.labels('z2', 'x').set(2);
    g.labels('z1', 'y').set(1);
    g.labels('z1', 'a"b\\c\nd').set(3);
    const c = r.register(new Counter({ name: 'a_total', help: 'Help with \\ and\nnewline.' }));
    c.inc();
    c.inc(2);
    const h = r.register(new Histogram({ name: 'c_seconds', help: 'H.', labelNames: ['To'], buckets: [0.1, 1] }));
    h.labels('p').observe(0.05);
    h.labels('p').observe(0.5);
    h.labels('p').observe(5);
    r.register(new Gauge({ name: 'd_empty', help: 'No series: not shown.' }));
    assert.equal(
      r.render(),
      [
        '# HELP a_total Help with \\\\ and\\nnewline.',
        '# TYPE a_total counter',
        'a_total 3',
        '# HELP b_gauge A gauge.',
        '# TYPE b_gauge gauge',
        'b_gauge{app="a\\"b\\\\c\\nd",zone="z1"} 3',
        'b_gauge{app="x",zone="z2"} 2',
        'b_gauge{app="y",zone="z1"} 1',
        '# HELP c_seconds H.',
        '# TYPE c_seconds histogram',
        'c_seconds_bucket{To="p",le="0.1"} 1',
        'c_seconds_bucket{To="p",le="1"} 2',
        'c_seconds_bucket{To="p",le="+Inf"} 3',
        'c_seconds_sum{To="p"} 5.55',
        'c_seconds_count{To="p"} 3',
        '',
      ].join('\n'),
    );
    const parsed = parsePrometheusText(r.render());
    assert.equal(
      parsed.get('b_gauge')?.samples.find((s) => s.labels.zone === 'z1' && s.value === 3)?.labels.app,
      'a"b\\c\nd',
    );
  });

  test('a histogram set from cumulative counts kept elsewhere', () => {
    const r = new MetricsRegistry();
    const h = r.register(new Histogram({ name: 'rtt', help: 'x', buckets: [1, 2, 4] }));
    h.labels().setCumulative([1, 3, 3], 7.5, 4);
    const s = [...histogramSeries(parsePrometheusText(r.render()).get('rtt')!).values()][0]!;
    assert.deepEqual(s.counts, [1, 3, 3, 4]);
    assert.equal(s.sum, 7.5);
    assert.throws(() => h.labels().setCumulative([1, 2], 1, 2), RangeError);
  });

  test('collectors run before each scrape; one that throws leaves the values as they were', () => {
    const r = new MetricsRegistry();
    const g = r.register(new Gauge({ name: 'g', help: 'x' }));
    let n = 0;
    r.addCollector(() => {
      n++;
      if (n === 2) throw new Error('state gone');
      g.set(n);
    });
    assert.match(r.render(), /^g 1$/m);
    assert.match(r.render(), /^g 1$/m);
    assert.match(r.render(), /^g 3$/m);
  });

  test('misuse is refused: bad names, duplicates, wrong label counts, decreasing counters, too many series', () => {
    const r = new MetricsRegistry();
    assert.throws(() => new Counter({ name: '1bad', help: '' }));
    assert.throws(() => new Counter({ name: 'ok', help: '', labelNames: ['le'] }));
    assert.throws(() => new Histogram({ name: 'h', help: '', buckets: [2, 1] }), RangeError);
    const c = r.register(new Counter({ name: 'c', help: '', labelNames: ['k'] }));
    assert.throws(() => r.register(new Counter({ name: 'c', help: '' })));
    assert.throws(() => c.labels());
    assert.throws(() => c.labels('a').inc(-1), RangeError);
    for (let i = 1; i < SERIES_PER_FAMILY_MAX; i++) c.labels(String(i)); // 'a' is the first
    assert.throws(() => c.labels('one more'), /too many series/);
  });

  test("the server's own metrics start at zero, as Go's unlabelled ones", () => {
    const m = new ServerMetrics();
    const parsed = parsePrometheusText(m.registry.render());
    assert.deepEqual([...parsed.keys()].sort(), [
      'etcd_disk_backend_commit_duration_seconds',
      'etcd_disk_wal_fsync_duration_seconds',
      'etcd_server_leader_changes_seen_total',
      'etcd_server_proposals_failed_total',
    ]);
    m.onWalFsync(3);
    m.onBackendCommit(20);
    const after = parsePrometheusText(m.registry.render());
    const fsync = [...histogramSeries(after.get('etcd_disk_wal_fsync_duration_seconds')!).values()][0]!;
    assert.deepEqual(fsync.counts.slice(0, 3), [0, 0, 1]);
    assert.equal(fsync.sum, 0.003);
    const commit = [...histogramSeries(after.get('etcd_disk_backend_commit_duration_seconds')!).values()][0]!;
    assert.equal(commit.counts[5], 1);
  });
});
