/**
 * The process metrics of Prometheus's Go process collector (`process_*`) and etcd's `os_fd_*`,
 * read from Node and, on Linux, from /proc. What a platform cannot tell is left out, as the Go
 * collector leaves it out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Counter, Gauge, type MetricsRegistry } from '../../server/metrics.ts';

/** Go reports an unlimited address space as the largest uint64. */
const UNLIMITED = 2 ** 64;

interface Limits {
  readonly openFiles: number | null;
  readonly addressSpace: number | null;
}

function readLimits(): Limits {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return { openFiles: null, addressSpace: null };
  }
  const soft = (label: string): number | null => {
    const line = text.split('\n').find((l) => l.startsWith(label));
    const value = line?.slice(label.length).trim().split(/\s+/)[0];
    if (value === undefined) return null;
    if (value === 'unlimited') return UNLIMITED;
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  };
  return { openFiles: soft('Max open files'), addressSpace: soft('Max address space') };
}

function openFds(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

/** vsize, field 23 of /proc/self/stat (after the parenthesised command name). */
function virtualMemoryBytes(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const vsize = Number(fields[20]);
    return Number.isFinite(vsize) ? vsize : null;
  } catch {
    return null;
  }
}

/** Registers the process metrics; their values are read at each scrape. */
export function registerProcessMetrics(registry: MetricsRegistry): void {
  const cpu = registry.register(
    new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.' }),
  );
  const gauge = (name: string, help: string): Gauge => registry.register(new Gauge({ name, help }));
  const openFdsGauge = gauge('process_open_fds', 'Number of open file descriptors.');
  const maxFds = gauge('process_max_fds', 'Maximum number of open file descriptors.');
  const vsize = gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.');
  const vsizeMax = gauge('process_virtual_memory_max_bytes', 'Maximum amount of virtual memory available in bytes.');
  const rss = gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const startTime = gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.');
  const fdUsed = gauge('os_fd_used', 'The number of used file descriptors.');
  const fdLimit = gauge('os_fd_limit', 'The file descriptor limit.');
  const startedAtSeconds = performance.timeOrigin / 1000;

  registry.addCollector(() => {
    const usage = process.cpuUsage();
    const series = cpu.labels();
    series.value = (usage.user + usage.system) / 1e6;
    rss.set(process.memoryUsage.rss());
    startTime.set(startedAtSeconds);
    const fds = openFds();
    if (fds !== null) {
      openFdsGauge.set(fds);
      fdUsed.set(fds);
    }
    const limits = readLimits();
    if (limits.openFiles !== null) {
      maxFds.set(limits.openFiles);
      fdLimit.set(limits.openFiles);
    }
    if (limits.addressSpace !== null) vsizeMax.set(limits.addressSpace);
    const vm = virtualMemoryBytes();
    if (vm !== null) vsize.set(vm);
  });
}
