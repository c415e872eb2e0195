/**
 * 10 000 concurrent watchers on one member: etcd-ts and the real etcd, one after the other, on
 * fresh data dirs and loopback ports. Every watcher watches the same key on one of STREAMS
 * Watch streams (each its own HTTP/2 connection), so that each put is delivered 10 000 times.
 *
 * Measured per server: the member's resident memory (VmRSS) idle, with the watchers, and at
 * its peak during the puts; how long creating the watchers took; and the event latency: for
 * each of PUTS sequential puts, the time from sending the put to the arrival of its event at
 * every watcher (p50 and p99 over all watcher x put samples, and the p50 of the time until the
 * last watcher has it). The client is one Node.js thread that counts response frames without
 * decoding them (the first put's responses are decoded and checked); its own cost is part of
 * the latency, the same for both servers.
 *
 *   node --import tsx bench/watchers-10k.ts
 *   WATCHERS=10000 STREAMS=100 PUTS=50 RUNS=3 TARGETS=etcd-ts,etcd ETCD_BIN=/usr/bin/etcd
 *   ETCD_TS_ENTRY=dist/bin/etcd-ts.js (default: bin/etcd-ts.ts through tsx)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Channel } from '../src/client/channel.ts';
import {
  Event_EventType,
  KVService,
  PutRequest,
  RangeRequest,
  WatchCreateRequest,
  WatchRequest,
  WatchResponse,
  WatchService,
} from '../src/proto/index.ts';
import { intEnv } from './lib/config.ts';
import { freePorts, serverArgs } from './lib/server.ts';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

const WATCHERS = intEnv('WATCHERS', 10_000, 1, 1_000_000);
const STREAMS = intEnv('STREAMS', 100, 1, 10_000);
const PUTS = intEnv('PUTS', 50, 2, 100_000);
const RUNS = intEnv('RUNS', 3, 1, 100);
const TARGETS = (process.env.TARGETS ?? 'etcd-ts,etcd').split(',');
const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';
const ETCD_TS_ENTRY = process.env.ETCD_TS_ENTRY;
const READY_TIMEOUT_MS = 30_000;
const EVENT_TIMEOUT_MS = 60_000;
const SETTLE_MS = 2_000;
const WATCHED_KEY = Buffer.from('bench/watched');
const FRAME_HEADER_BYTES = 5;

interface Result {
  target: string;
  idleRssBytes: number;
  watchersRssBytes: number;
  peakRssBytes: number;
  createMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  lastWatcherP50Ms: number;
  putP50Ms: number;
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One server process with etcd's flags on fresh ports and a fresh data dir. */
class Server {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly dataDir: string;
  readonly exited: Promise<void>;

  private constructor(child: ChildProcess, endpoint: string, dataDir: string) {
    this.child = child;
    this.endpoint = endpoint;
    this.dataDir = dataDir;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(target: string): Promise<Server> {
    const dataDir = mkdtempSync(join(tmpdir(), `watchers-10k-${target}-`));
    const ports = await freePorts();
    const args = serverArgs(join(dataDir, 'data'), ports);
    const log = openSync(join(dataDir, 'server.log'), 'a');
    let command: string;
    let argv: string[];
    if (target === 'etcd') [command, argv] = [ETCD_BIN, args];
    else if (target === 'etcd-ts') {
      command = process.execPath;
      argv = ETCD_TS_ENTRY !== undefined ? [ETCD_TS_ENTRY, ...args] : ['--import', 'tsx', 'bin/etcd-ts.ts', ...args];
    } else throw new Error(`unknown target ${target} (etcd or etcd-ts)`);
    const child = spawn(command, argv, { cwd: REPO_ROOT, stdio: ['ignore', log, log] });
    closeSync(log);
    const server = new Server(child, `127.0.0.1:${ports.client}`, dataDir);
    const channel = new Channel(server.endpoint);
    try {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (;;) {
        try {
          await channel.unary(KVService.Range, RangeRequest.fromPartial({ key: WATCHED_KEY }), { timeoutMs: 1_000 });
          break;
        } catch (err) {
          if (Date.now() > deadline || child.exitCode !== null) {
            await server.stop();
            throw new Error(`${target} not ready: ${String(err)}`);
          }
          await sleep(100);
        }
      }
    } finally {
      channel.close();
    }
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** One Watch stream on its own connection; counts response frames as they arrive. */
class WatchConn {
  readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;
  frames = 0;
  /** Called per complete response with its bytes when `keepBodies`, else with an empty buffer. */
  onFrame: (body: Buffer, atMs: number) => void = () => {};
  keepBodies = true;
  private header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  private bodyLeft = -1;
  private body: Buffer[] = [];

  constructor(endpoint: string) {
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on('error', () => {});
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': WatchService.Watch.path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.stream.on('error', () => {});
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk, performance.now()));
  }

  send(request: WatchRequest): void {
    const bytes = WatchRequest.encode(request).finish();
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bytes.length);
    frame[0] = 0;
    frame.writeUInt32BE(bytes.length, 1);
    frame.set(bytes, FRAME_HEADER_BYTES);
    this.stream.write(frame);
  }

  private onData(chunk: Buffer, atMs: number): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.bodyLeft < 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerHave, chunk.length - at);
        chunk.copy(this.header, this.headerHave, at, at + take);
        this.headerHave += take;
        at += take;
        if (this.headerHave < FRAME_HEADER_BYTES) return;
        this.headerHave = 0;
        this.bodyLeft = this.header.readUInt32BE(1);
        this.body = [];
      }
      const take = Math.min(this.bodyLeft, chunk.length - at);
      if (this.keepBodies) this.body.push(chunk.subarray(at, at + take));
      this.bodyLeft -= take;
      at += take;
      if (this.bodyLeft === 0) {
        this.bodyLeft = -1;
        this.frames++;
        this.onFrame(this.keepBodies ? Buffer.concat(this.body) : Buffer.alloc(0), atMs);
      }
    }
  }

  close(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }
}

async function waitUntil(done: () => boolean, what: string, timeoutMs = EVENT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(1);
  }
}

async function measure(target: string): Promise<Result> {
  const server = await Server.start(target);
  const conns: WatchConn[] = [];
  const channel = new Channel(server.endpoint);
  try {
    await sleep(SETTLE_MS);
    const idleRssBytes = rssBytes(server.pid);

    // Create the watchers: WATCHERS / STREAMS per stream, all on the same key.
    const createStart = performance.now();
    let created = 0;
    for (let s = 0; s < STREAMS; s++) {
      const conn = new WatchConn(server.endpoint);
      conns.push(conn);
      conn.onFrame = (body) => {
        const resp = WatchResponse.decode(body);
        if (!resp.created || resp.canceled) throw new Error(`${target}: watch create refused: ${resp.cancelReason}`);
        created++;
      };
      const count = Math.floor(WATCHERS / STREAMS) + (s < WATCHERS % STREAMS ? 1 : 0);
      for (let i = 0; i < count; i++) {
        conn.send({
          requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: WATCHED_KEY }) },
        });
      }
    }
    await waitUntil(() => created === WATCHERS, `${target}: ${WATCHERS} watchers created`);
    const createMs = performance.now() - createStart;
    await sleep(SETTLE_MS);
    const watchersRssBytes = rssBytes(server.pid);

    // Puts, one at a time; each must reach every watcher before the next.
    const latencies = new Float64Array(WATCHERS * PUTS);
    const lastWatcher: number[] = [];
    const putMs: number[] = [];
    let received = 0;
    let sentAtMs = 0;
    let peakRssBytes = watchersRssBytes;
    let checking = true;
    for (const conn of conns) {
      conn.onFrame = (body, atMs) => {
        if (checking) {
          const resp = WatchResponse.decode(body);
          const e = resp.events[0];
          if (
            resp.events.length !== 1 ||
            e?.type !== Event_EventType.PUT ||
            !Buffer.from(e.kv!.key).equals(WATCHED_KEY)
          ) {
            throw new Error(`${target}: unexpected watch response ${JSON.stringify(WatchResponse.toJSON(resp))}`);
          }
        }
        latencies[received++] = atMs - sentAtMs;
      };
    }
    const sampler = setInterval(() => {
      peakRssBytes = Math.max(peakRssBytes, rssBytes(server.pid));
    }, 50);
    try {
      for (let p = 0; p < PUTS; p++) {
        const before = received;
        sentAtMs = performance.now();
        await channel.unary(KVService.Put, PutRequest.fromPartial({ key: WATCHED_KEY, value: Buffer.from(`v${p}`) }), {
          timeoutMs: 10_000,
        });
        putMs.push(performance.now() - sentAtMs);
        await waitUntil(() => received - before >= WATCHERS, `${target}: put ${p} at every watcher`);
        lastWatcher.push(performance.now() - sentAtMs);
        if (checking) {
          checking = false;
          for (const conn of conns) conn.keepBodies = false;
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const sorted = latencies.subarray(0, received).sort();
    return {
      target,
      idleRssBytes,
      watchersRssBytes,
      peakRssBytes,
      createMs,
      latencyP50Ms: percentile(sorted, 50),
      latencyP99Ms: percentile(sorted, 99),
      lastWatcherP50Ms: percentile(
        lastWatcher.sort((a, b) => a - b),
        50,
      ),
      putP50Ms: percentile(
        putMs.sort((a, b) => a - b),
        50,
      ),
    };
  } finally {
    for (const conn of conns) conn.close();
    channel.close();
    await server.stop();
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));

/** The median of each number over the runs of one target. */
function medianResult(runs: readonly Result[]): Result {
  const med = (pick: (r: Result) => number) => {
    const values = runs.map(pick).sort((a, b) => a - b);
    return values[Math.floor((values.length - 1) / 2)]!;
  };
  return {
    target: runs[0]!.target,
    idleRssBytes: med((r) => r.idleRssBytes),
    watchersRssBytes: med((r) => r.watchersRssBytes),
    peakRssBytes: med((r) => r.peakRssBytes),
    createMs: med((r) => r.createMs),
    latencyP50Ms: med((r) => r.latencyP50Ms),
    latencyP99Ms: med((r) => r.latencyP99Ms),
    lastWatcherP50Ms: med((r) => r.lastWatcherP50Ms),
    putP50Ms: med((r) => r.putP50Ms),
  };
}

const runsByTarget = new Map<string, Result[]>(TARGETS.map((t) => [t, []]));
// Targets alternate within each run, so that a burst of foreign load hits both alike.
for (let run = 1; run <= RUNS; run++) {
  for (const target of TARGETS) {
    process.stderr.write(`run ${run}/${RUNS}, ${target}: ${WATCHERS} watchers on ${STREAMS} streams, ${PUTS} puts\n`);
    runsByTarget.get(target)!.push(await measure(target));
  }
}
console.log(
  `${WATCHERS} watchers of one key on ${STREAMS} streams, ${PUTS} puts; median of ${RUNS} run(s); Node ${process.version}\n`,
);
console.log(
  '| server | RSS idle (MiB) | RSS with watchers (MiB) | per watcher (KiB) | RSS peak (MiB) | create all (ms) | event p50 (ms) | event p99 (ms) | last watcher p50 (ms) | put p50 (ms) |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const runs of runsByTarget.values()) {
  const r = medianResult(runs);
  const perWatcherKiB = ((r.watchersRssBytes - r.idleRssBytes) / WATCHERS / 1024).toFixed(1);
  console.log(
    `| ${r.target} | ${mib(r.idleRssBytes)} | ${mib(r.watchersRssBytes)} | ${perWatcherKiB} | ${mib(r.peakRssBytes)} | ` +
      `${ms(r.createMs)} | ${ms(r.latencyP50Ms)} | ${ms(r.latencyP99Ms)} | ${ms(r.lastWatcherP50Ms)} | ${ms(r.putP50Ms)} |`,
  );
}
