// Starting and stopping one single-member server (the real etcd or etcd-ts) on loopback ports
// with etcd's flags, a given data dir, and its log in a file.

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TargetKind as Kinds, type TargetKind } from './config.ts';
import { GRPC_UNIMPLEMENTED, GrpcClient, GrpcError } from './grpc.ts';

export const HOST = '127.0.0.1';
export const MEMBER_NAME = 'bench';
export const READY_TIMEOUT_MS = 30_000;
export const READY_POLL_MS = 50;
export const STOP_TIMEOUT_MS = 15_000;
const PROBE_TIMEOUT_MS = 1_000;

export interface ServerCommand {
  /** How to start each kind: the real etcd binary, or node with the compiled etcd-ts entry. */
  etcdPath: string;
  etcdTsEntry: string;
}

export interface ServerPorts {
  client: number;
  peer: number;
}

/** etcd's flags for a fresh single-member cluster; the same for both kinds. */
export function serverArgs(dataDir: string, ports: ServerPorts): string[] {
  const clientUrl = `http://${HOST}:${ports.client}`;
  const peerUrl = `http://${HOST}:${ports.peer}`;
  return [
    '--name',
    MEMBER_NAME,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `${MEMBER_NAME}=${peerUrl}`,
  ];
}

/** Two distinct free loopback ports (bound to port 0, then released). */
export async function freePorts(): Promise<ServerPorts> {
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, HOST, () => {
        const addr = srv.address();
        const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
        srv.close(() => resolve(port));
      });
    });
  const client = await one();
  let peer = await one();
  while (peer === client) peer = await one();
  return { client, peer };
}

export interface StopResult {
  stopMs: number;
  /** It did not exit within STOP_TIMEOUT_MS of SIGTERM and was killed. */
  killed: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<RunningServer>();

/** Every server this process has started and not yet stopped (for cleanup on SIGINT). */
export function liveServers(): RunningServer[] {
  return [...live];
}

export class RunningServer {
  readonly kind: TargetKind;
  readonly pid: number;
  /** host:port of the client URL, as etcd's tools take it. */
  readonly endpoint: string;
  readonly ports: ServerPorts;
  readonly dataDir: string;
  readonly logPath: string;
  /** Spawn to first successful linearizable Range. */
  readyMs: number;
  readonly #child: ChildProcess;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #exited: Promise<void>;

  private constructor(kind: TargetKind, child: ChildProcess, ports: ServerPorts, dataDir: string, logPath: string) {
    if (child.pid === undefined) throw new Error(`${kind} did not start`);
    this.kind = kind;
    this.pid = child.pid;
    this.endpoint = `${HOST}:${ports.client}`;
    this.ports = ports;
    this.dataDir = dataDir;
    this.logPath = logPath;
    this.readyMs = 0;
    this.#child = child;
    this.#exit = undefined;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve();
      });
    });
  }

  /**
   * Starts a server on `ports` with `dataDir`, appending its output to `logPath`, and waits
   * until a linearizable Range answers (so a leader exists). Throws with the log's tail if it
   * exits or does not answer within `readyTimeoutMs`; the process is stopped in that case.
   */
  static async start(
    kind: TargetKind,
    cmd: ServerCommand,
    dataDir: string,
    ports: ServerPorts,
    logPath: string,
    readyTimeoutMs = READY_TIMEOUT_MS,
  ): Promise<RunningServer> {
    const args = serverArgs(dataDir, ports);
    const [file, argv] = kind === Kinds.etcd ? [cmd.etcdPath, args] : [process.execPath, [cmd.etcdTsEntry, ...args]];
    const log = openSync(logPath, 'a');
    const t0 = performance.now();
    let child: ChildProcess;
    try {
      child = spawn(file, argv, { stdio: ['ignore', log, log], env: serverEnv() });
    } finally {
      closeSync(log);
    }
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (err) => resolve(err));
    });
    if (spawned !== null) throw new Error(`cannot start ${kind} (${file}): ${spawned.message}`);
    const server = new RunningServer(kind, child, ports, dataDir, logPath);
    live.add(server);
    try {
      await server.waitReady(readyTimeoutMs);
    } catch (err) {
      await server.stop();
      throw err;
    }
    server.readyMs = performance.now() - t0;
    return server;
  }

  get exited(): boolean {
    return this.#exit !== undefined;
  }

  /** "exited with code 1" / "killed by SIGSEGV", or null while running. */
  exitDescription(): string | null {
    const e = this.#exit;
    if (e === undefined) return null;
    return e.signal !== null ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last = 'no answer';
    while (performance.now() < deadline) {
      if (this.exited) {
        throw new Error(`${this.kind} ${this.exitDescription()} before serving; log tail:\n${this.logTail()}`);
      }
      const client = new GrpcClient(this.endpoint);
      try {
        await client.range({ key: Buffer.from('bench-ready') }, PROBE_TIMEOUT_MS);
        return;
      } catch (err) {
        // UNIMPLEMENTED will not go away by waiting; anything else may be a server still starting.
        if (err instanceof GrpcError && err.code === GRPC_UNIMPLEMENTED) {
          throw new Error(`${this.kind} does not serve KV.Range: ${err.message}`);
        }
        last = (err as Error).message;
      } finally {
        client.close();
      }
      await sleep(READY_POLL_MS);
    }
    throw new Error(
      `${this.kind} did not answer a Range within ${timeoutMs} ms (last: ${last}); log tail:\n${this.logTail()}`,
    );
  }

  /** Resolves when the process has exited or after `timeoutMs`, whichever comes first. */
  async waitExit(timeoutMs: number): Promise<void> {
    await Promise.race([this.#exited, sleep(timeoutMs)]);
  }

  /** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS. Safe to call more than once. */
  async stop(): Promise<StopResult> {
    const t0 = performance.now();
    let killed = false;
    if (!this.exited) {
      this.#child.kill('SIGTERM');
      const timedOut = await Promise.race([this.#exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
      if (timedOut && !this.exited) {
        killed = true;
        this.#child.kill('SIGKILL');
        await this.#exited;
      }
    }
    return {
      stopMs: performance.now() - t0,
      killed,
      exitCode: this.#exit?.code ?? null,
      signal: this.#exit?.signal ?? null,
    };
  }

  logTail(maxLines = 15): string {
    try {
      const lines = readFileSync(this.logPath, 'utf8').trimEnd().split('\n');
      return lines.slice(-maxLines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** The environment without ETCD_* variables, so that both servers see only the flags given. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  return env;
}
