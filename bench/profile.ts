// Side-by-side runs for performance work: the real etcd and one or more etcd-ts builds (each
// with its own Node binary, Node flags and environment if wanted), alternating per scenario,
// measured by etcd's benchmark tool; optionally with a CPU profile of every etcd-ts run.
// Prints every run and, at the end, the medians with their ratios to the first target.
// See bench/README.md ("Performance work").
//
//   node --import tsx bench/profile.ts --target etcd --target ts=dist/bin/etcd-ts.js \
//     --scenarios put_rand_c100,put_seq_c1 --runs 3 [--scale 0.5] [--cpu-prof DIR]
//
// A target is `etcd` (ETCD_BIN or /usr/bin/etcd) or `LABEL=ENTRY[@NODE]`: node (or NODE)
// running the compiled entry point ENTRY. `--node-arg LABEL=ARG` adds a Node flag to that
// target, `--env LABEL=NAME=VALUE` a variable to its environment.

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { defaultToolPath } from './lib/config.ts';
import { GrpcClient } from './lib/grpc.ts';
import { prepare } from './lib/measure.ts';
import { parseToolOutput } from './lib/parse.ts';
import { readCpuSeconds, readHostTicks } from './lib/procfs.ts';
import { median } from './lib/report.ts';
import { SCENARIO_NAMES, SCENARIOS, type ScenarioName, toolCommand } from './lib/scenarios.ts';
import { freePorts, HOST, serverArgs } from './lib/server.ts';
import { runTool } from './lib/tool.ts';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const TOOL_TIMEOUT_MS = 300_000;
/** Scenarios this script runs (load_1m needs the stop and restart of `npm run bench`). */
const SUPPORTED: readonly ScenarioName[] = [
  'put_seq_c1',
  'put_rand_c100',
  'range_l_c100',
  'range_s_c100',
  'txn_put_c100',
  'watch_lat_w1',
  'watch_lat_w100',
  'watch_fanout',
  'range_10k_c10',
];

export interface ProfileTarget {
  label: string;
  /** null: the real etcd. */
  entry: string | null;
  node: string;
  nodeArgs: string[];
  env: Record<string, string>;
}

export interface ProfileRun {
  run: number;
  scenario: ScenarioName;
  target: string;
  opsPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  serverCpuUsPerOp: number | null;
  hostBusyPct: number;
  load1: number;
  error: string | null;
}

/** `etcd`, or `LABEL=ENTRY[@NODE]`. */
export function parseTarget(spec: string): ProfileTarget {
  if (spec === 'etcd') return { label: 'etcd', entry: null, node: '', nodeArgs: [], env: {} };
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new Error(`--target ${spec}: expected etcd or LABEL=ENTRY[@NODE]`);
  const label = spec.slice(0, eq);
  const rest = spec.slice(eq + 1);
  const at = rest.lastIndexOf('@');
  const entry = at < 0 ? rest : rest.slice(0, at);
  const node = at < 0 ? process.execPath : resolve(rest.slice(at + 1));
  return { label, entry: resolve(entry), node, nodeArgs: [], env: {} };
}

/** `LABEL=REST` of --node-arg and --env. */
function splitLabelled(flag: string, spec: string): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new Error(`${flag} ${spec}: expected LABEL=VALUE`);
  return [spec.slice(0, eq), spec.slice(eq + 1)];
}

function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  return { ...env, ...extra };
}

async function startServer(
  target: ProfileTarget,
  dataDir: string,
  logPath: string,
  profDir: string | null,
): Promise<{ child: ChildProcess; endpoint: string }> {
  const ports = await freePorts();
  const args = serverArgs(dataDir, ports);
  const etcdBin = process.env.ETCD_BIN ?? '/usr/bin/etcd';
  const prof = profDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
  const [file, argv] =
    target.entry === null ? [etcdBin, args] : [target.node, [...target.nodeArgs, ...prof, target.entry, ...args]];
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(file, argv, { stdio: ['ignore', log, log], env: serverEnv(target.env) });
  } finally {
    closeSync(log);
  }
  const endpoint = `${HOST}:${ports.client}`;
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${target.label} exited before serving: ${tail(logPath)}`);
    }
    const client = new GrpcClient(endpoint);
    try {
      await client.range({ key: Buffer.from('probe') }, 1000);
      return { child, endpoint };
    } catch {
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${target.label} did not answer within ${READY_TIMEOUT_MS} ms: ${tail(logPath)}`);
      }
    } finally {
      client.close();
    }
    await sleep(50);
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

async function measure(
  target: ProfileTarget,
  scenario: ScenarioName,
  run: number,
  scale: number,
  toolPath: string,
  profRoot: string | null,
): Promise<ProfileRun> {
  const out: ProfileRun = {
    run,
    scenario,
    target: target.label,
    opsPerSec: null,
    p50Ms: null,
    p99Ms: null,
    serverCpuUsPerOp: null,
    hostBusyPct: 0,
    load1: loadavg()[0] ?? 0,
    error: null,
  };
  const dir = await mkdtemp(join(tmpdir(), `etcd-perf-${target.label}-`));
  const profDir =
    profRoot === null || target.entry === null ? null : join(profRoot, `${target.label}-${scenario}-${run}`);
  if (profDir !== null) mkdirSync(profDir, { recursive: true });
  let server: { child: ChildProcess; endpoint: string } | null = null;
  try {
    server = await startServer(target, join(dir, 'data'), join(dir, 'server.log'), profDir);
    await prepare(server, SCENARIOS[scenario]);
    const pid = server.child.pid ?? 0;
    const cpu0 = await readCpuSeconds(pid);
    const host0 = await readHostTicks();
    const tool = await runTool(toolPath, toolCommand(SCENARIOS[scenario], server.endpoint, scale), TOOL_TIMEOUT_MS);
    const cpu1 = await readCpuSeconds(pid);
    const host1 = await readHostTicks();
    out.hostBusyPct = ((host1.busy - host0.busy) / Math.max(1, host1.total - host0.total)) * 100;
    const summary = parseToolOutput(tool.stdout);
    if (summary === null || tool.exitCode !== 0) {
      out.error = `tool exit ${tool.exitCode ?? tool.signal}: ${tool.stderr.split('\n').slice(-3).join(' ')}`;
    } else {
      out.opsPerSec = summary.opsPerSec;
      out.p50Ms = summary.p50Ms;
      out.p99Ms = summary.p99Ms;
      out.serverCpuUsPerOp = summary.ops > 0 ? ((cpu1 - cpu0) / summary.ops) * 1e6 : null;
      if (summary.errors > 0) out.error = `${summary.errors} failed requests`;
    }
  } catch (err) {
    out.error = (err as Error).message;
  } finally {
    if (server !== null) await stopServer(server.child);
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

function fmt(v: number | null, digits = 0): string {
  if (v === null) return '-';
  return digits === 0 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(digits);
}

function runLine(r: ProfileRun): string {
  const head = `[${r.run}] ${r.scenario.padEnd(15)} ${r.target.padEnd(10)}`;
  if (r.opsPerSec === null) return `${head} n/a: ${r.error ?? ''}`;
  return (
    `${head} ${fmt(r.opsPerSec).padStart(8)} ops/s  p50 ${fmt(r.p50Ms, 3)} ms  p99 ${fmt(r.p99Ms, 3)} ms  ` +
    `cpu ${fmt(r.serverCpuUsPerOp, 3)} µs/op  host ${Math.round(r.hostBusyPct)}% busy  load ${r.load1.toFixed(1)}` +
    (r.error === null ? '' : `  (${r.error})`)
  );
}

/** Medians per scenario and target, with the ratio of each target to the first. */
export function summaryTable(runs: readonly ProfileRun[], targets: readonly string[]): string {
  const lines = [
    '| scenario | target | runs | ops/s | ratio | p50 ms | ratio | p99 ms | CPU µs/op | ratio |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  for (const s of scenarios) {
    const med = (t: string, pick: (r: ProfileRun) => number | null): number | null =>
      median(
        runs
          .filter((r) => r.scenario === s && r.target === t)
          .map(pick)
          .filter((v): v is number => v !== null),
      );
    const base = targets[0] ?? '';
    for (const t of targets) {
      const ok = runs.filter((r) => r.scenario === s && r.target === t && r.opsPerSec !== null).length;
      const ops = med(t, (r) => r.opsPerSec);
      const p50 = med(t, (r) => r.p50Ms);
      const p99 = med(t, (r) => r.p99Ms);
      const cpu = med(t, (r) => r.serverCpuUsPerOp);
      const ratio = (v: number | null, b: number | null): string =>
        v === null || b === null || b === 0 ? '-' : (v / b).toFixed(2);
      lines.push(
        `| ${s} | ${t} | ${ok} | ${fmt(ops)} | ${ratio(
          ops,
          med(base, (r) => r.opsPerSec),
        )} | ${fmt(p50, 3)} | ` +
          `${ratio(
            p50,
            med(base, (r) => r.p50Ms),
          )} | ${fmt(p99, 3)} | ${fmt(cpu, 3)} | ` +
          `${ratio(
            cpu,
            med(base, (r) => r.serverCpuUsPerOp),
          )} |`,
      );
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', multiple: true },
      'node-arg': { type: 'string', multiple: true },
      env: { type: 'string', multiple: true },
      scenarios: { type: 'string' },
      runs: { type: 'string' },
      scale: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  const targets = (values.target ?? ['etcd', 'etcd-ts=dist/bin/etcd-ts.js']).map(parseTarget);
  const byLabel = new Map(targets.map((t) => [t.label, t]));
  if (byLabel.size !== targets.length) throw new Error('target labels must be unique');
  for (const spec of values['node-arg'] ?? []) {
    const [label, arg] = splitLabelled('--node-arg', spec);
    const t = byLabel.get(label);
    if (t === undefined || t.entry === null) throw new Error(`--node-arg ${spec}: no etcd-ts target ${label}`);
    t.nodeArgs.push(arg);
  }
  for (const spec of values.env ?? []) {
    const [label, kv] = splitLabelled('--env', spec);
    const [name, value] = splitLabelled('--env', kv);
    const t = byLabel.get(label);
    if (t === undefined) throw new Error(`--env ${spec}: no target ${label}`);
    t.env[name] = value;
  }
  const scenarios = (values.scenarios ?? 'put_rand_c100,put_seq_c1').split(',').map((s) => s.trim()) as ScenarioName[];
  for (const s of scenarios) {
    if (!SCENARIO_NAMES.includes(s) || !SUPPORTED.includes(s)) {
      throw new Error(`unknown or unsupported scenario ${s} (supported: ${SUPPORTED.join(' ')})`);
    }
  }
  const runs = Number(values.runs ?? '3');
  const scale = Number(values.scale ?? '1');
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error('--runs must be 1..50');
  if (!(scale > 0 && scale <= 10)) throw new Error('--scale must be in (0, 10]');
  const profRoot = values['cpu-prof'] === undefined ? null : resolve(values['cpu-prof']);
  const toolPath = process.env.BENCH_TOOL ?? defaultToolPath(process.env);

  console.log(`# ${targets.map((t) => t.label).join(', ')}; ${scenarios.join(' ')}; ${runs} runs; scale ${scale}`);
  console.log(
    `# load average at start: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  const all: ProfileRun[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const s of scenarios) {
      for (const t of targets) {
        const r = await measure(t, s, run, scale, toolPath, profRoot);
        all.push(r);
        console.log(runLine(r));
      }
    }
  }
  console.log(
    `# load average at end: ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    summaryTable(
      all,
      targets.map((t) => t.label),
    ),
  );
}

if (process.argv[1] !== undefined && import.meta.url === `file://${resolve(process.argv[1])}`) {
  main().catch((err: Error) => {
    console.error(`profile: ${err.message}`);
    process.exitCode = 1;
  });
}
