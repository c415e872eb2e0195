// A longer soak of the cluster simulator than `npm test` runs, in one process:
//
//   node --import tsx test/raft/soak.ts [--members 3] [--seeds 10000] [--first 1000000] [--rounds 3000]
//
// Prints a summary, or the first failure with its seed and how to replay it, and exits non-zero.

import { parseArgs } from 'node:util';
import { runSimulation, type SimResult } from './sim/simulator.ts';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '3' },
    seeds: { type: 'string', default: '10000' },
    first: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3000' },
  },
});
const members = Number(values.members);
const seeds = Number(values.seeds);
const first = Number(values.first);
const rounds = Number(values.rounds);
for (const [k, v] of Object.entries({ members, seeds, first, rounds })) {
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`);
}

const started = performance.now();
const totals: Partial<Record<keyof SimResult, number>> = {};
const maxima: Partial<Record<keyof SimResult, number>> = {};
for (let seed = first; seed < first + seeds; seed++) {
  let r: SimResult;
  try {
    r = runSimulation({ seed, members, faultRounds: rounds });
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
  for (const [k, v] of Object.entries(r) as [keyof SimResult, number][]) {
    if (k === 'seed') continue;
    totals[k] = (totals[k] ?? 0) + v;
    maxima[k] = Math.max(maxima[k] ?? 0, v);
  }
  if ((seed - first + 1) % 1000 === 0) console.log(`${seed - first + 1} seeds ok`);
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`${seeds} seeds of ${members} members x ${rounds} rounds passed in ${seconds}s`);
console.log('totals', JSON.stringify(totals));
console.log('maxima', JSON.stringify(maxima));
