/**
 * A cluster of real etcd processes on loopback for the client tests: `size` members with one
 * `--initial-cluster`, fast elections (heartbeat 50 ms, election timeout 500 ms), temporary data
 * dirs; members can be SIGKILLed and restarted on the same data dir. Everything is killed and
 * removed by `stop()`, and at the latest when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Channel, type TlsOptions } from '../../src/client/channel.ts';
import { KVService, RangeRequest } from '../../src/proto/index.ts';
import { freePort } from '../helpers/ports.ts';

const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 100;
const KILL_WAIT_MS = 5_000;
const OUTPUT_TAIL_BYTES = 8 * 1024;

export interface NodeSpec {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
}

const live = new Set<EtcdCluster>();
process.once('exit', () => {
  for (const c of live) c.destroySync();
});

export interface ClusterOptions {
  /** More etcd flags for every member. */
  extraArgs?: readonly string[];
  /** Serve clients over TLS (the members need --cert-file etc. in extraArgs); used to probe readiness. */
  clientTls?: TlsOptions;
}

export class EtcdNode {
  readonly spec: NodeSpec;
  readonly endpoint: string;
  readonly clientUrl: string;
  private readonly clientTls: TlsOptions | undefined;
  private readonly args: readonly string[];
  private child: ChildProcess | undefined = undefined;
  private exited: Promise<void> = Promise.resolve();
  private tail = '';

  constructor(spec: NodeSpec, initialCluster: string, token: string, options: ClusterOptions) {
    this.spec = spec;
    this.endpoint = `127.0.0.1:${spec.clientPort}`;
    this.clientTls = options.clientTls;
    const clientUrl = `${options.clientTls === undefined ? 'http' : 'https'}://127.0.0.1:${spec.clientPort}`;
    this.clientUrl = clientUrl;
    const peerUrl = `http://127.0.0.1:${spec.peerPort}`;
    this.args = [
      `--name=${spec.name}`,
      `--data-dir=${spec.dataDir}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=${token}`,
      '--initial-cluster-state=new',
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=error',
      ...(options.extraArgs ?? []),
    ];
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const child = spawn('etcd', this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    });
  }

  /** Waits until a linearizable read succeeds on this member. */
  async ready(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const channel = new Channel(this.clientUrl, this.clientTls === undefined ? {} : { tls: this.clientTls });
    const startMs = Date.now();
    try {
      while (Date.now() - startMs < timeoutMs) {
        if (!this.running) throw new Error(`etcd ${this.spec.name} exited:\n${this.tail}`);
        try {
          await channel.unary(KVService.Range, RangeRequest.fromPartial({ key: Buffer.from('ready') }), {
            timeoutMs: 1000,
          });
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
        }
      }
      throw new Error(`etcd ${this.spec.name} not ready after ${timeoutMs} ms:\n${this.tail}`);
    } finally {
      channel.close();
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), KILL_WAIT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  killSync(): void {
    if (this.running) this.child!.kill('SIGKILL');
  }
}

export class EtcdCluster {
  readonly nodes: readonly EtcdNode[];
  private readonly dirs: string[];

  private constructor(nodes: EtcdNode[], dirs: string[]) {
    this.nodes = nodes;
    this.dirs = dirs;
  }

  /** Starts `size` members and waits until every one serves reads. */
  static async start(size: number, options: ClusterOptions = {}): Promise<EtcdCluster> {
    const specs: NodeSpec[] = [];
    const dirs: string[] = [];
    for (let i = 0; i < size; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), 'etcd-ts-client-'));
      dirs.push(dataDir);
      specs.push({ name: `n${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir });
    }
    const initial = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
    const token = `client-test-${process.pid}-${Date.now()}`;
    const cluster = new EtcdCluster(
      specs.map((s) => new EtcdNode(s, initial, token, options)),
      dirs,
    );
    live.add(cluster);
    try {
      for (const n of cluster.nodes) n.start();
      await Promise.all(cluster.nodes.map((n) => n.ready()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.nodes.map((n) => n.endpoint);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    live.delete(this);
  }

  destroySync(): void {
    for (const n of this.nodes) n.killSync();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}
