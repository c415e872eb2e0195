/**
 * Processes for the operations tests: members of etcd-ts or of the real etcd started on a given
 * data dir (a fresh one or one made by `snapshot restore`), clusters of several members on free
 * 127.0.0.1 ports, the CLIs, and dumps of the key space at a revision. Every process is killed and
 * every temporary directory removed when the test process exits, whatever happens.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.ts';
import { KVService, type RangeResponse } from '../../src/proto/index.ts';
import { etcdctlEnv } from '../helpers/etcdctl.ts';
import { freePort } from '../helpers/ports.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ETCD_TS_BIN = join(REPO_ROOT, 'bin', 'etcd-ts.ts');
const ETCDCTL_TS_BIN = join(REPO_ROOT, 'bin', 'etcdctl-ts.ts');
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;
const CLI_TIMEOUT_MS = 60_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;

export type Kind = 'etcd' | 'etcd-ts';

const liveProcs = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function cleanupSync(): void {
  for (const child of liveProcs) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
process.once('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanupSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

/** A temporary directory under os.tmpdir(), removed at exit (or by `removeTempDir`). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `etcd-ts-ops-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export interface NodeSpec {
  kind: Kind;
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** `--initial-cluster`. */
  initialCluster: string;
  initialClusterToken?: string;
  extraArgs?: readonly string[];
}

/** One member process. */
export class Node {
  readonly spec: NodeSpec;
  readonly endpoint: string;
  readonly peerUrl: string;
  private child: ChildProcess | undefined = undefined;
  private exited: Promise<void> = Promise.resolve();
  private tail = '';

  constructor(spec: NodeSpec) {
    this.spec = spec;
    this.endpoint = `127.0.0.1:${spec.clientPort}`;
    this.peerUrl = `http://127.0.0.1:${spec.peerPort}`;
  }

  get name(): string {
    return this.spec.name;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  /** Starts the process; does not wait for it to serve (see `waitReady`). */
  launch(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const s = this.spec;
    const clientUrl = `http://127.0.0.1:${s.clientPort}`;
    const args = [
      `--name=${s.name}`,
      `--data-dir=${s.dataDir}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${s.initialCluster}`,
      `--initial-cluster-token=${s.initialClusterToken ?? 'etcd-cluster'}`,
      ...(s.kind === 'etcd' ? ['--logger=zap', '--log-outputs=stderr', '--log-level=error'] : ['--log-level=warn']),
      ...(s.extraArgs ?? []),
    ];
    const child =
      s.kind === 'etcd'
        ? spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(process.execPath, ['--import', 'tsx', ETCD_TS_BIN, ...args], {
            cwd: REPO_ROOT,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    this.child = child;
    liveProcs.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        liveProcs.delete(child);
        resolve();
      }),
    );
    const keep = (chunk: Buffer) => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Waits until a linearizable read succeeds on this member (so it has a leader and has caught up). */
  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const client = new Client({ endpoints: [this.endpoint], dialTimeoutMs: 1000, callTimeoutMs: 2000 });
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    try {
      while (Date.now() < deadline) {
        if (!this.running) throw new Error(`${this.spec.kind} ${this.name} exited before it was ready:\n${this.tail}`);
        try {
          await client.get('ops-ready-probe');
          return;
        } catch (err) {
          last = err;
        }
        await sleep(100);
      }
    } finally {
      client.close();
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms (${String(last)}):\n${this.tail}`);
  }

  /** Sends `signal` and waits for the exit (SIGKILL after a grace period). */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Members on fresh ports; `dataDirs` (if given) are used instead of fresh directories. */
export async function startCluster(
  kind: Kind,
  names: readonly string[],
  options: { extraArgs?: readonly string[]; token?: string; dataDirs?: readonly string[]; ports?: Ports[] } = {},
): Promise<Cluster> {
  const ports = options.ports ?? (await allocatePorts(names.length));
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const nodes = names.map(
    (name, i) =>
      new Node({
        kind,
        name,
        dataDir: options.dataDirs?.[i] ?? join(tempDir(`${kind}-${name}`), 'data'),
        clientPort: ports[i]!.client,
        peerPort: ports[i]!.peer,
        initialCluster,
        initialClusterToken: options.token ?? 'etcd-cluster',
        extraArgs: options.extraArgs ?? [],
      }),
  );
  const cluster = new Cluster(nodes, initialCluster);
  try {
    for (const n of nodes) n.launch();
    await Promise.all(nodes.map((n) => n.waitReady()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

export interface Ports {
  client: number;
  peer: number;
}

export async function allocatePorts(n: number): Promise<Ports[]> {
  const out: Ports[] = [];
  for (let i = 0; i < n; i++) out.push({ client: await freePort(), peer: await freePort() });
  return out;
}

export class Cluster {
  readonly nodes: Node[];
  readonly initialCluster: string;

  constructor(nodes: Node[], initialCluster: string) {
    this.nodes = nodes;
    this.initialCluster = initialCluster;
  }

  get endpoints(): string[] {
    return this.nodes.map((n) => n.endpoint);
  }

  client(options: { callTimeoutMs?: number } = {}): Client {
    return new Client({ endpoints: this.endpoints, callTimeoutMs: options.callTimeoutMs ?? 10_000 });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGTERM')));
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real etcdctl (API 3) or etcdctl-ts as a process, bounded in time. */
export function cli(
  tool: 'etcdctl' | 'etcdctl-ts',
  args: readonly string[],
  timeoutMs = CLI_TIMEOUT_MS,
): Promise<CliResult> {
  const env = etcdctlEnv();
  const [file, argv] =
    tool === 'etcdctl' ? ['etcdctl', [...args]] : [process.execPath, ['--import', 'tsx', ETCDCTL_TS_BIN, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveProcs.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      liveProcs.delete(child);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      liveProcs.delete(child);
      resolve({ code: code ?? (signal === 'SIGKILL' ? -1 : 128), stdout, stderr });
    });
  });
}

/** A key-value pair as compared between servers. */
export interface KvDump {
  key: string;
  value: string;
  create: string;
  mod: string;
  version: string;
  lease: string;
}

/** Every key of the store at `revision` (0: current), with the header's revision. */
export async function dumpAt(client: Client, revision: number): Promise<{ revision: bigint; kvs: KvDump[] }> {
  const r: RangeResponse = await client.call(
    KVService.Range,
    {
      key: Buffer.from([0]),
      rangeEnd: Buffer.from([0]),
      limit: 0n,
      revision: BigInt(revision),
      sortOrder: 0,
      sortTarget: 0,
      serializable: false,
      keysOnly: false,
      countOnly: false,
      minModRevision: 0n,
      maxModRevision: 0n,
      minCreateRevision: 0n,
      maxCreateRevision: 0n,
    },
    { idempotent: true },
  );
  return {
    revision: r.header?.revision ?? 0n,
    kvs: r.kvs.map((kv) => ({
      key: Buffer.from(kv.key).toString('hex'),
      value: Buffer.from(kv.value).toString('hex'),
      create: String(kv.createRevision),
      mod: String(kv.modRevision),
      version: String(kv.version),
      lease: String(kv.lease),
    })),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (${String(last)})`}`,
  );
}
