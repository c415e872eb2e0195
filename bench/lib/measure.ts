// One run of one scenario against one target: a fresh server on a fresh data dir, seeding, a
// check that the needed API works, the tool under /proc measurement, and cleanup. A failure
// at any step gives an "n/a" result carrying the error; nothing here throws to the caller.

import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { BenchConfig, Target } from './config.ts';
import { GrpcClient } from './grpc.ts';
import type { HostTicks } from './parse.ts';
import { meaningfulStderr, parseToolErrors, parseToolOutput } from './parse.ts';
import {
  busyPct,
  type ProcMemory,
  readCpuSeconds,
  readHostTicks,
  readMemory,
  readProcTimes,
  USER_HZ,
  waitQuiet,
} from './procfs.ts';
import { type LoadMetrics, type RunResult, RunStatus } from './results.ts';
import {
  LOAD_KEY_COUNT,
  Needs,
  RANGE_10K_COUNT,
  RANGE_10K_PREFIX,
  RANGE_KEY,
  type Scenario,
  Seed,
  scaled,
  toolCommand,
  VALUE_SIZE_BYTES,
} from './scenarios.ts';
import { freePorts, RunningServer, type ServerCommand } from './server.ts';
import { runTool } from './tool.ts';

export const SEED_CONCURRENCY = 32;
export const REQUEST_TIMEOUT_MS = 10_000;
/** A restart on a data dir with a million keys may replay a long WAL. */
export const RESTART_READY_TIMEOUT_MS = 600_000;
export const COUNT_TIMEOUT_MS = 120_000;
const EXIT_WAIT_MS = 2_000;

/** Temporary directories in use, removed on SIGINT as well. */
export const liveTempDirs = new Set<string>();

export interface MeasureContext {
  config: BenchConfig;
  server: ServerCommand;
}

interface Snapshot {
  t: number;
  serverCpuS: number;
  selfCpuTicks: number;
  childCpuTicks: number;
  host: HostTicks;
}

async function snapshot(pid: number): Promise<Snapshot> {
  const [serverCpuS, self, host] = await Promise.all([readCpuSeconds(pid), readProcTimes('self'), readHostTicks()]);
  return {
    t: performance.now(),
    serverCpuS,
    selfCpuTicks: self.utime + self.stime,
    childCpuTicks: self.cutime + self.cstime,
    host,
  };
}

/**
 * A failure that may say more about the host than about the server (a server that did not
 * start, a tool run that timed out); the run is tried once more.
 */
class RetryableError extends Error {
  override readonly name = 'RetryableError';
}

export const ATTEMPTS_MAX = 2;

export async function measureRun(
  ctx: MeasureContext,
  scenario: Scenario,
  target: Target,
  run: number,
): Promise<RunResult> {
  let firstError: string | null = null;
  for (let attempt = 1; ; attempt++) {
    const result = emptyResult(ctx, scenario, target, run);
    result.attempts = attempt;
    result.firstAttemptError = firstError;
    const dir = await mkdtemp(join(ctx.config.tmpDir, `etcd-bench-${target.kind}-`));
    liveTempDirs.add(dir);
    let retry = false;
    try {
      await measureInDir(ctx, scenario, target, dir, result);
    } catch (err) {
      result.status = RunStatus.na;
      result.error = (err as Error).message;
      retry = err instanceof RetryableError && attempt < ATTEMPTS_MAX;
    } finally {
      await rm(dir, { recursive: true, force: true });
      liveTempDirs.delete(dir);
    }
    if (!retry) return result;
    firstError = result.error;
    console.log(`#   ${scenario.name} ${target.label}: ${(result.error ?? '').split('\n')[0]}; trying once more`);
  }
}

async function measureInDir(
  ctx: MeasureContext,
  scenario: Scenario,
  target: Target,
  dir: string,
  result: RunResult,
): Promise<void> {
  const { config } = ctx;
  const dataDir = join(dir, 'data');
  const logPath = join(dir, 'server.log');
  const ports = await freePorts();
  let server: RunningServer;
  try {
    server = await RunningServer.start(target.kind, ctx.server, dataDir, ports, logPath);
  } catch (err) {
    // Retried whatever the cause: a port taken between freePorts() and the bind, or a host
    // stalled for the whole ready timeout, are not the server's fault; a server that cannot
    // start at all fails fast twice.
    throw new RetryableError(`server did not start: ${(err as Error).message}`);
  }
  try {
    result.serverReadyMs = server.readyMs;
    result.command = toolCommand(scenario, server.endpoint, config.scale);
    await prepare(server, scenario);
    result.serverIdleRssBytes = (await readMemory(server.pid)).rssBytes;

    const quiet = await waitQuiet(config.quietMaxWaitMs, config.quietBusyPct);
    result.quietWaitS = quiet.waitedMs / 1000;
    result.quiet = quiet.quiet;

    const before = await snapshot(server.pid);
    const tool = await runTool(config.toolPath, result.command, config.scenarioTimeoutMs * scenario.timeoutFactor);
    const died = (): Error =>
      new Error(`server ${server.exitDescription()} during the scenario; log tail:\n${server.logTail()}`);
    if (server.exited) throw died();
    let after: Snapshot;
    let mem: ProcMemory;
    try {
      after = await snapshot(server.pid);
      mem = await readMemory(server.pid);
    } catch (err) {
      // /proc/PID is gone before the exit event has been delivered: say why it exited.
      await server.waitExit(EXIT_WAIT_MS);
      throw server.exited ? died() : err;
    }
    result.serverPeakRssBytes = mem.peakRssBytes;

    if (tool.timedOut) {
      throw new RetryableError(
        `the benchmark tool did not finish within ${(tool.wallMs / 1000).toFixed(0)} s (killed)`,
      );
    }
    const summary = parseToolOutput(tool.stdout);
    if (tool.exitCode !== 0 || summary === null) {
      const errs = parseToolErrors(tool.stdout)
        .map((e) => `[${e.count}] ${e.message}`)
        .join('; ');
      const why = errs !== '' ? errs : meaningfulStderr(tool.stderr) || 'no summary in its output';
      throw new Error(
        `benchmark tool ${tool.exitCode === 0 ? 'reported no successful request' : `exit ${tool.exitCode ?? tool.signal}`}: ${why}`,
      );
    }

    const wallS = (after.t - before.t) / 1000;
    const serverCpuS = after.serverCpuS - before.serverCpuS;
    const clientCpuS = (after.childCpuTicks - before.childCpuTicks) / USER_HZ;
    const harnessCpuS = (after.selfCpuTicks - before.selfCpuTicks) / USER_HZ;
    const hostTotal = after.host.total - before.host.total;
    result.opsPerSec = summary.opsPerSec;
    result.p50Ms = summary.p50Ms;
    result.p99Ms = summary.p99Ms;
    result.ops = summary.ops;
    result.errors = summary.errors;
    if (summary.errors > 0) {
      result.error = `${summary.errors} failed requests: ${summary.errorMessages.map((e) => e.message).join('; ')}`;
    }
    result.wallS = wallS;
    result.serverCpuS = serverCpuS;
    result.serverCpuUsPerOp = summary.ops > 0 ? (serverCpuS / summary.ops) * 1e6 : null;
    result.clientCpuS = clientCpuS;
    result.hostBusyPct = busyPct(before.host, after.host);
    result.otherPct =
      hostTotal > 0 && wallS > 0
        ? ((after.host.busyNoIrq - before.host.busyNoIrq) / hostTotal) * cpus().length * 100 -
          ((serverCpuS + clientCpuS + harnessCpuS) / wallS) * 100
        : null;

    if (scenario.name === 'load_1m') {
      result.load = await afterLoad(ctx, server, scaled(LOAD_KEY_COUNT, config.scale), mem.rssBytes);
      if (result.load.error !== null) result.error = `after the load: ${result.load.error}`;
    }
  } finally {
    await server.stop();
  }
}

/** Seeds what the scenario reads and checks with one request that the API it needs works. */
export async function prepare(server: Pick<RunningServer, 'endpoint'>, scenario: Scenario): Promise<void> {
  const client = new GrpcClient(server.endpoint);
  const value = Buffer.alloc(VALUE_SIZE_BYTES, 'v');
  try {
    if (scenario.seed === Seed.rangeKey) {
      await client.put(Buffer.from(RANGE_KEY), value, REQUEST_TIMEOUT_MS);
    } else if (scenario.seed === Seed.keys10k) {
      await seedKeys(client, RANGE_10K_PREFIX, RANGE_10K_COUNT, value);
      const got = await client.range(
        { key: Buffer.from(RANGE_10K_PREFIX), rangeEnd: prefixEnd(RANGE_10K_PREFIX), countOnly: true },
        REQUEST_TIMEOUT_MS,
      );
      if (got.count !== BigInt(RANGE_10K_COUNT)) {
        throw new Error(`seeded ${RANGE_10K_COUNT} keys but a count-only Range says ${got.count}`);
      }
    }
    if (scenario.needs === Needs.txn) {
      const ok = await client.txnPut(Buffer.from('bench-probe'), value, REQUEST_TIMEOUT_MS).catch((err: Error) => {
        throw new Error(`Txn does not work: ${err.message}`);
      });
      if (!ok) throw new Error('Txn does not work: a transaction without compares did not succeed');
    } else if (scenario.needs === Needs.watch) {
      const res = await client.watchCreate(Buffer.from('bench-probe'), REQUEST_TIMEOUT_MS).catch((err: Error) => {
        throw new Error(`Watch does not work: ${err.message}`);
      });
      if (!res.created) throw new Error('Watch does not work: the first response to a create request is not "created"');
    }
  } finally {
    client.close();
  }
}

/** Puts `count` keys `<prefix><5-digit index>`, SEED_CONCURRENCY at a time. */
async function seedKeys(client: GrpcClient, prefix: string, count: number, value: Buffer): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await client.put(Buffer.from(`${prefix}${String(i).padStart(5, '0')}`), value, REQUEST_TIMEOUT_MS);
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
}

/** The range end that selects every key with `prefix` (last byte + 1; prefixes here are ASCII). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  const last = b.length - 1;
  if (last < 0 || b[last] === 0xff) throw new Error(`no simple prefix end for ${JSON.stringify(prefix)}`);
  b[last] = (b[last] ?? 0) + 1;
  return b;
}

/** load_1m after the load: memory, clean stop, data-dir size, restart time and key count. */
async function afterLoad(
  ctx: MeasureContext,
  server: RunningServer,
  keys: number,
  rssAfterLoadBytes: number | null,
): Promise<LoadMetrics> {
  const stop = await server.stop();
  const size = await dirSize(server.dataDir);
  const load: LoadMetrics = {
    keys,
    rssAfterLoadBytes,
    dataDirBytes: size.allocated,
    dataDirApparentBytes: size.apparent,
    stopMs: stop.stopMs,
    restartMs: null,
    keyCountAfterRestart: null,
    countMs: null,
    rssAfterRestartBytes: null,
    error: stop.killed ? 'did not exit within the stop timeout after SIGTERM (killed)' : null,
  };
  let again: RunningServer;
  try {
    again = await RunningServer.start(
      server.kind,
      ctx.server,
      server.dataDir,
      server.ports,
      server.logPath,
      RESTART_READY_TIMEOUT_MS,
    );
  } catch (err) {
    load.error = `restart failed: ${(err as Error).message}`;
    return load;
  }
  try {
    load.restartMs = again.readyMs;
    const client = new GrpcClient(again.endpoint);
    try {
      const t0 = performance.now();
      const res = await client.range(
        { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), countOnly: true },
        COUNT_TIMEOUT_MS,
      );
      load.countMs = performance.now() - t0;
      load.keyCountAfterRestart = Number(res.count);
      if (res.count !== BigInt(keys)) load.error = `loaded ${keys} keys, a count after the restart says ${res.count}`;
    } finally {
      client.close();
    }
    load.rssAfterRestartBytes = (await readMemory(again.pid)).rssBytes;
  } catch (err) {
    load.error = `after the restart: ${(err as Error).message}`;
  } finally {
    await again.stop();
  }
  return load;
}

/** Allocated (st_blocks x 512) and apparent (st_size) bytes of every file under `dir`. */
export async function dirSize(dir: string): Promise<{ allocated: number; apparent: number }> {
  let allocated = 0;
  let apparent = 0;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    allocated += st.blocks * 512;
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await walk(join(path, name));
    } else {
      apparent += st.size;
    }
  };
  await walk(dir);
  return { allocated, apparent };
}

function emptyResult(ctx: MeasureContext, scenario: Scenario, target: Target, run: number): RunResult {
  return {
    scenario: scenario.name,
    target: target.label,
    kind: target.kind,
    run,
    status: RunStatus.ok,
    error: null,
    startedAt: new Date().toISOString(),
    command: toolCommand(scenario, '<endpoint>', ctx.config.scale),
    opsPerSec: null,
    p50Ms: null,
    p99Ms: null,
    ops: null,
    errors: 0,
    wallS: null,
    serverCpuS: null,
    serverCpuUsPerOp: null,
    clientCpuS: null,
    serverPeakRssBytes: null,
    serverIdleRssBytes: null,
    serverReadyMs: null,
    hostBusyPct: null,
    otherPct: null,
    quietWaitS: 0,
    quiet: true,
    attempts: 1,
    firstAttemptError: null,
    load: null,
  };
}
