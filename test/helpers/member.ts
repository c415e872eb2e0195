/**
 * One cluster member in a child process, for tests: the real etcd or etcd-ts
 * (`node --import tsx bin/etcd-ts.ts`), started with etcd's flags on free 127.0.0.1 ports and a
 * temporary data dir, ready once it answers a KV Range, and always cleaned up: `stop()` kills the
 * process and removes the data dir, and whatever a test leaves behind is killed and removed when
 * the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Channel, GrpcCallError, Status } from '../../src/client/channel.ts';
import { KVService, RangeRequest } from '../../src/proto/index.ts';
import { freePort } from './ports.ts';

export const MemberKind = { ETCD: 'etcd', ETCD_TS: 'etcd-ts' } as const;
export type MemberKind = (typeof MemberKind)[keyof typeof MemberKind];

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ETCD_TS_BIN = join(REPO_ROOT, 'bin', 'etcd-ts.ts');

const READY_TIMEOUT_MS_DEFAULT = 20_000;
const READY_PROBE_TIMEOUT_MS = 1_000;
const READY_POLL_MS = 100;
const STOP_GRACE_MS = 3_000;
const KILL_WAIT_MS = 5_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;

/**
 * The server that compatibility tests check against the real etcd: `COMPAT_TARGET=etcd` runs
 * them against a second real etcd (to prove a test itself), anything else against etcd-ts.
 */
export function compatTarget(): MemberKind {
  const value = process.env.COMPAT_TARGET ?? MemberKind.ETCD_TS;
  if (value !== MemberKind.ETCD && value !== MemberKind.ETCD_TS) {
    throw new Error(`COMPAT_TARGET must be "etcd" or "etcd-ts", got ${JSON.stringify(value)}`);
  }
  return value;
}

export interface MemberOptions {
  kind: MemberKind;
  /** Member name (`--name`); also the only entry of `--initial-cluster`. */
  name?: string;
  /** More flags, after the ones every member gets (e.g. `--max-txn-ops=8`). */
  extraArgs?: readonly string[];
  /** How long to wait for the first successful KV Range after each start. */
  readyTimeoutMs?: number;
}

/** Processes and directories still alive, killed and removed when the test process exits. */
const liveMembers = new Set<Member>();

function cleanupSync(): void {
  for (const member of liveMembers) member.destroySync();
}
process.once('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanupSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

export class Member {
  readonly kind: MemberKind;
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `127.0.0.1:<client port>`, as etcdctl's `--endpoints` takes it. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  private readonly args: readonly string[];
  private readonly readyTimeoutMs: number;
  private child: ChildProcess | undefined = undefined;
  private exited: Promise<void> = Promise.resolve();
  private outputTail = '';
  private currentChannel: Channel;
  private removed = false;

  private constructor(options: MemberOptions, dataDir: string, clientPort: number, peerPort: number) {
    this.kind = options.kind;
    this.name = options.name ?? 'compat';
    this.dataDir = dataDir;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.endpoint = `127.0.0.1:${clientPort}`;
    this.clientUrl = `http://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
    this.readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT;
    this.args = [
      `--name=${this.name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${this.name}=${this.peerUrl}`,
      ...(options.kind === MemberKind.ETCD ? ['--logger=zap', '--log-outputs=stderr', '--log-level=error'] : []),
      ...(options.extraArgs ?? []),
    ];
    this.currentChannel = new Channel(this.endpoint);
  }

  /** Starts a member on fresh ports with a fresh data dir and waits until it serves KV requests. */
  static async start(options: MemberOptions): Promise<Member> {
    if (options.kind === MemberKind.ETCD_TS && !existsSync(ETCD_TS_BIN)) {
      throw new Error(`${ETCD_TS_BIN} does not exist: etcd-ts cannot be started`);
    }
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), `etcd-ts-compat-${options.kind}-`));
    const member = new Member(options, dataDir, clientPort, peerPort);
    liveMembers.add(member);
    try {
      await member.launch();
    } catch (err) {
      await member.stop();
      throw err;
    }
    return member;
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

  /** The last bytes the process wrote to stdout and stderr, for failure messages. */
  output(): string {
    return this.outputTail;
  }

  /** Sends `signal` and waits for the process to exit (SIGKILL after a bounded wait). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), signal === 'SIGKILL' ? KILL_WAIT_MS : STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** Starts the process again on the same ports and data dir, after it exited or was killed. */
  async restart(): Promise<void> {
    if (this.removed) throw new Error(`member ${this.name} was stopped and its data dir removed`);
    if (this.running) throw new Error(`member ${this.name} is still running (pid ${this.pid})`);
    this.currentChannel.close();
    this.currentChannel = new Channel(this.endpoint);
    await this.launch();
  }

  /** Kills the process (SIGTERM, then SIGKILL) and removes the data dir. Safe to call twice. */
  async stop(): Promise<void> {
    this.currentChannel.close();
    await this.kill('SIGTERM');
    this.removeDataDir();
    liveMembers.delete(this);
  }

  /** For the exit handler: kill at once and remove the data dir, synchronously. */
  destroySync(): void {
    this.currentChannel.close();
    if (this.running) this.child?.kill('SIGKILL');
    this.removeDataDir();
  }

  private removeDataDir(): void {
    if (this.removed) return;
    this.removed = true;
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const [command, args] =
      this.kind === MemberKind.ETCD
        ? ['etcd', this.args]
        : [process.execPath, ['--import', 'tsx', ETCD_TS_BIN, ...this.args]];
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const keep = (chunk: Buffer) => {
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
    await this.waitReady();
  }

  private async waitReady(): Promise<void> {
    const startedMs = Date.now();
    const probe = RangeRequest.fromPartial({ key: Buffer.from('compat-ready-probe') });
    let lastError: unknown;
    while (Date.now() - startedMs < this.readyTimeoutMs) {
      if (!this.running) {
        await this.exited;
        const child = this.child;
        throw new Error(
          `${this.kind} member ${this.name} exited (code ${child?.exitCode}, signal ${child?.signalCode}) ` +
            `before it was ready:\n${this.outputTail}`,
        );
      }
      try {
        await this.currentChannel.unary(KVService.Range, probe, { timeoutMs: READY_PROBE_TIMEOUT_MS });
        return;
      } catch (err) {
        // A server that does not have the method will not get it by waiting.
        if (err instanceof GrpcCallError && err.code === Status.UNIMPLEMENTED) {
          throw new Error(`${this.kind} member ${this.name} does not serve KV Range: ${err.message}`);
        }
        lastError = err;
      }
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
    throw new Error(
      `${this.kind} member ${this.name} not ready after ${this.readyTimeoutMs} ms ` +
        `(last error: ${String(lastError)}):\n${this.outputTail}`,
    );
  }
}
