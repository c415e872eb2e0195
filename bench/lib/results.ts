// The shape of bench/results/<timestamp>.json: every run's numbers plus the context needed to
// read them (machine, versions, settings).

import type { TargetKind } from './config.ts';
import type { ScenarioName } from './scenarios.ts';

export const RESULTS_FORMAT_VERSION = 1;

export const RunStatus = { ok: 'ok', na: 'n/a' } as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/** What load_1m measures after loading the keys. */
export interface LoadMetrics {
  keys: number;
  /** VmRSS right after the load. */
  rssAfterLoadBytes: number | null;
  /** Disk space of the data dir after a clean stop (allocated blocks, as du reports). */
  dataDirBytes: number;
  /** Sum of the files' sizes (du --apparent-size); preallocated WAL segments count in full. */
  dataDirApparentBytes: number;
  /** SIGTERM to exit. */
  stopMs: number;
  /** Spawn on the loaded data dir to the first linearizable Range answered. */
  restartMs: number | null;
  /** A count-only Range over every key after the restart, and how long it took. */
  keyCountAfterRestart: number | null;
  countMs: number | null;
  /** VmRSS after the restart and the count. */
  rssAfterRestartBytes: number | null;
  /** Why the part after the load failed, if it did. */
  error: string | null;
}

export interface RunResult {
  scenario: ScenarioName;
  /** Target label ("etcd", "etcd-ts", "etcd#2"). */
  target: string;
  kind: TargetKind;
  /** 1-based run number. */
  run: number;
  status: RunStatus;
  /** Why the run is n/a, or a note on a run that completed with failed requests. */
  error: string | null;
  startedAt: string;
  /** The tool's arguments. */
  command: string[];
  opsPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Operations counted by the tool (requests, or watch events). */
  ops: number | null;
  /** Failed requests reported by the tool. */
  errors: number;
  /** Wall time of the tool process. */
  wallS: number | null;
  /** Server utime+stime while the tool ran. */
  serverCpuS: number | null;
  serverCpuUsPerOp: number | null;
  /** utime+stime of the tool process. */
  clientCpuS: number | null;
  /** VmHWM of the server at the end of the scenario: the peak of this run (fresh process). */
  serverPeakRssBytes: number | null;
  /** VmRSS of the server after start and seeding, before the load. */
  serverIdleRssBytes: number | null;
  /** Spawn to first answered Range. */
  serverReadyMs: number | null;
  /** Whole-host busy time during the scenario, % of all cores. */
  hostBusyPct: number | null;
  /**
   * Host busy time (irq/softirq excluded) not used by the server, the tool or the harness,
   * in % of one core: other processes, kernel threads, steal.
   */
  otherPct: number | null;
  /** How long the harness waited for a quiet host, and whether it was quiet. */
  quietWaitS: number;
  quiet: boolean;
  /** 2 when the first attempt failed in a way that points at the host (timeouts) and was redone. */
  attempts: number;
  firstAttemptError: string | null;
  load: LoadMetrics | null;
}

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memTotalBytes: number;
  os: string;
  kernel: string;
  node: string;
  etcdVersion: string;
  tool: string;
  etcdTsVersion: string;
  etcdTsCommit: string;
  /** How `npm run build` went (etcd-ts is measured from its output). */
  etcdTsBuild: string;
}

export interface ResultsFile {
  format: typeof RESULTS_FORMAT_VERSION;
  startedAt: string;
  finishedAt: string | null;
  machine: MachineInfo;
  settings: {
    runs: number;
    scale: number;
    scenarios: ScenarioName[];
    targets: { label: string; kind: TargetKind }[];
    scenarioTimeoutS: number;
    quietMaxWaitS: number;
    quietBusyPct: number;
    serverFlags: string[];
  };
  scenarios: { name: ScenarioName; description: string; unit: string }[];
  results: RunResult[];
}
