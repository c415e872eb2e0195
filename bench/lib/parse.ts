// Pure parsers for what the harness reads: the output of etcd's benchmark tool
// (tools/benchmark, pkg/report) and the /proc files that give CPU time and memory.

/** The numbers of one report block of etcd's benchmark tool. */
export interface ToolSummary {
  /** "Total:" of the summary: how long the tool measured, in seconds. */
  totalS: number;
  /** "Requests/sec:": successful requests (for watch: events received) per second. */
  opsPerSec: number;
  /** Successful operations, opsPerSec x totalS rounded (the tool does not print the count). */
  ops: number;
  /** 50th and 99th percentile latency in ms; null when the tool printed no such line. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Failed requests, from the "Error distribution" section (0 when absent). */
  errors: number;
  /** Each distinct error message with its count, as the tool printed them. */
  errorMessages: { count: number; message: string }[];
}

const WATCH_EVENTS_HEADER = 'Watch events received summary:';

/**
 * Parses the last report of the tool's stdout. The `watch` command prints a watch-creation
 * report first and the events report second; only the events report counts. Returns null
 * when the relevant report has no "Summary:" block (the tool prints none when every request
 * failed), in which case `parseToolErrors` still gives the errors.
 */
export function parseToolOutput(stdout: string): ToolSummary | null {
  const text = relevantReport(stdout);
  const summaryAt = text.lastIndexOf('\nSummary:');
  const errors = parseToolErrors(stdout);
  if (summaryAt < 0) return null;
  const block = text.slice(summaryAt);
  const totalS = matchNumber(block, /^\s*Total:\s+([0-9.eE+-]+) secs\./m);
  const opsPerSec = matchNumber(block, /^\s*Requests\/sec:\s+([0-9.eE+-]+)/m);
  if (totalS === null || opsPerSec === null) return null;
  const p50 = matchNumber(block, /^\s*50% in ([0-9.eE+-]+) secs\./m);
  const p99 = matchNumber(block, /^\s*99% in ([0-9.eE+-]+) secs\./m);
  return {
    totalS,
    opsPerSec,
    ops: Math.round(opsPerSec * totalS),
    p50Ms: p50 === null ? null : p50 * 1000,
    p99Ms: p99 === null ? null : p99 * 1000,
    errors: errors.reduce((sum, e) => sum + e.count, 0),
    errorMessages: errors,
  };
}

/** The "Error distribution" entries of the last report (`  [count]\tmessage` lines). */
export function parseToolErrors(stdout: string): { count: number; message: string }[] {
  const text = relevantReport(stdout);
  const at = text.lastIndexOf('Error distribution:');
  if (at < 0) return [];
  const out: { count: number; message: string }[] = [];
  for (const line of text.slice(at).split('\n').slice(1)) {
    const m = /^\s+\[(\d+)\]\t(.*)$/.exec(line);
    if (m === null) {
      if (line.trim() === '') continue;
      break;
    }
    out.push({ count: Number(m[1]), message: m[2] ?? '' });
  }
  return out;
}

function relevantReport(stdout: string): string {
  const at = stdout.lastIndexOf(WATCH_EVENTS_HEADER);
  return at < 0 ? `\n${stdout}` : `\n${stdout.slice(at + WATCH_EVENTS_HEADER.length)}`;
}

function matchNumber(text: string, re: RegExp): number | null {
  const m = re.exec(text);
  if (m === null || m[1] === undefined) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/**
 * The tool's stderr without grpc-go's connection chatter ("INFO: 2026/11/21 ... [core]..."),
 * trimmed to its last `maxLines` lines: what is worth quoting when a scenario fails.
 */
export function meaningfulStderr(stderr: string, maxLines = 5): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !/^(INFO|WARNING): \d{4}\/\d\d\/\d\d /.test(l));
  return lines.slice(-maxLines).join('\n');
}

/** CPU times of one process from /proc/PID/stat, in clock ticks. */
export interface ProcTimes {
  utime: number;
  stime: number;
  /** Times of waited-for children (the tool, once it has exited and been reaped). */
  cutime: number;
  cstime: number;
}

/**
 * Parses /proc/PID/stat. The command name (field 2) is in parentheses and may itself contain
 * spaces and parentheses, so the fields are counted from the last ')'.
 */
export function parseProcStat(text: string): ProcTimes {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/PID/stat line: ${JSON.stringify(text.slice(0, 80))}`);
  // After "pid (comm) " the first field is #3 (state); utime is #14, stime #15, cutime #16,
  // cstime #17 (proc(5)), i.e. indexes 11..14 here.
  const fields = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const at = (i: number): number => {
    const n = Number(fields[i]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`bad field ${i + 3} in /proc/PID/stat: ${fields[i]}`);
    return n;
  };
  return { utime: at(11), stime: at(12), cutime: at(13), cstime: at(14) };
}

/**
 * A "Name:   1234 kB" field of /proc/PID/status (VmHWM, VmRSS, ...) in bytes, or null if the
 * field is absent (a zombie has no Vm* lines).
 */
export function parseStatusBytes(text: string, field: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m === null ? null : Number(m[1]) * 1024;
}

/** Whole-machine CPU ticks from the "cpu " line of /proc/stat. */
export interface HostTicks {
  /** Every non-idle tick (user nice system irq softirq steal ...; idle and iowait excluded). */
  busy: number;
  total: number;
  /** busy without irq and softirq, which loopback traffic causes on behalf of both sides. */
  busyNoIrq: number;
}

export function parseHostTicks(procStat: string): HostTicks {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('no "cpu " line in /proc/stat');
  const v = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map((s) => Number(s));
  if (v.length < 7 || v.some((n) => !Number.isFinite(n))) throw new Error(`bad cpu line in /proc/stat: ${line}`);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
  // included in user and nice, so it is not added again.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const busy = total - idle;
  return { busy, total, busyNoIrq: busy - (v[5] ?? 0) - (v[6] ?? 0) };
}

/** First line of `etcd --version` ("etcd Version: 3.4.23") reduced to the version. */
export function parseEtcdVersion(output: string): string | null {
  const m = /etcd Version:\s*(\S+)/.exec(output);
  return m === null ? null : (m[1] ?? null);
}
