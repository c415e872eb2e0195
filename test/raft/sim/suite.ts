// Runs the cluster simulator over a range of seeds as node:test tests. A failure names its
// seed and how to replay it; RAFT_SIM_SEED=<seed> runs just that seed (RAFT_SIM_TRACE=1 adds
// every event to the failure report), RAFT_SIM_SEEDS / RAFT_SIM_ROUNDS change the sweep.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CATCH_UP_BOUND_ROUNDS, ELECTION_BOUND_ROUNDS, runSimulation, type SimResult } from './simulator.ts';

export interface SweepOptions {
  members: number;
  /** Seeds to run by default, and the first one. */
  seeds: number;
  firstSeed: number;
  /** Rounds of faults per seed. */
  faultRounds: number;
  /** Seeds per node:test test (for progress reporting). */
  chunk: number;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

export function simulationSweep(o: SweepOptions): void {
  const only = envInt('RAFT_SIM_SEED');
  const rounds = envInt('RAFT_SIM_ROUNDS') ?? o.faultRounds;
  const trace = process.env.RAFT_SIM_TRACE === '1';
  if (only !== undefined) {
    test(`${o.members} members, seed ${only} (replay)`, (t) => {
      const r = runSimulation({ seed: only, members: o.members, faultRounds: rounds, trace });
      t.diagnostic(JSON.stringify(r));
    });
    return;
  }
  const seeds = envInt('RAFT_SIM_SEEDS') ?? o.seeds;
  const results: SimResult[] = [];
  for (let start = o.firstSeed; start < o.firstSeed + seeds; start += o.chunk) {
    const end = Math.min(start + o.chunk, o.firstSeed + seeds);
    test(`${o.members} members, seeds ${start}..${end - 1}: safety after every step, liveness after healing`, () => {
      for (let seed = start; seed < end; seed++) {
        results.push(runSimulation({ seed, members: o.members, faultRounds: rounds, trace }));
      }
    });
  }
  test(`${o.members} members: the sweep exercised every kind of fault`, (t) => {
    assert.equal(results.length, seeds);
    const sum = (k: keyof SimResult): number => results.reduce((a, r) => a + r[k], 0);
    const max = (k: keyof SimResult): number => results.reduce((a, r) => Math.max(a, r[k]), 0);
    assert.ok(sum('crashes') > seeds, 'members crashed');
    assert.ok(sum('snapshotsSent') > seeds / 4, 'followers needed snapshots');
    assert.ok(sum('confChanges') > seeds / 4, 'membership changed');
    assert.ok(sum('leaders') > 2 * seeds, 'leadership changed');
    assert.ok(sum('committed') > 20 * seeds, 'entries committed');
    assert.ok(max('electionRounds') <= ELECTION_BOUND_ROUNDS);
    assert.ok(max('catchUpRounds') <= CATCH_UP_BOUND_ROUNDS);
    t.diagnostic(
      `seeds=${seeds} rounds=${rounds} messages=${sum('messages')} crashes=${sum('crashes')} ` +
        `snapshots=${sum('snapshotsSent')} confChanges=${sum('confChanges')} leaders=${sum('leaders')} ` +
        `committed=${sum('committed')} maxElectionRounds=${max('electionRounds')} maxCommitRounds=${max('commitRounds')} ` +
        `maxCatchUpRounds=${max('catchUpRounds')}`,
    );
  });
}
