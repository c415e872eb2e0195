// The scenario set. The first eight are those of the shared bench.sh (same tool flags, 256-byte
// values); range_10k_c10 and load_1m are added here. Request totals are scaled by SCALE.

export const SCENARIO_NAMES = [
  'put_seq_c1',
  'put_rand_c100',
  'range_l_c100',
  'range_s_c100',
  'txn_put_c100',
  'watch_lat_w1',
  'watch_lat_w100',
  'watch_fanout',
  'range_10k_c10',
  'load_1m',
] as const;

export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** Scenarios run when SCENARIOS is not set: all but the long load_1m. */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = SCENARIO_NAMES.filter((s) => s !== 'load_1m');

/** What must be in the store before the measured part starts. */
export const Seed = {
  none: 'none',
  /** The single key the range_l/range_s scenarios read. */
  rangeKey: 'rangeKey',
  /** RANGE_10K_COUNT keys under RANGE_10K_PREFIX. */
  keys10k: 'keys10k',
} as const;
export type Seed = (typeof Seed)[keyof typeof Seed];

/** The API a scenario needs beyond Put and Range; checked with one request before it runs. */
export const Needs = { kv: 'kv', txn: 'txn', watch: 'watch' } as const;
export type Needs = (typeof Needs)[keyof typeof Needs];

export interface Scenario {
  name: ScenarioName;
  /** One line for the README. */
  description: string;
  seed: Seed;
  needs: Needs;
  /** What one operation of ops/s is. */
  unit: 'request' | 'event' | 'range';
  /** Scenario timeout = SCENARIO_TIMEOUT x this. */
  timeoutFactor: number;
  /** False where the tool times nothing useful (watch fan-out): p50/p99 are left out of the table. */
  latencyMeaningful: boolean;
  /** The tool's arguments after the global --endpoints/--precise flags. */
  toolArgs(scale: number): string[];
}

export const VALUE_SIZE_BYTES = 256;
export const RANGE_KEY = 'bench-range-key';
export const RANGE_10K_PREFIX = 'bench-10k/';
/** RANGE_10K_PREFIX with its last byte incremented: the range end of the prefix. */
export const RANGE_10K_END = 'bench-10k0';
export const RANGE_10K_COUNT = 10_000;
export const LOAD_KEY_COUNT = 1_000_000;

/** `total x scale`, truncated like bench.sh's awk printf "%d", and at least 1. */
export function scaled(total: number, scale: number): number {
  return Math.max(1, Math.trunc(total * scale));
}

const s = (n: number): string => String(n);

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  put_seq_c1: {
    name: 'put_seq_c1',
    description: 'put, 1 connection / 1 client, sequential keys (latency-bound: one fsync per put)',
    seed: Seed.none,
    needs: Needs.kv,
    unit: 'request',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(1, 1),
      'put',
      '--total',
      s(scaled(4000, k)),
      '--val-size',
      s(VALUE_SIZE_BYTES),
      '--sequential-keys',
      '--key-space-size',
      '100000',
    ],
  },
  put_rand_c100: {
    name: 'put_rand_c100',
    description: 'put, 10 connections / 100 clients, random keys in 100k (throughput, batched fsync)',
    seed: Seed.none,
    needs: Needs.kv,
    unit: 'request',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(10, 100),
      'put',
      '--total',
      s(scaled(60000, k)),
      '--val-size',
      s(VALUE_SIZE_BYTES),
      '--key-space-size',
      '100000',
    ],
  },
  range_l_c100: {
    name: 'range_l_c100',
    description: 'range of 1 key, linearizable, 10 connections / 100 clients',
    seed: Seed.rangeKey,
    needs: Needs.kv,
    unit: 'request',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [...conns(10, 100), 'range', RANGE_KEY, '--consistency', 'l', '--total', s(scaled(60000, k))],
  },
  range_s_c100: {
    name: 'range_s_c100',
    description: 'range of 1 key, serializable, 10 connections / 100 clients',
    seed: Seed.rangeKey,
    needs: Needs.kv,
    unit: 'request',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [...conns(10, 100), 'range', RANGE_KEY, '--consistency', 's', '--total', s(scaled(100000, k))],
  },
  txn_put_c100: {
    name: 'txn_put_c100',
    description: 'txn with one put, 10 connections / 100 clients, keys cycling over 100k',
    seed: Seed.none,
    needs: Needs.txn,
    unit: 'request',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(10, 100),
      'txn-put',
      '--total',
      s(scaled(40000, k)),
      '--val-size',
      s(VALUE_SIZE_BYTES),
      '--key-space-size',
      '100000',
      '--txn-ops',
      '1',
    ],
  },
  watch_lat_w1: {
    name: 'watch_lat_w1',
    description: 'watch latency, 1 watcher, 200 puts/s to the watched key',
    seed: Seed.none,
    needs: Needs.watch,
    unit: 'event',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(1, 1),
      'watch-latency',
      '--total',
      s(scaled(1000, k)),
      '--put-rate',
      '200',
      '--val-size',
      s(VALUE_SIZE_BYTES),
    ],
  },
  watch_lat_w100: {
    name: 'watch_lat_w100',
    description: 'watch latency, 100 watchers (10 connections) on one key, 100 puts/s',
    seed: Seed.none,
    needs: Needs.watch,
    unit: 'event',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(10, 100),
      'watch-latency',
      '--total',
      s(scaled(500, k)),
      '--put-rate',
      '100',
      '--val-size',
      s(VALUE_SIZE_BYTES),
    ],
  },
  watch_fanout: {
    name: 'watch_fanout',
    description: 'watch fan-out: 10 streams x 100 watchers on 1 key, 300 puts at <= 1000/s (ops = events)',
    seed: Seed.none,
    needs: Needs.watch,
    unit: 'event',
    timeoutFactor: 1,
    latencyMeaningful: false,
    toolArgs: (k) => [
      ...conns(10, 100),
      'watch',
      '--streams',
      '10',
      '--watch-per-stream',
      '100',
      '--watched-key-total',
      '1',
      '--put-total',
      s(scaled(300, k)),
      '--put-rate',
      '1000',
    ],
  },
  range_10k_c10: {
    name: 'range_10k_c10',
    description: `range over ${RANGE_10K_COUNT} keys (256-byte values), linearizable, 10 connections / 10 clients`,
    seed: Seed.keys10k,
    needs: Needs.kv,
    unit: 'range',
    timeoutFactor: 1,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(10, 10),
      'range',
      RANGE_10K_PREFIX,
      RANGE_10K_END,
      '--consistency',
      'l',
      '--total',
      s(scaled(300, k)),
    ],
  },
  load_1m: {
    name: 'load_1m',
    description:
      'load 1 million keys (put, 10 connections / 100 clients, sequential keys), then memory, data-dir size, restart time',
    seed: Seed.none,
    needs: Needs.kv,
    unit: 'request',
    timeoutFactor: 20,
    latencyMeaningful: true,
    toolArgs: (k) => [
      ...conns(10, 100),
      'put',
      '--total',
      s(scaled(LOAD_KEY_COUNT, k)),
      '--val-size',
      s(VALUE_SIZE_BYTES),
      '--sequential-keys',
      '--key-space-size',
      s(scaled(LOAD_KEY_COUNT, k)),
    ],
  },
};

function conns(connections: number, clients: number): string[] {
  return ['--conns', String(connections), '--clients', String(clients)];
}

/** The full command line of the tool for a scenario against `endpoint` (host:port). */
export function toolCommand(scenario: Scenario, endpoint: string, scale: number): string[] {
  return ['--endpoints', endpoint, '--precise', ...scenario.toolArgs(scale)];
}
