// The pure parts of the profiling scripts: target specs and the median table of
// bench/profile.ts, variants and the summary of bench/cluster-ab.ts, and the CPU profile summary
// of bench/profile-summary.ts.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parseVariants, type Run, summarizeRuns } from '../../bench/cluster-ab.ts';
import { type ProfileRun, parseTarget, summaryTable } from '../../bench/profile.ts';
import { type CpuProfile, frameGroup, renderSummary, summarize } from '../../bench/profile-summary.ts';

describe('bench/profile.ts', () => {
  test('targets: etcd, an entry point, an entry point with its own node', () => {
    assert.deepEqual(parseTarget('etcd'), { label: 'etcd', entry: null, node: '', nodeArgs: [], env: {} });
    const a = parseTarget('a=dist/bin/etcd-ts.js');
    assert.equal(a.label, 'a');
    assert.equal(a.entry, resolve('dist/bin/etcd-ts.js'));
    assert.equal(a.node, process.execPath);
    const b = parseTarget('b=x/etcd-ts.js@/opt/node24/bin/node');
    assert.equal(b.entry, resolve('x/etcd-ts.js'));
    assert.equal(b.node, '/opt/node24/bin/node');
    for (const bad of ['', 'x', '=a.js', 'a=']) assert.throws(() => parseTarget(bad), /expected etcd or LABEL=ENTRY/);
  });

  test('the table has the medians of the successful runs and ratios to the first target', () => {
    const run = (target: string, ops: number | null, p50: number, cpu: number): ProfileRun => ({
      run: 1,
      scenario: 'put_rand_c100',
      target,
      opsPerSec: ops,
      p50Ms: ops === null ? null : p50,
      p99Ms: ops === null ? null : p50 * 4,
      serverCpuUsPerOp: ops === null ? null : cpu,
      hostBusyPct: 50,
      load1: 1,
      error: ops === null ? 'tool exit 1' : null,
    });
    const runs = [
      run('etcd', 100, 1, 50),
      run('etcd', 300, 3, 50),
      run('etcd', 200, 2, 50),
      run('ts', 100, 2, 100),
      run('ts', null, 0, 0),
      run('ts', 150, 4, 80),
      run('ts', 50, 6, 60),
    ];
    const table = summaryTable(runs, ['etcd', 'ts']).split('\n');
    assert.equal(table.length, 4);
    assert.equal(table[2], '| put_rand_c100 | etcd | 3 | 200 | 1.00 | 2.00 | 1.00 | 8.00 | 50.0 | 1.00 |');
    assert.equal(table[3], '| put_rand_c100 | ts | 3 | 100 | 0.50 | 4.00 | 2.00 | 16.0 | 80.0 | 1.60 |');
  });
});

describe('bench/cluster-ab.ts', () => {
  test('variants: etcd and labelled etcd-ts builds, each with its own Node flags', () => {
    const variants = parseVariants(
      ['etcd', 'v8=etcd-ts', 'ts=etcd-ts'],
      ['v8=--invocation-count-for-maglev=400', 'v8=--minimum-invocations-after-ic-update=500'],
    );
    assert.deepEqual(
      variants.map((v) => [v.label, v.kind, v.nodeArgs]),
      [
        ['etcd', 'etcd', []],
        ['v8', 'etcd-ts', ['--invocation-count-for-maglev=400', '--minimum-invocations-after-ic-update=500']],
        ['ts', 'etcd-ts', []],
      ],
    );
    assert.throws(() => parseVariants(['ts'], []), /expected etcd or LABEL=etcd-ts/);
    assert.throws(() => parseVariants(['ts=etcd-ts', 'ts=etcd-ts'], []), /labels must differ/);
    assert.throws(() => parseVariants(['etcd'], ['etcd=--x']), /for an etcd-ts variant/);
    assert.throws(() => parseVariants(['a=etcd-ts'], ['b=--x']), /for an etcd-ts variant/);
    assert.throws(() => parseVariants([], []), /no --variant/);
  });

  test('the summary gives medians and the per-round ratios to the first variant', () => {
    const run = (round: number, variant: string, opsPerSec: number): Run => ({
      round,
      variant,
      mode: 'leader',
      opsPerSec,
      segmentOpsPerSec: [opsPerSec / 2, opsPerSec * 2],
      cpuUsPerPut: 1000 / round,
    });
    const runs = [run(1, 'etcd', 1000), run(1, 'ts', 1100), run(2, 'etcd', 800), run(2, 'ts', 1000), run(4, 'ts', 9)];
    const [etcd, ts] = summarizeRuns(runs, parseVariants(['etcd', 'ts=etcd-ts'], []));
    assert.equal(
      etcd,
      'etcd: 900 puts/s, 750 µs CPU/put, segments 450 1,800, per-round ratio to etcd 1.00 (1.00-1.00)',
    );
    // Round 4 has no etcd run: it counts in the medians, not in the ratios (1.10 and 1.25).
    assert.equal(ts, 'ts: 1,000 puts/s, 500 µs CPU/put, segments 500 2,000, per-round ratio to etcd 1.18 (1.10-1.25)');
  });
});

describe('bench/profile-summary.ts', () => {
  const frame = (functionName: string, url: string, lineNumber = 0) => ({
    functionName,
    url,
    lineNumber,
    columnNumber: 0,
  });

  test('frames are grouped by where their code lives', () => {
    assert.equal(frameGroup(frame('(idle)', '')), '(idle)');
    assert.equal(frameGroup(frame('(garbage collector)', '')), '(gc)');
    assert.equal(frameGroup(frame('writeBuffer', '')), '(native)');
    assert.equal(frameGroup(frame('respond', 'node:internal/http2/core')), 'node:internal/http2/core');
    assert.equal(frameGroup(frame('get', 'file:///w/node_modules/lmdb/read.js')), 'pkg lmdb');
    assert.equal(
      frameGroup(frame('ensure', 'file:///w/node_modules/@bufbuild/protobuf/dist/x.js')),
      'pkg @bufbuild/protobuf',
    );
    assert.equal(
      frameGroup(frame('put', 'file:///w/node_modules/.cache/etcd-ts-perf/v5/src/server/server.js')),
      'src/server/server.ts',
    );
  });

  test('self time is the time delta after each sample, summed per function and per group', () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4] },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('propose', 'file:///r/dist/src/server/server.js', 9) },
        { id: 4, callFrame: frame('respond', 'node:internal/http2/core', 99) },
      ],
      startTime: 0,
      endTime: 10_000,
      // Sample i lasts until sample i + 1 (timeDeltas[i + 1]); the last one has no duration.
      samples: [2, 3, 3, 4, 2],
      timeDeltas: [0, 4000, 1000, 2000, 3000],
    };
    const s = summarize(profile);
    assert.equal(s.totalMs, 10);
    assert.deepEqual(s.groups, [
      { name: '(idle)', ms: 4 },
      { name: 'src/server/server.ts', ms: 3 },
      { name: 'node:internal/http2/core', ms: 3 },
    ]);
    assert.deepEqual(s.functions[1], { name: 'propose src/server/server.ts:10', ms: 3 });
    const text = renderSummary(s, 2);
    assert.match(text, /^total 10 ms sampled/);
    assert.match(text, / 40\.0% +4 ms {2}\(idle\)/);
    assert.doesNotMatch(text, /respond/, 'only the top 2 of each list');
  });
});
