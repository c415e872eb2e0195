/**
 * A multi-member cluster of real processes on 127.0.0.1, for cluster and robustness tests: the
 * real etcd or etcd-ts (`node --import tsx bin/etcd-ts.ts`), each member on free ports with its
 * own data dir under one temporary directory.
 *
 * - `Cluster.start({ size: 3 })` bootstraps a new cluster (`--initial-cluster-state new`) and
 *   waits until every member agrees on a leader and serves a linearizable read.
 * - Members can be killed (SIGKILL), paused (SIGSTOP) and resumed, and restarted on the same
 *   ports and data dir; `prepareMember` + `startJoining` add one after `member add`.
 * - With `proxied: true` every member advertises a `PeerProxy` as its peer URL, so links between
 *   members can be cut (`isolate`, `cut`) and healed.
 * - `stop()` kills every process, closes the proxies and removes the directory; whatever a test
 *   leaves behind is killed and removed when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Channel } from '../../src/client/channel.ts';
import {
  HashKVRequest,
  type HashKVResponse,
  KVService,
  MaintenanceService,
  RangeRequest,
  StatusRequest,
  type StatusResponse,
} from '../../src/proto/index.ts';
import { ANY_SOURCE, PeerProxy } from './cluster-proxy.ts';
import { type EtcdctlOptions, type EtcdctlResult, etcdctl } from './etcdctl.ts';
import { MemberKind } from './member.ts';
import { freePort } from './ports.ts';

export { MemberKind } from './member.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ETCD_TS_BIN = join(REPO_ROOT, 'bin', 'etcd-ts.ts');

const READY_TIMEOUT_MS_DEFAULT = 30_000;
const PROBE_TIMEOUT_MS = 1_000;
const POLL_MS = 50;
const KILL_WAIT_MS = 5_000;
const OUTPUT_TAIL_BYTES = 256 * 1024;

export interface ClusterOptions {
  /** Which server (default etcd-ts). */
  kind?: MemberKind;
  /** Members at bootstrap (default 3). */
  size?: number;
  /** More flags for every member (e.g. `--snapshot-count=50`). */
  args?: readonly string[];
  /** Route each member's inbound peer connections through a PeerProxy (default false). */
  proxied?: boolean;
  /** `--initial-cluster-token` (default: unique per cluster). */
  token?: string;
  /** How long the start waits for each process to serve, then for a leader (default 30 s). */
  readyTimeoutMs?: number;
  /** A compiled etcd-ts entry point (e.g. dist/bin/etcd-ts.js) run with plain node; default: bin/etcd-ts.ts through tsx. */
  etcdTsEntry?: string;
  /** Node flags for every etcd-ts member, before its entry point (e.g. V8's `--invocation-count-for-maglev=400`). */
  nodeArgs?: readonly string[];
}

/** Polls `check` every 50 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastError !== undefined ? ` (last error: ${String(lastError)})` : ''),
      );
    }
    await sleep(POLL_MS);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Clusters still running, killed and removed when the test process exits. */
const liveClusters = new Set<Cluster>();
process.once('exit', () => {
  for (const cluster of liveClusters) cluster.destroySync();
});

export class ClusterMember {
  readonly kind: MemberKind;
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  /** The port the member's peer listener binds. */
  readonly listenPeerPort: number;
  /** `127.0.0.1:<client port>`, as etcdctl's `--endpoints` takes it. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly listenPeerUrl: string;
  /** The proxy in front of the peer listener (proxied clusters only). */
  readonly proxy: PeerProxy | undefined;
  /** The advertised peer URL: the proxy's when proxied, else the listener's. */
  readonly peerUrl: string;
  /** The member id, known once the member has answered a Status. */
  id = 0n;
  private readonly commonArgs: readonly string[];
  private readonly readyTimeoutMs: number;
  private readonly etcdTsEntry: string | undefined;
  private readonly nodeArgs: readonly string[];
  private clusterArgs: readonly string[] = [];
  private child: ChildProcess | undefined = undefined;
  private exited: Promise<void> = Promise.resolve();
  private outputTail = '';
  private currentChannel: Channel;
  private isPaused = false;

  constructor(options: {
    kind: MemberKind;
    name: string;
    dataDir: string;
    clientPort: number;
    listenPeerPort: number;
    proxy: PeerProxy | undefined;
    args: readonly string[];
    readyTimeoutMs: number;
    etcdTsEntry: string | undefined;
    nodeArgs: readonly string[];
  }) {
    this.kind = options.kind;
    this.name = options.name;
    this.dataDir = options.dataDir;
    this.clientPort = options.clientPort;
    this.listenPeerPort = options.listenPeerPort;
    this.endpoint = `127.0.0.1:${options.clientPort}`;
    this.clientUrl = `http://127.0.0.1:${options.clientPort}`;
    this.listenPeerUrl = `http://127.0.0.1:${options.listenPeerPort}`;
    this.proxy = options.proxy;
    this.peerUrl = options.proxy?.url ?? this.listenPeerUrl;
    this.readyTimeoutMs = options.readyTimeoutMs;
    this.etcdTsEntry = options.etcdTsEntry;
    this.nodeArgs = options.nodeArgs;
    this.commonArgs = [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.listenPeerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      ...(options.kind === MemberKind.ETCD ? ['--logger=zap', '--log-outputs=stderr', '--log-level=warn'] : []),
      ...options.args,
    ];
    this.currentChannel = new Channel(this.endpoint);
  }

  /** A channel to this member; a new one after each restart. */
  get channel(): Channel {
    return this.currentChannel;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Running and not stopped by SIGSTOP. */
  get serving(): boolean {
    return this.running && !this.isPaused;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** How the process ended (undefined while it runs or before it started). */
  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    const child = this.child;
    if (child === undefined || this.running) return undefined;
    return { code: child.exitCode, signal: child.signalCode };
  }

  /** The last bytes the process wrote to stdout and stderr. */
  output(): string {
    return this.outputTail;
  }

  /**
   * Starts the process with `--initial-cluster=<initialCluster>` and `--initial-cluster-state`;
   * resolves once it answers a Status request (it may still have no leader).
   */
  async start(initialCluster: string, state: 'new' | 'existing', token: string): Promise<void> {
    if (this.running) throw new Error(`member ${this.name} is already running (pid ${this.pid})`);
    this.clusterArgs = [
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-state=${state}`,
      `--initial-cluster-token=${token}`,
    ];
    await this.launch();
  }

  /** Starts the process again on the same ports and data dir, after it exited or was killed. */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`member ${this.name} is still running (pid ${this.pid})`);
    if (this.clusterArgs.length === 0) throw new Error(`member ${this.name} was never started`);
    this.currentChannel.close();
    this.currentChannel = new Channel(this.endpoint);
    await this.launch();
  }

  /** Sends `signal` and waits for the process to exit (SIGKILL after a bounded wait). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    if (this.isPaused) this.resume();
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_WAIT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** Stops the process with SIGSTOP: it holds its sockets and answers nothing. */
  pause(): void {
    if (!this.running || this.isPaused) return;
    this.child?.kill('SIGSTOP');
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    if (this.running) this.child?.kill('SIGCONT');
  }

  /** Waits for the process to exit by itself, up to `timeoutMs`; false if it is still running. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    if (!this.running) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const result = await Promise.race([this.exited.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return result;
  }

  async status(timeoutMs = PROBE_TIMEOUT_MS): Promise<StatusResponse> {
    const st = await this.currentChannel.unary(MaintenanceService.Status, StatusRequest.fromPartial({}), {
      timeoutMs,
    });
    if (st.header !== undefined && st.header.memberId !== 0n) this.id = st.header.memberId;
    return st;
  }

  async hashKV(revision = 0n, timeoutMs = 5_000): Promise<HashKVResponse> {
    return this.currentChannel.unary(MaintenanceService.HashKV, HashKVRequest.fromPartial({ revision }), {
      timeoutMs,
    });
  }

  /** Kills at once, for the exit handler. */
  destroySync(): void {
    this.currentChannel.close();
    if (this.running) {
      if (this.isPaused) this.child?.kill('SIGCONT');
      this.child?.kill('SIGKILL');
    }
  }

  closeChannel(): void {
    this.currentChannel.close();
  }

  private async launch(): Promise<void> {
    const args = [...this.commonArgs, ...this.clusterArgs];
    const entry = this.etcdTsEntry !== undefined ? [this.etcdTsEntry] : ['--import', 'tsx', ETCD_TS_BIN];
    const etcdTs = [...this.nodeArgs, ...entry, ...args];
    const [command, argv] = this.kind === MemberKind.ETCD ? ['etcd', args] : [process.execPath, etcdTs];
    const child = spawn(command, argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.isPaused = false;
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const keep = (chunk: Buffer) => {
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
    await this.waitServing();
  }

  private async waitServing(): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!this.running) {
        await this.exited;
        throw new Error(
          `${this.kind} member ${this.name} exited (${JSON.stringify(this.exitStatus)}) before serving:\n` +
            this.outputTail.slice(-4096),
        );
      }
      try {
        await this.status();
        return;
      } catch (err) {
        lastError = err;
      }
      await sleep(POLL_MS * 2);
    }
    throw new Error(
      `${this.kind} member ${this.name} not serving after ${this.readyTimeoutMs} ms (last error: ${String(lastError)}):\n` +
        this.outputTail.slice(-4096),
    );
  }
}

export class Cluster {
  readonly kind: MemberKind;
  readonly token: string;
  /** Every member this cluster started or prepared, in order; `forget` drops one. */
  readonly members: ClusterMember[] = [];
  private readonly root: string;
  private readonly args: readonly string[];
  private readonly proxied: boolean;
  private readonly readyTimeoutMs: number;
  private readonly etcdTsEntry: string | undefined;
  private readonly nodeArgs: readonly string[];
  private stopped = false;

  private constructor(options: ClusterOptions, root: string) {
    this.kind = options.kind ?? MemberKind.ETCD_TS;
    this.token = options.token ?? `etcd-ts-test-${process.pid}-${Date.now()}`;
    this.root = root;
    this.args = options.args ?? [];
    this.proxied = options.proxied ?? false;
    this.readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT;
    this.etcdTsEntry = options.etcdTsEntry;
    this.nodeArgs = options.nodeArgs ?? [];
  }

  /** Bootstraps `size` members and waits until they agree on a leader and serve linearizable reads. */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const kind = options.kind ?? MemberKind.ETCD_TS;
    const entry = options.etcdTsEntry ?? ETCD_TS_BIN;
    if (kind === MemberKind.ETCD_TS && !existsSync(entry)) throw new Error(`${entry} does not exist`);
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1) throw new Error(`a cluster needs at least one member, got ${size}`);
    const cluster = new Cluster(options, mkdtempSync(join(tmpdir(), `etcd-ts-cluster-${kind}-`)));
    liveClusters.add(cluster);
    try {
      for (let i = 0; i < size; i++) await cluster.prepareMember(`m${i}`);
      const initial = cluster.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      await Promise.all(cluster.members.map((m) => m.start(initial, 'new', cluster.token)));
      await cluster.waitReady();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Creates a member (ports, data dir, proxy) without starting it. */
  async prepareMember(name: string, args: readonly string[] = []): Promise<ClusterMember> {
    if (this.members.some((m) => m.name === name)) throw new Error(`a member named ${name} exists`);
    const clientPort = await freePort();
    const listenPeerPort = await freePort();
    const proxy = this.proxied ? await PeerProxy.listen(listenPeerPort, () => this.pidNames()) : undefined;
    const dataDir = join(this.root, name);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const member = new ClusterMember({
      kind: this.kind,
      name,
      dataDir,
      clientPort,
      listenPeerPort,
      proxy,
      args: [...this.args, ...args],
      readyTimeoutMs: this.readyTimeoutMs,
      etcdTsEntry: this.etcdTsEntry,
      nodeArgs: this.nodeArgs,
    });
    this.members.push(member);
    return member;
  }

  /** Starts a prepared member that `member add` made part of the cluster. */
  async startJoining(member: ClusterMember, initialCluster: string): Promise<void> {
    await member.start(initialCluster, 'existing', this.token);
  }

  /** Drops a member (after `member remove`): kills it and closes its proxy. */
  async forget(member: ClusterMember): Promise<void> {
    const i = this.members.indexOf(member);
    if (i < 0) return;
    this.members.splice(i, 1);
    member.closeChannel();
    await member.kill('SIGKILL');
    await member.proxy?.close();
  }

  member(name: string): ClusterMember {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no member named ${name}`);
    return m;
  }

  /** Members running and not paused. */
  serving(): ClusterMember[] {
    return this.members.filter((m) => m.serving);
  }

  /** Comma-separated endpoints (of the serving members by default), for etcdctl. */
  endpoints(members: readonly ClusterMember[] = this.serving()): string {
    return members.map((m) => m.endpoint).join(',');
  }

  /** The real etcdctl against `members` (default: every serving member). */
  etcdctl(
    args: readonly string[],
    options: EtcdctlOptions & { members?: readonly ClusterMember[] } = {},
  ): Promise<EtcdctlResult> {
    return etcdctl(this.endpoints(options.members), args, options);
  }

  /**
   * Waits until every member of `among` (default: the serving ones) reports the same leader,
   * one of them (and not `notId`), and returns it.
   */
  async leader(options: { timeoutMs?: number; among?: readonly ClusterMember[]; notId?: bigint } = {}) {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return waitFor('an agreed leader', timeoutMs, async () => {
      const among = options.among ?? this.serving();
      if (among.length === 0) return undefined;
      const statuses = await Promise.all(among.map((m) => m.status()));
      const lead = statuses[0]!.leader;
      if (lead === 0n || lead === options.notId) return undefined;
      if (!statuses.every((s) => s.leader === lead)) return undefined;
      return among.find((m) => m.id === lead);
    });
  }

  /** Waits for an agreed leader, then for a linearizable read to succeed on every serving member. */
  async waitReady(timeoutMs = this.readyTimeoutMs): Promise<ClusterMember> {
    const leader = await this.leader({ timeoutMs });
    const probe = RangeRequest.fromPartial({ key: Buffer.from('cluster-ready-probe') });
    await Promise.all(
      this.serving().map((m) =>
        waitFor(`a linearizable read on ${m.name}`, timeoutMs, async () => {
          await m.channel.unary(KVService.Range, probe, { timeoutMs: PROBE_TIMEOUT_MS * 2 });
          return true;
        }),
      ),
    );
    return leader;
  }

  /**
   * Waits until every serving member has applied the same revision and has the same hash of
   * its key-value history at that revision; returns the revision.
   */
  async waitConverged(timeoutMs = 15_000): Promise<bigint> {
    return waitFor('members to converge (same revision, same hash)', timeoutMs, async () => {
      const members = this.serving();
      const statuses = await Promise.all(members.map((m) => m.status()));
      const revision = statuses[0]?.header?.revision;
      if (revision === undefined || !statuses.every((s) => s.header?.revision === revision)) return undefined;
      const hashes = await Promise.all(members.map((m) => m.hashKV(revision)));
      if (!hashes.every((h) => h.hash === hashes[0]!.hash && h.header?.revision === revision)) return undefined;
      return revision;
    });
  }

  /** Cuts the peer links between `a` and `b`, both directions (proxied clusters only). */
  cut(a: ClusterMember, b: ClusterMember): void {
    this.proxyOf(a).block(b.name);
    this.proxyOf(b).block(a.name);
  }

  /** Cuts every peer link of `member`; its client port stays reachable. */
  isolate(member: ClusterMember): void {
    this.proxyOf(member).block(ANY_SOURCE);
    for (const other of this.members) if (other !== member) this.proxyOf(other).block(member.name);
  }

  /** Restores every cut link. */
  heal(): void {
    for (const m of this.members) m.proxy?.unblockAll();
  }

  /** pid -> member name of the running processes (how proxies name who dialed them). */
  pidNames(): Map<number, string> {
    const names = new Map<number, string>();
    for (const m of this.members) if (m.running && m.pid !== undefined) names.set(m.pid, m.name);
    return names;
  }

  /** Kills every process, closes the proxies and removes the data dirs. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.members.map((m) => m.kill('SIGKILL')));
    for (const m of this.members) m.closeChannel();
    await Promise.all(this.members.map((m) => m.proxy?.close()));
    rmSync(this.root, { recursive: true, force: true });
    liveClusters.delete(this);
  }

  /** For the exit handler: kill at once and remove the directory, synchronously. */
  destroySync(): void {
    for (const m of this.members) m.destroySync();
    rmSync(this.root, { recursive: true, force: true });
  }

  /** The directory holding every member's data dir. */
  get dir(): string {
    return this.root;
  }

  private proxyOf(member: ClusterMember): PeerProxy {
    if (member.proxy === undefined) throw new Error(`cluster not proxied: cannot cut the links of ${member.name}`);
    return member.proxy;
  }
}
