/**
 * A longer linearizability run than the one in npm test (test/robustness/linearizability.test.ts):
 * the same workload and faults against a fresh 3-member etcd-ts cluster (or the real etcd, to
 * check the harness), for minutes instead of seconds, then the same checks. Exits 1 on a
 * violation, after printing where.
 *
 *   node --import tsx bench/linearizability.ts                 # 5 minutes
 *   DURATION_S=1800 CLIENTS=16 KEYS=4 SEED=42 node --import tsx bench/linearizability.ts
 *   SERVER=etcd DURATION_S=60 node --import tsx bench/linearizability.ts
 *
 * DURATION_S (default 300), CLIENTS (8), KEYS (6), SEED (from the clock), SERVER (etcd-ts or
 * etcd), FAULTS (comma-separated, default all: kill, kill-leader, pause, pause-leader, isolate,
 * isolate-leader), REQUEST_TIMEOUT_MS (2500).
 */
import { Cluster, MemberKind } from '../test/helpers/cluster.ts';
import { checkOperations } from '../test/robustness/checker.ts';
import { describeOperations, kvModel } from '../test/robustness/kv-model.ts';
import { checkFinalReads, checkRevisions, FaultKind, runWorkload } from '../test/robustness/workload.ts';
import { intEnv } from './lib/config.ts';

function faultsEnv(): FaultKind[] {
  const all = Object.values(FaultKind);
  const raw = process.env.FAULTS;
  if (raw === undefined || raw === '') return all;
  if (raw === 'none') return [];
  const out = raw.split(',').map((s) => s.trim());
  for (const f of out)
    if (!all.includes(f as FaultKind))
      throw new Error(`FAULTS: unknown fault ${JSON.stringify(f)} (known: ${all.join(', ')})`);
  return out as FaultKind[];
}

async function main(): Promise<number> {
  const durationS = intEnv('DURATION_S', 300, 1, 86_400);
  const clients = intEnv('CLIENTS', 8, 1, 256);
  const keys = intEnv('KEYS', 6, 1, 1000);
  const seed = intEnv('SEED', Date.now() % 1_000_000, 0, 2 ** 31);
  const requestTimeoutMs = intEnv('REQUEST_TIMEOUT_MS', 2_500, 100, 60_000);
  const server = process.env.SERVER ?? MemberKind.ETCD_TS;
  if (server !== MemberKind.ETCD && server !== MemberKind.ETCD_TS)
    throw new Error(`SERVER must be etcd or etcd-ts, got ${server}`);
  const faults = faultsEnv();
  console.log(
    `# ${server}, ${durationS} s, ${clients} clients, ${keys} keys, seed ${seed}, faults: ${faults.join(', ') || 'none'}`,
  );

  const cluster = await Cluster.start({ size: 3, kind: server, proxied: true });
  try {
    const startedMs = Date.now();
    const result = await runWorkload(cluster, {
      clients,
      keys,
      durationMs: durationS * 1000,
      requestTimeoutMs,
      faults,
      faultGapMs: [300, 1_500],
      faultLengthMs: [500, 2_500],
      seed,
      log: (line) => console.log(`fault ${line}`),
    });
    const ops = result.operations;
    const unknown = ops.filter((o) => o.return === Number.POSITIVE_INFINITY).length;
    const acked = ops.length - unknown;
    console.log(
      `# ${ops.length} operations in ${((Date.now() - startedMs) / 1000).toFixed(0)} s (${acked} with a known outcome, ` +
        `${unknown} unknown, ${(acked / durationS).toFixed(0)}/s), ${result.faults.length} faults, ${result.dropped} requests not recorded`,
    );
    for (const [message, n] of result.errors.slice(0, 8)) console.log(`# ${n} x ${message}`);
    const checkStartedMs = Date.now();
    const verdict = checkOperations(kvModel, ops, { timeoutMs: 600_000 });
    console.log(
      `# checked ${verdict.operations} operations in ${verdict.partitions} keys in ${Date.now() - checkStartedMs} ms: ${verdict.result}`,
    );
    if (verdict.result === 'illegal') {
      console.log(
        `not linearizable on key ${verdict.partition[0]?.input.key}; the longest linearizable prefix ends with:`,
      );
      console.log(describeOperations(verdict.longestPrefix.slice(-20), result.origin));
      console.log('then none of these could come next:');
      console.log(describeOperations(verdict.stuckAt, result.origin));
      return 1;
    }
    if (verdict.result === 'unknown') {
      console.log(`# inconclusive: ${verdict.reason}`);
      return 2;
    }
    const problems = [...checkRevisions(ops), ...checkFinalReads(ops)];
    if (problems.length > 0) {
      console.log(`revision checks failed:\n${problems.join('\n')}`);
      return 1;
    }
    console.log('# linearizable; revisions consistent');
    return 0;
  } finally {
    await cluster.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
