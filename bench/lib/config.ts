// The harness's settings, all from environment variables, validated before anything starts.

import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SCENARIOS, SCENARIO_NAMES, type ScenarioName } from './scenarios.ts';

export const TargetKind = { etcd: 'etcd', etcdTs: 'etcd-ts' } as const;
export type TargetKind = (typeof TargetKind)[keyof typeof TargetKind];

export interface Target {
  kind: TargetKind;
  /** Unique name in results and tables: the kind, with "#2", "#3" for repeated kinds. */
  label: string;
}

export const ReadmeMode = { auto: 'auto', always: 'always', never: 'never' } as const;
export type ReadmeMode = (typeof ReadmeMode)[keyof typeof ReadmeMode];

export interface BenchConfig {
  /** Runs per (scenario, target); each on a fresh server and data dir. */
  runs: number;
  scenarios: ScenarioName[];
  /** Multiplies every request total. */
  scale: number;
  /** Measured in this order within each scenario; the first is the baseline of the ratios. */
  targets: Target[];
  scenarioTimeoutMs: number;
  /** Before each scenario, wait at most this long for the host to be quiet (0: never wait). */
  quietMaxWaitMs: number;
  /** "Quiet": whole-host busy time below this percentage of all cores over one second. */
  quietBusyPct: number;
  toolPath: string;
  etcdPath: string;
  resultsDir: string;
  readme: ReadmeMode;
  /** Parent of the per-run temporary directories (data dirs, server logs). */
  tmpDir: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const DEFAULT_RUNS = 3;
export const DEFAULT_SCENARIO_TIMEOUT_S = 180;
export const DEFAULT_QUIET_MAX_WAIT_S = 20;
export const DEFAULT_QUIET_BUSY_PCT = 15;
export const RUNS_MAX = 100;

export function defaultToolPath(env: NodeJS.ProcessEnv): string {
  const cache =
    env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(cache, 'etcd-bench', 'bin', 'etcd-benchmark');
}

/**
 * Reads BENCH_RUNS, SCENARIOS, SCALE, BENCH_TARGETS, SCENARIO_TIMEOUT, QUIET_MAX_WAIT,
 * QUIET_BUSY, BENCH_TOOL, ETCD_BIN, BENCH_RESULTS_DIR and BENCH_README. Throws ConfigError
 * naming the variable on any bad value.
 */
export function readConfig(env: NodeJS.ProcessEnv, repoRoot: string): BenchConfig {
  const runs = intVar(env, 'BENCH_RUNS', DEFAULT_RUNS, 1, RUNS_MAX);
  const scale = numberVar(env, 'SCALE', 1);
  if (scale <= 0 || scale > 100) throw new ConfigError(`SCALE must be > 0 and <= 100, got ${env.SCALE}`);
  return {
    runs,
    scenarios: parseScenarios(env.SCENARIOS),
    scale,
    targets: parseTargets(env.BENCH_TARGETS),
    scenarioTimeoutMs: intVar(env, 'SCENARIO_TIMEOUT', DEFAULT_SCENARIO_TIMEOUT_S, 1, 86_400) * 1000,
    quietMaxWaitMs: intVar(env, 'QUIET_MAX_WAIT', DEFAULT_QUIET_MAX_WAIT_S, 0, 3600) * 1000,
    quietBusyPct: intVar(env, 'QUIET_BUSY', DEFAULT_QUIET_BUSY_PCT, 1, 100),
    toolPath: nonEmpty(env.BENCH_TOOL) ?? defaultToolPath(env),
    etcdPath: nonEmpty(env.ETCD_BIN) ?? '/usr/bin/etcd',
    resultsDir: nonEmpty(env.BENCH_RESULTS_DIR) ?? join(repoRoot, 'bench', 'results'),
    readme: parseReadme(env.BENCH_README),
    tmpDir: tmpdir(),
  };
}

/** SCENARIOS: names separated by spaces or commas; "default" or unset: DEFAULT_SCENARIOS; "all": every one. */
export function parseScenarios(value: string | undefined): ScenarioName[] {
  const v = nonEmpty(value?.trim());
  if (v === undefined || v === 'default') return [...DEFAULT_SCENARIOS];
  if (v === 'all') return [...SCENARIO_NAMES];
  const out: ScenarioName[] = [];
  for (const name of v.split(/[\s,]+/).filter((x) => x !== '')) {
    if (!isScenarioName(name)) {
      throw new ConfigError(`SCENARIOS: unknown scenario "${name}" (known: ${SCENARIO_NAMES.join(' ')}, default, all)`);
    }
    if (out.includes(name)) throw new ConfigError(`SCENARIOS: "${name}" is listed twice`);
    out.push(name);
  }
  return out;
}

/** BENCH_TARGETS: comma-separated etcd|etcd-ts, at least one; default "etcd,etcd-ts". */
export function parseTargets(value: string | undefined): Target[] {
  const v = nonEmpty(value?.trim()) ?? 'etcd,etcd-ts';
  const kinds = v.split(',').map((x) => x.trim());
  const targets: Target[] = [];
  for (const kind of kinds) {
    if (kind !== TargetKind.etcd && kind !== TargetKind.etcdTs) {
      throw new ConfigError(`BENCH_TARGETS: unknown target "${kind}" (use etcd and etcd-ts, comma-separated)`);
    }
    const seen = targets.filter((t) => t.kind === kind).length;
    targets.push({ kind, label: seen === 0 ? kind : `${kind}#${seen + 1}` });
  }
  return targets;
}

function parseReadme(value: string | undefined): ReadmeMode {
  const v = nonEmpty(value?.trim());
  if (v === undefined || v === 'auto') return ReadmeMode.auto;
  if (v === '1' || v === 'yes' || v === 'always') return ReadmeMode.always;
  if (v === '0' || v === 'no' || v === 'never') return ReadmeMode.never;
  throw new ConfigError(`BENCH_README must be auto, 1 or 0, got ${value}`);
}

function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(name);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function numberVar(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = nonEmpty(env[name]?.trim());
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new ConfigError(`${name} must be a number, got ${env[name]}`);
  return n;
}

/** A whole-number variable of this process's environment in [min, max], or `dflt` when unset. */
export function intEnv(name: string, dflt: number, min: number, max: number): number {
  return intVar(process.env, name, dflt, min, max);
}

function intVar(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]?.trim());
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${env[name]}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}
