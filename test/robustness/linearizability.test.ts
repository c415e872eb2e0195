/**
 * Linearizability of a 3-member etcd-ts cluster under faults: concurrent clients run puts, gets,
 * deletes and compare-and-swaps on a few keys, against any member, while members are killed
 * (SIGKILL) and restarted, paused (SIGSTOP) and resumed, and cut off from their peers; the
 * recorded history must be linearizable (per key, with writes of unknown outcome allowed to take
 * effect or not) and its revisions consistent. After healing, every key is read on every member,
 * so an acknowledged write that got lost shows up as an illegal history.
 *
 * LINEARIZABILITY_DURATION_MS sets how long the faults run (default 40 s);
 * LINEARIZABILITY_SEED the seed of the choices (default: from the clock, printed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.ts';
import { checkOperations } from './checker.ts';
import { describeOperations, kvModel } from './kv-model.ts';
import { checkFinalReads, checkRevisions, FaultKind, runWorkload } from './workload.ts';

const DURATION_MS = Number(process.env.LINEARIZABILITY_DURATION_MS ?? 40_000);
const SEED = Number(process.env.LINEARIZABILITY_SEED ?? Date.now() % 1_000_000);
const CLIENTS = 8;
const KEYS = 6;

describe('linearizability of a 3-member etcd-ts cluster under faults', { timeout: DURATION_MS + 120_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await Cluster.start({ size: 3, proxied: true });
  });

  after(async () => {
    await cluster?.stop();
  });

  test(`${CLIENTS} clients, kills, pauses and isolations for ${DURATION_MS / 1000} s: a linearizable history`, async (t) => {
    t.diagnostic(`seed ${SEED}`);
    const result = await runWorkload(cluster, {
      clients: CLIENTS,
      keys: KEYS,
      durationMs: DURATION_MS,
      requestTimeoutMs: 2_500,
      faults: [
        FaultKind.KILL,
        FaultKind.KILL_LEADER,
        FaultKind.PAUSE,
        FaultKind.PAUSE_LEADER,
        FaultKind.ISOLATE,
        FaultKind.ISOLATE_LEADER,
      ],
      faultGapMs: [300, 1_500],
      faultLengthMs: [500, 2_500],
      seed: SEED,
    });
    const ops = result.operations;
    const unknown = ops.filter((o) => o.return === Number.POSITIVE_INFINITY).length;
    const count = (kind: string) => ops.filter((o) => o.input.kind === kind && o.output.kind !== 'unknown').length;
    for (const line of result.faults) t.diagnostic(`fault ${line}`);
    t.diagnostic(
      `operations: ${ops.length} (get ${count('get')}, put ${count('put')}, delete ${count('delete')}, ` +
        `cas ${count('cas')}, unknown outcome ${unknown}); not recorded: ${result.dropped}`,
    );

    // The faults did happen, and the clients got work done through them.
    assert.ok(result.faults.length >= Math.floor(DURATION_MS / 8_000), `only ${result.faults.length} faults`);
    assert.ok(count('put') + count('cas') + count('delete') >= 100, 'too few writes acknowledged');
    assert.ok(count('get') >= 100, 'too few reads answered');

    for (const [message, n] of result.errors.slice(0, 5)) t.diagnostic(`${n} x ${message}`);
    const startedMs = Date.now();
    const verdict = checkOperations(kvModel, ops, { timeoutMs: 60_000 });
    t.diagnostic(
      `checked ${verdict.operations} operations in ${verdict.partitions} keys in ${Date.now() - startedMs} ms`,
    );
    if (verdict.result === 'illegal') {
      assert.fail(
        `not linearizable (seed ${SEED}); on key ${verdict.partition[0]?.input.key}, the longest linearizable prefix:\n` +
          `${describeOperations(verdict.longestPrefix.slice(-20), result.origin)}\n` +
          `then none of these could come next:\n${describeOperations(verdict.stuckAt, result.origin)}`,
      );
    }
    assert.equal(verdict.result, 'ok', verdict.result === 'unknown' ? verdict.reason : '');
    assert.deepEqual(checkRevisions(ops), []);
    assert.deepEqual(checkFinalReads(ops), []);
    assert.equal(ops.filter((o) => o.final).length, 3 * KEYS);
  });
});
