// The benchmark harness's pure parts: parsing the tool's output and /proc, settings, scaling,
// gRPC framing, medians and the README section replacement. No process is started.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseScenarios, parseTargets, readConfig } from '../../bench/lib/config.ts';
import { frameMessage, unframeMessages } from '../../bench/lib/grpc.ts';
import { prefixEnd } from '../../bench/lib/measure.ts';
import {
  meaningfulStderr,
  parseEtcdVersion,
  parseHostTicks,
  parseProcStat,
  parseStatusBytes,
  parseToolErrors,
  parseToolOutput,
} from '../../bench/lib/parse.ts';
import { cell, fmtSig, median, ratio, renderSection, replaceSection } from '../../bench/lib/report.ts';
import type { ResultsFile, RunResult } from '../../bench/lib/results.ts';
import { DEFAULT_SCENARIOS, SCENARIOS, scaled, toolCommand } from '../../bench/lib/scenarios.ts';

const LATENCIES = `
Latency distribution:
  10% in 0.000405351 secs.
  25% in 0.000513121 secs.
  50% in 0.000916279 secs.
  75% in 0.001857535 secs.
  90% in 0.004665229 secs.
  95% in 0.006890971 secs.
  99% in 0.032201224 secs.
`;

const PUT_OUTPUT = ` 0 / 200    0.00% 113 / 200   56.50% 200 / 200  100.00% 0s

Summary:
  Total:\t0.417445282 secs.
  Slowest:\t0.032232986 secs.
  Fastest:\t0.000273265 secs.
  Average:\t0.0020843359200000016 secs.
  Stddev:\t0.004009859164382791 secs.
  Requests/sec:\t479.10470814711476

Response time histogram:
  0.000273265 [1]\t|
  0.0034692370999999996 [171]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎
${LATENCIES}
`;

const WATCH_OUTPUT = ` 0 / 1000    0.00% 1000 / 1000  100.00% 0s
Watch creation summary:

Summary:
  Total:\t0.129351307 secs.
  Requests/sec:\t7730.884389131066

Latency distribution:
  50% in 0.000658887 secs.
  99% in 0.00811092 secs.
 0 / 30000    0.00% 30000 / 30000  100.00% 0s
Watch events received summary:

Summary:
  Total:\t0.501136257 secs.
  Requests/sec:\t59863.95831663004

Latency distribution:
  50% in 3.61e-07 secs.
  90% in 8.61e-07 secs.
  99% in 0.016599559 secs.
`;

describe('parseToolOutput', () => {
  test('reads ops/s, the operation count and p50/p99 in ms from a put report', () => {
    const s = parseToolOutput(PUT_OUTPUT);
    assert.ok(s !== null);
    assert.equal(s.opsPerSec, 479.10470814711476);
    assert.equal(s.totalS, 0.417445282);
    assert.equal(s.ops, 200);
    assert.ok(Math.abs((s.p50Ms ?? 0) - 0.916279) < 1e-9);
    assert.ok(Math.abs((s.p99Ms ?? 0) - 32.201224) < 1e-9);
    assert.equal(s.errors, 0);
  });

  test('takes the events report of the watch command, not the watch-creation report', () => {
    const s = parseToolOutput(WATCH_OUTPUT);
    assert.ok(s !== null);
    assert.equal(s.opsPerSec, 59863.95831663004);
    assert.equal(s.ops, 30000);
    assert.ok(Math.abs((s.p50Ms ?? 0) - 0.000361) < 1e-12);
  });

  test('an events report without a summary is no result, even after a creation summary', () => {
    const out = `${WATCH_OUTPUT.slice(0, WATCH_OUTPUT.indexOf('Watch events'))}Watch events received summary:\n\nError distribution:\n  [300]\trpc error: code = Unimplemented desc = unknown service etcdserverpb.Watch\n`;
    assert.equal(parseToolOutput(out), null);
    assert.deepEqual(parseToolErrors(out), [
      { count: 300, message: 'rpc error: code = Unimplemented desc = unknown service etcdserverpb.Watch' },
    ]);
  });

  test('counts failed requests of every error kind', () => {
    const out = `${PUT_OUTPUT}\nError distribution:\n  [3]\tcontext deadline exceeded\n  [2]\tetcdserver: too many requests\n`;
    const s = parseToolOutput(out);
    assert.equal(s?.errors, 5);
    assert.equal(s?.errorMessages[1]?.message, 'etcdserver: too many requests');
  });

  test('a missing percentile line (too few samples) gives null, not 0', () => {
    const s = parseToolOutput(PUT_OUTPUT.replace(/ {2}99% in [^\n]*\n/, ''));
    assert.equal(s?.p99Ms, null);
    assert.ok((s?.p50Ms ?? 0) > 0);
  });

  test('output without a summary (every request failed, or the tool died) is no result', () => {
    assert.equal(parseToolOutput(''), null);
    assert.equal(parseToolOutput('bench with linearizable range\n'), null);
  });
});

test('meaningfulStderr drops grpc-go chatter and keeps the last lines', () => {
  const err = [
    'INFO: 2026/11/21 05:01:14 [core]Subchannel Connectivity change to READY',
    'Failed to Put for watch latency benchmark: etcdserver: request timed out',
    'WARNING: 2026/11/21 05:01:15 [core]grpc: addrConn.createTransport failed',
    '',
  ].join('\n');
  assert.equal(meaningfulStderr(err), 'Failed to Put for watch latency benchmark: etcdserver: request timed out');
});

describe('/proc parsing', () => {
  test('parseProcStat counts fields after the last parenthesis (the name may contain spaces and parens)', () => {
    const line =
      '4242 (node (main) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 89 10 20 0 11 0 100 1000000 5000 18446744073709551615';
    assert.deepEqual(parseProcStat(line), { utime: 1234, stime: 567, cutime: 89, cstime: 10 });
    assert.throws(() => parseProcStat('garbage'), /not a \/proc\/PID\/stat line/);
  });

  test('parseStatusBytes reads kB fields as bytes and gives null when absent', () => {
    const status = 'Name:\tetcd\nVmPeak:\t 11 kB\nVmHWM:\t   45000 kB\nVmRSS:\t   40000 kB\n';
    assert.equal(parseStatusBytes(status, 'VmHWM'), 45000 * 1024);
    assert.equal(parseStatusBytes(status, 'VmRSS'), 40000 * 1024);
    assert.equal(parseStatusBytes('Name:\tzombie\nState:\tZ\n', 'VmHWM'), null);
  });

  test('parseHostTicks: idle and iowait are not busy; irq and softirq are set apart; guest not counted twice', () => {
    const t = parseHostTicks('cpu  100 5 50 1000 20 3 7 2 40 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n');
    assert.equal(t.total, 100 + 5 + 50 + 1000 + 20 + 3 + 7 + 2);
    assert.equal(t.busy, 100 + 5 + 50 + 3 + 7 + 2);
    assert.equal(t.busyNoIrq, 100 + 5 + 50 + 2);
    assert.throws(() => parseHostTicks('intr 1 2 3\n'), /no "cpu " line/);
  });

  test('parseEtcdVersion', () => {
    assert.equal(parseEtcdVersion('etcd Version: 3.4.23\nGit SHA: Not provided\n'), '3.4.23');
    assert.equal(parseEtcdVersion('bash: etcd: not found'), null);
  });
});

describe('settings', () => {
  test('SCENARIOS: default leaves out load_1m, "all" has it, names may be space or comma separated', () => {
    assert.ok(!DEFAULT_SCENARIOS.includes('load_1m'));
    assert.deepEqual(parseScenarios(undefined), [...DEFAULT_SCENARIOS]);
    assert.ok(parseScenarios('all').includes('load_1m'));
    assert.deepEqual(parseScenarios('put_seq_c1, load_1m  range_s_c100'), ['put_seq_c1', 'load_1m', 'range_s_c100']);
    assert.throws(() => parseScenarios('put_seq_c1 put_fast'), ConfigError);
    assert.throws(() => parseScenarios('put_seq_c1,put_seq_c1'), /listed twice/);
  });

  test('BENCH_TARGETS: repeated kinds get distinct labels; unknown targets are rejected', () => {
    assert.deepEqual(parseTargets(undefined), [
      { kind: 'etcd', label: 'etcd' },
      { kind: 'etcd-ts', label: 'etcd-ts' },
    ]);
    assert.deepEqual(
      parseTargets('etcd,etcd').map((t) => t.label),
      ['etcd', 'etcd#2'],
    );
    assert.throws(() => parseTargets('etcd,zookeeper'), /unknown target "zookeeper"/);
  });

  test('readConfig rejects bad numbers with the variable name', () => {
    assert.equal(readConfig({}, '/repo').runs, 3);
    assert.equal(readConfig({ SCALE: '0.1', BENCH_RUNS: '5' }, '/repo').scale, 0.1);
    assert.throws(() => readConfig({ BENCH_RUNS: '0' }, '/repo'), /BENCH_RUNS must be between 1/);
    assert.throws(() => readConfig({ BENCH_RUNS: '2.5' }, '/repo'), /BENCH_RUNS must be a whole number/);
    assert.throws(() => readConfig({ SCALE: '0' }, '/repo'), /SCALE must be > 0/);
    assert.throws(() => readConfig({ SCALE: 'lots' }, '/repo'), /SCALE must be a number/);
    assert.throws(() => readConfig({ BENCH_README: 'maybe' }, '/repo'), /BENCH_README/);
  });
});

describe('scenarios', () => {
  test('scaled() truncates like bench.sh and never gives 0', () => {
    assert.equal(scaled(4000, 0.1), 400);
    assert.equal(scaled(300, 0.25), 75);
    assert.equal(scaled(1000, 0.0001), 1);
  });

  test('put_seq_c1 has bench.sh flags, with the total scaled', () => {
    assert.deepEqual(toolCommand(SCENARIOS.put_seq_c1, '127.0.0.1:2379', 0.5), [
      '--endpoints',
      '127.0.0.1:2379',
      '--precise',
      '--conns',
      '1',
      '--clients',
      '1',
      'put',
      '--total',
      '2000',
      '--val-size',
      '256',
      '--sequential-keys',
      '--key-space-size',
      '100000',
    ]);
  });

  test('range_10k_c10 ranges exactly its seeded prefix', () => {
    const args = SCENARIOS.range_10k_c10.toolArgs(1);
    const at = args.indexOf('range');
    assert.equal(args[at + 1], 'bench-10k/');
    assert.equal(args[at + 2], prefixEnd('bench-10k/').toString());
  });
});

test('gRPC framing: length prefix, several messages per buffer, a partial tail left over', () => {
  const a = frameMessage(Uint8Array.from([1, 2, 3]));
  const b = frameMessage(new Uint8Array(0));
  assert.deepEqual([...a], [0, 0, 0, 0, 3, 1, 2, 3]);
  const joined = Buffer.concat([a, b, a.subarray(0, 6)]);
  const got = unframeMessages(joined);
  assert.equal(got.messages.length, 2);
  assert.deepEqual([...(got.messages[0] ?? [])], [1, 2, 3]);
  assert.equal(got.messages[1]?.length, 0);
  assert.equal(got.used, a.length + b.length);
  assert.throws(() => unframeMessages(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
});

describe('report', () => {
  test('median and ratio', () => {
    assert.equal(median([]), null);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(ratio(50, 100), 0.5);
    assert.equal(ratio(50, 0), null);
    assert.equal(ratio(null, 2), null);
    assert.equal(fmtSig(0.000691), '0.000691');
    assert.equal(fmtSig(12.345), '12.3');
    assert.equal(fmtSig(1234.5), '1235');
  });

  test('a cell is the median of the ok runs and says how many runs were ok', () => {
    const run = (status: 'ok' | 'n/a', ops: number | null): RunResult =>
      ({ status, opsPerSec: ops }) as unknown as RunResult;
    const c = cell([run('ok', 10), run('n/a', null), run('ok', 30), run('ok', 20)], (r) => r.opsPerSec);
    assert.deepEqual(c, { value: 20, ok: 3, runs: 4 });
  });

  test('replaceSection replaces only its section and keeps the others', () => {
    const doc = [
      '# Benchmarks',
      '',
      '## Codec',
      'codec text',
      '',
      '## Side by side with etcd',
      '',
      'old table',
      '### detail',
      'old detail',
      '```',
      '## not a heading inside a fence',
      '```',
      '',
      '## How to run',
      'run text',
      '',
    ].join('\n');
    const out = replaceSection(doc, '## Side by side with etcd', 'new table\n');
    assert.ok(out.includes('## Codec\ncodec text'));
    assert.ok(out.includes('## Side by side with etcd\n\nnew table\n\n## How to run\nrun text'));
    assert.ok(!out.includes('old'));
    assert.ok(!out.includes('not a heading'));
    assert.equal(replaceSection(out, '## Side by side with etcd', 'new table\n'), out);
  });

  test('replaceSection appends a missing section', () => {
    assert.equal(replaceSection('# T\n\ntext\n', '## S', 'body'), '# T\n\ntext\n\n## S\n\nbody\n');
  });

  test('renderSection: medians per server, ratio against the first, n/a with its error, no fanout latency', () => {
    const run = (target: string, scenario: RunResult['scenario'], ops: number | null, error: string | null = null) =>
      ({
        scenario,
        target,
        status: ops === null ? 'n/a' : 'ok',
        error,
        opsPerSec: ops,
        p50Ms: ops === null ? null : 1000 / ops,
        p99Ms: ops === null ? null : 4000 / ops,
        errors: 0,
        serverCpuUsPerOp: 50,
        serverPeakRssBytes: 64 * 1024 * 1024,
        otherPct: 5,
        quiet: true,
        attempts: 1,
        load: null,
      }) as unknown as RunResult;
    const file = {
      startedAt: '2026-11-21T06:00:00.000Z',
      machine: {
        cpuModel: 'CPU',
        cpus: 2,
        memTotalBytes: 2 ** 30,
        os: 'OS',
        kernel: 'k',
        node: 'v20',
        etcdVersion: '3.4.23',
      },
      settings: {
        runs: 3,
        scale: 1,
        scenarios: ['put_rand_c100', 'watch_fanout'],
        targets: [
          { label: 'etcd', kind: 'etcd' },
          { label: 'etcd-ts', kind: 'etcd-ts' },
        ],
      },
      scenarios: [],
      results: [
        run('etcd', 'put_rand_c100', 10000),
        run('etcd', 'put_rand_c100', 12000),
        run('etcd', 'put_rand_c100', 11000),
        run('etcd-ts', 'put_rand_c100', 5000),
        run('etcd-ts', 'put_rand_c100', 6000),
        run('etcd-ts', 'put_rand_c100', 5500),
        run('etcd', 'watch_fanout', 500000),
        run('etcd-ts', 'watch_fanout', null, 'Watch does not work: gRPC status 12 (UNIMPLEMENTED): unknown service'),
      ],
    } as unknown as ResultsFile;
    const md = renderSection({ file, path: 'bench/results/x.json' }, null);
    assert.match(md, /\| put_rand_c100 \| 11,000 \| 5,500 \| 0\.50 \| 0\.0909 \| 0\.182 \| 2\.00 \|/);
    assert.match(md, /\| watch_fanout \| 500,000 \| n\/a \| {2}\| – \| – \| {2}\| – \| – \| {2}\|/);
    assert.match(md, /etcd-ts, watch_fanout: n\/a in 1 of 1 runs: Watch does not work: gRPC status 12/);
    assert.match(md, /`bench\/results\/x\.json`/);
    assert.ok(!md.includes('1 million keys'));
  });
});
