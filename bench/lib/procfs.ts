// Readings from /proc (Linux only): CPU time and memory of a process, host CPU ticks, and the
// wait for a quiet host before a scenario.

import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HostTicks, type ProcTimes, parseHostTicks, parseProcStat, parseStatusBytes } from './parse.ts';

/** Clock ticks per second of /proc times (USER_HZ). 100 on every Linux architecture Node runs on. */
export const USER_HZ = 100;

export async function readProcTimes(pid: number | 'self'): Promise<ProcTimes> {
  return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

/** utime + stime of a process, in seconds. */
export async function readCpuSeconds(pid: number): Promise<number> {
  const t = await readProcTimes(pid);
  return (t.utime + t.stime) / USER_HZ;
}

export interface ProcMemory {
  /** VmHWM: peak resident set size since the process started. */
  peakRssBytes: number | null;
  /** VmRSS: resident set size now. */
  rssBytes: number | null;
}

export async function readMemory(pid: number): Promise<ProcMemory> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return { peakRssBytes: parseStatusBytes(text, 'VmHWM'), rssBytes: parseStatusBytes(text, 'VmRSS') };
}

export async function readHostTicks(): Promise<HostTicks> {
  return parseHostTicks(await readFile('/proc/stat', 'utf8'));
}

/** Host busy percentage of all cores between two readings. */
export function busyPct(a: HostTicks, b: HostTicks): number {
  const total = b.total - a.total;
  return total > 0 ? ((b.busy - a.busy) / total) * 100 : 0;
}

export const QUIET_WINDOW_MS = 1000;

/**
 * Waits until the host was less than `busyPctMax` % busy (all cores, everything counted,
 * the idle server included) over a one-second window, for at most `maxWaitMs`. Returns how
 * long it waited and the busy percentage of the last window; `quiet` is false when it gave up.
 */
export async function waitQuiet(
  maxWaitMs: number,
  busyPctMax: number,
): Promise<{ waitedMs: number; lastBusyPct: number; quiet: boolean }> {
  const start = Date.now();
  if (maxWaitMs <= 0) return { waitedMs: 0, lastBusyPct: Number.NaN, quiet: true };
  for (;;) {
    const a = await readHostTicks();
    await sleep(QUIET_WINDOW_MS);
    const b = await readHostTicks();
    const pct = busyPct(a, b);
    const waitedMs = Date.now() - start;
    if (pct < busyPctMax) return { waitedMs, lastBusyPct: pct, quiet: true };
    if (waitedMs >= maxWaitMs) return { waitedMs, lastBusyPct: pct, quiet: false };
  }
}
