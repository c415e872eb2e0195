// `npm run bench`: etcd-ts side by side with the real etcd, measured by etcd's own benchmark
// tool. See bench/README.md ("How to run") for the settings.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInto } from './lib/build.ts';
import { type BenchConfig, ConfigError, ReadmeMode, readConfig, TargetKind } from './lib/config.ts';
import { liveTempDirs, measureRun } from './lib/measure.ts';
import { parseEtcdVersion } from './lib/parse.ts';
import {
  fmtInt,
  fmtMiB,
  fmtSig,
  type ResultsSource,
  renderSection,
  replaceSection,
  SECTION_HEADING,
} from './lib/report.ts';
import { type MachineInfo, RESULTS_FORMAT_VERSION, type ResultsFile, type RunResult } from './lib/results.ts';
import { SCENARIOS } from './lib/scenarios.ts';
import { liveServers, serverArgs } from './lib/server.ts';
import { ensureBenchmarkTool, isExecutable, liveTools } from './lib/tool.ts';

const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** Inside the repository's node_modules, so that the compiled code finds its dependencies. */
const BUILD_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'etcd-ts-bench', 'dist');
const ETCD_TS_ENTRY = join(BUILD_DIR, 'bin', 'etcd-ts.js');
const README = join(REPO_ROOT, 'bench', 'README.md');

async function main(): Promise<number> {
  let config: BenchConfig;
  try {
    config = readConfig(process.env, REPO_ROOT);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`bench: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (process.argv.includes('--report')) {
    publish(config, null);
    return 0;
  }
  if (!isExecutable(config.etcdPath)) {
    console.error(`bench: ${config.etcdPath} is not an executable etcd (set ETCD_BIN or install etcd-server)`);
    return 1;
  }
  ensureBenchmarkTool(config.toolPath);
  const build = config.targets.some((t) => t.kind === TargetKind.etcdTs)
    ? buildInto(REPO_ROOT, BUILD_DIR, ETCD_TS_ENTRY)
    : 'not built (not measured)';

  const startedAt = new Date();
  const file: ResultsFile = {
    format: RESULTS_FORMAT_VERSION,
    startedAt: startedAt.toISOString(),
    finishedAt: null,
    machine: machineInfo(config, build),
    settings: {
      runs: config.runs,
      scale: config.scale,
      scenarios: config.scenarios,
      targets: config.targets.map((t) => ({ label: t.label, kind: t.kind })),
      scenarioTimeoutS: config.scenarioTimeoutMs / 1000,
      quietMaxWaitS: config.quietMaxWaitMs / 1000,
      quietBusyPct: config.quietBusyPct,
      serverFlags: serverArgs('<data-dir>', { client: 0, peer: 0 }),
    },
    scenarios: config.scenarios.map((s) => ({
      name: s,
      description: SCENARIOS[s].description,
      unit: SCENARIOS[s].unit,
    })),
    results: [],
  };
  mkdirSync(config.resultsDir, { recursive: true });
  const resultsPath = join(
    config.resultsDir,
    `${startedAt
      .toISOString()
      .replace(/:/g, '-')
      .replace(/\.\d+Z$/, 'Z')}.json`,
  );
  console.log(
    `# ${config.runs} runs x ${config.scenarios.length} scenarios x ${config.targets.map((t) => t.label).join(',')}, ` +
      `SCALE=${config.scale}; results: ${relative(process.cwd(), resultsPath)}`,
  );

  const ctx = { config, server: { etcdPath: config.etcdPath, etcdTsEntry: ETCD_TS_ENTRY } };
  for (let run = 1; run <= config.runs; run++) {
    for (const name of config.scenarios) {
      for (const target of config.targets) {
        const result = await measureRun(ctx, SCENARIOS[name], target, run);
        file.results.push(result);
        writeJson(resultsPath, file);
        console.log(progressLine(result, config.runs));
      }
    }
  }
  file.finishedAt = new Date().toISOString();
  writeJson(resultsPath, file);

  publish(config, { file, path: relative(REPO_ROOT, resultsPath) });
  return 0;
}

/**
 * Prints the section and writes it into bench/README.md (per BENCH_README). The main tables
 * come from `current` when it has main scenarios, the load_1m table when it has load_1m;
 * otherwise each comes from the newest finished results file with the same targets.
 */
function publish(config: BenchConfig, current: ResultsSource | null): void {
  const labels = config.targets.map((t) => t.label).join(',');
  const has = (f: ResultsFile, load: boolean): boolean => f.settings.scenarios.some((s) => (s === 'load_1m') === load);
  const pick = (load: boolean): ResultsSource | null =>
    current !== null && has(current.file, load) ? current : newestResults(config, labels, (f) => has(f, load));
  const main = pick(false);
  const load = pick(true);
  if (main === null && load === null) {
    console.error(`bench: no finished results for ${labels} in ${config.resultsDir}`);
    return;
  }
  const section = renderSection(main, load);
  console.log(`\n${SECTION_HEADING}\n\n${section}`);
  const pair = config.targets.map((t) => t.kind).join(',') === `${TargetKind.etcd},${TargetKind.etcdTs}`;
  if (config.readme === ReadmeMode.always || (config.readme === ReadmeMode.auto && pair)) {
    writeFileSync(README, replaceSection(readFileSync(README, 'utf8'), SECTION_HEADING, section));
    console.log(`# ${relative(process.cwd(), README)}: "${SECTION_HEADING.slice(3)}" updated`);
  }
}

/** The newest finished results file (names are timestamps) for these targets that `accept`s. */
function newestResults(config: BenchConfig, labels: string, accept: (f: ResultsFile) => boolean): ResultsSource | null {
  let names: string[];
  try {
    names = readdirSync(config.resultsDir).filter((n) => n.endsWith('.json'));
  } catch {
    return null;
  }
  for (const name of names.sort().reverse()) {
    const path = join(config.resultsDir, name);
    let file: ResultsFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as ResultsFile;
    } catch {
      continue;
    }
    if (file.format !== RESULTS_FORMAT_VERSION || file.finishedAt === null) continue;
    if (file.settings.targets.map((t) => t.label).join(',') !== labels || !accept(file)) continue;
    return { file, path: relative(REPO_ROOT, path) };
  }
  return null;
}

function machineInfo(config: BenchConfig, etcdTsBuild: string): MachineInfo {
  const run = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : '';
  };
  let os = 'Linux';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // not every Linux has /etc/os-release
  }
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpus: cpus().length,
    memTotalBytes: totalmem(),
    os,
    kernel: release(),
    node: process.version,
    etcdVersion: parseEtcdVersion(run(config.etcdPath, ['--version'])) ?? 'unknown',
    tool: "etcd's tools/benchmark 3.4.23",
    etcdTsVersion: pkg.version,
    etcdTsCommit: commitDescription(run),
    etcdTsBuild,
  };
}

/** HEAD, and how many files under src/ and bin/ differ from it (the build takes the working tree). */
function commitDescription(run: (cmd: string, args: string[]) => string): string {
  const head = run('git', ['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = run('git', ['status', '--porcelain', '--', 'src', 'bin'])
    .split('\n')
    .filter((l) => l !== '').length;
  return dirty === 0 ? head : `${head} + ${dirty} uncommitted files in src/ and bin/`;
}

function writeJson(path: string, file: ResultsFile): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

function progressLine(r: RunResult, runs: number): string {
  const head = `[${r.run}/${runs}] ${r.scenario.padEnd(15)} ${r.target.padEnd(8)}`;
  if (r.status !== 'ok') return `${head} n/a: ${(r.error ?? '').split('\n')[0]}`;
  const parts = [
    `${fmtInt(r.opsPerSec ?? 0).padStart(8)} ops/s`,
    `p50 ${r.p50Ms === null ? '-' : fmtSig(r.p50Ms)} ms`,
    `p99 ${r.p99Ms === null ? '-' : fmtSig(r.p99Ms)} ms`,
    `cpu ${r.serverCpuUsPerOp === null ? '-' : fmtSig(r.serverCpuUsPerOp)} µs/op`,
    `rss ${r.serverPeakRssBytes === null ? '-' : fmtMiB(r.serverPeakRssBytes)} MiB`,
    `other ${r.otherPct === null ? '-' : Math.round(r.otherPct)}%`,
  ];
  if (r.quietWaitS >= 2) parts.push(`waited ${Math.round(r.quietWaitS)} s for quiet`);
  if (r.errors > 0) parts.push(`${r.errors} errors`);
  if (r.load !== null) {
    const l = r.load;
    parts.push(
      `data ${fmtMiB(l.dataDirBytes)} MiB`,
      `restart ${l.restartMs === null ? '-' : fmtSig(l.restartMs / 1000)} s`,
      `keys ${l.keyCountAfterRestart ?? '-'}`,
    );
    if (l.error !== null) parts.push(`(${l.error})`);
  }
  return `${head} ${parts.join('  ')}`;
}

/** On SIGINT/SIGTERM: kill the servers this process started and remove their temp dirs. */
function onSignal(signal: NodeJS.Signals): void {
  for (const s of liveServers()) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const child of liveTools) child.kill('SIGKILL');
  for (const dir of liveTempDirs) rmSync(dir, { recursive: true, force: true });
  console.error(`bench: interrupted by ${signal}`);
  process.exit(130);
}
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    console.error(`bench: ${err.message}`);
    for (const s of liveServers()) void s.stop();
    process.exitCode = 1;
  },
);
