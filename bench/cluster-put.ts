/**
 * Put throughput of a 3-member etcd-ts cluster beside a 3-member real etcd on the same machine,
 * through etcd's own benchmark tool (tools/benchmark 3.4.23), with the put scenarios of the
 * shared bench.sh: put_seq_c1 and put_rand_c100, each once with the tool's connections spread
 * over the three members (followers forward to the leader) and once with `--target-leader`.
 *
 *   npm run bench:cluster                    # about 10 min; members on the pinned Node (npm's PATH)
 *   RUNS=1 SCALE=0.2 npm run bench:cluster
 *   SEGMENTS=8 SCENARIOS=put_seq_c1 npm run bench:cluster   # the warm-up curve, 8 x 500 puts
 *
 * RUNS (default 3), SCALE (multiplies request totals, default 1), TARGETS (default
 * `etcd,etcd-ts`; ratios are against the first), SCENARIOS (names, comma-separated; default
 * all), WARMUP (requests of the same scenario sent to each fresh cluster before the measured
 * run, not measured; default 0: the measured run is the cluster's first work, as in the shared
 * bench.sh), SEGMENTS (default 1: the measured run is cut into this many runs of the tool, one
 * after another on the same cluster, each with its share of the requests, and the ops/s of each
 * is printed: how throughput changes as the members warm up), NODE_ARGS (Node flags for every
 * etcd-ts member, space-separated; e.g. `--invocation-count-for-maglev=400
 * --minimum-invocations-after-ic-update=500` gives the members V8's own tiering thresholds back
 * instead of the server's), QUIET_MAX_WAIT (s, default 20),
 * QUIET_BUSY (%, default 15), README (1: write the "3-member cluster" section of
 * bench/README.md, 0: do not; default 1 for etcd,etcd-ts without WARMUP, SEGMENTS or NODE_ARGS),
 * BENCH_TOOL (the tool's path), RESULTS (the results file, default
 * bench/cluster-put.results.json; with WARMUP=N or SEGMENTS=K, cluster-put.warmup-N.results.json,
 * cluster-put.segments-K.results.json or both in the name, with NODE_ARGS `node-args` in the
 * name too); FROM_RESULTS=1 only rewrites the
 * README section from it.
 *
 * Each (run, scenario, mode, server) gets a fresh cluster on loopback (test/helpers/cluster.ts)
 * with fresh data dirs; servers alternate, so a burst of foreign load hits both sides alike more
 * often than not. etcd-ts runs from a private compiled build (npm run build into
 * node_modules/.cache/etcd-ts-cluster-bench/dist), the real etcd is /usr/bin/etcd. Every run's
 * numbers go to bench/cluster-put.results.json. Not part of npm test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, MemberKind } from '../test/helpers/cluster.ts';
import { buildInto } from './lib/build.ts';
import { defaultToolPath, intEnv } from './lib/config.ts';
import { parseEtcdVersion, parseToolOutput } from './lib/parse.ts';
import { waitQuiet } from './lib/procfs.ts';
import { median } from './lib/report.ts';
import { ensureBenchmarkTool, runSegments, runTool } from './lib/tool.ts';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUILD_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'etcd-ts-cluster-bench', 'dist');
const ETCD_TS_ENTRY = join(BUILD_DIR, 'bin', 'etcd-ts.js');
const README = join(REPO_ROOT, 'bench', 'README.md');
const SECTION_HEADING = '## 3-member cluster';
const TOOL_TIMEOUT_MS = 300_000;
const RUNS_MAX = 20;

interface Scenario {
  name: string;
  /** The tool's command and flags after the global ones, for a request total scaled by `n`. */
  args(n: (total: number) => string): string[];
}

/** The flags of /work/shared/bench/bench.sh for these two scenarios. */
const SCENARIOS: readonly Scenario[] = [
  {
    name: 'put_seq_c1',
    args: (n) => [
      '--conns',
      '1',
      '--clients',
      '1',
      'put',
      '--total',
      n(4000),
      '--val-size',
      '256',
      '--sequential-keys',
      '--key-space-size',
      '100000',
    ],
  },
  {
    name: 'put_rand_c100',
    args: (n) => [
      '--conns',
      '10',
      '--clients',
      '100',
      'put',
      '--total',
      n(60000),
      '--val-size',
      '256',
      '--key-space-size',
      '100000',
    ],
  },
];

const Mode = { SPREAD: 'all members', LEADER: '--target-leader' } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

interface Measurement {
  run: number;
  scenario: string;
  mode: Mode;
  server: MemberKind;
  opsPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  /** CPU time of the three members during the tool's run, per successful request. */
  serverCpuUsPerOp: number | null;
  quiet: boolean;
  /** With SEGMENTS: the ops/s of each segment in order (p50 and p99 are then left out). */
  segmentOpsPerSec?: number[];
  error?: string;
}

/** How each measurement is made, the same for every run. */
interface Plan {
  scale: number;
  warmup: number;
  segments: number;
  quietMaxWaitMs: number;
  quietBusyPct: number;
  /** Node flags for every etcd-ts member (NODE_ARGS). */
  nodeArgs: readonly string[];
}

function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return v;
}

/** Where every run's numbers go: RESULTS, or a file per warm-up, segments and Node flags (runs differ). */
function resultsFile(warmup: number, segments: number, nodeArgs: readonly string[]): string {
  const parts = [
    'cluster-put',
    ...(warmup > 0 ? [`warmup-${warmup}`] : []),
    ...(segments > 1 ? [`segments-${segments}`] : []),
    ...(nodeArgs.length > 0 ? ['node-args'] : []),
  ];
  return process.env.RESULTS ?? join(REPO_ROOT, 'bench', `${parts.join('.')}.results.json`);
}

function scenariosEnv(): readonly Scenario[] {
  const raw = process.env.SCENARIOS;
  if (raw === undefined || raw === '') return SCENARIOS;
  const names = raw.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!SCENARIOS.some((s) => s.name === name))
      throw new Error(
        `SCENARIOS: unknown scenario ${JSON.stringify(name)} (known: ${SCENARIOS.map((s) => s.name).join(', ')})`,
      );
  }
  return SCENARIOS.filter((s) => names.includes(s.name));
}

function targetsEnv(): MemberKind[] {
  const raw = process.env.TARGETS ?? 'etcd,etcd-ts';
  const out = raw.split(',').map((s) => s.trim());
  for (const t of out) {
    if (t !== MemberKind.ETCD && t !== MemberKind.ETCD_TS)
      throw new Error(`TARGETS: unknown server ${JSON.stringify(t)}`);
  }
  if (out.length === 0) throw new Error('TARGETS is empty');
  return out as MemberKind[];
}

async function measure(
  tool: string,
  server: MemberKind,
  scenario: Scenario,
  mode: Mode,
  run: number,
  plan: Plan,
): Promise<Measurement> {
  const { scale, warmup, segments } = plan;
  const base: Measurement = {
    run,
    scenario: scenario.name,
    mode,
    server,
    opsPerSec: null,
    p50Ms: null,
    p99Ms: null,
    errors: 0,
    serverCpuUsPerOp: null,
    quiet: false,
  };
  let cluster: Cluster | undefined;
  try {
    cluster = await Cluster.start({ size: 3, kind: server, etcdTsEntry: ETCD_TS_ENTRY, nodeArgs: plan.nodeArgs });
    const globalArgs = [`--endpoints=${cluster.endpoints()}`, ...(mode === Mode.LEADER ? ['--target-leader'] : [])];
    if (warmup > 0) {
      const warm = await runTool(tool, [...globalArgs, ...scenario.args(() => String(warmup))], TOOL_TIMEOUT_MS);
      if (parseToolOutput(warm.stdout) === null) throw new Error(`warm-up run failed (exit ${warm.exitCode})`);
    }
    const quiet = await waitQuiet(plan.quietMaxWaitMs, plan.quietBusyPct);
    const pids = cluster.members.map((m) => m.pid!);
    const n = (total: number) => String(Math.max(1, Math.round((total * scale) / segments)));
    const measured = await runSegments(tool, [...globalArgs, ...scenario.args(n)], segments, pids, TOOL_TIMEOUT_MS);
    if (!measured.ok) {
      const { run: failed, segment } = measured;
      return {
        ...base,
        quiet: quiet.quiet,
        error: `no summary (exit ${failed.exitCode}${segments > 1 ? `, segment ${segment + 1}` : ''}): ${failed.stderr.slice(-300)}`,
      };
    }
    const { summaries, cpuSeconds: cpuS } = measured;
    const ops = summaries.reduce((s, x) => s + x.ops, 0);
    const errors = summaries.reduce((s, x) => s + x.errors, 0);
    // With segments, the members' CPU between two runs of the tool (idle but for heartbeats) counts too.
    const serverCpuUsPerOp = ops > 0 ? (cpuS * 1e6) / ops : null;
    if (segments === 1) {
      const only = summaries[0]!;
      return {
        ...base,
        opsPerSec: only.opsPerSec,
        p50Ms: only.p50Ms,
        p99Ms: only.p99Ms,
        errors,
        serverCpuUsPerOp,
        quiet: quiet.quiet,
      };
    }
    // The whole run's rate: all requests over the time the segments took (gaps between them left out).
    const seconds = summaries.reduce((s, x) => s + x.totalS, 0);
    return {
      ...base,
      opsPerSec: seconds > 0 ? ops / seconds : null,
      errors,
      serverCpuUsPerOp,
      quiet: quiet.quiet,
      segmentOpsPerSec: summaries.map((x) => x.opsPerSec),
    };
  } catch (err) {
    return { ...base, error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  } finally {
    await cluster?.stop();
  }
}

const fmt = (v: number | null, digits = 3): string =>
  v === null ? '–' : v >= 100 ? Math.round(v).toLocaleString('en-US') : Number(v.toPrecision(digits)).toString();

function table(results: readonly Measurement[], targets: readonly MemberKind[]): string {
  const [first, second] = targets;
  const pick = (server: MemberKind, scenario: string, mode: Mode, f: (m: Measurement) => number | null) =>
    median(
      results
        .filter((r) => r.server === server && r.scenario === scenario && r.mode === mode)
        .map(f)
        .filter((v): v is number => v !== null),
    );
  const lines = [
    second === undefined
      ? `| scenario | connections | ops/s ${first} | p50 ms | p99 ms | server CPU µs/op |`
      : `| scenario | connections | ops/s ${first} | ops/s ${second} | ops/s ratio | ratio, quiet pairs | p50 ms ${first} | p50 ms ${second} | p99 ms ${first} | p99 ms ${second} | server CPU µs/op ${first} | server CPU µs/op ${second} |`,
    second === undefined ? '|---|---|---|---|---|---|' : '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const scenario of SCENARIOS) {
    if (!results.some((r) => r.scenario === scenario.name)) continue;
    for (const mode of [Mode.SPREAD, Mode.LEADER]) {
      const col = (server: MemberKind, f: (m: Measurement) => number | null) => pick(server, scenario.name, mode, f);
      const ops = (s: MemberKind) => col(s, (m) => m.opsPerSec);
      const p50 = (s: MemberKind) => col(s, (m) => m.p50Ms);
      const p99 = (s: MemberKind) => col(s, (m) => m.p99Ms);
      const cpu = (s: MemberKind) => col(s, (m) => m.serverCpuUsPerOp);
      if (second === undefined) {
        lines.push(
          `| ${scenario.name} | ${mode} | ${fmt(ops(first!))} | ${fmt(p50(first!))} | ${fmt(p99(first!))} | ${fmt(cpu(first!))} |`,
        );
        continue;
      }
      const a = ops(first!);
      const b = ops(second);
      const ratio = a !== null && b !== null && a > 0 ? (b / a).toFixed(2) : '–';
      // The same run of both servers, each started on a quiet host: the least disturbed comparisons.
      const quietRatios: number[] = [];
      for (const x of results) {
        if (x.server !== first || x.scenario !== scenario.name || x.mode !== mode || !x.quiet || !x.opsPerSec) continue;
        const y = results.find(
          (r) => r.server === second && r.scenario === x.scenario && r.mode === x.mode && r.run === x.run && r.quiet,
        );
        if (y?.opsPerSec != null) quietRatios.push(y.opsPerSec / x.opsPerSec);
      }
      const quietMedian = median(quietRatios);
      const quiet = quietMedian === null ? '–' : `${quietMedian.toFixed(2)} (${quietRatios.length})`;
      lines.push(
        `| ${scenario.name} | ${mode} | ${fmt(a)} | ${fmt(b)} | ${ratio} | ${quiet} | ${fmt(p50(first!))} | ${fmt(p50(second))} | ` +
          `${fmt(p99(first!))} | ${fmt(p99(second))} | ${fmt(cpu(first!))} | ${fmt(cpu(second))} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * With SEGMENTS: per scenario, mode and server, the median ops/s of each segment over the runs,
 * and the ratio of each segment's medians.
 */
function segmentTable(results: readonly Measurement[], targets: readonly MemberKind[], segments: number): string {
  const columns = Array.from({ length: segments }, (_, i) => i);
  const lines = [
    `| scenario | connections | server | ${columns.map((i) => `segment ${i + 1}`).join(' | ')} |`,
    `|---|---|---|${columns.map(() => '---|').join('')}`,
  ];
  for (const scenario of SCENARIOS) {
    for (const mode of [Mode.SPREAD, Mode.LEADER]) {
      const rows = results.filter((r) => r.scenario === scenario.name && r.mode === mode && r.segmentOpsPerSec);
      if (rows.length === 0) continue;
      const medians = (server: MemberKind) =>
        columns.map((i) =>
          median(rows.filter((r) => r.server === server).flatMap((r) => r.segmentOpsPerSec?.slice(i, i + 1) ?? [])),
        );
      const byServer = targets.map((t) => medians(t));
      targets.forEach((t, k) => {
        lines.push(`| ${scenario.name} | ${mode} | ${t} | ${byServer[k]!.map((v) => fmt(v)).join(' | ')} |`);
      });
      const [a, b] = byServer;
      if (a !== undefined && b !== undefined) {
        const ratios = columns.map((i) => {
          const x = a[i];
          const y = b[i];
          return x != null && y != null && x > 0 ? (y / x).toFixed(2) : '–';
        });
        lines.push(`| ${scenario.name} | ${mode} | ratio | ${ratios.join(' | ')} |`);
      }
    }
  }
  return lines.join('\n');
}

function commitDescription(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src', 'bin'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.trim() !== '').length;
  return dirty > 0 ? `${head} + ${dirty} uncommitted files in src/ and bin/` : head;
}

function section(
  results: readonly Measurement[],
  targets: readonly MemberKind[],
  runs: number,
  scale: number,
  warmup: number,
  commit: string,
  nodeArgs: readonly string[],
): string {
  const etcdVersion = parseEtcdVersion(spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout) ?? 'unknown';
  const failed = results.filter((r) => r.error !== undefined);
  const noisy = results.filter((r) => !r.quiet).length;
  const date = new Date().toISOString();
  return [
    SECTION_HEADING,
    '',
    "Put throughput of three members on one machine, etcd-ts beside the real etcd, through etcd's",
    'benchmark tool with the put scenarios of the shared `bench.sh`: `put_seq_c1` (1 connection,',
    '1 client, sequential keys, 4 000 puts) and `put_rand_c100` (10 connections, 100 clients,',
    "random keys, 60 000 puts), each with the tool's connections spread over the three members",
    '("all members": a put sent to a follower is forwarded to the leader) and with',
    '`--target-leader` (every connection to the leader). Run with `npm run bench:cluster`',
    '(`bench/cluster-put.ts`: variables, method; the members run on the Node that runs it); every',
    "run's numbers are in `bench/cluster-put.results.json`. Not part of `npm test`.",
    '',
    `- Generated ${date.slice(0, 10)}; ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores shared with other work, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; etcd ${etcdVersion}; etcd-ts at ${commit}.`,
    `- ${runs} run(s) per row and server, each on a fresh 3-member cluster (fresh data dirs), servers alternating; SCALE=${scale}. Medians over the runs.`,
    ...(warmup > 0
      ? [`- Each cluster first served ${warmup} requests of the same scenario, not measured (WARMUP=${warmup}).`]
      : []),
    ...(nodeArgs.length > 0
      ? [`- Every etcd-ts member ran with the Node flags \`${nodeArgs.join(' ')}\` (NODE_ARGS).`]
      : []),
    '- Ratio = etcd-ts / etcd ops/s (above 1: etcd-ts is faster), of the medians; "quiet pairs": the median ratio over the runs where both servers started on a quiet host (how many in parentheses). Server CPU = CPU time of the three member processes during the run, per put.',
    `- ${noisy} of ${results.length} runs started on a host that was not quiet (other work above the threshold): read ratios, not absolute numbers.`,
    '',
    table(results, targets),
    '',
    ...(failed.length > 0
      ? [
          'Runs with errors:',
          '',
          ...failed.map((f) => `- ${f.server}, ${f.scenario}, ${f.mode}, run ${f.run}: ${f.error}`),
          '',
        ]
      : []),
    '### Linearizability under faults, for longer',
    '',
    '`bench/linearizability.ts` runs the workload of `test/robustness/linearizability.test.ts` for',
    'minutes instead of seconds: 8 clients doing puts, linearizable gets, deletes and',
    'compare-and-swaps on 6 keys against any member of a fresh 3-member cluster, while members are',
    'killed (SIGKILL) and restarted, paused (SIGSTOP) and cut off from their peers, one at a time;',
    'then every key is read on every member and the history is checked (per-key linearizability,',
    'writes of unknown outcome allowed to take effect or not; revisions unique, stable and',
    'monotonic in real time). It prints the faults, the number of operations checked, and exits 1',
    'with the failing operations on a violation.',
    '',
    '```',
    'node --import tsx bench/linearizability.ts                       # 5 minutes',
    'DURATION_S=1800 CLIENTS=16 KEYS=4 SEED=42 node --import tsx bench/linearizability.ts',
    'SERVER=etcd DURATION_S=60 node --import tsx bench/linearizability.ts   # the harness against the real etcd',
    '```',
    '',
  ].join('\n');
}

/** Replaces the section (from its heading to the next `## ` heading) or appends it. */
function writeSection(text: string): void {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(`\n${SECTION_HEADING}\n`);
  let out: string;
  if (start < 0) {
    out = `${readme.trimEnd()}\n\n${text.trimEnd()}\n`;
  } else {
    const next = readme.indexOf('\n## ', start + SECTION_HEADING.length + 1);
    const rest = next < 0 ? '' : readme.slice(next);
    out = `${readme.slice(0, start + 1)}${text.trimEnd()}\n${rest}`;
  }
  writeFileSync(README, out);
}

async function main(): Promise<void> {
  const warmup = intEnv('WARMUP', 0, 0, 1_000_000);
  const segments = intEnv('SEGMENTS', 1, 1, 100);
  const nodeArgs = (process.env.NODE_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
  const resultsPath = resultsFile(warmup, segments, nodeArgs);
  if (process.env.FROM_RESULTS === '1') {
    // Rewrites the README section from the last results file, measuring nothing.
    const saved = JSON.parse(readFileSync(resultsPath, 'utf8')) as {
      runs: number;
      scale: number;
      warmup?: number;
      nodeArgs?: string[];
      targets: MemberKind[];
      commit?: string;
      results: Measurement[];
    };
    writeSection(
      section(
        saved.results,
        saved.targets,
        saved.runs,
        saved.scale,
        saved.warmup ?? 0,
        saved.commit ?? commitDescription(),
        saved.nodeArgs ?? [],
      ),
    );
    console.log(
      `# wrote the "${SECTION_HEADING.slice(3)}" section of ${relative(REPO_ROOT, README)} from ${relative(REPO_ROOT, resultsPath)}`,
    );
    return;
  }
  const runs = intEnv('RUNS', 3, 1, RUNS_MAX);
  const scale = numberEnv('SCALE', 1);
  const targets = targetsEnv();
  const scenarios = scenariosEnv();
  const plan: Plan = {
    scale,
    warmup,
    segments,
    quietMaxWaitMs: intEnv('QUIET_MAX_WAIT', 20, 0, 600) * 1000,
    quietBusyPct: intEnv('QUIET_BUSY', 15, 1, 100),
    nodeArgs,
  };
  const writeReadme =
    process.env.README === undefined
      ? targets.join(',') === 'etcd,etcd-ts' && warmup === 0 && segments === 1 && nodeArgs.length === 0
      : process.env.README === '1';
  const tool = process.env.BENCH_TOOL ?? defaultToolPath(process.env);
  ensureBenchmarkTool(tool);
  if (targets.includes(MemberKind.ETCD_TS)) buildInto(REPO_ROOT, BUILD_DIR, ETCD_TS_ENTRY);

  const commit = commitDescription();
  const results: Measurement[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const scenario of scenarios) {
      for (const mode of [Mode.SPREAD, Mode.LEADER]) {
        for (const server of targets) {
          const m = await measure(tool, server, scenario, mode, run, plan);
          results.push(m);
          console.log(
            `run ${run} ${scenario.name} (${mode}) ${server}: ` +
              (m.error !== undefined
                ? `error: ${m.error}`
                : `${fmt(m.opsPerSec)} ops/s, p50 ${fmt(m.p50Ms)} ms, p99 ${fmt(m.p99Ms)} ms, ` +
                  `${fmt(m.serverCpuUsPerOp)} µs CPU/op, ${m.errors} errors${m.quiet ? '' : ' (host not quiet)'}` +
                  (m.segmentOpsPerSec === undefined
                    ? ''
                    : `; segments ${m.segmentOpsPerSec.map((v) => fmt(v)).join(' ')}`)),
          );
          writeFileSync(
            resultsPath,
            `${JSON.stringify({ runs, scale, warmup, segments, nodeArgs, targets, commit, results }, null, 2)}\n`,
          );
        }
      }
    }
  }
  console.log(`\n${table(results, targets)}\n`);
  if (segments > 1) console.log(`${segmentTable(results, targets, segments)}\n`);
  if (writeReadme) {
    writeSection(section(results, targets, runs, scale, warmup, commit, nodeArgs));
    console.log(`# wrote the "${SECTION_HEADING.slice(3)}" section of ${relative(REPO_ROOT, README)}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
