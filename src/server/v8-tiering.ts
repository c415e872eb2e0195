// When V8 optimizes the server's functions.
//
// V8 runs a function in its interpreter and baseline tier until it has been called 400 times
// (`--invocation-count-for-maglev`) and not changed its inline caches for 500 calls
// (`--minimum-invocations-after-ic-update`); then Maglev compiles it. Most functions on a
// member's request path run once per request, so on a fresh member the first ~600 requests run
// unoptimized: sequential puts on a fresh 3-member cluster ran at 0.6 of their later rate for
// the first 500. With both thresholds at 100 the knee comes after ~200 requests; in five sets of
// alternating runs on fresh clusters that was +5 to +13% puts/s to the leader and +3 to +11%
// through all members, with 4-12% less CPU per put, and no loss on one member's throughput
// scenarios (bench/README.md, "Sooner Maglev").
//
// Set by the server's entry point only: a process that embeds a member keeps V8's defaults.
// A threshold given to Node on its command line is left alone. V8 before 12 (Node 20) has
// Maglev off; there the second threshold would move TurboFan instead, so nothing is set.

import { setFlagsFromString } from 'node:v8';
import { nodeFlagGiven } from './node-flags.ts';

/** The thresholds the server lowers, and to what. */
export const TIERING_FLAGS: readonly (readonly [flag: string, value: number])[] = [
  ['--invocation-count-for-maglev', 100],
  ['--minimum-invocations-after-ic-update', 100],
];

/** The first V8 major version with Maglev on by default (Node 22). */
const MAGLEV_V8_MAJOR = 12;

/** The flags to set (`--name=value`) for this V8 version and Node command line. */
export function tieringFlags(
  v8Version: string,
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  if (Number.parseInt(v8Version, 10) < MAGLEV_V8_MAJOR) return [];
  return TIERING_FLAGS.filter(([flag]) => !nodeFlagGiven(flag, execArgv, nodeOptions)).map(
    ([flag, value]) => `${flag}=${value}`,
  );
}

/** Sets the tiering flags in this process, before its request paths have run; returns what it set. */
export function applyTiering(): string[] {
  const flags = tieringFlags(process.versions.v8, process.execArgv, process.env.NODE_OPTIONS);
  if (flags.length > 0) setFlagsFromString(flags.join(' '));
  return flags;
}
