// How far V8 lets the heap grow between full collections, in the server process.
//
// After a full collection V8 lets the old generation grow by a factor between 1.1 and 4 before
// the next one, the higher the faster the program allocates. A member allocates fast (every
// request, every response), so with a large live set (the key index: about 150 MiB for a
// million keys) its peak RSS was mostly garbage: 860-910 MiB with a million keys. A fixed growth
// of 20% brought that to 525-550 MiB, but cost small stores throughput (random puts -15%: a full
// collection every few MiB). So the headroom after a full collection is 20% of what survived it
// or HEADROOM_BYTES, whichever is more: small heaps grow as V8 likes, large ones by a bounded
// amount (bench/README.md, "Memory").
//
// A `--heap-growing-percent` given to Node (command line or NODE_OPTIONS) is left alone.

import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { nodeFlagGiven } from './node-flags.ts';

/** The least growth past the survivors of a full collection, in percent. */
export const MIN_GROWING_PERCENT = 20;
/** The least headroom past the survivors of a full collection. */
export const HEADROOM_BYTES = 64 * 1024 * 1024;
/** From this growth on V8 chooses (its own factor is at most 4). */
const V8_CHOOSES_PERCENT = 300;
/** Growths are rounded up to a multiple of this, so that the flag changes only now and then. */
const STEP_PERCENT = 10;

const FLAG = '--heap-growing-percent';

/** The growth to set after a full collection that `liveBytes` survived: 0 lets V8 choose. */
export function heapGrowingPercent(liveBytes: number): number {
  const percent = Math.max(MIN_GROWING_PERCENT, (HEADROOM_BYTES / Math.max(liveBytes, 1)) * 100);
  if (percent >= V8_CHOOSES_PERCENT) return 0;
  return Math.ceil(percent / STEP_PERCENT) * STEP_PERCENT;
}

/**
 * Follows full collections and sets the growth for the next one; returns the function that
 * stops following them (and gives V8 its choice back). Does nothing when Node was started with
 * its own growth.
 */
export function controlHeapGrowth(): () => void {
  if (nodeFlagGiven(FLAG, process.execArgv, process.env.NODE_OPTIONS)) return () => {};
  let current = 0;
  const set = (percent: number) => {
    if (percent === current) return;
    current = percent;
    setFlagsFromString(`${FLAG}=${percent}`);
  };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      // Read after the collection (the entry is delivered later): close to what survived it.
      set(heapGrowingPercent(getHeapStatistics().used_heap_size));
      return;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    observer.disconnect();
    set(0);
  };
}
